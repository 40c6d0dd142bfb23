/* exec_ops_forward.c: the CPU adapters of the forward and sampler ops. Each
 * reads its operands' shapes and its named attributes (plan_ops.h) and calls
 * its kernel in cpu/; executor.c dispatches to them by kind. Shapes and
 * in-place results were checked when the plan loaded (plan_check.c). A
 * batch-major value's first dim is the number of rows of this call (n). */
#include "executor.h"

#define dim exec_dim
#define numel exec_numel
#define val exec_value

void exec_op_patchify(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp) {
  (void)sp;
  const uint32_t *in = op->in; /* x [N,C,H,W] -> [N,T,C*p*p] */
  cpu_patchify(&e->cpu, val(e, in[0]), n, dim(e, in[0], 1, n), dim(e, in[0], 2, n), dim(e, in[0], 3, n),
               plan_attrs_PATCHIFY(op).patch, val(e, op->out));
}

void exec_op_unpatchify(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp) {
  (void)sp;
  PlanAttrs_UNPATCHIFY at = plan_attrs_UNPATCHIFY(op); /* x [N,T,p*p*C] -> [N,C,H,W] */
  int64_t g = dim(e, op->out, 2, n) / at.patch;
  cpu_unpatchify(&e->cpu, val(e, op->in[0]), n, g, at.patch, at.channels, val(e, op->out));
}

void exec_op_linear(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp) {
  (void)sp;
  const uint32_t *in = op->in; /* x [...,K], W [M,K], b [M] -> [...,M] */
  int act = (int)plan_attrs_LINEAR(op).act;
  uint32_t r = e->pv->values[in[0]].rank;
  int64_t K = dim(e, in[0], r - 1, n), rows = numel(e, in[0], n) / K, M = dim(e, in[1], 0, n);
  if (op->out2 == DIT_PLAN_NONE) {
    cpu_linear(&e->cpu, val(e, in[0]), rows, K, val(e, in[1]), M, val(e, in[2]), act, val(e, op->out));
  } else { /* training: keep the pre-activation z for the backward */
    float *z = val(e, op->out2);
    cpu_linear(&e->cpu, val(e, in[0]), rows, K, val(e, in[1]), M, val(e, in[2]), PLAN_ACT_NONE, z);
    cpu_act(&e->cpu, z, rows * M, act, val(e, op->out));
  }
}

void exec_op_add(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp) {
  (void)sp;
  const uint32_t *in = op->in;
  cpu_add(&e->cpu, val(e, in[0]), numel(e, in[0], n), val(e, in[1]), numel(e, in[1], n), val(e, op->out));
}

void exec_op_silu(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp) {
  (void)sp;
  cpu_silu(&e->cpu, val(e, op->in[0]), numel(e, op->in[0], n), val(e, op->out));
}

void exec_op_timestep_freq(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp) {
  (void)sp;
  PlanAttrs_TIMESTEP_FREQ at = plan_attrs_TIMESTEP_FREQ(op); /* t [N] -> [N,freq_dim] */
  cpu_timestep_freq(&e->cpu, val(e, op->in[0]), n, at.freq_dim / 2, at.max_period, val(e, op->out));
}

void exec_op_embedding(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp) {
  (void)sp;
  const uint32_t *in = op->in; /* table [V,D], ids [N] -> [N,D] */
  cpu_embedding(&e->cpu, val(e, in[0]), dim(e, in[0], 1, n), val(e, in[1]), n, val(e, op->out));
}

void exec_op_ln_modulate(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp) {
  (void)sp;
  const uint32_t *in = op->in; /* x [N,T,D], mod [N,M] -> [N,T,D] */
  PlanAttrs_LN_MODULATE at = plan_attrs_LN_MODULATE(op);
  cpu_ln_modulate(&e->cpu, val(e, in[0]), n, dim(e, in[0], 1, n), dim(e, in[0], 2, n), val(e, in[1]),
                  dim(e, in[1], 1, n), at.shift_col, at.scale_col, at.eps, val(e, op->out));
}

void exec_op_res_gate_ln_modulate(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp) {
  (void)sp;
  const uint32_t *in = op->in; /* x, h [N,T,D], gmod [N,Mg], mod [N,M] -> out [N,T,D], out2 r [N,T,D] */
  PlanAttrs_RES_GATE_LN_MODULATE at = plan_attrs_RES_GATE_LN_MODULATE(op);
  cpu_res_gate_ln_modulate(&e->cpu, val(e, in[0]), val(e, in[1]), n, dim(e, in[0], 1, n), dim(e, in[0], 2, n),
                           val(e, in[2]), dim(e, in[2], 1, n), at.gate_col, val(e, in[3]), dim(e, in[3], 1, n),
                           at.shift_col, at.scale_col, at.eps, val(e, op->out2), val(e, op->out));
}

void exec_op_attention(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp) {
  (void)sp;
  PlanAttrs_ATTENTION at = plan_attrs_ATTENTION(op); /* qkv [N,T,3D] -> [N,T,D] */
  /* training plans keep each row's log-sum-exp [N,H,T] in out2 */
  cpu_attention(&e->cpu, val(e, op->in[0]), n, dim(e, op->in[0], 1, n), at.heads, at.head_dim, at.scale,
                val(e, op->out), op->out2 == DIT_PLAN_NONE ? NULL : val(e, op->out2));
}

void exec_op_group_norm(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp) {
  (void)sp;
  const uint32_t *in = op->in; /* x [N,C,H,W], gamma [C], beta [C] -> [N,C,H,W] */
  PlanAttrs_GROUP_NORM at = plan_attrs_GROUP_NORM(op);
  cpu_group_norm(&e->cpu, val(e, in[0]), n, dim(e, in[0], 1, n), dim(e, in[0], 2, n) * dim(e, in[0], 3, n),
                 at.groups, at.eps, val(e, in[1]), val(e, in[2]), (int)at.act, val(e, op->out));
}

void exec_op_conv2d(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp) {
  (void)sp;
  const uint32_t *in = op->in; /* x [N,Cin,H,W], w [Cout,Cin,k,k], b [Cout] -> [N,Cout,Ho,Wo] */
  CpuConvShape s = exec_conv_shape(e->pv, op);
  s.N = n;
  cpu_conv2d(&e->cpu, val(e, in[0]), &s, val(e, in[1]), val(e, in[2]), plan_attrs_CONV2D(op).alpha,
             val(e, op->out));
}

void exec_op_to_tokens(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp) {
  (void)sp;
  const uint32_t *in = op->in; /* x [N,C,H,W] -> [N,H*W,C] */
  cpu_to_tokens(&e->cpu, val(e, in[0]), n, dim(e, in[0], 1, n), dim(e, in[0], 2, n) * dim(e, in[0], 3, n),
                val(e, op->out));
}

void exec_op_from_tokens(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp) {
  (void)sp;
  const uint32_t *in = op->in; /* o [N,H*W,C], residual [N,C,H,W] -> [N,C,H,W] */
  cpu_from_tokens(&e->cpu, val(e, in[0]), val(e, in[1]), n, dim(e, in[1], 1, n),
                  dim(e, in[1], 2, n) * dim(e, in[1], 3, n), val(e, op->out));
}

void exec_op_latent_sample(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp) {
  (void)sp;
  const uint32_t *in = op->in; /* moments [N,2C,h,w], noise [N,C,h,w] -> [N,C,h,w] */
  cpu_latent_sample(&e->cpu, val(e, in[0]), val(e, in[1]), n, dim(e, in[1], 1, n),
                    dim(e, in[1], 2, n) * dim(e, in[1], 3, n), plan_attrs_LATENT_SAMPLE(op).scale,
                    val(e, op->out));
}

void exec_op_cfg_mix(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp) {
  const uint32_t *in = op->in; /* model output [rows,Cout,H,W] -> [n,Cout,H,W] */
  cpu_cfg_mix(&e->cpu, val(e, in[0]), n, dim(e, in[0], 1, n), dim(e, in[0], 2, n) * dim(e, in[0], 3, n),
              plan_attrs_CFG_MIX(op).guided_channels, sp, val(e, op->out));
}

void exec_op_diffusion_step(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp) {
  const uint32_t *in = op->in; /* x [n,C,H,W], mixed [n,Cout,H,W], noise [n,C,H,W], history [n,3C,H,W] -> x_{t-1} */
  cpu_diffusion_step(&e->cpu, val(e, in[0]), val(e, in[1]), val(e, in[2]), n, dim(e, in[0], 1, n),
                     dim(e, in[0], 2, n) * dim(e, in[0], 3, n), (int)plan_attrs_DIFFUSION_STEP(op).learn_sigma, sp,
                     val(e, in[3]), val(e, op->out));
}
