/* test_ops_cpu.c: every CPU kernel against a plain double-precision
 * reference written here from the op's definition, on fresh random inputs
 * (never zeros), as ||out - ref|| / ||ref||; and the thread-count
 * independence of the results, bit for bit. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cpu/cpu_ops.h"
#include "model/timestep_freqs.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float frand(void) { /* uniform in [-1, 1) */
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((rng_state >> 40) & 0xFFFFFF) / 8388608.0f - 1.0f;
}
static float *randv(size_t n, float scale) {
  float *v = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) v[i] = frand() * scale;
  return v;
}

static double rel_err(const float *out, const double *ref, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    num += (out[i] - ref[i]) * (out[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return sqrt(num / den);
}

static CpuCtx ctx(int threads, int64_t scratch) {
  CpuCtx c = {.n_threads = threads, .scratch = calloc((size_t)(threads * scratch), sizeof(float)), .scratch_per_thread = scratch};
  return c;
}

#define ASSERT_REL(out, ref, n, tol)                                                          \
  do {                                                                                      \
    double e_ = rel_err(out, ref, n);                                                       \
    if (!(e_ <= (tol))) fail_msg("%s: relative error %.3g > %.3g", #out, e_, (double)(tol)); \
  } while (0)

static double gelu_ref(double v) { return 0.5 * v * (1 + tanh(sqrt(2 / 3.14159265358979323846) * (v + 0.044715 * v * v * v))); }
static double silu_ref(double v) { return v / (1 + exp(-v)); }

static void check_linear(int64_t rows, int64_t K, int64_t M, int act) {
  float *x = randv((size_t)(rows * K), 1), *W = randv((size_t)(M * K), 0.2f), *b = randv((size_t)M, 1);
  float *y = malloc((size_t)(rows * M) * sizeof(float)), *y1 = malloc((size_t)(rows * M) * sizeof(float));
  double *ref = malloc((size_t)(rows * M) * sizeof(double));
  for (int64_t r = 0; r < rows; r++)
    for (int64_t m = 0; m < M; m++) {
      double acc = b[m];
      for (int64_t k = 0; k < K; k++) acc += (double)x[r * K + k] * W[m * K + k];
      ref[r * M + m] = act == 1 ? gelu_ref(acc) : act == 2 ? silu_ref(acc) : acc;
    }
  CpuCtx c2 = ctx(2, 1), c1 = ctx(1, 1);
  cpu_linear(&c2, x, rows, K, W, M, b, act, y);
  cpu_linear(&c1, x, rows, K, W, M, b, act, y1);
  ASSERT_REL(y, ref, (size_t)(rows * M), 1e-6);
  assert_memory_equal(y, y1, (size_t)(rows * M) * sizeof(float)); /* thread count does not matter */
  /* dit tune's tile knobs (CpuCtx): other tiles, the same product */
  static const int64_t tiles[][2] = {{64, 0}, {128, 128}, {512, 256}, {0, 1024}, {7, 13}};
  for (size_t k = 0; k < sizeof tiles / sizeof tiles[0]; k++) {
    CpuCtx ct = c2;
    ct.tile_rows = tiles[k][0], ct.tile_cols = tiles[k][1];
    cpu_linear(&ct, x, rows, K, W, M, b, act, y1);
    ASSERT_REL(y1, ref, (size_t)(rows * M), 1e-6);
  }
  free(x); free(W); free(b); free(y); free(y1); free(ref); free(c1.scratch); free(c2.scratch);
}

static void test_linear(void **state) {
  (void)state;
  check_linear(5, 24, 40, 0);     /* one tile */
  check_linear(600, 48, 70, 1);   /* row tiles, GELU epilogue */
  check_linear(3, 32, 1500, 2);   /* few rows: column tiles, SiLU epilogue */
}

static void test_attention(void **state) {
  (void)state;
  const int64_t N = 2, T = 21, H = 3, hd = 8, D = H * hd;
  const double scale = 1.0 / sqrt((double)hd);
  float *qkv = randv((size_t)(N * T * 3 * D), 2);
  float *out = malloc((size_t)(N * T * D) * sizeof(float)), *out1 = malloc((size_t)(N * T * D) * sizeof(float));
  double *ref = calloc((size_t)(N * T * D), sizeof(double)), s[21];
  for (int64_t n = 0; n < N; n++)
    for (int64_t h = 0; h < H; h++)
      for (int64_t i = 0; i < T; i++) {
        const float *q = qkv + (n * T + i) * 3 * D + h * hd;
        double mx = -1e300, sum = 0;
        for (int64_t j = 0; j < T; j++) {
          const float *k = qkv + (n * T + j) * 3 * D + D + h * hd;
          double dot = 0;
          for (int64_t e = 0; e < hd; e++) dot += (double)q[e] * k[e];
          s[j] = dot * scale;
          mx = s[j] > mx ? s[j] : mx;
        }
        for (int64_t j = 0; j < T; j++) sum += (s[j] = exp(s[j] - mx));
        for (int64_t j = 0; j < T; j++) {
          const float *v = qkv + (n * T + j) * 3 * D + 2 * D + h * hd;
          for (int64_t e = 0; e < hd; e++) ref[(n * T + i) * D + h * hd + e] += s[j] / sum * v[e];
        }
      }
  CpuCtx c2 = ctx(2, T * T), c1 = ctx(1, T * T);
  cpu_attention(&c2, qkv, N, T, H, hd, scale, out, NULL);
  cpu_attention(&c1, qkv, N, T, H, hd, scale, out1, NULL);
  ASSERT_REL(out, ref, (size_t)(N * T * D), 1e-6);
  assert_memory_equal(out, out1, (size_t)(N * T * D) * sizeof(float));
  /* dit tune's query blocks (CpuCtx.q_block), one of them ragged: the same result, and the same lse */
  float *lse = malloc((size_t)(N * H * T) * sizeof(float)), *lse1 = malloc((size_t)(N * H * T) * sizeof(float));
  cpu_attention(&c2, qkv, N, T, H, hd, scale, out, lse);
  static const int64_t blocks[] = {1, 5, 8, 20};
  for (size_t k = 0; k < sizeof blocks / sizeof blocks[0]; k++) {
    CpuCtx cb = c2;
    cb.q_block = blocks[k];
    cpu_attention(&cb, qkv, N, T, H, hd, scale, out1, lse1);
    ASSERT_REL(out1, ref, (size_t)(N * T * D), 1e-6);
    for (int64_t i = 0; i < N * H * T; i++) assert_true(fabsf(lse[i] - lse1[i]) <= 1e-5f * (1 + fabsf(lse[i])));
  }
  free(lse); free(lse1);
  free(qkv); free(out); free(out1); free(ref); free(c1.scratch); free(c2.scratch);
}

static void ln_mod_ref(const double *v, int64_t D, const float *shift, const float *scale, double eps, double *out) {
  double mean = 0, var = 0;
  for (int64_t d = 0; d < D; d++) mean += v[d];
  mean /= (double)D;
  for (int64_t d = 0; d < D; d++) var += (v[d] - mean) * (v[d] - mean);
  var /= (double)D;
  for (int64_t d = 0; d < D; d++) out[d] = (v[d] - mean) / sqrt(var + eps) * (1 + scale[d]) + shift[d];
}

static void test_ln_modulate_and_residual(void **state) {
  (void)state;
  const int64_t N = 3, T = 5, D = 36, M = 7 * D;
  const double eps = 1e-6;
  float *x = randv((size_t)(N * T * D), 3), *h = randv((size_t)(N * T * D), 2);
  float *mod = randv((size_t)(N * M), 0.5f), *gm = randv((size_t)(N * M), 0.5f);
  float *out = malloc((size_t)(N * T * D) * sizeof(float)), *r = malloc((size_t)(N * T * D) * sizeof(float));
  double *ref = malloc((size_t)(N * T * D) * sizeof(double)), *rref = malloc((size_t)(N * T * D) * sizeof(double));
  double row[36];
  CpuCtx c = ctx(2, 1);
  /* ln_modulate with shift at column 2D and scale at 5D */
  for (int64_t i = 0; i < N * T; i++) {
    for (int64_t d = 0; d < D; d++) row[d] = x[i * D + d];
    const float *m = mod + (i / T) * M;
    ln_mod_ref(row, D, m + 2 * D, m + 5 * D, eps, ref + i * D);
  }
  cpu_ln_modulate(&c, x, N, T, D, mod, M, 2 * D, 5 * D, eps, out);
  ASSERT_REL(out, ref, (size_t)(N * T * D), 1e-6);
  /* gated residual (gate at column D of gm), then ln_modulate (shift 0, scale 6D) */
  for (int64_t i = 0; i < N * T; i++) {
    const float *g = gm + (i / T) * M + D, *m = mod + (i / T) * M;
    for (int64_t d = 0; d < D; d++) rref[i * D + d] = row[d] = (double)x[i * D + d] + (double)g[d] * h[i * D + d];
    ln_mod_ref(row, D, m, m + 6 * D, eps, ref + i * D);
  }
  cpu_res_gate_ln_modulate(&c, x, h, N, T, D, gm, M, D, mod, M, 0, 6 * D, eps, r, out);
  ASSERT_REL(out, ref, (size_t)(N * T * D), 1e-6);
  ASSERT_REL(r, rref, (size_t)(N * T * D), 1e-7);
  /* in place: the residual overwrites x */
  cpu_res_gate_ln_modulate(&c, x, h, N, T, D, gm, M, D, mod, M, 0, 6 * D, eps, x, out);
  ASSERT_REL(x, rref, (size_t)(N * T * D), 1e-7);
  ASSERT_REL(out, ref, (size_t)(N * T * D), 1e-6);
  free(x); free(h); free(mod); free(gm); free(out); free(r); free(ref); free(rref); free(c.scratch);
}

/* torch.nn.GroupNorm(G, C, eps) with affine weights, in double from its
 * definition: per (image, group), the mean and biased variance over the
 * group's C/G channels and H*W positions. */
static void group_norm_ref(const float *x, int64_t N, int64_t C, int64_t hw, int64_t G, double eps,
                           const float *gam, const float *bet, double *ref) {
  const int64_t cg = C / G;
  for (int64_t n = 0; n < N; n++)
    for (int64_t g = 0; g < G; g++) {
      const float *v = x + (n * C + g * cg) * hw;
      double mean = 0, var = 0;
      for (int64_t i = 0; i < cg * hw; i++) mean += v[i];
      mean /= (double)(cg * hw);
      for (int64_t i = 0; i < cg * hw; i++) var += (v[i] - mean) * (v[i] - mean);
      var /= (double)(cg * hw);
      for (int64_t i = 0; i < cg * hw; i++) {
        int64_t cc = g * cg + i / hw;
        ref[(n * C + g * cg) * hw + i] = (v[i] - mean) / sqrt(var + eps) * gam[cc] + bet[cc];
      }
    }
}

static void test_group_norm(void **state) {
  (void)state;
  const int64_t N = 3, C = 12, hw = 5 * 7;
  const double eps = 1e-6;
  const size_t len = (size_t)(N * C * hw);
  float *x = randv(len, 3), *gam = randv((size_t)C, 1.5f), *bet = randv((size_t)C, 1);
  for (size_t i = 0; i < len; i++) x[i] += 2.0f; /* a mean far from 0 */
  float *out = malloc(len * sizeof(float)), *out1 = malloc(len * sizeof(float));
  double *ref = malloc(len * sizeof(double));
  CpuCtx c2 = ctx(2, 1), c1 = ctx(1, 1);
  /* 4 groups of 3 channels; one group (LayerNorm over C, H, W); one channel per group (InstanceNorm) */
  const int64_t groups[] = {4, 1, C};
  for (size_t k = 0; k < sizeof groups / sizeof groups[0]; k++) {
    group_norm_ref(x, N, C, hw, groups[k], eps, gam, bet, ref);
    cpu_group_norm(&c2, x, N, C, hw, groups[k], eps, gam, bet, 0, out);
    cpu_group_norm(&c1, x, N, C, hw, groups[k], eps, gam, bet, 0, out1);
    ASSERT_REL(out, ref, len, 1e-6);
    assert_memory_equal(out, out1, len * sizeof(float)); /* thread count does not matter */
  }
  free(x); free(gam); free(bet); free(out); free(out1); free(ref); free(c1.scratch); free(c2.scratch);
}

static void test_patchify_unpatchify(void **state) {
  (void)state;
  const int64_t N = 2, C = 3, S = 8, p = 2, g = S / p, T = g * g;
  float *x = randv((size_t)(N * C * S * S), 1);
  float *tok = malloc((size_t)(N * T * C * p * p) * sizeof(float));
  CpuCtx c = ctx(2, 1);
  cpu_patchify(&c, x, N, C, S, S, p, tok);
  /* token (n=1, row 2, col 3), vector index (c=2, i=1, j=0) */
  assert_true(tok[(1 * T + 2 * g + 3) * C * p * p + (2 * p + 1) * p + 0] ==
              x[((1 * C + 2) * S + 2 * p + 1) * S + 3 * p + 0]);
  /* unpatchify reads vectors as (i, j, c): place a known value and find it */
  float *img = malloc((size_t)(N * C * S * S) * sizeof(float));
  cpu_unpatchify(&c, tok, N, g, p, C, img);
  int64_t n = 1, row = 3, col = 1, i = 1, j = 0, ch = 2;
  assert_true(img[((n * C + ch) * S + row * p + i) * S + col * p + j] ==
              tok[(n * T + row * g + col) * C * p * p + (i * p + j) * C + ch]);
  free(x); free(tok); free(img); free(c.scratch);
}

static void test_small_ops(void **state) {
  (void)state;
  CpuCtx c = ctx(2, 256);
  /* broadcast add: b [T, D] repeats over the batch */
  float *a = randv(2 * 6 * 4, 1), *b = randv(6 * 4, 1), out[48];
  double ref[48];
  for (int i = 0; i < 48; i++) ref[i] = (double)a[i] + b[i % 24];
  cpu_add(&c, a, 48, b, 24, out);
  ASSERT_REL(out, ref, 48, 1e-7);
  /* silu on a wide range */
  float *s = randv(200, 30), so[200];
  double sref[200];
  for (int i = 0; i < 200; i++) sref[i] = silu_ref(s[i]);
  cpu_silu(&c, s, 200, so);
  ASSERT_REL(so, sref, 200, 1e-6);
  /* timestep features: [cos, sin] of t * freq, freq from the official table */
  int64_t t[3] = {0, 999, 437};
  float tf[3 * 256], freqs[128];
  double tref[3 * 256];
  dit_timestep_freqs(128, 10000.0, freqs);
  assert_true(freqs[0] == 1.0f);
  assert_true(fabsf(freqs[127] - 1.0746e-4f) < 1e-7f);
  for (int n = 0; n < 3; n++)
    for (int k = 0; k < 128; k++) {
      float arg = (float)t[n] * freqs[k];
      tref[n * 256 + k] = cos((double)arg);
      tref[n * 256 + 128 + k] = sin((double)arg);
    }
  cpu_timestep_freq(&c, t, 3, 128, 10000.0, tf);
  ASSERT_REL(tf, tref, 3 * 256, 1e-6);
  /* label gather, the null row included */
  float *table = randv(11 * 5, 1), emb[15];
  int64_t ids[3] = {10, 0, 7};
  double eref[15];
  for (int n = 0; n < 3; n++)
    for (int d = 0; d < 5; d++) eref[n * 5 + d] = table[ids[n] * 5 + d];
  cpu_embedding(&c, table, 5, ids, 3, emb);
  ASSERT_REL(emb, eref, 15, 0);
  free(a); free(b); free(s); free(table); free(c.scratch);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_linear),
      cmocka_unit_test(test_attention),
      cmocka_unit_test(test_ln_modulate_and_residual),
      cmocka_unit_test(test_patchify_unpatchify),
      cmocka_unit_test(test_group_norm),
      cmocka_unit_test(test_small_ops),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
