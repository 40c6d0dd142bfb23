/* cpu_norm.c: LayerNorm + adaLN modulate, alone or after the gated residual.
 * One task per token row: statistics in double (biased variance, no affine),
 * then one pass that writes the modulated row. */
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
