/* exec_ops_train.c: the CPU adapters of the training ops (the loss, its
 * gradient and the backward of every fused op), dispatched by kind from
 * executor.c. Shapes and in-place results were checked when the plan loaded
 * (plan_check.c); a batch-major value's first dim is the number of rows of
 * this step (n). "(, acc)": the op adds its result to its last operand, the
 * result's own bytes, when the plan gives one (plan_ops.h). */
#include <string.h>

#include "executor.h"

#define dim exec_dim
#define numel exec_numel
#define val exec_value

/* The trailing dim of value id. */
static int64_t last_dim(const Executor *e, uint32_t id) {
  const PlanValue *v = &e->pv->values[id];
  return v->dims[v->rank - 1];
}

/* Whether the op was given its optional accumulator. */
static int has_acc(const PlanOp *op) { return op->n_in == plan_op_info(op->kind)->inputs; }

void exec_op_q_sample(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp) {
  (void)sp;
  const uint32_t *in = op->in; /* x0, noise [N,C,H,W], t [N] -> x_t */
  cpu_q_sample(&e->cpu, val(e, in[0]), val(e, in[1]), val(e, in[2]), n, numel(e, in[0], n) / n, e->loss_table,
               val(e, op->out));
}

void exec_op_diffusion_loss(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp) {
  (void)sp;
  const uint32_t *in = op->in; /* x0, x_t, model out, noise, t -> loss [N] */
  int64_t C = dim(e, in[0], 1, n), hw = dim(e, in[0], 2, n) * dim(e, in[0], 3, n);
  cpu_diffusion_loss(&e->cpu, val(e, in[0]), val(e, in[1]), val(e, in[3]), val(e, in[2]), val(e, in[4]), n, C, hw,
                     (int)plan_attrs_DIFFUSION_LOSS(op).learn_sigma, e->loss_table, val(e, op->out));
}

void exec_op_loss_grad(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp) {
  (void)sp;
  const uint32_t *in = op->in; /* the loss's operands -> d(loss)/d(model out), times grad_scale */
  int64_t C = dim(e, in[0], 1, n), hw = dim(e, in[0], 2, n) * dim(e, in[0], 3, n);
  cpu_diffusion_loss_bwd(&e->cpu, val(e, in[0]), val(e, in[1]), val(e, in[3]), val(e, in[2]), val(e, in[4]), n, C,
                         hw, (int)plan_attrs_LOSS_GRAD(op).learn_sigma, e->loss_table, e->grad_scale,
                         val(e, op->out));
}

void exec_op_zeros(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp) {
  (void)sp;
  memset(val(e, op->out), 0, (size_t)numel(e, op->out, n) * sizeof(float));
}

void exec_op_act_grad(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp) {
  (void)sp;
  const uint32_t *in = op->in; /* dy, z -> dy * act'(z) */
  cpu_act_bwd(&e->cpu, val(e, in[0]), val(e, in[1]), numel(e, in[0], n), (int)plan_attrs_ACT_GRAD(op).act,
              val(e, op->out));
}

void exec_op_linear_grad_x(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp) {
  (void)sp;
  const uint32_t *in = op->in; /* dz [...,M], W [M,K] (, acc) -> dx [...,K] */
  int64_t M = last_dim(e, in[0]), rows = numel(e, in[0], n) / M;
  cpu_linear_bwd_data(&e->cpu, val(e, in[0]), rows, M, val(e, in[1]), last_dim(e, in[1]), has_acc(op),
                      val(e, op->out));
}

void exec_op_linear_grad_w(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp) {
  (void)sp;
  const uint32_t *in = op->in; /* dz [...,M], x [...,K] -> dW [M,K], out2 db [M] */
  int64_t M = last_dim(e, in[0]), rows = numel(e, in[0], n) / M;
  cpu_linear_bwd_params(&e->cpu, val(e, in[0]), rows, M, val(e, in[1]), last_dim(e, in[1]), val(e, op->out),
                        val(e, op->out2));
}

void exec_op_ln_modulate_grad(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp) {
  (void)sp;
  const uint32_t *in = op->in; /* dy, x [N,T,D], mod, dmod [N,M] (, acc) -> dx, out2 dmod */
  PlanAttrs_LN_MODULATE_GRAD at = plan_attrs_LN_MODULATE_GRAD(op);
  cpu_ln_modulate_bwd(&e->cpu, val(e, in[0]), val(e, in[1]), n, dim(e, in[1], 1, n), dim(e, in[1], 2, n),
                      val(e, in[2]), dim(e, in[2], 1, n), at.shift_col, at.scale_col, at.eps, has_acc(op),
                      val(e, op->out), val(e, op->out2));
}

void exec_op_residual_gate_grad(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp) {
  (void)sp;
  const uint32_t *in = op->in; /* dr, h [N,T,D], gmod, dmod [N,M] -> dh, out2 dmod */
  cpu_residual_gate_bwd(&e->cpu, val(e, in[0]), val(e, in[1]), n, dim(e, in[1], 1, n), dim(e, in[1], 2, n),
                        val(e, in[2]), dim(e, in[2], 1, n), plan_attrs_RESIDUAL_GATE_GRAD(op).gate_col,
                        val(e, op->out), val(e, op->out2));
}

void exec_op_attention_grad(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp) {
  (void)sp;
  const uint32_t *in = op->in; /* dout, qkv, out, lse (, acc) -> dqkv */
  PlanAttrs_ATTENTION_GRAD at = plan_attrs_ATTENTION_GRAD(op);
  cpu_attention_bwd(&e->cpu, val(e, in[0]), val(e, in[1]), val(e, in[2]), val(e, in[3]), n, dim(e, in[1], 1, n),
                    at.heads, at.head_dim, at.scale, has_acc(op), val(e, op->out));
}

void exec_op_embedding_grad(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp) {
  (void)sp;
  const uint32_t *in = op->in; /* dout [N,D], ids [N] -> dtable [V,D] */
  cpu_embedding_bwd(&e->cpu, val(e, in[0]), n, dim(e, in[0], 1, n), val(e, in[1]), dim(e, op->out, 0, n),
                    val(e, op->out));
}

void exec_op_unpatchify_grad(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp) {
  (void)sp;
  PlanAttrs_UNPATCHIFY_GRAD at = plan_attrs_UNPATCHIFY_GRAD(op); /* dout [N,C,H,W] -> [N,T,p*p*C] */
  int64_t g = dim(e, op->in[0], 2, n) / at.patch;
  cpu_unpatchify_bwd(&e->cpu, val(e, op->in[0]), n, g, at.patch, at.channels, val(e, op->out));
}

void exec_op_sum_rows(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp) {
  (void)sp;
  cpu_sum_rows(&e->cpu, val(e, op->in[0]), numel(e, op->in[0], n), numel(e, op->out, n), 0, val(e, op->out));
}
