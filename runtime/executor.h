/* executor.h: runs the ops of a validated plan, in order, on the CPU
 * backend. Binds each value to its bytes in the arena or the weight buffer;
 * allocates nothing. */
#ifndef DIT_RUNTIME_EXECUTOR_H
#define DIT_RUNTIME_EXECUTOR_H

#include "cpu/cpu_ops.h"
#include "plan/plan_view.h"

typedef struct Executor {
  const PlanView *pv;
  unsigned char *arena;   /* io.arena_bytes */
  unsigned char *weights; /* io.weight_bytes */
  CpuCtx cpu;
} Executor;

/* Pointer to a value's first byte. */
void *exec_value(const Executor *e, uint32_t id);

/* One forward of n rows (1 <= n <= max_batch); inputs already in the arena. */
void exec_forward(const Executor *e, int64_t n);

/* The sampler ops on n images after a forward: guidance mixing, then (when
 * update is set) the DDPM/DDIM step into io.x_next. With guidance the forward
 * ran 2n rows. */
void exec_sampler(const Executor *e, int64_t n, const DitStepParams *p, int update);

/* Floats of scratch per thread the plan's ops need. */
int64_t exec_scratch_per_thread(const PlanView *pv);

#endif
