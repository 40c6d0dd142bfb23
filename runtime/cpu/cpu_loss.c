/* cpu_loss.c: the training objective of dit-reference.md 3.7: q_sample
 * (the noised input x_t), the per-sample loss (MSE on eps plus, with a
 * learned variance, the VB term in bits) and its exact gradient with respect
 * to the model output. Per-element arithmetic is float32 in the order of the
 * official PyTorch code (libm exp/log/tanh), the means over (C,H,W) are
 * accumulated in double. One task per sample (loss) or per (sample, channel)
 * (gradient), so results do not depend on the thread count. It does not own
 * the timestep schedule (the caller's DitLossTable) nor the optimizer. */
#include <math.h>
#include <stddef.h>

#include "cpu_grad.h"

static const float k_ln2 = 0.69314718055994531f;
static const float k_cdf_beta = 0.7978845608028654f; /* sqrt(2/pi) */
static const float k_cdf_kappa = 0.044715f;
static const float k_bin = 1.0f / 255.0f;
static const float k_clamp = 1e-12f;

/* The tanh approximation of the standard normal cdf (approx_standard_normal_cdf). */
static float approx_cdf(float z) {
  return 0.5f * (1.0f + tanhf(k_cdf_beta * (z + k_cdf_kappa * (z * z * z))));
}

/* Its derivative: 0.5 (1 - tanh^2(u)) du/dz, u = beta (z + kappa z^3). */
static float approx_cdf_grad(float z) {
  float th = tanhf(k_cdf_beta * (z + k_cdf_kappa * (z * z * z)));
  return 0.5f * (1.0f - th * th) * k_cdf_beta * (1.0f + 3.0f * k_cdf_kappa * (z * z));
}

/* -log p(x0) of the discretized Gaussian (mean, log_scale = logvar / 2) in
 * nats; with dlogvar != NULL also d(-log p)/d logvar (0 where the 1e-12 clamp
 * holds, as the clamp's own gradient is). */
static float discretized_nll(float x0, float mean, float logvar, float *dlogvar) {
  float centered = x0 - mean;
  float inv_s = expf(-(0.5f * logvar));
  float plus_in = inv_s * (centered + k_bin), min_in = inv_s * (centered - k_bin);
  /* d(plus_in)/d(logvar) = -plus_in / 2, since d(inv_s)/d(logvar) = -inv_s / 2 */
  float cdf_plus = approx_cdf(plus_in), cdf_min = approx_cdf(min_in);
  float arg, darg; /* the clamped argument of the log and its logvar-derivative */
  if (x0 < -0.999f) {
    arg = cdf_plus;
    darg = approx_cdf_grad(plus_in) * (-0.5f * plus_in);
  } else if (x0 > 0.999f) {
    arg = 1.0f - cdf_min;
    darg = -(approx_cdf_grad(min_in) * (-0.5f * min_in));
  } else {
    arg = cdf_plus - cdf_min;
    darg = approx_cdf_grad(plus_in) * (-0.5f * plus_in) - approx_cdf_grad(min_in) * (-0.5f * min_in);
  }
  if (dlogvar) *dlogvar = arg >= k_clamp ? -darg / arg : 0.0f;
  return -logf(arg >= k_clamp ? arg : k_clamp);
}

void cpu_q_sample(const CpuCtx *c, const float *x0, const float *noise, const int64_t *t, int64_t n,
                  int64_t chw, const DitLossTable *tab, float *xt) {
#pragma omp parallel for num_threads(c->n_threads) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    float a = tab->sqrt_abar[t[i]], b = tab->sqrt_1m_abar[t[i]];
    const float *x = x0 + i * chw, *z = noise + i * chw; // [chw]
    float *o = xt + i * chw;
    for (int64_t k = 0; k < chw; k++) o[k] = a * x[k] + b * z[k];
  }
}

/* The scalars of sample i's VB term, gathered at t and cast to float. */
typedef struct VbCoefs {
  float sra, srm1, c1, c2, min_log, max_log;
} VbCoefs;

static VbCoefs vb_coefs(const DitLossTable *tab, int64_t t) {
  VbCoefs k = {tab->sqrt_recip_abar[t], tab->sqrt_recipm1_abar[t], tab->post_coef1[t],
               tab->post_coef2[t],      tab->post_logvar[t],      tab->log_beta[t]};
  return k;
}

/* The VB term of one element in nats (KL at t > 0, decoder NLL at t = 0)
 * and, with dv != NULL, its derivative with respect to the variance output v
 * (eps stopped: the model mean does not depend on v). Near t = 0 the mean
 * differences (true_mean - mean, x0 - mean) cancel to ~1% of their terms, so
 * float32 values (here, as in PyTorch) carry a relative error of a few 1e-6. */
static float vb_elem(const VbCoefs *k, int t0, float x0, float xt, float eps, float v, float *dv) {
  float frac = (v + 1.0f) / 2.0f;
  float logvar = frac * k->max_log + (1.0f - frac) * k->min_log;
  float dlogvar_dv = (k->max_log - k->min_log) / 2.0f;
  float x0_hat = k->sra * xt - k->srm1 * eps;
  float mean = k->c1 * x0_hat + k->c2 * xt;
  if (t0) {
    float g;
    float nll = discretized_nll(x0, mean, logvar, dv ? &g : NULL);
    if (dv) *dv = g * dlogvar_dv;
    return nll;
  }
  float true_mean = k->c1 * x0 + k->c2 * xt, true_logvar = k->min_log;
  float dm = true_mean - mean;
  float e_ratio = expf(true_logvar - logvar), e_neg = expf(-logvar);
  if (dv) *dv = 0.5f * (1.0f - e_ratio - dm * dm * e_neg) * dlogvar_dv;
  return 0.5f * (-1.0f + logvar - true_logvar + e_ratio + dm * dm * e_neg);
}

void cpu_diffusion_loss(const CpuCtx *c, const float *x0, const float *xt, const float *noise,
                        const float *model_out, const int64_t *t, int64_t n, int64_t C, int64_t hw,
                        int learn_sigma, const DitLossTable *tab, float *loss) {
  const int64_t Cout = learn_sigma ? 2 * C : C, chw = C * hw;
#pragma omp parallel for num_threads(c->n_threads) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    const float *x0i = x0 + i * chw, *xti = xt + i * chw, *zi = noise + i * chw; // [C, hw]
    const float *eps = model_out + i * Cout * hw;                                // [C, hw]
    const float *v = eps + chw;                                                  // [C, hw] if learn_sigma
    VbCoefs k = vb_coefs(tab, t[i]);
    double mse = 0.0, vb = 0.0;
    for (int64_t j = 0; j < chw; j++) {
      float d = zi[j] - eps[j];
      mse += d * d;
      if (learn_sigma) vb += vb_elem(&k, t[i] == 0, x0i[j], xti[j], eps[j], v[j], NULL);
    }
    float l = (float)(mse / (double)chw);
    if (learn_sigma) l += (float)(vb / (double)chw) / k_ln2;
    loss[i] = l;
  }
}

void cpu_diffusion_loss_bwd(const CpuCtx *c, const float *x0, const float *xt, const float *noise,
                            const float *model_out, const int64_t *t, int64_t n, int64_t C,
                            int64_t hw, int learn_sigma, const DitLossTable *tab, float scale,
                            float *dout) {
  const int64_t Cout = learn_sigma ? 2 * C : C, chw = C * hw;
  /* d mean/d elem = 1/chw; the VB term is in bits (divided by ln 2) */
  const float g_mse = (float)(2.0 * scale / (double)chw);
  const float g_vb = (float)((double)scale / (double)chw / (double)k_ln2);
#pragma omp parallel for num_threads(c->n_threads) schedule(static)
  for (int64_t ic = 0; ic < n * C; ic++) {
    int64_t i = ic / C, ch = ic % C;
    const float *x0r = x0 + ic * hw, *xtr = xt + ic * hw, *zr = noise + ic * hw; // [hw]
    const float *eps = model_out + (i * Cout + ch) * hw;                         // [hw]
    float *deps = dout + (i * Cout + ch) * hw;
    for (int64_t k = 0; k < hw; k++) deps[k] = g_mse * (eps[k] - zr[k]);
    if (!learn_sigma) continue;
    const float *v = eps + chw;
    float *dv = deps + chw;
    VbCoefs kc = vb_coefs(tab, t[i]);
    for (int64_t k = 0; k < hw; k++) {
      float g;
      vb_elem(&kc, t[i] == 0, x0r[k], xtr[k], eps[k], v[k], &g);
      dv[k] = g_vb * g;
    }
  }
}
