/* cpu_grad_norm.c: the backward of the adaLN ops: LayerNorm + modulate
 * (dx, and the shift/scale columns of dmod) and the gated residual (dh, and
 * the gate columns of dmod). LayerNorm statistics are recomputed exactly as
 * the forward does (double, then rounded to float). One task per batch row n
 * owns that row's dmod columns, so the sums over tokens run in token order
 * whatever the thread count. Not here: the forward (cpu_norm.c). */
#include <math.h>

#include "cpu_grad.h"
#include "cpu_math.h"

enum { GATE_COLS = 64 };

/* dx[d] (= or +=) rstd * (g[d] - mean(g) - xhat[d] * mean(g * xhat)), with
 * g = dy * (1 + scale), xhat = (x - mean) * rstd; dshift += dy; dscale += dy * xhat. */
static void ln_mod_bwd_row(const float *dy, const float *x, int64_t D, const float *scale,
                           double eps, int accumulate, float *dx, float *dshift, float *dscale) {
  float fmean, rstd;
  dit_ln_stats(x, D, eps, &fmean, &rstd);
  double s1 = 0.0, s2 = 0.0;
  for (int64_t d = 0; d < D; d++) {
    float xhat = (x[d] - fmean) * rstd;
    float g = dy[d] * (1.0f + scale[d]);
    s1 += g;
    s2 += (double)g * xhat;
    dshift[d] += dy[d];
    dscale[d] += dy[d] * xhat;
  }
  float a = (float)(s1 / (double)D), b = (float)(s2 / (double)D);
  for (int64_t d = 0; d < D; d++) {
    float xhat = (x[d] - fmean) * rstd;
    float g = dy[d] * (1.0f + scale[d]);
    float v = rstd * (g - a - xhat * b);
    dx[d] = accumulate ? dx[d] + v : v;
  }
}

void cpu_ln_modulate_bwd(const CpuCtx *c, const float *dy, const float *x, int64_t N, int64_t T,
                         int64_t D, const float *mod, int64_t M, int64_t shift_col,
                         int64_t scale_col, double eps, int accumulate, float *dx, float *dmod) {
#pragma omp parallel for num_threads(c->n_threads) schedule(static)
  for (int64_t n = 0; n < N; n++) {
    const float *scale = mod + n * M + scale_col;       // [D]
    float *dshift = dmod + n * M + shift_col, *dscale = dmod + n * M + scale_col;
    for (int64_t t = 0; t < T; t++) {
      int64_t row = n * T + t;
      ln_mod_bwd_row(dy + row * D, x + row * D, D, scale, eps, accumulate, dx + row * D, dshift,
                     dscale);
    }
  }
}

void cpu_residual_gate_bwd(const CpuCtx *c, const float *dr, const float *h, int64_t N, int64_t T,
                           int64_t D, const float *gmod, int64_t M, int64_t gate_col, float *dh,
                           float *dmod) {
  /* gate gradient first: dh may be dr itself (in place) */
  int64_t n_dt = (D + GATE_COLS - 1) / GATE_COLS;
#pragma omp parallel for num_threads(c->n_threads) schedule(static)
  for (int64_t task = 0; task < N * n_dt; task++) {
    int64_t n = task / n_dt, d0 = (task % n_dt) * GATE_COLS;
    int64_t nd = D - d0 < GATE_COLS ? D - d0 : GATE_COLS;
    double acc[GATE_COLS] = {0}; /* sum over tokens in double, in token order */
    for (int64_t t = 0; t < T; t++) {
      const float *drr = dr + (n * T + t) * D + d0, *hr = h + (n * T + t) * D + d0; // [nd]
      for (int64_t d = 0; d < nd; d++) acc[d] += (double)drr[d] * hr[d];
    }
    float *dgate = dmod + n * M + gate_col + d0;
    for (int64_t d = 0; d < nd; d++) dgate[d] += (float)acc[d];
  }
#pragma omp parallel for num_threads(c->n_threads) schedule(static)
  for (int64_t row = 0; row < N * T; row++) {
    const float *gate = gmod + (row / T) * M + gate_col; // [D]
    for (int64_t d = 0; d < D; d++) dh[row * D + d] = dr[row * D + d] * gate[d];
  }
}
