/* exec_train.c: the training ops of a plan (the loss, its gradient and the
 * backward of every fused op) on the CPU backend. Shapes and in-place
 * results were checked when the plan loaded (plan_check.c); a batch-major
 * value's first dim is the number of rows of this step. */
#include <string.h>

#include "executor.h"

#define dim exec_dim
#define numel exec_numel

/* The trailing dim of value id, and the rows before it. */
static int64_t last_dim(const Executor *e, uint32_t id) {
  const PlanValue *v = &e->pv->values[id];
  return v->dims[v->rank - 1];
}

void exec_train_op(const Executor *e, const PlanOp *op, int64_t n) {
  const CpuCtx *c = &e->cpu;
  const uint32_t *in = op->in;
  float *out = exec_value(e, op->out);
  const void *a = op->n_in ? exec_value(e, in[0]) : NULL;
  const DitLossTable *tab = e->loss_table;
  switch ((PlanOpKind)op->kind) {
  case PLAN_OP_Q_SAMPLE:
    cpu_q_sample(c, a, exec_value(e, in[1]), exec_value(e, in[2]), n, numel(e, in[0], n) / n, tab, out);
    break;
  case PLAN_OP_DIFFUSION_LOSS:
  case PLAN_OP_LOSS_GRAD: {
    int64_t C = dim(e, in[0], 1, n), hw = dim(e, in[0], 2, n) * dim(e, in[0], 3, n);
    if (op->kind == PLAN_OP_DIFFUSION_LOSS)
      cpu_diffusion_loss(c, a, exec_value(e, in[1]), exec_value(e, in[3]), exec_value(e, in[2]),
                         exec_value(e, in[4]), n, C, hw, (int)op->i[0], tab, out);
    else
      cpu_diffusion_loss_bwd(c, a, exec_value(e, in[1]), exec_value(e, in[3]), exec_value(e, in[2]),
                             exec_value(e, in[4]), n, C, hw, (int)op->i[0], tab, e->grad_scale, out);
    break;
  }
  case PLAN_OP_ZEROS: memset(out, 0, (size_t)numel(e, op->out, n) * sizeof(float)); break;
  case PLAN_OP_ACT_GRAD:
    cpu_act_bwd(c, a, exec_value(e, in[1]), numel(e, in[0], n), (int)op->i[0], out);
    break;
  case PLAN_OP_LINEAR_GRAD_X: {
    int64_t M = last_dim(e, in[0]), rows = numel(e, in[0], n) / M;
    cpu_linear_bwd_data(c, a, rows, M, exec_value(e, in[1]), last_dim(e, in[1]), op->n_in == 3, out);
    break;
  }
  case PLAN_OP_LINEAR_GRAD_W: {
    int64_t M = last_dim(e, in[0]), rows = numel(e, in[0], n) / M;
    cpu_linear_bwd_params(c, a, rows, M, exec_value(e, in[1]), last_dim(e, in[1]), out,
                          exec_value(e, op->out2));
    break;
  }
  case PLAN_OP_LN_MODULATE_GRAD:
    cpu_ln_modulate_bwd(c, a, exec_value(e, in[1]), n, dim(e, in[1], 1, n), dim(e, in[1], 2, n),
                        exec_value(e, in[2]), dim(e, in[2], 1, n), op->i[0], op->i[1], op->f[0],
                        op->n_in == 5, out, exec_value(e, op->out2));
    break;
  case PLAN_OP_RESIDUAL_GATE_GRAD:
    cpu_residual_gate_bwd(c, a, exec_value(e, in[1]), n, dim(e, in[1], 1, n), dim(e, in[1], 2, n),
                          exec_value(e, in[2]), dim(e, in[2], 1, n), op->i[2], out,
                          exec_value(e, op->out2));
    break;
  case PLAN_OP_ATTENTION_GRAD:
    cpu_attention_bwd(c, a, exec_value(e, in[1]), exec_value(e, in[2]), exec_value(e, in[3]), n,
                      dim(e, in[1], 1, n), op->i[0], op->i[1], op->f[0], op->n_in == 5, out);
    break;
  case PLAN_OP_EMBEDDING_GRAD:
    cpu_embedding_bwd(c, a, n, dim(e, in[0], 1, n), exec_value(e, in[1]), dim(e, op->out, 0, n), out);
    break;
  case PLAN_OP_UNPATCHIFY_GRAD: {
    int64_t g = dim(e, in[0], 2, n) / op->i[0];
    cpu_unpatchify_bwd(c, a, n, g, op->i[0], op->i[1], out);
    break;
  }
  case PLAN_OP_SUM_ROWS: cpu_sum_rows(c, a, numel(e, in[0], n), numel(e, op->out, n), 0, out); break;
  default: break; /* inference kinds run in executor.c; plan_check rejects unknown kinds */
  }
}
