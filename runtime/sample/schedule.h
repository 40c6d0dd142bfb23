/* schedule.h: the official DiT diffusion schedule (dit-reference.md 3.2,
 * 3.3): linear betas over 1000 steps in float64, timestep respacing in the
 * official string syntax ("250", "25", "10,20,30", "ddim50", "" for all),
 * and every table the samplers gather from, computed as the official numpy
 * code does, operation for operation. */
#ifndef DIT_RUNTIME_SCHEDULE_H
#define DIT_RUNTIME_SCHEDULE_H

#include <stdint.h>

#include "../../kernels/kernel_abi.h"
#include "err.h"

#define DIT_DIFFUSION_STEPS 1000

typedef struct DiffusionSchedule {
  int n;                    /* respaced steps */
  int64_t *timestep_map;    /* [n] original timestep of respaced index k */
  double *betas;            /* [n] of the respaced process */
  double *alphas_cumprod, *alphas_cumprod_prev;
  double *sqrt_recip_ac, *sqrt_recipm1_ac;
  double *post_var, *post_logvar_clipped, *post_coef1, *post_coef2;
  double *log_betas;
  double *fixed_large_logvar; /* log(append(post_var[1], betas[1:])) */
} DiffusionSchedule;

/* Builds the respaced schedule; a spec the official code rejects is an error
 * (DIT_ERR_ARG) with the official reason. */
DitStatus schedule_build(const char *spec, DiffusionSchedule *out, DitErr *err);
void schedule_free(DiffusionSchedule *s);

/* The float32 coefficients of step k for the given sampler. */
void schedule_step_params(const DiffusionSchedule *s, int k, DitSamplerKind sampler, int learn_sigma,
                          double eta, DitStepParams *p);

#endif
