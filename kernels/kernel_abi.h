/* kernel_abi.h: the runtime parameters of kernels, as plain structs that
 * both C (the CPU backend, the runtime) and CUDA (kernels/ templates, issue
 * #5) include. Shapes and attributes fixed at compile time live in the plan;
 * what changes from call to call (the sampler's coefficients at this step)
 * lives here. Every struct has a fixed size asserted below. */
#ifndef DIT_KERNELS_KERNEL_ABI_H
#define DIT_KERNELS_KERNEL_ABI_H

#if defined(__CUDACC_RTC__)
typedef int int32_t; /* NVRTC has no libc headers; only 32-bit fields are used */
#else
#include <stdint.h>
#endif

typedef enum DitSamplerKind { DIT_SAMPLER_DDPM = 0, DIT_SAMPLER_DDIM = 1 } DitSamplerKind;

/* One step of the reverse diffusion at respaced index k, with every
 * coefficient gathered from the float64 tables and rounded to float32, as
 * the official sampler does (dit-reference.md 3.4-3.6). */
typedef struct DitStepParams {
  int32_t sampler;        /* DitSamplerKind */
  int32_t add_noise;      /* 0 at the last step (k == 0), else 1 */
  int32_t use_cfg;        /* 1: rows [n, 2n) of the model output are the unconditional ones */
  int32_t reserved0;
  float cfg_scale;
  float sqrt_recip_ac;    /* sqrt(1 / abar[k]) */
  float sqrt_recipm1_ac;  /* sqrt(1 / abar[k] - 1) */
  float post_coef1;       /* multiplies x0 in the posterior mean */
  float post_coef2;       /* multiplies x_t */
  float min_log;          /* learned range: posterior log variance (clipped) at k; fixed: the log variance */
  float max_log;          /* learned range: log(beta[k]) of the respaced process */
  float alpha_bar;        /* DDIM: abar[k] */
  float alpha_bar_prev;   /* DDIM: abar_prev[k] */
  float ddim_sigma;       /* DDIM: eta * sqrt((1-abp)/(1-ab)) * sqrt(1 - ab/abp), in float32 */
  float reserved1[2];
} DitStepParams;

#ifdef __cplusplus
static_assert(sizeof(DitStepParams) == 64, "DitStepParams layout");
#else
_Static_assert(sizeof(DitStepParams) == 64, "DitStepParams layout");
#endif

#endif
