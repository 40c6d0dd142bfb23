/* cpu_sampler.c: the sampler step ops: classifier-free guidance mixing and
 * the fused DDPM / DDIM / DPM-Solver++ update (posterior mean, variance and
 * noise, or the multistep combination, in one pass). Float32 arithmetic in the order of the official code, so that a
 * sampler run reproduces it. */
#include <math.h>
#include <string.h>

#include "cpu_ops.h"

void cpu_cfg_mix(const CpuCtx *c, const float *out, int64_t n, int64_t C, int64_t hw, int64_t guided,
                 const DitStepParams *p, float *dst) {
  (void)c;
  for (int64_t i = 0; i < n; i++) {
    for (int64_t ch = 0; ch < C; ch++) {
      const float *cond = out + (i * C + ch) * hw;
      float *d = dst + (i * C + ch) * hw;
      if (!p->use_cfg || ch >= guided) {
        memcpy(d, cond, (size_t)hw * sizeof(float));
        continue;
      }
      const float *unc = out + ((n + i) * C + ch) * hw;
      for (int64_t k = 0; k < hw; k++) d[k] = unc[k] + p->cfg_scale * (cond[k] - unc[k]);
    }
  }
}

void cpu_diffusion_step(const CpuCtx *c, const float *x, const float *model_out, const float *noise,
                        int64_t n, int64_t C, int64_t hw, int learn_sigma, const DitStepParams *p,
                        float *history, float *x_next) {
  const int64_t Cout = learn_sigma ? 2 * C : C;
  const float mask = p->add_noise ? 1.0f : 0.0f;
#pragma omp parallel for num_threads(c->n_threads) schedule(static)
  for (int64_t ic = 0; ic < n * C; ic++) {
    int64_t i = ic / C, ch = ic % C;
    const float *xt = x + ic * hw, *z = noise + ic * hw;
    const float *eps = model_out + (i * Cout + ch) * hw;
    const float *v = learn_sigma ? model_out + (i * Cout + C + ch) * hw : NULL;
    float *o = x_next + ic * hw;
    float *h = history + (i * 3 * C + ch) * hw; /* slot j of this channel at h + j C hw */
    for (int64_t k = 0; k < hw; k++) {
      /* x0_hat = sqrt(1/abar) x_t - sqrt(1/abar - 1) eps  (clip_denoised off) */
      float x0 = p->sqrt_recip_ac * xt[k] - p->sqrt_recipm1_ac * eps[k];
      if (p->sampler == DIT_SAMPLER_DPM) { /* DPM-Solver++: x0 joins the history, then the multistep update */
        h[p->dpm_write * C * hw + k] = x0;
        float u = p->dpm_a * xt[k] + p->dpm_b[0] * x0;
        if (p->dpm_order > 1) u = u + p->dpm_b[1] * h[p->dpm_m1 * C * hw + k];
        if (p->dpm_order > 2) u = u + p->dpm_b[2] * h[p->dpm_m2 * C * hw + k];
        o[k] = u;
        continue;
      }
      if (p->sampler == DIT_SAMPLER_DDIM) {
        float e = (p->sqrt_recip_ac * xt[k] - x0) / p->sqrt_recipm1_ac; /* eps re-derived from x0 */
        float mean = x0 * sqrtf(p->alpha_bar_prev) +
                     sqrtf(1.0f - p->alpha_bar_prev - p->ddim_sigma * p->ddim_sigma) * e;
        o[k] = mean + mask * p->ddim_sigma * z[k];
        continue;
      }
      float mean = p->post_coef1 * x0 + p->post_coef2 * xt[k];
      float logvar = p->min_log;
      if (learn_sigma) {
        float frac = (v[k] + 1.0f) / 2.0f; /* learned range: interpolate in log space */
        logvar = frac * p->max_log + (1.0f - frac) * p->min_log;
      }
      o[k] = mean + mask * expf(0.5f * logvar) * z[k];
    }
  }
}
