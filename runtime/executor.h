/* executor.h: runs the ops of a validated plan, in order, on the CPU
 * backend. Binds each value to its bytes in the arena or the weight buffer;
 * allocates nothing. */
#ifndef DIT_RUNTIME_EXECUTOR_H
#define DIT_RUNTIME_EXECUTOR_H

#include "cpu/cpu_grad.h"
#include "cpu/cpu_ops.h"
#include "plan/plan_view.h"

typedef struct Executor {
  const PlanView *pv;
  unsigned char *arena;   /* arena_bytes */
  unsigned char *weights; /* weight_bytes */
  unsigned char *grads;   /* grad_bytes (training plans), else NULL */
  CpuCtx cpu;
  const DitLossTable *loss_table; /* training plans: the diffusion's coefficients */
  float grad_scale;       /* training: gradients are of grad_scale * sum of the per-sample losses */
} Executor;

/* Pointer to a value's first byte. */
void *exec_value(const Executor *e, uint32_t id);

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

/* The training ops (exec_train.c); dim(e, id, k, n) as in executor.c. */
void exec_train_op(const Executor *e, const PlanOp *op, int64_t n);
int64_t exec_dim(const Executor *e, uint32_t id, uint32_t k, int64_t n);
int64_t exec_numel(const Executor *e, uint32_t id, int64_t n);

/* Floats of scratch per thread the plan's ops need. */
int64_t exec_scratch_per_thread(const PlanView *pv);

#endif
