/* cpu_math.h: exp, tanh and friends written as straight-line float code that
 * the compiler vectorises (libm's scalar expf/tanhf calls cannot be), for the
 * elementwise parts of the CPU kernels: GELU, SiLU and softmax.
 *
 * dit_expf: Cody-Waite range reduction x = n ln2 + r, |r| <= ln2/2, a degree-6
 * polynomial for e^r, and 2^n through the exponent bits. Within 2 ulp of the
 * correctly rounded result on [-87, 88]; branch-free so that it vectorises.
 * DIT_HOT marks loops worth an AVX2 clone next to the portable default.
 * dit_ln_stats: LayerNorm's row statistics, shared by the forward (cpu_norm.c)
 * and the backward (cpu_grad_norm.c) so that both normalise identically. */
#ifndef DIT_RUNTIME_CPU_MATH_H
#define DIT_RUNTIME_CPU_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "util/bf16.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__SANITIZE_ADDRESS__)
#define DIT_HOT __attribute__((target_clones("default", "arch=x86-64-v3")))
#else
#define DIT_HOT
#endif

static inline float dit_expf(float x) {
  const float log2e = 1.44269504088896341f;
  const float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
  /* below the clamp the result is 2^-126 (about 1e-38, effectively 0 here);
   * at the top, 2^128 overflows to +inf */
  x = x < -87.3365f ? -87.3365f : x;
  x = x > 88.7228f ? 88.7228f : x;
  float n = __builtin_floorf(x * log2e + 0.5f);
  n = n == n ? n : 0.0f; /* NaN in, NaN out (through r below), without converting NaN to int */
  float r = x - n * ln2_hi;
  r = r - n * ln2_lo;
  /* e^r on [-ln2/2, ln2/2] (Cephes expf coefficients) */
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t e = ((int32_t)n + 127) << 23;
  float scale;
  memcpy(&scale, &e, sizeof scale);
  return p * scale;
}

/* tanh(u) = sign(u) (1 - 2 / (e^{2|u|} + 1)); absolute error ~1e-7. */
static inline float dit_tanhf(float u) {
  float t = 1.0f - 2.0f / (dit_expf(2.0f * __builtin_fabsf(u)) + 1.0f);
  return __builtin_copysignf(t, u);
}

/* GELU, tanh approximation, as PyTorch's approximate="tanh". */
static inline float dit_gelu_tanh(float v) {
  const float k_beta = 0.7978845608028654f; /* sqrt(2/pi) */
  const float k_kappa = 0.044715f;
  float inner = k_beta * (v + k_kappa * v * v * v);
  return 0.5f * v * (1.0f + dit_tanhf(inner));
}

/* x rounded to the nearest bf16 (ties to even), as a float: what a GPU
 * kernel that stores bf16 keeps. NaN stays NaN; beyond bf16's range, inf. */
static inline float dit_round_bf16(float x) { return dit_bf16_to_float(dit_bf16_from_float(x)); }

static inline float dit_silu(float v) { return v / (1.0f + dit_expf(-v)); }

/* Mean and 1/sqrt(biased variance + eps) of v[0, D), summed in double, then
 * rounded to float. */
static inline void dit_ln_stats(const float *v, int64_t D, double eps, float *mean, float *rstd) {
  double sum = 0.0;
  for (int64_t d = 0; d < D; d++) sum += v[d];
  double m = sum / (double)D, sq = 0.0;
  for (int64_t d = 0; d < D; d++) {
    double z = v[d] - m;
    sq += z * z;
  }
  *rstd = (float)(1.0 / sqrt(sq / (double)D + eps));
  *mean = (float)m;
}

#endif
