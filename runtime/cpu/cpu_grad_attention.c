/* cpu_grad_attention.c: the flash-style attention backward, which recomputes
 * the probabilities from q, k and the forward's log-sum-exp (cpu_attention
 * with lse) instead of storing them. One (batch
 * row, head) pair per task, as cpu_attention.c; its T x T probabilities and
 * score gradients live in the calling thread's slice of the workspace
 * (2 T^2 floats). q, k, v and their gradients are read and written in place
 * in the [N, T, 3 D] layout (row stride 3D): q at column h*hd, k at D + h*hd,
 * v at 2D + h*hd. */
#include <cblas.h>
#include <math.h>
#include <omp.h>

#include "cpu_grad.h"
#include "cpu_math.h"

/* p[i, j] = exp(s[i, j] - lse[i]): the forward's probabilities, recomputed. */
DIT_HOT static void probs_from_lse(float *p, int64_t T, const float *lse) {
  for (int64_t i = 0; i < T; i++) {
    float *r = p + i * T, l = lse[i];
#pragma omp simd
    for (int64_t j = 0; j < T; j++) r[j] = dit_expf(r[j] - l);
  }
}

/* dp[i, j] <- p[i, j] * (dp[i, j] - sum_e do[i, e] o[i, e]): the score
 * gradient (softmax backward); do, o [T, hd] with row stride ld. */
DIT_HOT static void score_grad(float *dp, const float *p, const float *dout, const float *o,
                               int64_t T, int64_t hd, int64_t ld) {
  for (int64_t i = 0; i < T; i++) {
    const float *dor = dout + i * ld, *orow = o + i * ld;
    float dvec = 0.0f;
#pragma omp simd reduction(+ : dvec)
    for (int64_t e = 0; e < hd; e++) dvec += dor[e] * orow[e];
    float *r = dp + i * T;
    const float *pr = p + i * T;
#pragma omp simd
    for (int64_t j = 0; j < T; j++) r[j] = pr[j] * (r[j] - dvec);
  }
}

void cpu_attention_bwd(const CpuCtx *c, const float *dout, const float *qkv, const float *out,
                       const float *lse, int64_t N, int64_t T, int64_t H, int64_t hd, double scale,
                       int accumulate, float *dqkv) {
  int64_t D = H * hd, ld = 3 * D;
  float beta = accumulate ? 1.0f : 0.0f, fscale = (float)scale;
#pragma omp parallel for num_threads(c->n_threads) schedule(dynamic, 1)
  for (int64_t task = 0; task < N * H; task++) {
    int64_t n = task / H, h = task % H;
    float *p = c->scratch + (int64_t)omp_get_thread_num() * c->scratch_per_thread; // [T, T]
    float *dp = p + T * T;                                                         // [T, T]
    const float *q = qkv + n * T * ld + h * hd;        // [T, hd], row stride 3D
    const float *k = q + D, *v = q + 2 * D;
    const float *dO = dout + n * T * D + h * hd;       // [T, hd], row stride D
    const float *o = out + n * T * D + h * hd;         // [T, hd], row stride D
    float *dq = dqkv + n * T * ld + h * hd;            // [T, hd], row stride 3D
    float *dk = dq + D, *dv = dq + 2 * D;
    /* P = exp(scale q k^T - lse) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)T, (int)hd, fscale, q,
                (int)ld, k, (int)ld, 0.0f, p, (int)T);
    probs_from_lse(p, T, lse + task * T);
    /* dV = P^T dO */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)T, (int)hd, (int)T, 1.0f, p, (int)T,
                dO, (int)D, beta, dv, (int)ld);
    /* dP = dO V^T, then dS = P * (dP - rowsum(dO * O)) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)T, (int)hd, 1.0f, dO, (int)D,
                v, (int)ld, 0.0f, dp, (int)T);
    score_grad(dp, p, dO, o, T, hd, D);
    /* dQ = scale dS K, dK = scale dS^T Q */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, (int)hd, (int)T, fscale, dp,
                (int)T, k, (int)ld, beta, dq, (int)ld);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)T, (int)hd, (int)T, fscale, dp,
                (int)T, q, (int)ld, beta, dk, (int)ld);
  }
}
