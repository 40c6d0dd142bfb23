/* grad_check.h: what the CPU training-kernel tests share (test_grad_cpu.c,
 * test_loss_cpu.c): a seeded random source, float/double buffers, relative
 * errors ||a - b|| / ||b||, and the finite-difference gradient check with
 * its tolerances (explained at the top of test_grad_cpu.c). Include after
 * <cmocka.h>. */
#ifndef DIT_TESTS_GRAD_CHECK_H
#define DIT_TESTS_GRAD_CHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_ops.h"

#define TOL_REF_FD 1e-7
#define TOL_KERNEL 1e-5
#define TOL_FD 1e-4
#define FD_H 1e-5
#define MAX_FD_COORDS 256

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static inline uint32_t rand_u32(void) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (uint32_t)(rng_state >> 32);
}
static inline float frand(void) { /* uniform in [-1, 1) */
  return (float)(rand_u32() >> 8) / 8388608.0f - 1.0f;
}
static inline float *randv(size_t n, float scale) {
  float *v = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) v[i] = frand() * scale;
  return v;
}
static inline double *to_double(const float *v, size_t n) {
  double *d = malloc(n * sizeof(double));
  for (size_t i = 0; i < n; i++) d[i] = v[i];
  return d;
}
static inline float *fcopy(const float *v, size_t n) {
  float *d = malloc(n * sizeof(float));
  memcpy(d, v, n * sizeof(float));
  return d;
}
static inline float *fzeros(size_t n) { return calloc(n, sizeof(float)); }
static inline double *dzeros(size_t n) { return calloc(n, sizeof(double)); }

static inline double rel_dd(const double *a, const double *b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return den > 0 ? sqrt(num / den) : sqrt(num);
}
static inline double rel_fd(const float *a, const double *b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return den > 0 ? sqrt(num / den) : sqrt(num);
}

static inline CpuCtx ctx(int threads, int64_t scratch) {
  CpuCtx c = {.n_threads = threads, .scratch = calloc((size_t)threads * (size_t)scratch, sizeof(float)), .scratch_per_thread = scratch};
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
static inline void check_grad_on(const char *what, Objective f, void *env, double *x, size_t n,
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

static inline void check_grad(const char *what, Objective f, void *env, double *x, size_t n,
                       const float *g_kernel, const double *g_ref) {
  check_grad_on(what, f, env, x, n, g_kernel, g_ref, NULL, TOL_KERNEL, FD_H);
}

static inline double dot_dd(const double *a, const double *b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

static const double k_pi = 3.14159265358979323846;

#endif
