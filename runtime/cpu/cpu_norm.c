/* cpu_norm.c: LayerNorm + adaLN modulate, alone or after the gated residual
 * (one task per token row: statistics in double, biased variance, no
 * affine, then one pass that writes the modulated row), and GroupNorm (one
 * task per (image, group)). */
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

void cpu_group_norm(const CpuCtx *c, const float *x, int64_t N, int64_t C, int64_t hw, int64_t groups,
                    double eps, const float *gamma, const float *beta, float *out) {
  const int64_t cg = C / groups, len = cg * hw; /* channels and elements of one group */
#pragma omp parallel for num_threads(c->n_threads) schedule(static)
  for (int64_t task = 0; task < N * groups; task++) {
    const float *v = x + task * len; /* [cg, hw]: group g of image n is contiguous */
    float *o = out + task * len;
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < len; i++) sum += v[i];
    double mean = sum / (double)len;
    for (int64_t i = 0; i < len; i++) sq += (v[i] - mean) * (v[i] - mean);
    float fmean = (float)mean, rstd = (float)(1.0 / sqrt(sq / (double)len + eps));
    int64_t c0 = (task % groups) * cg;
    for (int64_t ch = 0; ch < cg; ch++) {
      float a = rstd * gamma[c0 + ch], b = beta[c0 + ch];
      for (int64_t i = 0; i < hw; i++) o[ch * hw + i] = (v[ch * hw + i] - fmean) * a + b;
    }
  }
}
