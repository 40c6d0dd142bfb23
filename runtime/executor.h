/* executor.h: runs the ops of a validated plan, in order, on the CPU
 * backend. Binds each value to its bytes in the arena or the weight buffer;
 * allocates nothing. */
#ifndef DIT_RUNTIME_EXECUTOR_H
#define DIT_RUNTIME_EXECUTOR_H

#include "cpu/cpu_grad.h"
#include "cpu/cpu_ops.h"
#include "plan/plan_view.h"

/* bf16 plans on the CPU: every float value is held in float32, rounded to
 * bf16 where the plan stores bf16 (the device's values exactly). The arena is
 * then twice the plan's, each arena offset doubled: a value of 2-byte
 * elements gets 4-byte ones, and values that shared bytes still do. */
static inline unsigned exec_arena_shift(const PlanView *pv) { return pv->header->dtype == PLAN_DT_BF16; }
static inline uint64_t exec_arena_bytes(const PlanView *pv) { return pv->arena_bytes << exec_arena_shift(pv); }

typedef struct Executor {
  const PlanView *pv;
  unsigned char *arena;   /* exec_arena_bytes(pv) */
  unsigned char *weights; /* weight_bytes */
  /* bf16 plans: the weights as the device holds them (each bf16 weight
   * rounded to bf16), which the ops read; NULL: they read weights. */
  unsigned char *weights_bf16;
  unsigned char *grads;   /* grad_bytes (training plans), else NULL */
  CpuCtx cpu;
  const DitLossTable *loss_table; /* training plans: the diffusion's coefficients */
  float grad_scale;       /* training: gradients are of grad_scale * sum of the per-sample losses */
  /* dit tune's CPU knobs per op (PlanCpuKnob, 0 = default), or NULL: all defaults. */
  const int32_t (*op_knobs)[4]; /* [n_ops] */
} Executor;

/* Pointer to a value's first byte. */
static inline void *exec_value(const Executor *e, uint32_t id) {
  const PlanValue *v = &e->pv->values[id];
  if (v->storage == PLAN_STORE_ARENA) return e->arena + (v->offset << exec_arena_shift(e->pv));
  unsigned char *base = v->storage == PLAN_STORE_WEIGHTS ? (e->weights_bf16 ? e->weights_bf16 : e->weights)
                                                         : e->grads;
  return base + v->offset;
}

/* dims[k] of value id for a call of n rows (a batch-major value's first dim is n). */
static inline int64_t exec_dim(const Executor *e, uint32_t id, uint32_t k, int64_t n) {
  const PlanValue *v = &e->pv->values[id];
  return k == 0 && v->batch_major ? n : v->dims[k];
}

static inline int64_t exec_numel(const Executor *e, uint32_t id, int64_t n) {
  const PlanValue *v = &e->pv->values[id];
  int64_t m = 1;
  for (uint32_t k = 0; k < v->rank; k++) m *= exec_dim(e, id, k, n);
  return m;
}

/* One forward of n rows (1 <= n <= max_batch); inputs already in the arena. */
void exec_forward(const Executor *e, int64_t n);

/* The sampler ops on n images after a forward: guidance mixing, then (when
 * update is set) the DDPM/DDIM step into io.x_next. With guidance the forward
 * ran 2n rows. */
void exec_sampler(const Executor *e, int64_t n, const DitStepParams *p, int update);

/* Training plans: ops [0, n_loss_ops) (the per-sample loss), or every op
 * (the loss, then the gradients into the gradient buffer). */
void exec_loss(const Executor *e, int64_t n);
void exec_train(const Executor *e, int64_t n);

/* Op i alone (the checked re-runs of nonfinite.c); sp for the sampler ops. */
void exec_op(const Executor *e, size_t i, int64_t n, const DitStepParams *sp);

/* One adapter per op kind, exec_op_<name> (plan_ops.h): the forward and
 * sampler ops in exec_ops_forward.c, the training ops in exec_ops_train.c.
 * sp: the sampler ops' step parameters, else NULL. */
#define EXEC_OP_DECL(ID, value, name, ...) \
  void exec_op_##name(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp);
DIT_PLAN_OPS(EXEC_OP_DECL)
#undef EXEC_OP_DECL

/* Floats of scratch per thread the plan's ops need. */
int64_t exec_scratch_per_thread(const PlanView *pv);

/* A conv2d op's shapes at the plan's max batch (its adapter sets N). */
CpuConvShape exec_conv_shape(const PlanView *pv, const PlanOp *op);

#endif
