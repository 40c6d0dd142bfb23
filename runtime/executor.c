/* executor.c: the op loop (see executor.h). Every shape and offset was
 * checked by plan_check.c when the plan loaded; a batch-major value's first
 * dim is the number of rows of this forward. */
#include "executor.h"

void *exec_value(const Executor *e, uint32_t id) {
  const PlanValue *v = &e->pv->values[id];
  unsigned char *base = v->storage == PLAN_STORE_ARENA     ? e->arena
                        : v->storage == PLAN_STORE_WEIGHTS ? e->weights
                                                           : e->grads;
  return base + v->offset;
}

/* dims[k] of value id for a forward of n rows */
int64_t exec_dim(const Executor *e, uint32_t id, uint32_t k, int64_t n) {
  const PlanValue *v = &e->pv->values[id];
  return k == 0 && v->batch_major ? n : v->dims[k];
}

int64_t exec_numel(const Executor *e, uint32_t id, int64_t n) {
  const PlanValue *v = &e->pv->values[id];
  int64_t m = 1;
  for (uint32_t k = 0; k < v->rank; k++) m *= exec_dim(e, id, k, n);
  return m;
}

#define dim exec_dim
#define numel exec_numel

int64_t exec_scratch_per_thread(const PlanView *pv) {
  int64_t need = 1;
  for (size_t i = 0; i < pv->n_ops; i++) {
    const PlanOp *op = &pv->ops[i];
    if (op->kind == PLAN_OP_ATTENTION || op->kind == PLAN_OP_ATTENTION_GRAD) {
      int64_t T = pv->values[op->in[op->kind == PLAN_OP_ATTENTION ? 0 : 1]].dims[1];
      int64_t per = op->kind == PLAN_OP_ATTENTION ? T * T : 2 * T * T; /* the backward keeps P and dP */
      if (per > need) need = per;
    }
    if (op->kind == PLAN_OP_TIMESTEP_FREQ && op->i[0] / 2 > need) need = op->i[0] / 2;
  }
  return need;
}

static void run_op(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp);

void exec_op(const Executor *e, size_t i, int64_t n, const DitStepParams *sp) { run_op(e, &e->pv->ops[i], n, sp); }

void exec_forward(const Executor *e, int64_t n) {
  for (size_t i = 0; i < e->pv->io->n_forward_ops; i++) run_op(e, &e->pv->ops[i], n, NULL);
}

void exec_loss(const Executor *e, int64_t n) {
  for (size_t i = 0; i < e->pv->train->n_loss_ops; i++) run_op(e, &e->pv->ops[i], n, NULL);
}

void exec_train(const Executor *e, int64_t n) {
  for (size_t i = 0; i < e->pv->n_ops; i++) run_op(e, &e->pv->ops[i], n, NULL);
}

void exec_sampler(const Executor *e, int64_t n, const DitStepParams *p, int update) {
  for (size_t i = e->pv->io->n_forward_ops; i < e->pv->n_ops; i++)
    if (update || e->pv->ops[i].kind == PLAN_OP_CFG_MIX) run_op(e, &e->pv->ops[i], n, p);
}

static void run_op(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp) {
  const CpuCtx *c = &e->cpu;
  const uint32_t *in = op->in;
  float *out = exec_value(e, op->out);
  /* a zero-input op (zeros) names no operand: in[0] is not checked then */
  const float *a = op->n_in ? exec_value(e, in[0]) : NULL;
  switch ((PlanOpKind)op->kind) {
  case PLAN_OP_PATCHIFY:
    cpu_patchify(c, a, n, dim(e, in[0], 1, n), dim(e, in[0], 2, n), dim(e, in[0], 3, n), op->i[0], out);
    break;
  case PLAN_OP_UNPATCHIFY: {
    int64_t g = dim(e, op->out, 2, n) / op->i[0];
    cpu_unpatchify(c, a, n, g, op->i[0], op->i[1], out);
    break;
  }
  case PLAN_OP_LINEAR: {
    uint32_t r = e->pv->values[in[0]].rank;
    int64_t K = dim(e, in[0], r - 1, n), rows = numel(e, in[0], n) / K;
    int64_t M = dim(e, in[1], 0, n);
    if (op->out2 == DIT_PLAN_NONE) {
      cpu_linear(c, a, rows, K, exec_value(e, in[1]), M, exec_value(e, in[2]), (int)op->i[0], out);
    } else { /* training: keep the pre-activation z for the backward */
      float *z = exec_value(e, op->out2);
      cpu_linear(c, a, rows, K, exec_value(e, in[1]), M, exec_value(e, in[2]), PLAN_ACT_NONE, z);
      cpu_act(c, z, rows * M, (int)op->i[0], out);
    }
    break;
  }
  case PLAN_OP_ADD:
    cpu_add(c, a, numel(e, in[0], n), exec_value(e, in[1]), numel(e, in[1], n), out);
    break;
  case PLAN_OP_SILU: cpu_silu(c, a, numel(e, in[0], n), out); break;
  case PLAN_OP_TIMESTEP_FREQ:
    cpu_timestep_freq(c, exec_value(e, in[0]), n, op->i[0] / 2, op->f[0], out);
    break;
  case PLAN_OP_EMBEDDING:
    cpu_embedding(c, a, dim(e, in[0], 1, n), exec_value(e, in[1]), n, out);
    break;
  case PLAN_OP_LN_MODULATE:
    cpu_ln_modulate(c, a, n, dim(e, in[0], 1, n), dim(e, in[0], 2, n), exec_value(e, in[1]),
                    dim(e, in[1], 1, n), op->i[0], op->i[1], op->f[0], out);
    break;
  case PLAN_OP_RES_GATE_LN_MODULATE:
    cpu_res_gate_ln_modulate(c, a, exec_value(e, in[1]), n, dim(e, in[0], 1, n),
                             dim(e, in[0], 2, n), exec_value(e, in[2]), dim(e, in[2], 1, n),
                             op->i[2], exec_value(e, in[3]), dim(e, in[3], 1, n), op->i[0],
                             op->i[1], op->f[0], exec_value(e, op->out2), out);
    break;
  case PLAN_OP_ATTENTION: /* training plans keep each row's log-sum-exp in out2 */
    cpu_attention(c, a, n, dim(e, in[0], 1, n), op->i[0], op->i[1], op->f[0], out,
                  op->out2 == DIT_PLAN_NONE ? NULL : exec_value(e, op->out2));
    break;
  case PLAN_OP_CFG_MIX:
    cpu_cfg_mix(c, a, n, dim(e, in[0], 1, n), dim(e, in[0], 2, n) * dim(e, in[0], 3, n), op->i[0], sp, out);
    break;
  case PLAN_OP_DIFFUSION_STEP:
    cpu_diffusion_step(c, a, exec_value(e, in[1]), exec_value(e, in[2]), n, dim(e, in[0], 1, n),
                       dim(e, in[0], 2, n) * dim(e, in[0], 3, n), (int)op->i[0], sp, out);
    break;
  default: exec_train_op(e, op, n); break;
  }
}
