/* schedule_dpm.c: the DPM-Solver++ schedule and step coefficients (see
 * schedule_dpm.h). With alpha(s) = 1 / sqrt(s^2 + 1), sigma(s) = s alpha(s)
 * and lambda = log alpha - log sigma, h = lambda_t - lambda_s0, the updates
 * of diffusers' first-, second- (midpoint) and third-order multistep solver
 * are linear in the current and the last two data predictions m0, m1, m2;
 * their coefficients are expanded here once per step, in float64. */
#include "schedule_dpm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { TRAIN_STEPS = 1000 };

void dpm_schedule_free(DpmSchedule *s) {
  if (!s) return;
  free(s->timesteps);
  free(s->sigmas);
  memset(s, 0, sizeof *s);
}

/* diffusers' _sigma_to_t: log sigma interpolated between the training
 * steps' log sigmas (increasing with t). */
static double sigma_to_t(double sigma, const double *log_sigmas) {
  double ls = log(sigma > 1e-10 ? sigma : 1e-10);
  int low = 0;
  for (int j = 0; j < TRAIN_STEPS; j++)
    if (ls - log_sigmas[j] >= 0) low = j; /* the last step at or below sigma (0 when none is) */
  if (low > TRAIN_STEPS - 2) low = TRAIN_STEPS - 2;
  double lo = log_sigmas[low], hi = log_sigmas[low + 1];
  double w = (lo - ls) / (lo - hi);
  w = w < 0 ? 0 : (w > 1 ? 1 : w);
  return (1 - w) * low + w * (low + 1);
}

DitStatus dpm_schedule_build(int steps, int order, int karras, DpmSchedule *out, DitErr *err) {
  memset(out, 0, sizeof *out);
  if (steps < 1 || steps > TRAIN_STEPS)
    return dit_err(err, DIT_ERR_ARG, "dpm++ takes 1 to %d steps, got %d", TRAIN_STEPS, steps);
  if (order < 1 || order > 3) return dit_err(err, DIT_ERR_ARG, "dpm++ --order is 1, 2 or 3, got %d", order);
  double *sig_all = malloc(sizeof(double) * TRAIN_STEPS), *log_sig = malloc(sizeof(double) * TRAIN_STEPS);
  out->timesteps = malloc(sizeof(int64_t) * (size_t)steps);
  out->sigmas = malloc(sizeof(double) * (size_t)(steps + 1));
  if (!sig_all || !log_sig || !out->timesteps || !out->sigmas) {
    free(sig_all), free(log_sig);
    dpm_schedule_free(out);
    return dit_err(err, DIT_ERR_NOMEM, "out of memory");
  }
  out->n = steps;
  out->order = order;
  double abar = 1.0;
  for (int j = 0; j < TRAIN_STEPS; j++) { /* linear betas, as the official schedule */
    double beta = 1e-4 + (0.02 - 1e-4) * j / (TRAIN_STEPS - 1);
    abar *= 1.0 - beta;
    sig_all[j] = sqrt((1.0 - abar) / abar);
    log_sig[j] = log(sig_all[j]);
  }
  for (int i = 0; i < steps; i++) {
    /* linspace(0, 999, steps + 1).round()[::-1][:-1]: numpy rounds half to even, as nearbyint does */
    int k = steps - i;
    double v = k == steps ? (double)(TRAIN_STEPS - 1) : k * ((double)(TRAIN_STEPS - 1) / steps);
    out->timesteps[i] = (int64_t)nearbyint(v);
    double s;
    if (karras) { /* Karras et al.'s rho = 7 ramp between the training sigmas' extremes */
      double smin = sig_all[0], smax = sig_all[TRAIN_STEPS - 1], rho = 7.0;
      double ramp = steps == 1 ? 0.0 : (i == steps - 1 ? 1.0 : i * (1.0 / (steps - 1)));
      double lo = pow(smin, 1 / rho), hi = pow(smax, 1 / rho);
      s = pow(hi + ramp * (lo - hi), rho);
      out->timesteps[i] = (int64_t)nearbyint(sigma_to_t(s, log_sig));
    } else { /* interp(timesteps, arange(1000), sigmas): at integer timesteps, the table itself */
      s = sig_all[out->timesteps[i]];
    }
    out->sigmas[i] = (double)(float)s;
  }
  out->sigmas[steps] = 0.0; /* final_sigmas_type zero */
  free(sig_all);
  free(log_sig);
  return DIT_OK;
}

int dpm_step_order(const DpmSchedule *s, int i) {
  int lower_final = i == s->n - 1; /* the final sigma is zero: always first order */
  int lower_second = i == s->n - 2 && s->n < 15;
  if (s->order == 1 || i < 1 || lower_final) return 1;
  if (s->order == 2 || i < 2 || lower_second) return 2;
  return 3;
}

static double alpha_of(double s) { return 1.0 / sqrt(s * s + 1.0); }
static double lambda_of(double s) { return log(alpha_of(s)) - log(s * alpha_of(s)); }

void dpm_step_params(const DpmSchedule *s, int i, DitStepParams *p) {
  memset(p, 0, sizeof *p);
  p->sampler = DIT_SAMPLER_DPM;
  double s0 = s->sigmas[i], st = s->sigmas[i + 1];
  /* x0 = (x - sigma(s0) eps) / alpha(s0) = sqrt(s0^2 + 1) x - s0 eps */
  p->sqrt_recip_ac = (float)(1.0 / alpha_of(s0));
  p->sqrt_recipm1_ac = (float)s0;
  int order = dpm_step_order(s, i);
  p->dpm_order = order;
  p->dpm_write = i % 3;
  p->dpm_m1 = (i + 2) % 3;
  p->dpm_m2 = (i + 1) % 3;
  if (st == 0.0) { /* sigma_t = 0: alpha_t = 1 and the step returns the data prediction */
    p->dpm_order = 1;
    p->dpm_a = 0.0f;
    p->dpm_b[0] = 1.0f;
    return;
  }
  double at = alpha_of(st), h = lambda_of(st) - lambda_of(s0);
  double a = (st * at) / (s0 * alpha_of(s0));
  double c = -at * expm1(-h); /* -(alpha_t (e^-h - 1)) */
  double b0 = c, b1 = 0, b2 = 0;
  if (order == 2) { /* midpoint: D1 = (m0 - m1) / r0, x += -0.5 alpha_t (e^-h - 1) D1 */
    double r0 = (lambda_of(s0) - lambda_of(s->sigmas[i - 1])) / h;
    b0 = c + 0.5 * c / r0;
    b1 = -0.5 * c / r0;
  } else if (order == 3) {
    double r0 = (lambda_of(s0) - lambda_of(s->sigmas[i - 1])) / h;
    double r1 = (lambda_of(s->sigmas[i - 1]) - lambda_of(s->sigmas[i - 2])) / h;
    double c1 = at * (expm1(-h) / h + 1.0), c2 = -at * ((expm1(-h) + h) / (h * h) - 0.5);
    double q = r0 / (r0 + r1), u = 1.0 / (r0 + r1);
    /* D1 = (1 + q)(m0 - m1)/r0 - q (m1 - m2)/r1, D2 = u ((m0 - m1)/r0 - (m1 - m2)/r1) */
    b0 = c + c1 * (1 + q) / r0 + c2 * u / r0;
    b1 = c1 * (-(1 + q) / r0 - q / r1) + c2 * u * (-1 / r0 - 1 / r1);
    b2 = c1 * q / r1 + c2 * u / r1;
  }
  p->dpm_a = (float)a;
  p->dpm_b[0] = (float)b0;
  p->dpm_b[1] = (float)b1;
  p->dpm_b[2] = (float)b2;
}
