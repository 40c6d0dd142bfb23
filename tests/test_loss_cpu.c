/* test_loss_cpu.c: the loss and optimizer kernels of runtime/cpu/cpu_grad.h:
 * q_sample, the official loss (dit-reference.md 3.7) and its gradient on the
 * real 1000-step linear schedule against a double reference and finite
 * differences (with eps stopped in the VB term, as the official code does),
 * including t = 0 (the discretized-Gaussian NLL) and fixed variance; AdamW and
 * the EMA against a float reference written in PyTorch's operation order.
 * Helpers and tolerances: support/grad_check.h, test_grad_cpu.c. */
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
      cmocka_unit_test(test_loss_table),
      cmocka_unit_test(test_diffusion_loss),
      cmocka_unit_test(test_adamw_ema),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
