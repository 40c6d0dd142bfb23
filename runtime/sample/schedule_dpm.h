/* schedule_dpm.h: the multistep DPM-Solver++ schedule as diffusers'
 * DPMSolverMultistepScheduler sets it up for DiT (1000 training steps,
 * linear betas 1e-4..0.02, epsilon prediction, algorithm dpmsolver++,
 * solver_type midpoint, lower_order_final, final_sigmas_type zero,
 * timestep_spacing linspace, optionally Karras sigmas): the timesteps the
 * model sees, the sigmas, and each step's coefficients (DitStepParams' dpm
 * fields) in float64, rounded to float32 at the end. */
#ifndef DIT_RUNTIME_SCHEDULE_DPM_H
#define DIT_RUNTIME_SCHEDULE_DPM_H

#include <stdint.h>

#include "../../kernels/kernel_abi.h"
#include "err.h"

typedef struct DpmSchedule {
  int n;               /* steps */
  int order;           /* solver_order: 1, 2 or 3 */
  int64_t *timesteps;  /* [n]: the model's timestep at step i */
  double *sigmas;      /* [n + 1]: sqrt((1 - abar) / abar), rounded to float32 as diffusers keeps them; [n] = 0 */
} DpmSchedule;

/* steps >= 1, order 1..3; DIT_ERR_ARG otherwise. */
DitStatus dpm_schedule_build(int steps, int order, int karras, DpmSchedule *out, DitErr *err);
void dpm_schedule_free(DpmSchedule *s);

/* The order step i uses (diffusers' lower-order warm-up and final steps). */
int dpm_step_order(const DpmSchedule *s, int i);

/* Step i's parameters: sampler DIT_SAMPLER_DPM, x0 from (x, eps) at sigma
 * i, and x_next = a x + b0 x0 + b1 m1 + b2 m2 in history slots i mod 3
 * (written), i - 1 and i - 2 mod 3. */
void dpm_step_params(const DpmSchedule *s, int i, DitStepParams *p);

#endif
