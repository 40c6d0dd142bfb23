/* cpu_misc.c: the small ops: patchify, unpatchify, broadcast add, SiLU,
 * timestep features and the label embedding gather; and bf16 plans'
 * rounding of a result to bf16. */
#include <math.h>
#include <string.h>

#include "cpu_math.h"
#include "cpu_ops.h"
#include "model/timestep_freqs.h"

void cpu_patchify(const CpuCtx *c, const float *x, int64_t N, int64_t C, int64_t H, int64_t W,
                  int64_t p, float *out) {
  int64_t gh = H / p, gw = W / p, pd = C * p * p;
#pragma omp parallel for num_threads(c->n_threads) schedule(static)
  for (int64_t nt = 0; nt < N * gh * gw; nt++) {
    int64_t n = nt / (gh * gw), tok = nt % (gh * gw), row = tok / gw, col = tok % gw;
    float *o = out + nt * pd;                           // [C*p*p]
    for (int64_t ch = 0; ch < C; ch++)
      for (int64_t i = 0; i < p; i++)
        for (int64_t j = 0; j < p; j++)
          o[(ch * p + i) * p + j] = x[((n * C + ch) * H + row * p + i) * W + col * p + j];
  }
}

void cpu_unpatchify(const CpuCtx *c, const float *x, int64_t N, int64_t g, int64_t p, int64_t C,
                    float *out) {
  int64_t S = g * p, width = p * p * C;
#pragma omp parallel for num_threads(c->n_threads) schedule(static)
  for (int64_t nt = 0; nt < N * g * g; nt++) {
    int64_t n = nt / (g * g), tok = nt % (g * g), row = tok / g, col = tok % g;
    const float *v = x + nt * width;                    // [p, p, C], channel fastest
    for (int64_t i = 0; i < p; i++)
      for (int64_t j = 0; j < p; j++)
        for (int64_t ch = 0; ch < C; ch++)
          out[((n * C + ch) * S + row * p + i) * S + col * p + j] = v[(i * p + j) * C + ch];
  }
}

void cpu_add(const CpuCtx *c, const float *a, int64_t n, const float *b, int64_t nb, float *out) {
#pragma omp parallel for num_threads(c->n_threads) schedule(static)
  for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i % nb];
}

void cpu_silu(const CpuCtx *c, const float *x, int64_t n, float *out) {
  (void)c;
#pragma omp simd
  for (int64_t i = 0; i < n; i++) out[i] = dit_silu(x[i]);
}

void cpu_timestep_freq(const CpuCtx *c, const int64_t *t, int64_t N, int64_t half,
                       double max_period, float *out) {
  float *freqs = c->scratch; /* half floats; the scratch is at least that large */
  dit_timestep_freqs(half, max_period, freqs);
  for (int64_t n = 0; n < N; n++) {
    float tv = (float)t[n];
    for (int64_t k = 0; k < half; k++) {
      float arg = tv * freqs[k];
      out[n * 2 * half + k] = cosf(arg);
      out[n * 2 * half + half + k] = sinf(arg);
    }
  }
}

void cpu_embedding(const CpuCtx *c, const float *table, int64_t D, const int64_t *ids, int64_t N,
                   float *out) {
  (void)c;
  for (int64_t n = 0; n < N; n++) memcpy(out + n * D, table + ids[n] * D, (size_t)D * sizeof(float));
}

void cpu_round_bf16(const CpuCtx *c, float *x, int64_t n) {
#pragma omp parallel for num_threads(c->n_threads) schedule(static)
  for (int64_t i = 0; i < n; i++) x[i] = dit_round_bf16(x[i]);
}
