// sampler_step.cuh: one sampler step on the model's output (plan ops
// cfg_mix and diffusion_step: DDPM, DDIM or multistep DPM-Solver++), with the per-step coefficients in a
// DitStepParams (kernel_abi.h) read from device memory: the runtime writes
// each step's coefficients there before it replays the step's CUDA graph
// (a by-value argument would be frozen into the graph). Elementwise; the
// float32 arithmetic follows the CPU backend (runtime/cpu/cpu_sampler.c)
// operation for operation.
//   C, HW   channels and pixels per channel of the state (compile-time)
#pragma once

#include "common.cuh"

namespace dit {

template <int C_OUT, int HW>
__global__ void cfg_mix_kernel(const DitCfgMixArgs args) {
  const float *__restrict__ out = args.out;
  const DitStepParams *__restrict__ params = args.params;
  float *__restrict__ dst = args.dst;
  const long long n = args.n;
  const int guided = args.guided;
  const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (i >= n * C_OUT * HW) return;
  const DitStepParams p = *params;
  const long long img = i / (C_OUT * HW);
  const int ch = (int)(i / HW % C_OUT);
  const float cond = out[i];
  if (!p.use_cfg || ch >= guided) {
    dst[i] = cond;
    return;
  }
  const float unc = out[i + n * C_OUT * HW];
  dst[i] = unc + p.cfg_scale * (cond - unc);
  (void)img;
}

template <int C, int HW, bool LEARN_SIGMA>
__global__ void diffusion_step_kernel(const DitDiffusionStepArgs args) {
  const float *__restrict__ x = args.x, *__restrict__ model_out = args.model_out, *__restrict__ noise = args.noise;
  float *__restrict__ history = args.history; // [n, 3 C, HW]
  const DitStepParams *__restrict__ params = args.params;
  float *__restrict__ x_next = args.x_next;
  const long long n = args.n;
  constexpr int C_OUT = LEARN_SIGMA ? 2 * C : C;
  const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (i >= n * C * HW) return;
  const DitStepParams p = *params;
  const long long img = i / (C * HW), rest = i % (C * HW);
  const float xt = x[i];
  const float eps = model_out[img * C_OUT * HW + rest];
  const float mask = p.add_noise ? 1.0f : 0.0f;
  const float x0 = __fsub_rn(__fmul_rn(p.sqrt_recip_ac, xt), __fmul_rn(p.sqrt_recipm1_ac, eps));
  if (p.sampler == DIT_SAMPLER_DPM) { // multistep DPM-Solver++: this step's x0 joins the history
    float *h = history + img * 3 * C * HW + rest;
    h[p.dpm_write * C * HW] = x0;
    float v = __fadd_rn(__fmul_rn(p.dpm_a, xt), __fmul_rn(p.dpm_b[0], x0));
    if (p.dpm_order > 1) v = __fadd_rn(v, __fmul_rn(p.dpm_b[1], h[p.dpm_m1 * C * HW]));
    if (p.dpm_order > 2) v = __fadd_rn(v, __fmul_rn(p.dpm_b[2], h[p.dpm_m2 * C * HW]));
    x_next[i] = v;
    return;
  }
  if (p.sampler == DIT_SAMPLER_DDIM) {
    const float e = __fdiv_rn(__fsub_rn(__fmul_rn(p.sqrt_recip_ac, xt), x0), p.sqrt_recipm1_ac);
    const float mean = x0 * sqrtf(p.alpha_bar_prev) +
                       sqrtf(1.0f - p.alpha_bar_prev - p.ddim_sigma * p.ddim_sigma) * e;
    x_next[i] = mean + mask * p.ddim_sigma * noise[i];
    return;
  }
  const float mean = __fadd_rn(__fmul_rn(p.post_coef1, x0), __fmul_rn(p.post_coef2, xt));
  float logvar = p.min_log;
  if (LEARN_SIGMA) {
    const float frac = (model_out[img * C_OUT * HW + C * HW + rest] + 1.0f) / 2.0f;
    logvar = frac * p.max_log + (1.0f - frac) * p.min_log;
  }
  x_next[i] = mean + mask * expf(0.5f * logvar) * noise[i];
}

}  // namespace dit
