/* test_grad_cpu.c: the training kernels of runtime/cpu/cpu_grad.h. Every
 * backward kernel is checked three ways on fresh random inputs (never zeros),
 * with the objective f = sum(R * forward(inputs)) for a random projection R:
 *   - against central finite differences (f(x+h) - f(x-h)) / 2h of a
 *     double-precision reference forward written here, on sampled coordinates;
 *   - a double-precision analytic gradient written here, against the same
 *     finite differences (this validates the reference itself);
 *   - the float kernel against that double analytic gradient on every coordinate.
 * Errors are ||g - g_ref|| / ||g_ref||. Tolerances:
 *   TOL_REF_FD 1e-7: a double central difference with h = 1e-5 has truncation
 *     error ~h^2 |f'''| ~ 1e-10 and rounding ~1e-16 |f| / h ~ 1e-11, so a
 *     correct double reference agrees to ~1e-9 (100x margin);
 *   TOL_KERNEL 1e-5: a float32 kernel rounds each operation at 6e-8; the
 *     gradients here chain at most a few dozen operations (softmax and
 *     LayerNorm backward subtract nearly equal terms, a few x 1e-7);
 *   TOL_FD 1e-4: kernel against finite differences, the sum of the two
 *     above with margin; well inside the 1e-3 usual for FD gradient checks.
 * Also: accumulate = 1 adds onto the output's contents, results are bit-identical
 * at 1 and 2 threads, the loss values against a double reference of
 * dit-reference.md 3.7 on the real 1000-step linear schedule, and AdamW and
 * EMA against a float reference written from PyTorch's operation order. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cpu/cpu_grad.h"
#include "cpu/cpu_ops.h"

#define TOL_REF_FD 1e-7
#define TOL_KERNEL 1e-5
#define TOL_FD 1e-4
#define FD_H 1e-5
#define MAX_FD_COORDS 256

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint32_t rand_u32(void) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (uint32_t)(rng_state >> 32);
}
static float frand(void) { /* uniform in [-1, 1) */
  return (float)(rand_u32() >> 8) / 8388608.0f - 1.0f;
}
static float *randv(size_t n, float scale) {
  float *v = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) v[i] = frand() * scale;
  return v;
}
static double *to_double(const float *v, size_t n) {
  double *d = malloc(n * sizeof(double));
  for (size_t i = 0; i < n; i++) d[i] = v[i];
  return d;
}
static float *fcopy(const float *v, size_t n) {
  float *d = malloc(n * sizeof(float));
  memcpy(d, v, n * sizeof(float));
  return d;
}
static float *fzeros(size_t n) { return calloc(n, sizeof(float)); }
static double *dzeros(size_t n) { return calloc(n, sizeof(double)); }

static double rel_dd(const double *a, const double *b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return den > 0 ? sqrt(num / den) : sqrt(num);
}
static double rel_fd(const float *a, const double *b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return den > 0 ? sqrt(num / den) : sqrt(num);
}

static CpuCtx ctx(int threads, int64_t scratch) {
  CpuCtx c = {threads, calloc((size_t)threads * (size_t)scratch, sizeof(float)), scratch};
  return c;
}

#define ASSERT_REL(out, ref, n, tol)                                                          \
  do {                                                                                      \
    double e_ = rel_fd(out, ref, n);                                                        \
    if (!(e_ <= (tol))) fail_msg("%s: relative error %.3g > %.3g", #out, e_, (double)(tol)); \
  } while (0)

/* ---------------------------------------------------------------------------
 * The finite-difference check. f reads its inputs from env; x is one of them
 * (double), perturbed in place coordinate by coordinate. */
typedef double (*Objective)(void *env);

/* Only the coordinates j with mask[j] set (all when mask is NULL) take part;
 * tol_kernel bounds the float kernel against the double reference, h is the step. */
static void check_grad_on(const char *what, Objective f, void *env, double *x, size_t n,
                          const float *g_kernel, const double *g_ref, const unsigned char *mask,
                          double tol_kernel, double h) {
  size_t *elig = malloc(n * sizeof(size_t)), n_e = 0;
  for (size_t j = 0; j < n; j++)
    if (!mask || mask[j]) elig[n_e++] = j;
  size_t n_s = n_e <= MAX_FD_COORDS ? n_e : MAX_FD_COORDS;
  double *gk = malloc(n_s * sizeof(double)), *gr = malloc(n_s * sizeof(double));
  double *gf = malloc(n_s * sizeof(double)), *ga = malloc(n_e * sizeof(double));
  float *ka = malloc(n_e * sizeof(float));
  for (size_t s = 0; s < n_s; s++) {
    size_t j = elig[n_e <= MAX_FD_COORDS ? s : (size_t)rand_u32() % n_e];
    double x0 = x[j];
    x[j] = x0 + h;
    double fp = f(env);
    x[j] = x0 - h;
    double fm = f(env);
    x[j] = x0;
    gf[s] = (fp - fm) / (2 * h);
    gk[s] = g_kernel[j];
    gr[s] = g_ref[j];
  }
  for (size_t e = 0; e < n_e; e++) {
    ka[e] = g_kernel[elig[e]];
    ga[e] = g_ref[elig[e]];
  }
  double e_fd = rel_dd(gk, gf, n_s), e_ref_fd = rel_dd(gr, gf, n_s), e_ref = rel_fd(ka, ga, n_e);
  print_message("  %-36s kernel~FD %.2e  ref~FD %.2e  kernel~ref %.2e  (%zu FD coords)\n", what, e_fd,
                e_ref_fd, e_ref, n_s);
  if (!(e_ref_fd <= TOL_REF_FD)) fail_msg("%s: double reference vs FD %.3g", what, e_ref_fd);
  if (!(e_fd <= TOL_FD)) fail_msg("%s: kernel vs FD %.3g", what, e_fd);
  if (!(e_ref <= tol_kernel)) fail_msg("%s: kernel vs double reference %.3g", what, e_ref);
  free(elig); free(gk); free(gr); free(gf); free(ga); free(ka);
}

static void check_grad(const char *what, Objective f, void *env, double *x, size_t n,
                       const float *g_kernel, const double *g_ref) {
  check_grad_on(what, f, env, x, n, g_kernel, g_ref, NULL, TOL_KERNEL, FD_H);
}

static double dot_dd(const double *a, const double *b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

/* ---------------------------------------------------------------------------
 * Activations */
static const double k_pi = 3.14159265358979323846;
static double gelu_ref(double v) { return 0.5 * v * (1 + tanh(sqrt(2 / k_pi) * (v + 0.044715 * v * v * v))); }
static double silu_ref(double v) { return v / (1 + exp(-v)); }
static double gelu_grad_ref(double v) {
  double b = sqrt(2 / k_pi), th = tanh(b * (v + 0.044715 * v * v * v));
  return 0.5 * (1 + th) + 0.5 * v * (1 - th * th) * b * (1 + 3 * 0.044715 * v * v);
}
static double silu_grad_ref(double v) {
  double s = 1 / (1 + exp(-v));
  return s * (1 + v * (1 - s));
}

typedef struct ActEnv {
  double *z, *R;
  size_t n;
  int act;
} ActEnv;
static double act_objective(void *e) {
  ActEnv *a = e;
  double f = 0;
  for (size_t i = 0; i < a->n; i++) f += a->R[i] * (a->act == 1 ? gelu_ref(a->z[i]) : silu_ref(a->z[i]));
  return f;
}

static void check_act(size_t n, int act) {
  float *z = randv(n, 4), *R = randv(n, 1), *dz = fzeros(n), *dz1 = fzeros(n);
  ActEnv env = {to_double(z, n), to_double(R, n), n, act};
  double *ref = malloc(n * sizeof(double));
  for (size_t i = 0; i < n; i++) ref[i] = R[i] * (act == 1 ? gelu_grad_ref(z[i]) : silu_grad_ref(z[i]));
  CpuCtx c2 = ctx(2, 1), c1 = ctx(1, 1);
  cpu_act_bwd(&c2, R, z, (int64_t)n, act, dz);
  cpu_act_bwd(&c1, R, z, (int64_t)n, act, dz1);
  check_grad(act == 1 ? "act_bwd GELU(tanh) dz" : "act_bwd SiLU dz", act_objective, &env, env.z, n, dz, ref);
  assert_memory_equal(dz, dz1, n * sizeof(float));
  /* the forward activation: against the double formula, and bit-identical to
   * cpu_linear's epilogue (x @ I + 0 is x exactly, so only the activation differs) */
  const int64_t M = 40, rows = (int64_t)n / M;
  float *y = fzeros(n), *yl = fzeros(n), *eye = fzeros((size_t)(M * M)), *zero_b = fzeros((size_t)M);
  for (int64_t i = 0; i < M; i++) eye[i * M + i] = 1.0f;
  double *yref = malloc(n * sizeof(double));
  for (size_t i = 0; i < n; i++) yref[i] = act == 1 ? gelu_ref(z[i]) : silu_ref(z[i]);
  cpu_act(&c2, z, (int64_t)n, act, y);
  ASSERT_REL(y, yref, n, 1e-6);
  cpu_linear(&c2, z, rows, M, eye, M, zero_b, act, yl);
  assert_memory_equal(y, yl, (size_t)(rows * M) * sizeof(float));
  cpu_act(&c2, z, (int64_t)n, 0, y); /* act 0: a copy */
  assert_memory_equal(y, z, n * sizeof(float));
  cpu_act_bwd(&c2, R, z, (int64_t)n, 0, dz);
  assert_memory_equal(dz, R, n * sizeof(float));
  free(z); free(R); free(dz); free(dz1); free(env.z); free(env.R); free(ref); free(y); free(yl);
  free(eye); free(zero_b); free(yref); free(c1.scratch); free(c2.scratch);
}

static void test_act_bwd(void **state) {
  (void)state;
  check_act(200, 1);
  check_act(200, 2);
  check_act(9000, 1); /* several elementwise tiles, a partial last one */
  check_act(9000, 2);
}

/* ---------------------------------------------------------------------------
 * Linear: y = x W^T + b */
typedef struct LinEnv {
  double *x, *W, *b, *R;
  int64_t rows, K, M;
} LinEnv;
static double linear_objective(void *e) {
  LinEnv *l = e;
  double f = 0;
  for (int64_t r = 0; r < l->rows; r++)
    for (int64_t m = 0; m < l->M; m++) {
      double acc = l->b[m];
      for (int64_t k = 0; k < l->K; k++) acc += l->x[r * l->K + k] * l->W[m * l->K + k];
      f += l->R[r * l->M + m] * acc;
    }
  return f;
}

/* dx = R W, dW = R^T x, db = column sums of R, in double */
static void linear_grad_ref(const LinEnv *l, double *dx, double *dW, double *db) {
  int64_t rows = l->rows, K = l->K, M = l->M;
  for (int64_t r = 0; r < rows; r++)
    for (int64_t k = 0; k < K; k++) {
      double s = 0;
      for (int64_t m = 0; m < M; m++) s += l->R[r * M + m] * l->W[m * K + k];
      dx[r * K + k] = s;
    }
  for (int64_t m = 0; m < M; m++) {
    double sb = 0;
    for (int64_t r = 0; r < rows; r++) sb += l->R[r * M + m];
    db[m] = sb;
    for (int64_t k = 0; k < K; k++) {
      double s = 0;
      for (int64_t r = 0; r < rows; r++) s += l->R[r * M + m] * l->x[r * K + k];
      dW[m * K + k] = s;
    }
  }
}

static void check_linear_bwd(int64_t rows, int64_t K, int64_t M, int fd) {
  size_t nx = (size_t)(rows * K), nw = (size_t)(M * K), nr = (size_t)(rows * M);
  float *x = randv(nx, 1), *W = randv(nw, 0.5f), *b = randv((size_t)M, 1), *R = randv(nr, 1);
  LinEnv env = {to_double(x, nx), to_double(W, nw), to_double(b, (size_t)M), to_double(R, nr), rows, K, M};
  double *dx_ref = dzeros(nx), *dW_ref = dzeros(nw), *db_ref = dzeros((size_t)M);
  linear_grad_ref(&env, dx_ref, dW_ref, db_ref);
  float *dx = fzeros(nx), *dW = fzeros(nw), *db = fzeros((size_t)M);
  float *dx1 = fzeros(nx), *dW1 = fzeros(nw), *db1 = fzeros((size_t)M);
  CpuCtx c2 = ctx(2, 1), c1 = ctx(1, 1);
  cpu_linear_bwd_data(&c2, R, rows, M, W, K, 0, dx);
  cpu_linear_bwd_params(&c2, R, rows, M, x, K, dW, db);
  cpu_linear_bwd_data(&c1, R, rows, M, W, K, 0, dx1);
  cpu_linear_bwd_params(&c1, R, rows, M, x, K, dW1, db1);
  if (fd) {
    check_grad("linear_bwd_data dx", linear_objective, &env, env.x, nx, dx, dx_ref);
    check_grad("linear_bwd_params dW", linear_objective, &env, env.W, nw, dW, dW_ref);
    check_grad("linear_bwd_params db", linear_objective, &env, env.b, (size_t)M, db, db_ref);
  } else {
    ASSERT_REL(dx, dx_ref, nx, TOL_KERNEL);
    ASSERT_REL(dW, dW_ref, nw, TOL_KERNEL);
    ASSERT_REL(db, db_ref, (size_t)M, TOL_KERNEL);
  }
  assert_memory_equal(dx, dx1, nx * sizeof(float)); /* thread count does not matter */
  assert_memory_equal(dW, dW1, nw * sizeof(float));
  assert_memory_equal(db, db1, (size_t)M * sizeof(float));
  /* accumulate = 1 adds onto what dx holds */
  float *acc = randv(nx, 1);
  for (size_t i = 0; i < nx; i++) dx_ref[i] += acc[i];
  cpu_linear_bwd_data(&c2, R, rows, M, W, K, 1, acc);
  ASSERT_REL(acc, dx_ref, nx, TOL_KERNEL);
  /* db may be NULL */
  cpu_linear_bwd_params(&c2, R, rows, M, x, K, dW1, NULL);
  assert_memory_equal(dW, dW1, nw * sizeof(float));
  free(x); free(W); free(b); free(R); free(env.x); free(env.W); free(env.b); free(env.R);
  free(dx_ref); free(dW_ref); free(db_ref); free(dx); free(dW); free(db); free(dx1); free(dW1);
  free(db1); free(acc); free(c1.scratch); free(c2.scratch);
}

static void test_linear_bwd(void **state) {
  (void)state;
  check_linear_bwd(10, 8, 12, 1);    /* N*T = 2*5 tokens, D = 8 -> 12 */
  check_linear_bwd(300, 40, 140, 0); /* two row tiles of dx, two row tiles of dW */
  check_linear_bwd(5, 530, 70, 0);   /* few rows: dx column tiles; dW column tiles */
}

/* ---------------------------------------------------------------------------
 * sum_rows: the gradient of b in out[i] = a[i] + b[i % nb] */
typedef struct BcastEnv {
  double *b, *R;
  int64_t n, nb;
} BcastEnv;
static double bcast_objective(void *e) {
  BcastEnv *s = e;
  double f = 0;
  for (int64_t i = 0; i < s->n; i++) f += s->R[i] * (1.0 + s->b[i % s->nb]); /* a = 1 */
  return f;
}

static void test_sum_rows(void **state) {
  (void)state;
  const int64_t nb = 70, n = 9 * nb; /* two column tiles, a partial one */
  float *R = randv((size_t)n, 1), *b = randv((size_t)nb, 1);
  BcastEnv env = {to_double(b, (size_t)nb), to_double(R, (size_t)n), n, nb};
  double *ref = dzeros((size_t)nb);
  for (int64_t i = 0; i < n; i++) ref[i % nb] += R[i];
  float *out = fzeros((size_t)nb), *out1 = fzeros((size_t)nb);
  CpuCtx c2 = ctx(2, 1), c1 = ctx(1, 1);
  cpu_sum_rows(&c2, R, n, nb, 0, out);
  cpu_sum_rows(&c1, R, n, nb, 0, out1);
  check_grad("sum_rows (broadcast operand)", bcast_objective, &env, env.b, (size_t)nb, out, ref);
  assert_memory_equal(out, out1, (size_t)nb * sizeof(float));
  float *acc = randv((size_t)nb, 1);
  for (int64_t j = 0; j < nb; j++) ref[j] += acc[j];
  cpu_sum_rows(&c2, R, n, nb, 1, acc);
  ASSERT_REL(acc, ref, (size_t)nb, TOL_KERNEL);
  free(R); free(b); free(env.b); free(env.R); free(ref); free(out); free(out1); free(acc);
  free(c1.scratch); free(c2.scratch);
}

/* ---------------------------------------------------------------------------
 * LayerNorm + modulate */
typedef struct LnEnv {
  double *x, *mod, *R;
  int64_t N, T, D, M, shift_col, scale_col;
  double eps;
} LnEnv;

static double ln_objective(void *e) {
  LnEnv *l = e;
  double f = 0;
  int64_t D = l->D;
  for (int64_t row = 0; row < l->N * l->T; row++) {
    const double *v = l->x + row * D, *m = l->mod + (row / l->T) * l->M;
    double mean = 0, var = 0;
    for (int64_t d = 0; d < D; d++) mean += v[d];
    mean /= (double)D;
    for (int64_t d = 0; d < D; d++) var += (v[d] - mean) * (v[d] - mean);
    var /= (double)D;
    double rstd = 1 / sqrt(var + l->eps);
    for (int64_t d = 0; d < D; d++)
      f += l->R[row * D + d] * ((v[d] - mean) * rstd * (1 + m[l->scale_col + d]) + m[l->shift_col + d]);
  }
  return f;
}

static void ln_grad_ref(const LnEnv *l, double *dx, double *dmod) {
  int64_t D = l->D;
  for (int64_t row = 0; row < l->N * l->T; row++) {
    const double *v = l->x + row * D, *m = l->mod + (row / l->T) * l->M, *dy = l->R + row * D;
    double *dm = dmod + (row / l->T) * l->M;
    double mean = 0, var = 0;
    for (int64_t d = 0; d < D; d++) mean += v[d];
    mean /= (double)D;
    for (int64_t d = 0; d < D; d++) var += (v[d] - mean) * (v[d] - mean);
    var /= (double)D;
    double rstd = 1 / sqrt(var + l->eps), s1 = 0, s2 = 0;
    for (int64_t d = 0; d < D; d++) {
      double xh = (v[d] - mean) * rstd, g = dy[d] * (1 + m[l->scale_col + d]);
      s1 += g;
      s2 += g * xh;
      dm[l->shift_col + d] += dy[d];
      dm[l->scale_col + d] += dy[d] * xh;
    }
    for (int64_t d = 0; d < D; d++) {
      double xh = (v[d] - mean) * rstd, g = dy[d] * (1 + m[l->scale_col + d]);
      dx[row * D + d] = rstd * (g - s1 / (double)D - xh * s2 / (double)D);
    }
  }
}

static void test_ln_modulate_bwd(void **state) {
  (void)state;
  const int64_t N = 2, T = 5, D = 8, M = 6 * D, shift_col = D, scale_col = 4 * D;
  const double eps = 1e-6;
  size_t nx = (size_t)(N * T * D), nm = (size_t)(N * M);
  float *x = randv(nx, 2), *mod = randv(nm, 0.5f), *R = randv(nx, 1);
  for (size_t i = 0; i < nx; i++) x[i] += 0.7f; /* rows with a non-zero mean */
  LnEnv env = {to_double(x, nx), to_double(mod, nm), to_double(R, nx), N, T, D, M, shift_col, scale_col, eps};
  double *dx_ref = dzeros(nx), *dmod_ref = dzeros(nm);
  ln_grad_ref(&env, dx_ref, dmod_ref);
  float *dx = fzeros(nx), *dmod = fzeros(nm), *dx1 = fzeros(nx), *dmod1 = fzeros(nm);
  CpuCtx c2 = ctx(2, 1), c1 = ctx(1, 1);
  cpu_ln_modulate_bwd(&c2, R, x, N, T, D, mod, M, shift_col, scale_col, eps, 0, dx, dmod);
  cpu_ln_modulate_bwd(&c1, R, x, N, T, D, mod, M, shift_col, scale_col, eps, 0, dx1, dmod1);
  check_grad("ln_modulate_bwd dx", ln_objective, &env, env.x, nx, dx, dx_ref);
  check_grad("ln_modulate_bwd dmod (shift, scale)", ln_objective, &env, env.mod, nm, dmod, dmod_ref);
  assert_memory_equal(dx, dx1, nx * sizeof(float));
  assert_memory_equal(dmod, dmod1, nm * sizeof(float));
  /* dx accumulate = 1; dmod always accumulates and leaves the other columns alone */
  float *acc = randv(nx, 1), *dm0 = randv(nm, 1), *dm = fcopy(dm0, nm);
  for (size_t i = 0; i < nx; i++) dx_ref[i] += acc[i];
  cpu_ln_modulate_bwd(&c2, R, x, N, T, D, mod, M, shift_col, scale_col, eps, 1, acc, dm);
  ASSERT_REL(acc, dx_ref, nx, TOL_KERNEL);
  for (int64_t n = 0; n < N; n++)
    for (int64_t j = 0; j < M; j++) {
      size_t i = (size_t)(n * M + j);
      int touched = (j >= shift_col && j < shift_col + D) || (j >= scale_col && j < scale_col + D);
      if (!touched) assert_true(dm[i] == dm0[i]);
      dmod_ref[i] += dm0[i];
    }
  ASSERT_REL(dm, dmod_ref, nm, TOL_KERNEL);
  free(x); free(mod); free(R); free(env.x); free(env.mod); free(env.R); free(dx_ref); free(dmod_ref);
  free(dx); free(dmod); free(dx1); free(dmod1); free(acc); free(dm0); free(dm);
  free(c1.scratch); free(c2.scratch);
}

/* ---------------------------------------------------------------------------
 * Gated residual: r = x + gmod[n, gate_col..] * h */
typedef struct GateEnv {
  double *h, *gmod, *R;
  int64_t N, T, D, M, gate_col;
} GateEnv;
static double gate_objective(void *e) {
  GateEnv *g = e;
  double f = 0;
  for (int64_t row = 0; row < g->N * g->T; row++)
    for (int64_t d = 0; d < g->D; d++)
      f += g->R[row * g->D + d] * g->gmod[(row / g->T) * g->M + g->gate_col + d] * g->h[row * g->D + d];
  return f; /* + sum R * x, constant in h and gmod */
}

static void test_residual_gate_bwd(void **state) {
  (void)state;
  const int64_t N = 2, T = 5, D = 8, M = 3 * D, gate_col = 2 * D;
  size_t nx = (size_t)(N * T * D), nm = (size_t)(N * M);
  float *h = randv(nx, 2), *gmod = randv(nm, 0.5f), *R = randv(nx, 1);
  GateEnv env = {to_double(h, nx), to_double(gmod, nm), to_double(R, nx), N, T, D, M, gate_col};
  double *dh_ref = dzeros(nx), *dmod_ref = dzeros(nm);
  for (int64_t row = 0; row < N * T; row++)
    for (int64_t d = 0; d < D; d++) {
      int64_t g = (row / T) * M + gate_col + d;
      dh_ref[row * D + d] = (double)R[row * D + d] * gmod[g];
      dmod_ref[g] += (double)R[row * D + d] * h[row * D + d];
    }
  float *dh = randv(nx, 1), *dmod = fzeros(nm), *dh1 = fzeros(nx), *dmod1 = fzeros(nm);
  CpuCtx c2 = ctx(2, 1), c1 = ctx(1, 1);
  cpu_residual_gate_bwd(&c2, R, h, N, T, D, gmod, M, gate_col, dh, dmod);
  cpu_residual_gate_bwd(&c1, R, h, N, T, D, gmod, M, gate_col, dh1, dmod1);
  check_grad("residual_gate_bwd dh", gate_objective, &env, env.h, nx, dh, dh_ref);
  check_grad("residual_gate_bwd dmod (gate)", gate_objective, &env, env.gmod, nm, dmod, dmod_ref);
  assert_memory_equal(dh, dh1, nx * sizeof(float));
  assert_memory_equal(dmod, dmod1, nm * sizeof(float));
  /* dmod accumulates into the gate columns only; dh may be dr itself */
  float *dm0 = randv(nm, 1), *dm = fcopy(dm0, nm), *dr = fcopy(R, nx);
  cpu_residual_gate_bwd(&c2, dr, h, N, T, D, gmod, M, gate_col, dr, dm);
  assert_memory_equal(dr, dh, nx * sizeof(float));
  for (size_t i = 0; i < nm; i++) {
    int64_t j = (int64_t)i % M;
    if (j < gate_col || j >= gate_col + D) assert_true(dm[i] == dm0[i]);
    dmod_ref[i] += dm0[i];
  }
  ASSERT_REL(dm, dmod_ref, nm, TOL_KERNEL);
  free(h); free(gmod); free(R); free(env.h); free(env.gmod); free(env.R); free(dh_ref); free(dmod_ref);
  free(dh); free(dmod); free(dh1); free(dmod1); free(dm0); free(dm); free(dr);
  free(c1.scratch); free(c2.scratch);
}

/* ---------------------------------------------------------------------------
 * Attention */
enum { MAX_T = 32 };
typedef struct AttnEnv {
  double *qkv, *R;
  int64_t N, T, H, hd;
  double scale;
} AttnEnv;

/* out [N, T, D] and lse [N, H, T] of softmax(q k^T scale) v, in double */
static void attention_ref(const AttnEnv *a, double *out, double *lse) {
  int64_t T = a->T, hd = a->hd, D = a->H * hd, ld = 3 * D;
  double s[MAX_T];
  for (int64_t n = 0; n < a->N; n++)
    for (int64_t h = 0; h < a->H; h++)
      for (int64_t i = 0; i < T; i++) {
        const double *q = a->qkv + (n * T + i) * ld + h * hd;
        double mx = -1e300, sum = 0;
        for (int64_t j = 0; j < T; j++) {
          const double *k = a->qkv + (n * T + j) * ld + D + h * hd;
          s[j] = dot_dd(q, k, (size_t)hd) * a->scale;
          mx = s[j] > mx ? s[j] : mx;
        }
        for (int64_t j = 0; j < T; j++) sum += (s[j] = exp(s[j] - mx));
        if (lse) lse[(n * a->H + h) * T + i] = mx + log(sum);
        double *o = out + (n * T + i) * D + h * hd;
        for (int64_t e = 0; e < hd; e++) o[e] = 0;
        for (int64_t j = 0; j < T; j++) {
          const double *v = a->qkv + (n * T + j) * ld + 2 * D + h * hd;
          for (int64_t e = 0; e < hd; e++) o[e] += s[j] / sum * v[e];
        }
      }
}

static double attention_objective(void *e) {
  AttnEnv *a = e;
  size_t no = (size_t)(a->N * a->T * a->H * a->hd);
  double *out = malloc(no * sizeof(double));
  attention_ref(a, out, NULL);
  double f = dot_dd(a->R, out, no);
  free(out);
  return f;
}

/* dqkv from dout = R, in double: the textbook softmax backward */
static void attention_grad_ref(const AttnEnv *a, double *dqkv) {
  int64_t T = a->T, hd = a->hd, D = a->H * hd, ld = 3 * D;
  static double P[MAX_T][MAX_T], dS[MAX_T][MAX_T];
  for (int64_t n = 0; n < a->N; n++)
    for (int64_t h = 0; h < a->H; h++) {
      const double *Q = a->qkv + n * T * ld + h * hd, *K = Q + D, *V = Q + 2 * D;
      const double *dO = a->R + n * T * D + h * hd;
      double *dQ = dqkv + n * T * ld + h * hd, *dK = dQ + D, *dV = dQ + 2 * D;
      for (int64_t i = 0; i < T; i++) {
        double mx = -1e300, sum = 0;
        for (int64_t j = 0; j < T; j++) {
          P[i][j] = dot_dd(Q + i * ld, K + j * ld, (size_t)hd) * a->scale;
          mx = P[i][j] > mx ? P[i][j] : mx;
        }
        for (int64_t j = 0; j < T; j++) sum += (P[i][j] = exp(P[i][j] - mx));
        for (int64_t j = 0; j < T; j++) P[i][j] /= sum;
        double dvec = 0; /* sum_j P dP = dO . O */
        for (int64_t j = 0; j < T; j++) {
          dS[i][j] = dot_dd(dO + i * D, V + j * ld, (size_t)hd); /* dP */
          dvec += P[i][j] * dS[i][j];
        }
        for (int64_t j = 0; j < T; j++) dS[i][j] = P[i][j] * (dS[i][j] - dvec);
      }
      for (int64_t i = 0; i < T; i++)
        for (int64_t e = 0; e < hd; e++) {
          double gq = 0, gk = 0, gv = 0;
          for (int64_t j = 0; j < T; j++) {
            gq += dS[i][j] * K[j * ld + e];
            gk += dS[j][i] * Q[j * ld + e];
            gv += P[j][i] * dO[j * D + e];
          }
          dQ[i * ld + e] = a->scale * gq;
          dK[i * ld + e] = a->scale * gk;
          dV[i * ld + e] = gv;
        }
    }
}

static void check_attention_bwd(int64_t N, int64_t T, int64_t H, int64_t hd, float qkv_scale) {
  const int64_t D = H * hd;
  const double scale = 1.0 / sqrt((double)hd);
  size_t nq = (size_t)(N * T * 3 * D), no = (size_t)(N * T * D), nl = (size_t)(N * H * T);
  float *qkv = randv(nq, qkv_scale), *R = randv(no, 1);
  AttnEnv env = {to_double(qkv, nq), to_double(R, no), N, T, H, hd, scale};
  double *out_ref = dzeros(no), *lse_ref = dzeros(nl), *dqkv_ref = dzeros(nq);
  attention_ref(&env, out_ref, lse_ref);
  attention_grad_ref(&env, dqkv_ref);
  float *out = fzeros(no), *out_inf = fzeros(no), *lse = fzeros(nl);
  float *dqkv = fzeros(nq), *dqkv1 = fzeros(nq);
  CpuCtx c2 = ctx(2, 2 * T * T), c1 = ctx(1, 2 * T * T);
  /* the forward with lse gives cpu_attention's output, bit for bit */
  cpu_attention_lse(&c2, qkv, N, T, H, hd, scale, out, lse);
  cpu_attention(&c2, qkv, N, T, H, hd, scale, out_inf);
  assert_memory_equal(out, out_inf, no * sizeof(float));
  ASSERT_REL(out, out_ref, no, 1e-6);
  ASSERT_REL(lse, lse_ref, nl, 1e-6);
  cpu_attention_bwd(&c2, R, qkv, out, lse, N, T, H, hd, scale, 0, dqkv);
  cpu_attention_bwd(&c1, R, qkv, out, lse, N, T, H, hd, scale, 0, dqkv1);
  char what[64];
  snprintf(what, sizeof what, "attention_bwd dqkv T=%d H=%d hd=%d", (int)T, (int)H, (int)hd);
  check_grad(what, attention_objective, &env, env.qkv, nq, dqkv, dqkv_ref);
  assert_memory_equal(dqkv, dqkv1, nq * sizeof(float)); /* thread count does not matter */
  float *acc = randv(nq, 1);
  for (size_t i = 0; i < nq; i++) dqkv_ref[i] += acc[i];
  cpu_attention_bwd(&c2, R, qkv, out, lse, N, T, H, hd, scale, 1, acc);
  ASSERT_REL(acc, dqkv_ref, nq, TOL_KERNEL);
  free(qkv); free(R); free(env.qkv); free(env.R); free(out_ref); free(lse_ref); free(dqkv_ref);
  free(out); free(out_inf); free(lse); free(dqkv); free(dqkv1); free(acc);
  free(c1.scratch); free(c2.scratch);
}

static void test_attention_bwd(void **state) {
  (void)state;
  check_attention_bwd(2, 5, 2, 4, 1.0f);
  check_attention_bwd(2, 21, 3, 8, 1.5f); /* peakier softmax, more tasks than threads */
}

/* ---------------------------------------------------------------------------
 * Embedding scatter and unpatchify */
typedef struct EmbEnv {
  double *table, *R;
  const int64_t *ids;
  int64_t N, D;
} EmbEnv;
static double embedding_objective(void *e) {
  EmbEnv *m = e;
  double f = 0;
  for (int64_t n = 0; n < m->N; n++)
    for (int64_t d = 0; d < m->D; d++) f += m->R[n * m->D + d] * m->table[m->ids[n] * m->D + d];
  return f;
}

static void test_embedding_bwd(void **state) {
  (void)state;
  const int64_t V = 5, D = 8, N = 6;
  const int64_t ids[6] = {3, 1, 3, 0, 3, 4}; /* 3 repeated, 2 unused */
  float *table = randv((size_t)(V * D), 1), *R = randv((size_t)(N * D), 1);
  EmbEnv env = {to_double(table, (size_t)(V * D)), to_double(R, (size_t)(N * D)), ids, N, D};
  double *ref = dzeros((size_t)(V * D));
  for (int64_t n = 0; n < N; n++)
    for (int64_t d = 0; d < D; d++) ref[ids[n] * D + d] += R[n * D + d];
  float *dtable = randv((size_t)(V * D), 1); /* overwritten, not accumulated */
  CpuCtx c = ctx(2, 1);
  cpu_embedding_bwd(&c, R, N, D, ids, V, dtable);
  check_grad("embedding_bwd dtable", embedding_objective, &env, env.table, (size_t)(V * D), dtable, ref);
  for (int64_t d = 0; d < D; d++) {
    assert_true(dtable[2 * D + d] == 0.0f);
    float s = ((0.0f + R[0 * D + d]) + R[2 * D + d]) + R[4 * D + d]; /* in order of n */
    assert_true(dtable[3 * D + d] == s);
  }
  free(table); free(R); free(env.table); free(env.R); free(ref); free(dtable); free(c.scratch);
}

typedef struct UnpEnv {
  double *x, *R;
  int64_t N, g, p, C;
} UnpEnv;
/* out[n, c, gh*p + i, gw*p + j] = x[n, gh*g + gw, (i*p + j)*C + c] (official reshape + einsum) */
static double unpatchify_objective(void *e) {
  UnpEnv *u = e;
  int64_t g = u->g, p = u->p, C = u->C, S = g * p;
  double f = 0;
  for (int64_t n = 0; n < u->N; n++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t y = 0; y < S; y++)
        for (int64_t x = 0; x < S; x++) {
          int64_t tok = (y / p) * g + x / p, k = ((y % p) * p + x % p) * C + c;
          f += u->R[((n * C + c) * S + y) * S + x] * u->x[(n * g * g + tok) * p * p * C + k];
        }
  return f;
}

static void test_unpatchify_bwd(void **state) {
  (void)state;
  const int64_t N = 2, g = 2, p = 2, C = 3, S = g * p;
  size_t n = (size_t)(N * g * g * p * p * C);
  assert_true(n == (size_t)(N * C * S * S));
  float *x = randv(n, 1), *R = randv(n, 1), *dx = fzeros(n), *y = fzeros(n), *back = fzeros(n);
  UnpEnv env = {to_double(x, n), to_double(R, n), N, g, p, C};
  double *ref = dzeros(n);
  for (size_t i = 0; i < n; i++) { /* the gradient of a permutation, by probing each coordinate */
    double keep = env.x[i];
    env.x[i] = keep + 1;
    double f1 = unpatchify_objective(&env);
    env.x[i] = keep;
    ref[i] = f1 - unpatchify_objective(&env);
  }
  CpuCtx c = ctx(2, 1);
  cpu_unpatchify_bwd(&c, R, N, g, p, C, dx);
  check_grad("unpatchify_bwd dx", unpatchify_objective, &env, env.x, n, dx, ref);
  cpu_unpatchify(&c, x, N, g, p, C, y); /* bwd is the inverse permutation */
  cpu_unpatchify_bwd(&c, y, N, g, p, C, back);
  assert_memory_equal(back, x, n * sizeof(float));
  free(x); free(R); free(dx); free(y); free(back); free(env.x); free(env.R); free(ref); free(c.scratch);
}

/* ---------------------------------------------------------------------------
 * The diffusion loss. The 1000-step linear schedule of dit-reference.md 3.2,
 * computed in double and rounded to float per element. */
enum { STEPS = 1000 };
static float tb_sqrt_abar[STEPS], tb_sqrt_1m_abar[STEPS], tb_sqrt_recip_abar[STEPS],
    tb_sqrt_recipm1_abar[STEPS], tb_coef1[STEPS], tb_coef2[STEPS], tb_post_logvar[STEPS],
    tb_log_beta[STEPS];

static DitLossTable loss_table(void) {
  static double beta[STEPS], abar[STEPS], post_var[STEPS];
  double step = (0.02 - 1e-4) / (STEPS - 1), prod = 1.0;
  for (int i = 0; i < STEPS; i++) {
    beta[i] = i == STEPS - 1 ? 0.02 : i * step + 1e-4; /* numpy linspace */
    prod *= 1.0 - beta[i];
    abar[i] = prod;
  }
  for (int i = 0; i < STEPS; i++) {
    double prev = i == 0 ? 1.0 : abar[i - 1];
    post_var[i] = beta[i] * (1 - prev) / (1 - abar[i]);
    tb_sqrt_abar[i] = (float)sqrt(abar[i]);
    tb_sqrt_1m_abar[i] = (float)sqrt(1 - abar[i]);
    tb_sqrt_recip_abar[i] = (float)sqrt(1 / abar[i]);
    tb_sqrt_recipm1_abar[i] = (float)sqrt(1 / abar[i] - 1);
    tb_coef1[i] = (float)(beta[i] * sqrt(prev) / (1 - abar[i]));
    tb_coef2[i] = (float)((1 - prev) * sqrt(1 - beta[i]) / (1 - abar[i]));
    tb_log_beta[i] = (float)log(beta[i]);
  }
  for (int i = 0; i < STEPS; i++) tb_post_logvar[i] = (float)log(i == 0 ? post_var[1] : post_var[i]);
  DitLossTable t = {STEPS,           tb_sqrt_abar, tb_sqrt_1m_abar, tb_sqrt_recip_abar,
                    tb_sqrt_recipm1_abar, tb_coef1,  tb_coef2,        tb_post_logvar,
                    tb_log_beta};
  return t;
}

typedef struct LossEnv {
  const DitLossTable *tab;
  const float *x0, *xt, *noise;
  double *out;          /* [n, Cout, hw] model output */
  const double *frozen; /* [n, Cout, hw] its unperturbed copy: the VB term's eps (stop_gradient) */
  const int64_t *t;
  int64_t n, C, hw;
  int learn_sigma;
  double scale;
} LossEnv;

static double cdf_ref(double z) { return 0.5 * (1 + tanh(sqrt(2 / k_pi) * (z + 0.044715 * z * z * z))); }
static double cdf_grad_ref(double z) {
  double th = tanh(sqrt(2 / k_pi) * (z + 0.044715 * z * z * z));
  return 0.5 * (1 - th * th) * sqrt(2 / k_pi) * (1 + 3 * 0.044715 * z * z);
}

/* One element's VB term in nats (and d/dv), in double from the float table entries. */
static double vb_ref(const DitLossTable *tab, int64_t t, double x0, double xt, double eps, double v,
                     double *dv) {
  double min_log = tab->post_logvar[t], max_log = tab->log_beta[t];
  double frac = (v + 1) / 2, logvar = frac * max_log + (1 - frac) * min_log;
  double dl = (max_log - min_log) / 2; /* d logvar / d v */
  double x0_hat = (double)tab->sqrt_recip_abar[t] * xt - (double)tab->sqrt_recipm1_abar[t] * eps;
  double mean = (double)tab->post_coef1[t] * x0_hat + (double)tab->post_coef2[t] * xt;
  if (t == 0) { /* discretized Gaussian NLL, log_scale = logvar / 2 */
    double inv_s = exp(-0.5 * logvar), c = x0 - mean;
    double pin = inv_s * (c + 1.0 / 255), min = inv_s * (c - 1.0 / 255);
    double dpin = -0.5 * pin, dmin = -0.5 * min; /* d/d logvar */
    double arg, darg;
    if (x0 < -0.999) {
      arg = cdf_ref(pin);
      darg = cdf_grad_ref(pin) * dpin;
    } else if (x0 > 0.999) {
      arg = 1 - cdf_ref(min);
      darg = -cdf_grad_ref(min) * dmin;
    } else {
      arg = cdf_ref(pin) - cdf_ref(min);
      darg = cdf_grad_ref(pin) * dpin - cdf_grad_ref(min) * dmin;
    }
    if (dv) *dv = arg >= 1e-12 ? -darg / arg * dl : 0.0;
    return -log(arg >= 1e-12 ? arg : 1e-12);
  }
  double true_mean = (double)tab->post_coef1[t] * x0 + (double)tab->post_coef2[t] * xt;
  double dm = true_mean - mean, tl = min_log;
  if (dv) *dv = 0.5 * (1 - exp(tl - logvar) - dm * dm * exp(-logvar)) * dl;
  return 0.5 * (-1 + logvar - tl + exp(tl - logvar) + dm * dm * exp(-logvar));
}

/* loss [n] in double; with grad != NULL also d(scale * sum loss)/d out */
static void loss_ref(const LossEnv *L, double *loss, double *grad) {
  int64_t C = L->C, hw = L->hw, chw = C * hw, Cout = L->learn_sigma ? 2 * C : C;
  for (int64_t i = 0; i < L->n; i++) {
    const double *eps = L->out + i * Cout * hw, *v = eps + chw;
    const double *eps_sg = L->frozen + i * Cout * hw; /* the finite differences do not move it */
    double mse = 0, vb = 0;
    for (int64_t j = 0; j < chw; j++) {
      size_t a = (size_t)(i * chw + j);
      double d = L->noise[a] - eps[j], dv = 0;
      mse += d * d;
      if (grad) grad[i * Cout * hw + j] = L->scale * 2 * (eps[j] - L->noise[a]) / (double)chw;
      if (!L->learn_sigma) continue;
      vb += vb_ref(L->tab, L->t[i], L->x0[a], L->xt[a], eps_sg[j], v[j], grad ? &dv : NULL);
      if (grad) grad[i * Cout * hw + chw + j] = L->scale * dv / (double)chw / log(2.0);
    }
    loss[i] = mse / (double)chw + (L->learn_sigma ? vb / (double)chw / log(2.0) : 0.0);
  }
}

static double loss_objective(void *e) {
  LossEnv *L = e;
  double loss[16], f = 0;
  loss_ref(L, loss, NULL);
  for (int64_t i = 0; i < L->n; i++) f += loss[i];
  return L->scale * f;
}

static void check_loss(int learn_sigma) {
  const int64_t n = 7, C = 4, hw = 4, chw = C * hw, Cout = learn_sigma ? 2 * C : C;
  const int64_t t[7] = {0, 0, 1, 10, 500, 999, 0};
  const float scale = 1.0f / 7; /* train.py averages over the batch */
  DitLossTable tab = loss_table();
  size_t nx = (size_t)(n * chw), no = (size_t)(n * Cout * hw);
  float *x0 = randv(nx, 1.5f), *noise = randv(nx, 1.5f), *out = randv(no, 1.0f);
  /* both edge bins of the decoder NLL at t = 0 */
  x0[0] = -1.2f;
  x0[1] = 1.3f;
  x0[2] = 0.5f;
  x0[3] = -0.2f;
  /* a model eps far off at t = 0: the NLL's cdf difference is 0, the 1e-12
   * clamp holds, and the variance output gets no gradient there */
  out[3] = noise[3] + 40.0f;
  float *xt = fzeros(nx), *xt1 = fzeros(nx);
  CpuCtx c2 = ctx(2, 1), c1 = ctx(1, 1);
  cpu_q_sample(&c2, x0, noise, t, n, chw, &tab, xt);
  double *xt_ref = dzeros(nx);
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < chw; j++) {
      size_t a = (size_t)(i * chw + j);
      xt_ref[a] = (double)tab.sqrt_abar[t[i]] * x0[a] + (double)tab.sqrt_1m_abar[t[i]] * noise[a];
      xt1[a] = tab.sqrt_abar[t[i]] * x0[a] + tab.sqrt_1m_abar[t[i]] * noise[a]; /* PyTorch's float ops */
    }
  ASSERT_REL(xt, xt_ref, nx, 1e-6);
  assert_memory_equal(xt, xt1, nx * sizeof(float));

  double *frozen = to_double(out, no);
  LossEnv env = {&tab, x0, xt, noise, to_double(out, no), frozen, t, n, C, hw, learn_sigma, scale};
  double loss_d[7], *grad_ref = dzeros(no);
  loss_ref(&env, loss_d, grad_ref);
  float loss[7], loss1[7];
  cpu_diffusion_loss(&c2, x0, xt, noise, out, t, n, C, hw, learn_sigma, &tab, loss);
  cpu_diffusion_loss(&c1, x0, xt, noise, out, t, n, C, hw, learn_sigma, &tab, loss1);
  assert_memory_equal(loss, loss1, sizeof loss);
  double worst = 0;
  for (int64_t i = 0; i < n; i++) {
    double e = fabs(loss[i] - loss_d[i]) / fabs(loss_d[i]);
    worst = e > worst ? e : worst;
  }
  print_message("  loss values (learn_sigma %d): worst per-sample relative error %.2e\n", learn_sigma, worst);
  /* float per-element terms: the KL at t > 0 subtracts nearly equal terms
   * (-1 + dlogvar + exp(-dlogvar), logvar ~ -9 rounded at 5e-7), a few 1e-6 */
  if (!(worst <= 2e-5)) fail_msg("loss values: relative error %.3g", worst);

  float *dout = fzeros(no), *dout1 = fzeros(no);
  cpu_diffusion_loss_bwd(&c2, x0, xt, noise, out, t, n, C, hw, learn_sigma, &tab, scale, dout);
  cpu_diffusion_loss_bwd(&c1, x0, xt, noise, out, t, n, C, hw, learn_sigma, &tab, scale, dout1);
  assert_memory_equal(dout, dout1, no * sizeof(float));
  check_grad(learn_sigma ? "diffusion_loss_bwd (learned sigma)" : "diffusion_loss_bwd (fixed var)",
             loss_objective, &env, env.out, no, dout, grad_ref);
  if (learn_sigma) {
    assert_true(dout[chw + 3] == 0.0f); /* the clamped NLL element */
    /* The v channels alone (the norm above is mostly the eps channels' MSE
     * gradient). Near t = 0, true_mean - mean and x0 - mean are ~1% of the
     * float32 terms they are computed from (sqrt(1/abar - 1) ~ 0.01), so they
     * carry ~100 x 6e-8 of relative error, doubled in their square: the float
     * loss itself (as PyTorch computes it) is that ill-conditioned. Measured
     * ~5e-6 on every row alike; the bound 2e-5 leaves 4x. These gradients are
     * ~1e-3 against f ~ 1, so the step is 1e-4 (rounding 1e-16 |f| / h). */
    unsigned char *is_v = calloc(no, 1);
    for (int64_t i = 0; i < n; i++) memset(is_v + i * Cout * hw + chw, 1, (size_t)chw);
    check_grad_on("diffusion_loss_bwd (v channels only)", loss_objective, &env, env.out, no, dout,
                  grad_ref, is_v, 2e-5, 1e-4);
    free(is_v);
  }
  free(x0); free(noise); free(out); free(xt); free(xt1); free(xt_ref); free(env.out); free(frozen); free(grad_ref);
  free(dout); free(dout1); free(c1.scratch); free(c2.scratch);
}

static void test_diffusion_loss(void **state) {
  (void)state;
  check_loss(1);
  check_loss(0);
}

static void test_loss_table(void **state) { /* the test's schedule against dit-reference.md 3.2 */
  (void)state;
  DitLossTable tab = loss_table();
  assert_float_equal(tab.sqrt_abar[999] * tab.sqrt_abar[999], 4.0358297654e-05, 1e-9);
  assert_float_equal(tab.log_beta[0], -9.210340371976, 1e-6);
  assert_float_equal(tab.post_coef1[0], 1.0, 1e-7);
  assert_float_equal(tab.post_coef2[0], 0.0, 0.0);
  assert_true(tab.post_logvar[0] == tab.post_logvar[1]);
}

/* ---------------------------------------------------------------------------
 * AdamW and EMA: against PyTorch's float32 operation order, written out. */
static void test_adamw_ema(void **state) {
  (void)state;
  const int64_t n = 1000;
  AdamWParams p = {1e-3, 0.9, 0.999, 1e-8, 0.01, 1};
  float *w = randv((size_t)n, 1), *m = fzeros((size_t)n), *v = fzeros((size_t)n);
  float *rw = fcopy(w, (size_t)n), *rm = fzeros((size_t)n), *rv = fzeros((size_t)n);
  float *ema = randv((size_t)n, 1), *rema = fcopy(ema, (size_t)n);
  double *dw = to_double(w, (size_t)n), *dm = dzeros((size_t)n), *dv = dzeros((size_t)n);
  CpuCtx c = ctx(2, 1);
  for (int64_t step = 1; step <= 3; step++) {
    float *g = randv((size_t)n, 0.1f);
    p.step = step;
    cpu_adamw(&c, w, g, m, v, n, &p);
    /* torch 1.13 _single_tensor_adamw: scalars computed in double, cast to float by each op */
    double bc1 = 1 - pow(p.beta1, (double)step), bc2 = 1 - pow(p.beta2, (double)step);
    float step_size = (float)(-(p.lr / bc1)), bc2_sqrt = (float)sqrt(bc2);
    for (int64_t i = 0; i < n; i++) {
      rw[i] = rw[i] * (float)(1 - p.lr * p.weight_decay);                       /* param.mul_ */
      rm[i] = rm[i] * (float)p.beta1;                                            /* exp_avg.mul_ */
      rm[i] = rm[i] + (float)(1 - p.beta1) * g[i];                               /* .add_(g, alpha) */
      rv[i] = rv[i] * (float)p.beta2;                                            /* exp_avg_sq.mul_ */
      rv[i] = rv[i] + (float)(1 - p.beta2) * g[i] * g[i];                        /* .addcmul_ */
      float denom = sqrtf(rv[i]) / bc2_sqrt;                                     /* sqrt() / bc2_sqrt */
      denom = denom + (float)p.eps;                                              /* .add_(eps) */
      rw[i] = rw[i] + step_size * rm[i] / denom;                                 /* addcdiv_ */
      /* the same in double, for the size of the float rounding */
      dw[i] *= 1 - p.lr * p.weight_decay;
      dm[i] = p.beta1 * dm[i] + (1 - p.beta1) * g[i];
      dv[i] = p.beta2 * dv[i] + (1 - p.beta2) * (double)g[i] * g[i];
      dw[i] -= p.lr / bc1 * dm[i] / (sqrt(dv[i]) / sqrt(bc2) + p.eps);
    }
    assert_memory_equal(w, rw, (size_t)n * sizeof(float));
    assert_memory_equal(m, rm, (size_t)n * sizeof(float));
    assert_memory_equal(v, rv, (size_t)n * sizeof(float));
    ASSERT_REL(w, dw, (size_t)n, 1e-6);
    ASSERT_REL(m, dm, (size_t)n, 1e-6);
    ASSERT_REL(v, dv, (size_t)n, 1e-6);
    /* ema.mul_(decay).add_(w, alpha=1 - decay) */
    const double decay = 0.9999;
    cpu_ema(&c, ema, w, n, decay);
    for (int64_t i = 0; i < n; i++) {
      rema[i] = rema[i] * (float)decay;
      rema[i] = rema[i] + (float)(1 - decay) * w[i];
    }
    assert_memory_equal(ema, rema, (size_t)n * sizeof(float));
    free(g);
  }
  free(w); free(m); free(v); free(rw); free(rm); free(rv); free(ema); free(rema);
  free(dw); free(dm); free(dv); free(c.scratch);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_act_bwd),
      cmocka_unit_test(test_linear_bwd),
      cmocka_unit_test(test_sum_rows),
      cmocka_unit_test(test_ln_modulate_bwd),
      cmocka_unit_test(test_residual_gate_bwd),
      cmocka_unit_test(test_attention_bwd),
      cmocka_unit_test(test_embedding_bwd),
      cmocka_unit_test(test_unpatchify_bwd),
      cmocka_unit_test(test_loss_table),
      cmocka_unit_test(test_diffusion_loss),
      cmocka_unit_test(test_adamw_ema),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
