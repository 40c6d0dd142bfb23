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
 * Also: accumulate = 1 adds onto the output's contents, and results are
 * bit-identical at 1 and 2 threads. The loss and the optimizer are in
 * test_loss_cpu.c; the shared helpers in support/grad_check.h. */
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
#include "grad_check.h"

/* ---------------------------------------------------------------------------
 * Activations */
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
  cpu_attention(&c2, qkv, N, T, H, hd, scale, out, lse);
  cpu_attention(&c2, qkv, N, T, H, hd, scale, out_inf, NULL);
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
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
