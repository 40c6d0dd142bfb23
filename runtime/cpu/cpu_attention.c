/* cpu_attention.c: multi-head attention, one (batch row, head) pair per
 * task: S = q k^T * scale with sgemm (q, k and v are read in place from qkv
 * with a row stride of 3D), a numerically stable row softmax, then o = S v
 * written straight into the head's columns of out. The T x T scores live in
 * the calling thread's slice of the workspace. Training plans also keep each
 * query row's log-sum-exp (lse) for the backward (cpu_grad_attention.c).
 * dit tune may split the queries into blocks (CpuCtx.q_block). */
#include <cblas.h>
#include <math.h>
#include <omp.h>

#include "cpu_math.h"
#include "cpu_ops.h"

/* Row softmax in place; when lse is not NULL, also
 * lse[i] = max_j s[i,j] + log(sum_j e^(s[i,j] - max)). */
DIT_HOT static void softmax_rows(float *s, int64_t rows, int64_t cols, float *lse) {
  for (int64_t i = 0; i < rows; i++) {
    float *r = s + i * cols;
    float mx = r[0];
    for (int64_t j = 1; j < cols; j++) mx = r[j] > mx ? r[j] : mx;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < cols; j++) {
      r[j] = dit_expf(r[j] - mx);
      sum += r[j];
    }
    float inv = 1.0f / sum;
#pragma omp simd
    for (int64_t j = 0; j < cols; j++) r[j] *= inv;
    if (lse) lse[i] = mx + logf(sum);
  }
}

void cpu_attention(const CpuCtx *c, const float *qkv, int64_t N, int64_t T, int64_t H, int64_t hd,
                   double scale, float *out, float *lse) {
  int64_t D = H * hd, ld = 3 * D;
  int64_t qb = c->q_block > 0 && c->q_block < T ? c->q_block : T, n_qb = (T + qb - 1) / qb;
#pragma omp parallel for num_threads(c->n_threads) schedule(dynamic, 1)
  for (int64_t task = 0; task < N * H * n_qb; task++) {
    int64_t nh = task / n_qb, n = nh / H, h = nh % H, r0 = (task % n_qb) * qb;
    int64_t rows = T - r0 < qb ? T - r0 : qb;
    float *s = c->scratch + (int64_t)omp_get_thread_num() * c->scratch_per_thread;  // [rows, T]
    const float *q = qkv + n * T * ld + h * hd;       // [T, hd], row stride 3D
    const float *k = q + D, *v = q + 2 * D;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)T, (int)hd, (float)scale, q + r0 * ld,
                (int)ld, k, (int)ld, 0.0f, s, (int)T);
    softmax_rows(s, rows, T, lse ? lse + nh * T + r0 : NULL);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)hd, (int)T, 1.0f, s, (int)T,
                v, (int)ld, 0.0f, out + (n * T + r0) * D + h * hd, (int)D);
  }
}
