/* test_conv_cpu.c: the VAE's CPU kernels (cpu_conv.c) against plain
 * double-precision references written here from each op's definition, on
 * fresh random inputs with non-zero means, as ||out - ref|| / ||ref||, and
 * bit-identical for 1 and 2 threads: conv2d (3x3 and 1x1, stride 1 and 2,
 * symmetric and bottom/right padding, fused nearest upsampling, alpha, odd
 * sizes, several pixel tiles), the token transposes and the posterior
 * sample. Then the plan level: the ops' shape rules in plan_check.c on a
 * hand-built plan view (accepted, and each broken attribute refused), and
 * their executor adapters against the kernels called directly. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "executor.h"

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static float frand(void) { /* uniform in [-1, 1) */
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((rng_state >> 40) & 0xFFFFFF) / 8388608.0f - 1.0f;
}
static float *randv(size_t n, float scale, float mean) {
  float *v = malloc((n ? n : 1) * sizeof(float));
  for (size_t i = 0; i < n; i++) v[i] = frand() * scale + mean;
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
  if (scratch < 1) scratch = 1;
  CpuCtx c = {.n_threads = threads, .scratch = calloc((size_t)(threads * scratch), sizeof(float)),
              .scratch_per_thread = scratch};
  return c;
}

#define ASSERT_REL(out, ref, n, tol)                                                          \
  do {                                                                                      \
    double e_ = rel_err(out, ref, n);                                                       \
    if (!(e_ <= (tol))) fail_msg("%s: relative error %.3g > %.3g", #out, e_, (double)(tol)); \
  } while (0)

/* conv2d from its definition: x' = x upsampled by up (x'[i][j] = x[i/up][j/up])
 * and zero-padded; ref = alpha * sum w * x' + b. */
static void conv_ref(const float *x, const CpuConvShape *s, const float *w, const float *b, double alpha,
                     double *ref) {
  const int64_t k = s->k, hu = s->H * s->up, wu = s->W * s->up;
  for (int64_t n = 0; n < s->N; n++)
    for (int64_t co = 0; co < s->Cout; co++)
      for (int64_t oy = 0; oy < s->Ho; oy++)
        for (int64_t ox = 0; ox < s->Wo; ox++) {
          double acc = 0;
          for (int64_t ci = 0; ci < s->Cin; ci++)
            for (int64_t ky = 0; ky < k; ky++)
              for (int64_t kx = 0; kx < k; kx++) {
                int64_t py = oy * s->stride + ky - s->pad[0], px = ox * s->stride + kx - s->pad[1];
                if (py < 0 || py >= hu || px < 0 || px >= wu) continue;
                acc += (double)w[((co * s->Cin + ci) * k + ky) * k + kx] *
                       x[((n * s->Cin + ci) * s->H + py / s->up) * s->W + px / s->up];
              }
          ref[((n * s->Cout + co) * s->Ho + oy) * s->Wo + ox] = alpha * acc + b[co];
        }
}

/* One case: output dims from the definition, the kernel against the
 * reference at 2 threads, and 1 thread bit for bit. */
static void check_conv(int64_t N, int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t k, int64_t stride,
                       const int64_t pad[4], int64_t up, double alpha) {
  CpuConvShape s = {.N = N, .Cin = Cin, .H = H, .W = W, .Cout = Cout, .k = k, .stride = stride, .up = up,
                    .pad = {pad[0], pad[1], pad[2], pad[3]}};
  s.Ho = (H * up + pad[0] + pad[2] - k) / stride + 1;
  s.Wo = (W * up + pad[1] + pad[3] - k) / stride + 1;
  size_t nx = (size_t)(N * Cin * H * W), nw = (size_t)(Cout * Cin * k * k), no = (size_t)(N * Cout * s.Ho * s.Wo);
  float *x = randv(nx, 1, 0.5f), *w = randv(nw, 0.3f, 0.05f), *b = randv((size_t)Cout, 1, 0.2f);
  float *out = malloc(no * sizeof(float)), *out1 = malloc(no * sizeof(float));
  double *ref = malloc(no * sizeof(double));
  for (size_t i = 0; i < no; i++) out[i] = out1[i] = NAN; /* every element must be written */
  CpuCtx c2 = ctx(2, cpu_conv2d_scratch(&s)), c1 = ctx(1, cpu_conv2d_scratch(&s));
  conv_ref(x, &s, w, b, alpha, ref);
  cpu_conv2d(&c2, x, &s, w, b, alpha, out);
  cpu_conv2d(&c1, x, &s, w, b, alpha, out1);
  double e = rel_err(out, ref, no);
  if (!(e <= 1e-6))
    fail_msg("conv2d N=%lld Cin=%lld %lldx%lld -> Cout=%lld k=%lld stride=%lld pad=%lld,%lld,%lld,%lld up=%lld: "
             "relative error %.3g",
             (long long)N, (long long)Cin, (long long)H, (long long)W, (long long)Cout, (long long)k,
             (long long)stride, (long long)pad[0], (long long)pad[1], (long long)pad[2], (long long)pad[3],
             (long long)up, e);
  assert_memory_equal(out, out1, no * sizeof(float)); /* thread count does not matter */
  free(x); free(w); free(b); free(out); free(out1); free(ref); free(c1.scratch); free(c2.scratch);
}

static void test_conv2d(void **state) {
  (void)state;
  const int64_t same[4] = {1, 1, 1, 1}, none[4] = {0, 0, 0, 0}, down[4] = {0, 0, 1, 1}, tb[4] = {1, 0, 1, 0};
  check_conv(2, 5, 9, 11, 7, 3, 1, same, 1, 1.0);   /* the resnet conv */
  check_conv(2, 5, 9, 10, 7, 3, 2, down, 1, 1.0);   /* Downsample2D: odd height, even width */
  check_conv(1, 4, 10, 9, 6, 3, 2, down, 1, 1.0);
  check_conv(2, 3, 5, 6, 4, 3, 1, same, 2, 0.37); /* Upsample2D's nearest x2 fused, alpha */
  check_conv(2, 6, 7, 13, 3, 1, 1, none, 1, 1.0);   /* 1x1: the plain GEMM */
  check_conv(1, 4, 6, 5, 4, 1, 1, none, 1, 1.0 / 0.18215); /* post_quant_conv with 1/scaling_factor */
  check_conv(2, 3, 7, 8, 5, 1, 2, tb, 1, 1.0);      /* 1x1 through the gather: stride, padding */
  check_conv(1, 3, 7, 6, 5, 1, 1, none, 2, 1.0);    /* 1x1 after upsampling */
  check_conv(2, 4, 6, 7, 3, 3, 1, none, 1, 1.0);    /* no padding */
  check_conv(1, 3, 4, 3, 2, 3, 2, same, 2, -0.5);   /* everything at once */
  check_conv(2, 16, 23, 23, 8, 3, 1, same, 1, 1.0); /* 529 pixels: three tiles, rows split across them */
  check_conv(1, 8, 23, 23, 8, 3, 2, down, 1, 1.0);
  check_conv(1, 8, 13, 11, 4, 3, 1, same, 2, 1.0);  /* 26 x 22 = 572 upsampled pixels */
  check_conv(1, 24, 20, 17, 16, 1, 1, none, 1, 1.0); /* 340 pixels of 1x1 */
}

static void test_group_norm_silu(void **state) {
  (void)state;
  const int64_t N = 2, C = 16, hw = 9 * 7, G = 4, cg = C / G;
  const double eps = 1e-6;
  const size_t len = (size_t)(N * C * hw);
  float *x = randv(len, 2, 3.0f), *gam = randv((size_t)C, 1, 0.8f), *bet = randv((size_t)C, 1, 0.1f);
  float *out = malloc(len * sizeof(float)), *out1 = malloc(len * sizeof(float));
  double *ref = malloc(len * sizeof(double));
  CpuCtx c2 = ctx(2, 1), c1 = ctx(1, 1);
  for (int act = 0; act <= 2; act += 2) {
    for (int64_t n = 0; n < N; n++)
      for (int64_t g = 0; g < G; g++) {
        const float *v = x + (n * C + g * cg) * hw;
        double mean = 0, var = 0;
        for (int64_t i = 0; i < cg * hw; i++) mean += v[i];
        mean /= (double)(cg * hw);
        for (int64_t i = 0; i < cg * hw; i++) var += (v[i] - mean) * (v[i] - mean);
        var /= (double)(cg * hw);
        for (int64_t i = 0; i < cg * hw; i++) {
          int64_t ch = g * cg + i / hw;
          double y = (v[i] - mean) / sqrt(var + eps) * gam[ch] + bet[ch];
          ref[(n * C + g * cg) * hw + i] = act == 2 ? y / (1 + exp(-y)) : y;
        }
      }
    cpu_group_norm(&c2, x, N, C, hw, G, eps, gam, bet, act, out);
    cpu_group_norm(&c1, x, N, C, hw, G, eps, gam, bet, act, out1);
    ASSERT_REL(out, ref, len, 1e-6);
    assert_memory_equal(out, out1, len * sizeof(float));
  }
  free(x); free(gam); free(bet); free(out); free(out1); free(ref); free(c1.scratch); free(c2.scratch);
}

static void test_tokens(void **state) {
  (void)state;
  const int64_t N = 2, C = 37, H = 9, W = 7, hw = H * W; /* sizes that do not fill the 32 x 32 blocks */
  const size_t len = (size_t)(N * C * hw);
  float *x = randv(len, 1, 0.5f), *res = randv(len, 1, -0.25f);
  float *tok = malloc(len * sizeof(float)), *tok1 = malloc(len * sizeof(float));
  float *back = malloc(len * sizeof(float)), *back1 = malloc(len * sizeof(float));
  double *ref = malloc(len * sizeof(double));
  CpuCtx c2 = ctx(2, 1), c1 = ctx(1, 1);
  cpu_to_tokens(&c2, x, N, C, hw, tok);
  cpu_to_tokens(&c1, x, N, C, hw, tok1);
  for (int64_t n = 0; n < N; n++)
    for (int64_t p = 0; p < hw; p++)
      for (int64_t ch = 0; ch < C; ch++) ref[(n * hw + p) * C + ch] = x[(n * C + ch) * hw + p];
  ASSERT_REL(tok, ref, len, 0);
  assert_memory_equal(tok, tok1, len * sizeof(float));
  cpu_from_tokens(&c2, tok, res, N, C, hw, back);
  cpu_from_tokens(&c1, tok, res, N, C, hw, back1);
  for (size_t i = 0; i < len; i++) ref[i] = (double)res[i] + x[i]; /* the round trip, plus the residual */
  ASSERT_REL(back, ref, len, 1e-7);
  assert_memory_equal(back, back1, len * sizeof(float));
  free(x); free(res); free(tok); free(tok1); free(back); free(back1); free(ref); free(c1.scratch); free(c2.scratch);
}

static void test_latent_sample(void **state) {
  (void)state;
  const int64_t N = 2, C = 4, hw = 6 * 5;
  const size_t len = (size_t)(N * C * hw);
  const double scale = 0.18215;
  float *mom = randv(2 * len, 1, 0.3f), *e = randv(len, 1.5f, 0.1f), *zero = calloc(len, sizeof(float));
  float *out = malloc(len * sizeof(float)), *out1 = malloc(len * sizeof(float));
  double *ref = malloc(len * sizeof(double));
  for (int64_t n = 0; n < N; n++) /* logvars over [-40, 30]: both clamps are reached */
    for (size_t i = 0; i < (size_t)(C * hw); i++) mom[(size_t)((2 * n + 1) * C * hw) + i] = frand() * 35.0f - 5.0f;
  mom[(size_t)(C * hw)] = -35.0f;
  mom[(size_t)(C * hw) + 1] = 25.0f;
  CpuCtx c2 = ctx(2, 1), c1 = ctx(1, 1);
  for (int64_t n = 0; n < N; n++)
    for (int64_t ch = 0; ch < C; ch++)
      for (int64_t i = 0; i < hw; i++) {
        double mean = mom[((2 * n) * C + ch) * hw + i], lv = mom[((2 * n + 1) * C + ch) * hw + i];
        lv = lv < -30 ? -30 : lv > 20 ? 20 : lv;
        ref[(n * C + ch) * hw + i] = scale * (mean + exp(0.5 * lv) * e[(n * C + ch) * hw + i]);
      }
  cpu_latent_sample(&c2, mom, e, N, C, hw, scale, out);
  cpu_latent_sample(&c1, mom, e, N, C, hw, scale, out1);
  ASSERT_REL(out, ref, len, 1e-6);
  assert_memory_equal(out, out1, len * sizeof(float));
  /* the clamped elements themselves: exp(-15) and exp(10) */
  assert_true(fabs(out[0] - scale * (mom[0] + exp(-15.0) * e[0])) <= 1e-6 * fabs(out[0]) + 1e-12);
  assert_true(fabs(out[1] - scale * (mom[1] + exp(10.0) * e[1])) <= 1e-6 * fabs(out[1]));
  /* zero noise: scale * mean (--mean) */
  cpu_latent_sample(&c2, mom, zero, N, C, hw, scale, out);
  for (int64_t n = 0; n < N; n++)
    for (int64_t i = 0; i < C * hw; i++) assert_true(out[n * C * hw + i] == (float)(scale * mom[2 * n * C * hw + i]));
  free(mom); free(e); free(zero); free(out); free(out1); free(ref); free(c1.scratch); free(c2.scratch);
}

/* ---- the plan level: a hand-built inference plan of the five ops ---- */

enum { V_X, V_W, V_B, V_CONV, V_GAMMA, V_BETA, V_GN, V_TOK, V_BACK, V_NOISE, V_LAT, N_VALUES };
enum { NB = 2, CI = 3, HH = 6, WW = 5, CO = 4 };

typedef struct HandPlan {
  PlanHeader header;
  PlanModel model; /* a VAE's: parts 1, the decoder */
  PlanIO io;
  PlanValue values[N_VALUES];
  PlanOp ops[5];
  PlanView pv;
} HandPlan;

static void value(HandPlan *h, int id, uint32_t storage, int rank, const int64_t *dims, uint64_t *next) {
  PlanValue *v = &h->values[id];
  memset(v, 0, sizeof *v);
  v->storage = storage;
  v->dtype = PLAN_VDT_F32;
  v->rank = (uint32_t)rank;
  v->batch_major = storage == PLAN_STORE_ARENA;
  uint64_t n = 1;
  for (int k = 0; k < rank; k++) n *= (uint64_t)(v->dims[k] = dims[k]);
  v->offset = *next;
  v->bytes = n * sizeof(float);
  *next += (v->bytes + 63) / 64 * 64;
}

static void hand_plan(HandPlan *h) {
  memset(h, 0, sizeof *h);
  uint64_t arena = 0, weights = 0;
  value(h, V_X, PLAN_STORE_ARENA, 4, (int64_t[]){NB, CI, HH, WW}, &arena);
  value(h, V_W, PLAN_STORE_WEIGHTS, 4, (int64_t[]){CO, CI, 3, 3}, &weights);
  value(h, V_B, PLAN_STORE_WEIGHTS, 1, (int64_t[]){CO}, &weights);
  value(h, V_CONV, PLAN_STORE_ARENA, 4, (int64_t[]){NB, CO, HH, WW}, &arena);
  value(h, V_GAMMA, PLAN_STORE_WEIGHTS, 1, (int64_t[]){CO}, &weights);
  value(h, V_BETA, PLAN_STORE_WEIGHTS, 1, (int64_t[]){CO}, &weights);
  value(h, V_GN, PLAN_STORE_ARENA, 4, (int64_t[]){NB, CO, HH, WW}, &arena);
  value(h, V_TOK, PLAN_STORE_ARENA, 3, (int64_t[]){NB, HH * WW, CO}, &arena);
  value(h, V_BACK, PLAN_STORE_ARENA, 4, (int64_t[]){NB, CO, HH, WW}, &arena);
  value(h, V_NOISE, PLAN_STORE_ARENA, 4, (int64_t[]){NB, CO / 2, HH, WW}, &arena);
  value(h, V_LAT, PLAN_STORE_ARENA, 4, (int64_t[]){NB, CO / 2, HH, WW}, &arena);
  PlanOp *op = h->ops;
  for (int i = 0; i < 5; i++) op[i].out2 = DIT_PLAN_NONE;
  plan_set_attrs_CONV2D(&op[0], (PlanAttrs_CONV2D){.kernel = 3, .stride = 1, .pad_top = 1, .pad_left = 1,
                                                   .pad_bottom = 1, .pad_right = 1, .upsample = 1, .alpha = 0.5});
  op[0].n_in = 3, op[0].in[0] = V_X, op[0].in[1] = V_W, op[0].in[2] = V_B, op[0].out = V_CONV;
  plan_set_attrs_GROUP_NORM(&op[1], (PlanAttrs_GROUP_NORM){.groups = 2, .act = PLAN_ACT_SILU, .eps = 1e-6});
  op[1].n_in = 3, op[1].in[0] = V_CONV, op[1].in[1] = V_GAMMA, op[1].in[2] = V_BETA, op[1].out = V_GN;
  plan_set_attrs_TO_TOKENS(&op[2], (PlanAttrs_TO_TOKENS){0});
  op[2].n_in = 1, op[2].in[0] = V_GN, op[2].out = V_TOK;
  plan_set_attrs_FROM_TOKENS(&op[3], (PlanAttrs_FROM_TOKENS){0});
  op[3].n_in = 2, op[3].in[0] = V_TOK, op[3].in[1] = V_CONV, op[3].out = V_BACK;
  plan_set_attrs_LATENT_SAMPLE(&op[4], (PlanAttrs_LATENT_SAMPLE){.scale = 0.18215});
  op[4].n_in = 2, op[4].in[0] = V_BACK, op[4].in[1] = V_NOISE, op[4].out = V_LAT;
  h->header.dtype = PLAN_DT_F32;
  h->model.parts = 1;
  h->io.x = V_X;
  h->io.out = V_LAT;
  h->io.n_forward_ops = 5;
  h->io.arena_bytes = arena;
  h->io.weight_bytes = weights;
  h->pv = (PlanView){.header = &h->header, .model = &h->model, .values = h->values, .n_values = N_VALUES, .ops = h->ops, .n_ops = 5,
                     .io = &h->io, .arena_bytes = arena, .weight_bytes = weights};
}

static void expect_refused(HandPlan *h, const char *fragment) {
  DitErr e = {0};
  DitStatus st = plan_check_ops(&h->pv, &e);
  if (st != DIT_ERR_FORMAT || !strstr(e.msg, fragment))
    fail_msg("status %d, message '%s' (want '%s')", st, e.msg, fragment);
  hand_plan(h); /* undo the edit */
}

static void test_plan_rules(void **state) {
  (void)state;
  HandPlan *h = malloc(sizeof *h);
  hand_plan(h);
  DitErr e = {0};
  if (plan_check_ops(&h->pv, &e) != DIT_OK) fail_msg("the hand-built plan is refused: %s", e.msg);
  h->ops[0].i[0] = 5; /* kernel */
  expect_refused(h, "conv2d attributes");
  h->ops[0].i[1] = 3; /* stride */
  expect_refused(h, "conv2d attributes");
  h->ops[0].i[2] = 2; /* pad_top */
  expect_refused(h, "conv2d attributes");
  h->ops[0].i[6] = 0; /* upsample */
  expect_refused(h, "conv2d attributes");
  h->ops[0].f[0] = INFINITY;
  expect_refused(h, "conv2d attributes");
  h->ops[0].i[1] = 2; /* stride 2 no longer gives the output's 6 x 5 */
  expect_refused(h, "conv2d shapes");
  h->ops[0].i[6] = 2;
  expect_refused(h, "conv2d shapes");
  h->ops[0].i[5] = 0; /* pad_right: 4 columns out */
  expect_refused(h, "conv2d shapes");
  h->values[V_W].dims[1] = 2; /* Cin */
  expect_refused(h, "conv2d shapes");
  h->values[V_W].dims[2] = h->values[V_W].dims[3] = 1; /* a 1x1 weight for a 3x3 op */
  expect_refused(h, "conv2d shapes");
  h->ops[0].in[1] = V_B; /* the bias as the weight */
  expect_refused(h, "conv2d operand types");
  h->values[V_CONV].offset = h->values[V_X].offset; /* over its own input */
  expect_refused(h, "a result overlaps an operand");
  h->ops[1].i[1] = PLAN_ACT_GELU_TANH;
  expect_refused(h, "group_norm shapes, groups, eps or activation");
  h->ops[1].i[0] = 3;
  expect_refused(h, "group_norm shapes, groups, eps or activation");
  h->values[V_TOK].dims[2] = 3;
  expect_refused(h, "to_tokens shapes");
  h->ops[3].in[1] = V_NOISE; /* a residual of 2 channels */
  expect_refused(h, "from_tokens shapes");
  h->ops[4].in[1] = V_GN; /* 4 noise channels need 8 moments */
  expect_refused(h, "latent_sample shapes");
  h->ops[4].f[0] = NAN;
  expect_refused(h, "latent_sample shapes");
  h->values[V_NOISE].batch_major = 0;
  expect_refused(h, "latent_sample shapes");
  free(h);
}

/* The adapters read shapes and attributes as the kernels expect them: one
 * forward of the hand-built plan against the kernels called directly, at
 * the plan's batch and at one row. */
static void test_plan_adapters(void **state) {
  (void)state;
  HandPlan *h = malloc(sizeof *h);
  hand_plan(h);
  const PlanView *pv = &h->pv;
  Executor ex = {.pv = pv, .arena = calloc(1, pv->arena_bytes), .weights = calloc(1, pv->weight_bytes)};
  ex.cpu = ctx(2, exec_scratch_per_thread(pv));
  const CpuConvShape s0 = exec_conv_shape(pv, &h->ops[0]);
  assert_true(ex.cpu.scratch_per_thread >= cpu_conv2d_scratch(&s0) && cpu_conv2d_scratch(&s0) == CI * 9 * CPU_CONV_TILE_PIXELS);
  for (int id = 0; id < N_VALUES; id++) {
    const PlanValue *v = &h->values[id];
    if (id == V_X || id == V_NOISE || v->storage == PLAN_STORE_WEIGHTS) {
      float *p = exec_value(&ex, (uint32_t)id);
      for (uint64_t i = 0; i < v->bytes / sizeof(float); i++) p[i] = frand() + (id == V_GAMMA ? 1.0f : 0.2f);
    }
  }
  const size_t img = (size_t)(CO * HH * WW), half = img / 2;
  float *conv = malloc(NB * img * sizeof(float)), *gn = malloc(NB * img * sizeof(float));
  float *tok = malloc(NB * img * sizeof(float)), *back = malloc(NB * img * sizeof(float));
  float *lat = malloc(NB * half * sizeof(float));
  for (int64_t n = NB; n >= 1; n--) {
    exec_forward(&ex, n);
    CpuConvShape s = s0;
    s.N = n;
    cpu_conv2d(&ex.cpu, exec_value(&ex, V_X), &s, exec_value(&ex, V_W), exec_value(&ex, V_B), 0.5, conv);
    cpu_group_norm(&ex.cpu, conv, n, CO, HH * WW, 2, 1e-6, exec_value(&ex, V_GAMMA), exec_value(&ex, V_BETA), 2, gn);
    cpu_to_tokens(&ex.cpu, gn, n, CO, HH * WW, tok);
    cpu_from_tokens(&ex.cpu, tok, conv, n, CO, HH * WW, back);
    cpu_latent_sample(&ex.cpu, back, exec_value(&ex, V_NOISE), n, CO / 2, HH * WW, 0.18215, lat);
    assert_memory_equal(exec_value(&ex, V_CONV), conv, (size_t)n * img * sizeof(float));
    assert_memory_equal(exec_value(&ex, V_GN), gn, (size_t)n * img * sizeof(float));
    assert_memory_equal(exec_value(&ex, V_TOK), tok, (size_t)n * img * sizeof(float));
    assert_memory_equal(exec_value(&ex, V_BACK), back, (size_t)n * img * sizeof(float));
    assert_memory_equal(exec_value(&ex, V_LAT), lat, (size_t)n * half * sizeof(float));
  }
  free(conv); free(gn); free(tok); free(back); free(lat);
  free(ex.arena); free(ex.weights); free(ex.cpu.scratch); free(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_conv2d),
      cmocka_unit_test(test_group_norm_silu),
      cmocka_unit_test(test_tokens),
      cmocka_unit_test(test_latent_sample),
      cmocka_unit_test(test_plan_rules),
      cmocka_unit_test(test_plan_adapters),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
