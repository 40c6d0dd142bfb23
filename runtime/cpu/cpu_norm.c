/* cpu_norm.c: LayerNorm + adaLN modulate, alone or after the gated residual
 * (one task per token row: statistics in double, biased variance, no
 * affine, then one pass that writes the modulated row), and GroupNorm with
 * an optional SiLU (one task per (image, group): its statistics in one pass
 * in double, then one pass that normalises, applies the affine weights and
 * the activation). */
#include <math.h>

#include "cpu_math.h"
#include "cpu_ops.h"

/* out[d] = (v[d] - mean) / sqrt(var + eps) * (1 + scale[d]) + shift[d] */
static void ln_mod_row(const float *v, int64_t D, const float *shift, const float *scale,
                       double eps, float *out) {
  float fmean, rstd;
  dit_ln_stats(v, D, eps, &fmean, &rstd);
  for (int64_t d = 0; d < D; d++) out[d] = (v[d] - fmean) * rstd * (1.0f + scale[d]) + shift[d];
}

void cpu_ln_modulate(const CpuCtx *c, const float *x, int64_t N, int64_t T, int64_t D,
                     const float *mod, int64_t M, int64_t shift_col, int64_t scale_col, double eps,
                     float *out) {
#pragma omp parallel for num_threads(c->n_threads) schedule(static)
  for (int64_t row = 0; row < N * T; row++) {
    const float *m = mod + (row / T) * M;              // [M] of this batch row
    ln_mod_row(x + row * D, D, m + shift_col, m + scale_col, eps, out + row * D);
  }
}

void cpu_res_gate_ln_modulate(const CpuCtx *c, const float *x, const float *h, int64_t N,
                              int64_t T, int64_t D, const float *gmod, int64_t Mg,
                              int64_t gate_col, const float *mod, int64_t M, int64_t shift_col,
                              int64_t scale_col, double eps, float *r, float *out) {
#pragma omp parallel for num_threads(c->n_threads) schedule(static)
  for (int64_t row = 0; row < N * T; row++) {
    int64_t n = row / T;
    const float *gate = gmod + n * Mg + gate_col;       // [D]
    const float *m = mod + n * M;
    const float *xr = x + row * D, *hr = h + row * D;
    float *rr = r + row * D;                            // may alias xr
    for (int64_t d = 0; d < D; d++) rr[d] = xr[d] + gate[d] * hr[d];
    ln_mod_row(rr, D, m + shift_col, m + scale_col, eps, out + row * D);
  }
}

/* The mean and 1/sqrt(var + eps) of v [len] in one pass, in double: sums of
 * v - v[0] and of its square (the shift keeps E[d^2] - E[d]^2 free of
 * cancellation when the mean is large against the spread). */
DIT_HOT static void group_stats(const float *v, int64_t len, double eps, double *mean, double *rstd) {
  const double pivot = v[0];
  double s = 0, sq = 0;
#pragma omp simd reduction(+ : s, sq)
  for (int64_t i = 0; i < len; i++) {
    double d = (double)v[i] - pivot;
    s += d;
    sq += d * d;
  }
  double m = s / (double)len, var = sq / (double)len - m * m;
  *mean = pivot + m;
  *rstd = 1.0 / sqrt((var > 0 ? var : 0) + eps);
}

/* o[i] = act((v[i] - mean) * a + b), i < n */
DIT_HOT static void affine_act(const float *v, int64_t n, float mean, float a, float b, int act, float *o) {
  if (act == 2) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) o[i] = dit_silu((v[i] - mean) * a + b);
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) o[i] = (v[i] - mean) * a + b;
  }
}

void cpu_group_norm(const CpuCtx *c, const float *x, int64_t N, int64_t C, int64_t hw, int64_t groups,
                    double eps, const float *gamma, const float *beta, int act, float *out) {
  const int64_t cg = C / groups, len = cg * hw; /* channels and elements of one group */
#pragma omp parallel for num_threads(c->n_threads) schedule(static)
  for (int64_t task = 0; task < N * groups; task++) {
    const float *v = x + task * len; /* [cg, hw]: group g of image n is contiguous */
    float *o = out + task * len;
    double mean, rstd;
    group_stats(v, len, eps, &mean, &rstd);
    int64_t c0 = (task % groups) * cg;
    for (int64_t ch = 0; ch < cg; ch++)
      affine_act(v + ch * hw, hw, (float)mean, (float)(rstd * gamma[c0 + ch]), beta[c0 + ch], act, o + ch * hw);
  }
}
