/* cpu_grad_linear.c: the backward of cpu_linear and of the small ops around
 * it: the activation alone and its derivative (the formulas of cpu_math.h),
 * the data and parameter gradients of y = x W^T + b through OpenBLAS sgemm
 * over fixed output tiles (each tile reduces over all rows in one call, so
 * the result does not depend on the thread count), the column sums of a
 * broadcast operand (the bias gradient), the label-embedding scatter and the
 * unpatchify permutation. Not here: attention, norms, loss, optimizer. */
#include <cblas.h>
#include <string.h>

#include "cpu_grad.h"
#include "cpu_math.h"

enum {
  TILE_ROWS = 256,          /* data gradient: rows of dx per tile */
  TILE_COLS_FEW_ROWS = 512, /* ... and columns, when there are few rows */
  TILE_W_ROWS = 128,        /* parameter gradient: rows of dW per tile */
  TILE_W_COLS = 512,        /* ... and columns */
  TILE_ELEMS = 4096,        /* elementwise ops */
  SUM_COLS = 64             /* column sums: columns per task */
};

/* d/dv of 0.5 v (1 + tanh(beta (v + kappa v^3))) */
static inline float gelu_tanh_grad(float v) {
  const float k_beta = 0.7978845608028654f; /* sqrt(2/pi) */
  const float k_kappa = 0.044715f;
  float th = dit_tanhf(k_beta * (v + k_kappa * v * v * v));
  return 0.5f * (1.0f + th) + 0.5f * v * (1.0f - th * th) * k_beta * (1.0f + 3.0f * k_kappa * v * v);
}

/* d/dv of v sigmoid(v) = s (1 + v (1 - s)) */
static inline float silu_grad(float v) {
  float s = 1.0f / (1.0f + dit_expf(-v));
  return s * (1.0f + v * (1.0f - s));
}

DIT_HOT static void act_tile(const float *z, int64_t n, int act, float *y) {
  switch (act) {
  case 1:
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = dit_gelu_tanh(z[i]);
    break;
  case 2:
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = dit_silu(z[i]);
    break;
  default:
    memmove(y, z, (size_t)n * sizeof(float));
  }
}

DIT_HOT static void act_bwd_tile(const float *dy, const float *z, int64_t n, int act, float *dz) {
  switch (act) {
  case 1:
#pragma omp simd
    for (int64_t i = 0; i < n; i++) dz[i] = dy[i] * gelu_tanh_grad(z[i]);
    break;
  case 2:
#pragma omp simd
    for (int64_t i = 0; i < n; i++) dz[i] = dy[i] * silu_grad(z[i]);
    break;
  default:
    memmove(dz, dy, (size_t)n * sizeof(float));
  }
}

void cpu_act(const CpuCtx *c, const float *z, int64_t n, int act, float *y) {
  int64_t n_tiles = (n + TILE_ELEMS - 1) / TILE_ELEMS;
#pragma omp parallel for num_threads(c->n_threads) schedule(static)
  for (int64_t tile = 0; tile < n_tiles; tile++) {
    int64_t i0 = tile * TILE_ELEMS, len = n - i0 < TILE_ELEMS ? n - i0 : TILE_ELEMS;
    act_tile(z + i0, len, act, y + i0);
  }
}

void cpu_act_bwd(const CpuCtx *c, const float *dy, const float *z, int64_t n, int act, float *dz) {
  int64_t n_tiles = (n + TILE_ELEMS - 1) / TILE_ELEMS;
#pragma omp parallel for num_threads(c->n_threads) schedule(static)
  for (int64_t tile = 0; tile < n_tiles; tile++) {
    int64_t i0 = tile * TILE_ELEMS, len = n - i0 < TILE_ELEMS ? n - i0 : TILE_ELEMS;
    act_bwd_tile(dy + i0, z + i0, len, act, dz + i0);
  }
}

void cpu_linear_bwd_data(const CpuCtx *c, const float *dz, int64_t rows, int64_t M, const float *W,
                         int64_t K, int accumulate, float *dx) {
  /* Few rows (the conditioning GEMMs): split the columns instead. */
  int64_t tile_cols = rows <= TILE_ROWS ? TILE_COLS_FEW_ROWS : K;
  int64_t n_rt = (rows + TILE_ROWS - 1) / TILE_ROWS, n_ct = (K + tile_cols - 1) / tile_cols;
  float beta = accumulate ? 1.0f : 0.0f;
#pragma omp parallel for num_threads(c->n_threads) schedule(dynamic, 1)
  for (int64_t tile = 0; tile < n_rt * n_ct; tile++) {
    int64_t r0 = (tile / n_ct) * TILE_ROWS, c0 = (tile % n_ct) * tile_cols;
    int64_t nr = rows - r0 < TILE_ROWS ? rows - r0 : TILE_ROWS;
    int64_t nc = K - c0 < tile_cols ? K - c0 : tile_cols;
    /* dx[r0.., c0..] [nr, nc] = dz[r0.., :] [nr, M] @ W[:, c0..] [M, nc] */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nr, (int)nc, (int)M, 1.0f,
                dz + r0 * M, (int)M, W + c0, (int)K, beta, dx + r0 * K + c0, (int)K);
  }
}

void cpu_linear_bwd_params(const CpuCtx *c, const float *dz, int64_t rows, int64_t M, const float *x,
                           int64_t K, float *dW, float *db) {
  int64_t n_mt = (M + TILE_W_ROWS - 1) / TILE_W_ROWS, n_kt = (K + TILE_W_COLS - 1) / TILE_W_COLS;
#pragma omp parallel for num_threads(c->n_threads) schedule(dynamic, 1)
  for (int64_t tile = 0; tile < n_mt * n_kt; tile++) {
    int64_t m0 = (tile / n_kt) * TILE_W_ROWS, k0 = (tile % n_kt) * TILE_W_COLS;
    int64_t nm = M - m0 < TILE_W_ROWS ? M - m0 : TILE_W_ROWS;
    int64_t nk = K - k0 < TILE_W_COLS ? K - k0 : TILE_W_COLS;
    /* dW[m0.., k0..] [nm, nk] = dz[:, m0..]^T [nm, rows] @ x[:, k0..] [rows, nk] */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nm, (int)nk, (int)rows, 1.0f, dz + m0,
                (int)M, x + k0, (int)K, 0.0f, dW + m0 * K + k0, (int)K);
  }
  if (db) cpu_sum_rows(c, dz, rows * M, M, 0, db);
}

void cpu_sum_rows(const CpuCtx *c, const float *a, int64_t n, int64_t nb, int accumulate, float *out) {
  int64_t rows = n / nb, n_tiles = (nb + SUM_COLS - 1) / SUM_COLS;
#pragma omp parallel for num_threads(c->n_threads) schedule(static)
  for (int64_t tile = 0; tile < n_tiles; tile++) {
    int64_t j0 = tile * SUM_COLS, nj = nb - j0 < SUM_COLS ? nb - j0 : SUM_COLS;
    double acc[SUM_COLS] = {0}; /* summed in double, in row order */
    for (int64_t i = 0; i < rows; i++) {
      const float *r = a + i * nb + j0; // [nj]
      for (int64_t j = 0; j < nj; j++) acc[j] += r[j];
    }
    for (int64_t j = 0; j < nj; j++) out[j0 + j] = (accumulate ? out[j0 + j] : 0.0f) + (float)acc[j];
  }
}

void cpu_embedding_bwd(const CpuCtx *c, const float *dout, int64_t N, int64_t D, const int64_t *ids,
                       int64_t V, float *dtable) {
  (void)c;
  memset(dtable, 0, (size_t)(V * D) * sizeof(float));
  for (int64_t n = 0; n < N; n++) {
    float *row = dtable + ids[n] * D;     // [D]
    const float *g = dout + n * D;        // [D]
    for (int64_t d = 0; d < D; d++) row[d] += g[d];
  }
}

void cpu_unpatchify_bwd(const CpuCtx *c, const float *dout, int64_t N, int64_t g, int64_t p,
                        int64_t C, float *dx) {
  int64_t S = g * p, width = p * p * C;
#pragma omp parallel for num_threads(c->n_threads) schedule(static)
  for (int64_t nt = 0; nt < N * g * g; nt++) {
    int64_t n = nt / (g * g), tok = nt % (g * g), row = tok / g, col = tok % g;
    float *v = dx + nt * width;                         // [p, p, C], channel fastest
    for (int64_t i = 0; i < p; i++)
      for (int64_t j = 0; j < p; j++)
        for (int64_t ch = 0; ch < C; ch++)
          v[(i * p + j) * C + ch] = dout[((n * C + ch) * S + row * p + i) * S + col * p + j];
  }
}
