/* cpu_linear.c: y = act(x W^T + b) through OpenBLAS sgemm, tiled over rows
 * and columns in fixed-size tiles that the threads share, with the bias and
 * activation applied to each tile while it is still in cache. The tile
 * shape is a knob of dit tune (CpuCtx). */
#include <cblas.h>

#include "cpu_math.h"
#include "cpu_ops.h"

enum { TILE_ROWS = 256, TILE_COLS_FEW_ROWS = 512 };

/* row[j] = act(row[j] + bias[j]) */
DIT_HOT static void epilogue(float *row, const float *bias, int64_t n, int act) {
  switch (act) {
  case 1:
#pragma omp simd
    for (int64_t j = 0; j < n; j++) row[j] = dit_gelu_tanh(row[j] + bias[j]);
    break;
  case 2:
#pragma omp simd
    for (int64_t j = 0; j < n; j++) row[j] = dit_silu(row[j] + bias[j]);
    break;
  default:
#pragma omp simd
    for (int64_t j = 0; j < n; j++) row[j] += bias[j];
  }
}

void cpu_linear(const CpuCtx *c, const float *x, int64_t rows, int64_t K, const float *W, int64_t M,
                const float *b, int act, float *y) {
  int64_t tile_rows = c->tile_rows > 0 ? c->tile_rows : TILE_ROWS;
  /* Few rows (the conditioning GEMMs): split the columns instead. */
  int64_t tile_cols = c->tile_cols > 0 ? c->tile_cols : rows <= tile_rows ? TILE_COLS_FEW_ROWS : M;
  int64_t n_rt = (rows + tile_rows - 1) / tile_rows, n_ct = (M + tile_cols - 1) / tile_cols;
  int64_t n_tiles = n_rt * n_ct;
#pragma omp parallel for num_threads(c->n_threads) schedule(dynamic, 1)
  for (int64_t tile = 0; tile < n_tiles; tile++) {
    int64_t r0 = (tile / n_ct) * tile_rows, c0 = (tile % n_ct) * tile_cols;
    int64_t nr = rows - r0 < tile_rows ? rows - r0 : tile_rows;
    int64_t nc = M - c0 < tile_cols ? M - c0 : tile_cols;
    float *yt = y + r0 * M + c0;                      // [nr, nc] within [rows, M]
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, (int)nc, (int)K, 1.0f,
                x + r0 * K, (int)K, W + c0 * K, (int)K, 0.0f, yt, (int)M);
    for (int64_t i = 0; i < nr; i++) epilogue(yt + i * M, b + c0, nc, act);
  }
}
