/* test_emu_attention_mma.c: kernels/attention_mma.cuh (the bf16 tensor-core
 * attention) on the emulated device (tools/emu/), for every candidate knob set
 * of head dims 64 and 72, on fresh pseudo-random bf16 inputs (fixed seed,
 * never zero), T = 256 and 1024, ragged T (77, 200, 1000: not a multiple of
 * any tile) and a tiny T = 9 with 3 heads, against a float64 reference from
 * the same bf16 inputs. Each output element must be within its derived bound
 * (worst case) and the whole output's ||out - ref|| / ||ref|| within the
 * statistical bound (see check_output); rows past T and the pad columns are
 * never written (a NaN-filled output with a guard after it), nothing past the
 * end of qkv is used (NaN follows it). Also: a NaN in V
 * reaches exactly its column of the output (NaN kept NaN), and mma.cuh's
 * cvt_bf16x2_rn rounds to nearest even on chosen bit patterns. CTest runs it
 * twice: plain, and with DIT_EMU_POISON (NaN shared memory) and
 * DIT_EMU_ORDER=random, which expose a missing __syncthreads or cp.async wait. */
#define _GNU_SOURCE
#include <cuda.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attention_mma_knobs.h"
#include "emu_test.h"
#include "kernel_abi.h"

static int failures;

static const char CVT_KERNEL[] =
    "extern \"C\" __global__ void k_cvt(const float *x, uint32_t *y, int pairs) {\n"
    "  const int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
    "  if (i < pairs) y[i] = dit::cvt_bf16x2_rn(x[2 * i], x[2 * i + 1]);\n"
    "}\n";

static CUmodule mod;
static CUstream stream;

/* The emu image: the attention header (and what it includes), k_cvt, and the table. */
static int setup(void) {
  size_t cap = 4096 + sizeof CVT_KERNEL + N_ATTN_KNOBS * 256, len = 0;
  char *tu = malloc(cap);
  len += (size_t)snprintf(tu + len, cap - len, "#include \"attention_mma.cuh\"\n%s", CVT_KERNEL);
  len += (size_t)snprintf(tu + len, cap - len, "DIT_EMU_KERNELS_BEGIN\nDIT_EMU_KERNEL(\"k_cvt\", k_cvt)\n");
  for (int i = 0; i < N_ATTN_KNOBS; i++) {
    char name[128];
    attn_kernel_name(&ATTN_KNOBS[i], name, sizeof name);
    const AttnKnobs *k = &ATTN_KNOBS[i];
    len += (size_t)snprintf(tu + len, cap - len, "DIT_EMU_KERNEL(\"%s\", dit::attention_mma_kernel<%d, %d, %d, %d>)\n",
                            name, k->hd, k->warps, k->block_n, k->stages);
  }
  snprintf(tu + len, cap - len, "DIT_EMU_KERNELS_END\n");
  static const char *const headers[] = {"attention_mma.cuh", "mma.cuh", "common.cuh", "kernel_abi.h"};
  char *img = emu_test_image(headers, 4, tu);
  free(tu);
  if (!img) {
    printf("FAIL: cannot read the headers of kernels/ under %s\n", DIT_SOURCE_DIR);
    return -1;
  }
  int rc = emu_test_open(img, &stream, &mod);
  free(img);
  return rc;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* --- bf16 on the host --- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return (uint32_t)((rng * 0x2545f4914f6cdd1dull) >> 32);
}

static uint32_t bits_of(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}
static float of_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}
/* Round to nearest even (finite inputs only here). */
static uint16_t to_bf16(float f) {
  uint32_t u = bits_of(f);
  return (uint16_t)((u + 0x7fffu + (u >> 16 & 1u)) >> 16);
}
static float bf16_value(uint16_t h) { return of_bits((uint32_t)h << 16); }
static int bf16_isnan(uint16_t h) { return (h & 0x7f80u) == 0x7f80u && (h & 0x7fu) != 0; }

/* A random bf16 of magnitude in [0.1, 2) * mag, either sign: never zero. */
static uint16_t rand_bf16(float mag) {
  float v = mag * (0.1f + 1.9f * (float)(rnd() >> 8) / 16777216.0f);
  return to_bf16(rnd() & 1u ? -v : v);
}

/* --- one problem: inputs, the float64 reference and the per-element bounds --- */

typedef struct Problem {
  int n, h, t, hd;
  float scale;
  uint16_t *qkv;        /* [N, T, 3D] */
  double *ref;          /* [N, T, D] */
  double *bound;        /* [N, T, D]: the worst-case bound of |out - ref| */
  double *fp32;         /* [N, T, D]: the part of bound that f32 arithmetic contributes */
  double var;           /* sum over elements of sigma^2 (the statistical model of check_output) */
  CUdeviceptr d_qkv, d_out;
} Problem;

#define U_BF16 (1.0 / 256.0) /* bf16 keeps 8 significant bits: unit roundoff 2^-8 */
#define OUT_GUARD 256        /* bf16 elements after the output that must stay untouched */
#define QKV_TAIL 65536       /* NaN bf16 elements after qkv: a value read past row T would show */

/* The reference o = softmax(scale q k^T) v per row, in float64 from the bf16
 * values, and the terms of the error bounds (see check_output):
 *   A  = sum_j w_j |v_j - o|,  A1 = sum_j w_j |v_j|,  V2 = sum_j w_j^2 (v_j - o)^2
 *   delta = 2^-23 scale HD max_j sum_d |q_d k_jd| + 2^-20 (1 + scale max_j |s_j|)
 *   gamma = (T + 2 ceil(T / 16) + 8) 2^-23. */
static void reference(Problem *p) {
  const int T = p->t, HD = p->hd, D = p->h * HD;
  const double u = U_BF16, gamma = (T + 2.0 * ((T + 15) / 16) + 8) * ldexp(1, -23);
  double *s = malloc(sizeof(double) * (size_t)T), *w = malloc(sizeof(double) * (size_t)T);
  float *x = malloc(sizeof(float) * (size_t)T * 3 * D);
  p->var = 0;
  for (int n = 0; n < p->n; n++) {
    for (size_t e = 0; e < (size_t)T * 3 * D; e++) x[e] = bf16_value(p->qkv[(size_t)n * T * 3 * D + e]);
    for (int hh = 0; hh < p->h; hh++)
      for (int i = 0; i < T; i++) {
        const float *q = x + (size_t)i * 3 * D + hh * HD;
        double smax = 0, qk = 0, mx = -INFINITY, sum = 0;
        for (int j = 0; j < T; j++) {
          const float *k = x + (size_t)j * 3 * D + D + hh * HD;
          double acc = 0, mag = 0;
          for (int d = 0; d < HD; d++) acc += (double)q[d] * k[d], mag += fabs((double)q[d] * k[d]);
          s[j] = acc * p->scale;
          smax = fmax(smax, fabs(acc)), qk = fmax(qk, mag), mx = fmax(mx, s[j]);
        }
        for (int j = 0; j < T; j++) sum += (w[j] = exp(s[j] - mx));
        for (int j = 0; j < T; j++) w[j] /= sum;
        const double delta = ldexp(1, -23) * p->scale * HD * qk + ldexp(1, -20) * (1 + p->scale * smax);
        for (int c = 0; c < HD; c++) {
          const float *v = x + 2 * D + hh * HD + c;
          double o = 0, a = 0, a1 = 0, v2 = 0;
          for (int j = 0; j < T; j++) o += w[j] * v[(size_t)j * 3 * D];
          for (int j = 0; j < T; j++) {
            const double dv = v[(size_t)j * 3 * D] - o;
            a += w[j] * fabs(dv), a1 += w[j] * fabs(v[(size_t)j * 3 * D]), v2 += w[j] * w[j] * dv * dv;
          }
          const size_t at = ((size_t)n * T + i) * D + hh * HD + c;
          p->ref[at] = o;
          p->fp32[at] = (1 + u) * (2.01 * delta * a + gamma * (a1 + fabs(o)));
          p->bound[at] = u * fabs(o) + (1 + u) * (2 * u / (1 - u)) * a + p->fp32[at];
          p->var += u * u / 3 * (o * o + v2);
        }
      }
  }
  free(s);
  free(w);
  free(x);
}

static int problem_init(Problem *p, int n, int h, int t, int hd) {
  memset(p, 0, sizeof *p);
  p->n = n, p->h = h, p->t = t, p->hd = hd;
  p->scale = (float)(1.0 / sqrt((double)hd));
  const int D = h * hd;
  const size_t nin = (size_t)n * t * 3 * D, nout = (size_t)n * t * D;
  p->qkv = malloc(nin * 2);
  p->ref = malloc(nout * sizeof(double));
  p->bound = malloc(nout * sizeof(double));
  p->fp32 = malloc(nout * sizeof(double));
  /* image n, head hh: q scaled by 3 when n + hh is odd (sharper softmax rows) */
  for (size_t e = 0; e < nin; e++) {
    const size_t col = e % (3 * (size_t)D);
    const int img = (int)(e / ((size_t)t * 3 * D)), hh = (int)(col % D / hd);
    p->qkv[e] = rand_bf16(col < (size_t)D && (img + hh) % 2 ? 3.0f : 1.0f);
  }
  reference(p);
  CU(cuMemAlloc(&p->d_qkv, (nin + QKV_TAIL) * 2));
  CU(cuMemsetD8Async(p->d_qkv + nin * 2, 0xff, QKV_TAIL * 2, stream));
  CU(cuMemAlloc(&p->d_out, (nout + OUT_GUARD) * 2));
  CU(cuMemcpyHtoDAsync(p->d_qkv, p->qkv, nin * 2, stream));
  return 0;
}

static void problem_free(Problem *p) {
  if (p->d_qkv) cuMemFree(p->d_qkv);
  if (p->d_out) cuMemFree(p->d_out);
  free(p->qkv);
  free(p->ref);
  free(p->bound);
  free(p->fp32);
}

/* Runs knob set k on p into out (the output and its guard, NaN-filled before). */
static int run_kernel(const AttnKnobs *k, const Problem *p, uint16_t *out, double *seconds) {
  const size_t nout = (size_t)p->n * p->t * p->h * p->hd + OUT_GUARD;
  char name[128];
  attn_kernel_name(k, name, sizeof name);
  CUfunction f;
  CU(cuModuleGetFunction(&f, mod, name));
  CU(cuMemsetD8Async(p->d_out, 0xff, nout * 2, stream)); /* every element 0xffff, a NaN */
  DitAttentionArgs a = {p->d_qkv, p->d_out, p->t, p->h, p->scale, 0};
  void *args[] = {&a};
  const int bm = 16 * k->warps;
  double t0 = now();
  CU(cuLaunchKernel(f, (unsigned)((p->t + bm - 1) / bm), (unsigned)p->h, (unsigned)p->n, 32u * (unsigned)k->warps, 1,
                    1, 0, stream, args, NULL));
  CU(cuStreamSynchronize(stream));
  *seconds = now() - t0;
  CU(cuMemcpyDtoHAsync(out, p->d_out, nout * 2, stream));
  CU(cuStreamSynchronize(stream));
  return 0;
}

/* The checks of one output, with nan_col >= 0: that column of every row
 * (index within a row of D) must be NaN and is left out of the rest.
 *
 * Error model (u = 2^-8, bf16's unit roundoff; the brief's 2^-9 would be
 * half an ulp of an 8-bit stored significand, bf16 stores 7). The kernel
 * computes S in f32 from exact bf16 products, p = exp2(S scale log2e - m) in
 * f32, rounds p to bf16 (p^, relative error <= u), sums l = sum p^ and
 * O = sum p^ v in f32, and rounds O / l to bf16 (relative error <= u). Its
 * weights w^ = p^ / l sum to 1, so O / l - o = sum_j (w^_j - w_j)(v_j - o),
 * and |w^_j / w_j - 1| <= 2u / (1 - u) + 2 delta, delta bounding each
 * exponent's f32 error (S's sum of HD products, 2^-24 HD sum |q k| per
 * score, the products by scale log2e and the subtraction of m, and exp2's own
 * error: delta in reference()); f32 accumulation of l and O over T keys and
 * the rescaling per tile add gamma (A1 + |o|). Per element:
 *   |out - ref| <= u |o| + (1 + u) (2u / (1 - u) A + 2 delta A + gamma (A1 + |o|))
 * (terms below 2^-100, p underflowing to zero, ignored).
 * That worst case is loose for long rows (the roundings of T weights rarely
 * align), so the whole output must also meet the statistical bound: each
 * rounding an independent relative error of variance <= u^2 / 3, so that
 * sigma^2 = u^2 / 3 (o^2 + sum_j w_j^2 (v_j - o)^2) per element, and
 *   ||out - ref|| <= 2 sqrt(sum sigma^2) + ||f32 terms||,
 * twice the expected norm (the sum over thousands of elements concentrates
 * far tighter than that). A wrong key, mask or rescale breaks it. */
static void check_output(const AttnKnobs *k, const Problem *p, const uint16_t *out, int nan_col, double seconds) {
  const size_t D = (size_t)p->h * p->hd, nout = (size_t)p->n * p->t * D;
  double err2 = 0, ref2 = 0, f2 = 0, max_abs = 0, max_ratio = 0;
  size_t unwritten = 0, over = 0, guard = 0, nan_missing = 0, first_over = 0;
  for (size_t e = 0; e < nout; e++) {
    if (nan_col >= 0 && e % D == (size_t)nan_col) {
      nan_missing += !bf16_isnan(out[e]);
      continue;
    }
    const float v = bf16_value(out[e]);
    if (!isfinite(v)) {
      unwritten++;
      continue;
    }
    const double err = fabs(v - p->ref[e]);
    err2 += err * err, ref2 += p->ref[e] * p->ref[e], f2 += p->fp32[e] * p->fp32[e];
    max_abs = fmax(max_abs, err);
    max_ratio = fmax(max_ratio, err / p->bound[e]);
    if (err > p->bound[e] && over++ == 0) first_over = e;
  }
  for (size_t e = nout; e < nout + OUT_GUARD; e++) guard += out[e] != 0xffff;
  const double rel = sqrt(err2 / ref2), rel_bound = (2 * sqrt(p->var) + sqrt(f2)) / sqrt(ref2);
  char what[160];
  snprintf(what, sizeof what, "HD %d W%d BN%2d S%d  N%d H%d T%4d%s", k->hd, k->warps, k->block_n, k->stages, p->n, p->h,
           p->t, nan_col >= 0 ? " NaN in V" : "");
  CHECK(unwritten == 0, "%s: %zu elements not finite (unwritten or wrong)", what, unwritten);
  CHECK(guard == 0, "%s: %zu elements written past the output", what, guard);
  CHECK(nan_missing == 0, "%s: %zu of column %d's elements are not NaN", what, nan_missing, nan_col);
  CHECK(over == 0, "%s: %zu elements above their bound (first: element %zu, |%.6g - %.6g| > %.3g)", what, over,
        first_over, over ? bf16_value(out[first_over]) : 0.0, over ? p->ref[first_over] : 0.0,
        over ? p->bound[first_over] : 0.0);
  CHECK(rel <= rel_bound, "%s: ||out - ref|| / ||ref|| = %.3g above the bound %.3g", what, rel, rel_bound);
  if (!unwritten && !guard && !nan_missing && !over && rel <= rel_bound)
    printf("ok   %s: ||err||/||ref|| %.2e (bound %.2e), max |err| %.2e (at most %.2f of its bound), %.2f s\n", what,
           rel, rel_bound, max_abs, max_ratio, seconds);
}

/* Every knob set of head dim hd on shape (n, h, t). */
static int run_shape(int n, int h, int t, int hd) {
  Problem p;
  if (problem_init(&p, n, h, t, hd)) return -1;
  uint16_t *out = malloc(((size_t)n * t * h * hd + OUT_GUARD) * 2);
  for (int i = 0; i < N_ATTN_KNOBS; i++) {
    if (ATTN_KNOBS[i].hd != hd) continue;
    double sec = 0;
    if (run_kernel(&ATTN_KNOBS[i], &p, out, &sec)) break;
    check_output(&ATTN_KNOBS[i], &p, out, -1, sec);
  }
  free(out);
  problem_free(&p);
  return 0;
}

/* A NaN at V[image 0, key 5, head 1, column 3] makes that column of head 1 NaN in
 * every row of image 0 (every key has weight > 0), and nothing else. */
static int run_nan(int hd) {
  Problem p;
  if (problem_init(&p, 1, 2, 77, hd)) return -1;
  const size_t D = 2 * (size_t)hd;
  const uint16_t nan = 0x7fc1;
  CU(cuMemcpyHtoDAsync(p.d_qkv + 2 * (5 * 3 * D + 2 * D + hd + 3), &nan, 2, stream));
  uint16_t *out = malloc((77 * D + OUT_GUARD) * 2);
  const AttnKnobs *k = ATTN_KNOBS;
  while (k->hd != hd) k++; /* the default of hd */
  double sec = 0;
  if (!run_kernel(k, &p, out, &sec)) check_output(k, &p, out, (int)(hd + 3), sec);
  free(out);
  problem_free(&p);
  return 0;
}

/* cvt_bf16x2_rn on chosen bit patterns: ties to even, overflow, subnormals, NaN. */
static int run_cvt(void) {
  static const uint32_t cases[][2] = {
      {0x00000000u, 0x0000}, {0x80000000u, 0x8000}, {0x3f800000u, 0x3f80}, {0x3f808000u, 0x3f80},
      {0x3f818000u, 0x3f82}, {0x3f808001u, 0x3f81}, {0xbf80ffffu, 0xbf81}, {0x7f7fffffu, 0x7f80},
      {0x7f7f7fffu, 0x7f7f}, {0x7f800000u, 0x7f80}, {0xff800000u, 0xff80}, {0x00000001u, 0x0000},
      {0x00008000u, 0x0000}, {0x00018000u, 0x0002}, {0x007fffffu, 0x0080}, {0xc2f6e979u, 0xc2f7},
      {0x7fc00000u, 0xffff}, {0x7f800001u, 0xffff}, {0xffffffffu, 0xffff}, {0x7fffffffu, 0xffff},
  }; /* 0xffff: any NaN */
  enum { NC = sizeof cases / sizeof cases[0] };
  float x[NC];
  uint32_t y[NC / 2];
  for (int i = 0; i < NC; i++) x[i] = of_bits(cases[i][0]);
  CUdeviceptr dx, dy;
  CU(cuMemAlloc(&dx, sizeof x));
  CU(cuMemAlloc(&dy, sizeof y));
  CU(cuMemcpyHtoDAsync(dx, x, sizeof x, stream));
  CUfunction f;
  CU(cuModuleGetFunction(&f, mod, "k_cvt"));
  int pairs = NC / 2;
  void *args[] = {&dx, &dy, &pairs};
  CU(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, stream, args, NULL));
  CU(cuMemcpyDtoHAsync(y, dy, sizeof y, stream));
  CU(cuStreamSynchronize(stream));
  int bad = 0;
  for (int i = 0; i < NC; i++) {
    const uint16_t got = (uint16_t)(i % 2 ? y[i / 2] >> 16 : y[i / 2] & 0xffffu);
    const int ok = cases[i][1] == 0xffff ? bf16_isnan(got) : got == cases[i][1];
    CHECK(ok, "cvt_bf16x2_rn(0x%08x) = 0x%04x, want 0x%04x (%s half)", cases[i][0], got, cases[i][1],
          i % 2 ? "high" : "low");
    bad += !ok;
  }
  if (!bad)
    printf("ok   cvt_bf16x2_rn: %d patterns (ties to even, overflow, subnormals, NaN), lo in the low half\n", NC);
  CU(cuMemFree(dx));
  CU(cuMemFree(dy));
  return 0;
}

int main(void) {
  const double t0 = now();
  if (setup()) return 1;
  printf("module ready in %.1f s\n", now() - t0);
  run_cvt();
  static const int shapes[][3] = {{2, 2, 256}, {2, 1, 1024}, {2, 2, 77}, {2, 2, 200}, {2, 1, 1000}, {1, 3, 9}};
  for (int hd = 64; hd <= 72; hd += 8) {
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
      run_shape(shapes[s][0], shapes[s][1], shapes[s][2], hd);
    run_nan(hd);
  }
  CHECK(cuModuleUnload(mod) == CUDA_SUCCESS && cuStreamDestroy(stream) == CUDA_SUCCESS, "cleanup");
  printf("%d failures, %.1f s\n", failures, now() - t0);
  return failures ? 1 : 0;
}
