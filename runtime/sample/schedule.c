/* schedule.c: betas, respacing and the derived tables (see schedule.h). Each
 * expression keeps the operation order of the official numpy code, so the
 * float64 tables match it bit for bit. */
#include "schedule.h"

#include <errno.h>
#include <stdbool.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* np.linspace(1e-4, 0.02, 1000): i * step + start, the last element exactly stop. */
static void base_betas(double *b) {
  const double start = 0.0001, stop = 0.02;
  const double step = (stop - start) / (DIT_DIFFUSION_STEPS - 1);
  for (int i = 0; i < DIT_DIFFUSION_STEPS; i++) b[i] = (double)i * step + start;
  b[DIT_DIFFUSION_STEPS - 1] = stop;
}

/* space_timesteps(1000, spec): marks the kept original timesteps in keep[]. */
static DitStatus space_timesteps(const char *spec, bool *keep, DitErr *err) {
  const int T = DIT_DIFFUSION_STEPS;
  if (spec[0] == '\0') {
    for (int i = 0; i < T; i++) keep[i] = true;
    return DIT_OK;
  }
  if (strncmp(spec, "ddim", 4) == 0) {
    char *end;
    errno = 0;
    long want = strtol(spec + 4, &end, 10);
    if (errno || end == spec + 4 || *end)
      return dit_err(err, DIT_ERR_ARG, "steps '%s': expected ddimN with an integer N", spec);
    /* the smallest integer stride s with len(range(0, 1000, s)) == N */
    for (int s = 1; s < T; s++) {
      if ((T + s - 1) / s == want) {
        for (int i = 0; i < T; i += s) keep[i] = true;
        return DIT_OK;
      }
    }
    return dit_err(err, DIT_ERR_ARG, "steps '%s': cannot create exactly %ld steps with an integer stride",
                   spec, want);
  }
  long counts[64];
  int n_sections = 0;
  for (const char *p = spec; *p;) {
    char *end;
    errno = 0;
    long v = strtol(p, &end, 10);
    if (errno || end == p || v < 0 || n_sections == 64 || (*end && *end != ',') || (*end && !end[1]))
      return dit_err(err, DIT_ERR_ARG, "steps '%s': expected counts like 250, 10,20,30 or ddim50", spec);
    counts[n_sections++] = v;
    p = *end ? end + 1 : end;
  }
  int size_per = T / n_sections, extra = T % n_sections, start = 0;
  for (int i = 0; i < n_sections; i++) {
    int size = size_per + (i < extra ? 1 : 0);
    if (size < counts[i])
      return dit_err(err, DIT_ERR_ARG, "steps '%s': cannot divide section of %d steps into %ld", spec,
                     size, counts[i]);
    double frac_stride = counts[i] <= 1 ? 1.0 : (double)(size - 1) / (double)(counts[i] - 1);
    double cur = 0.0;
    for (long k = 0; k < counts[i]; k++) {
      keep[start + (int)rint(cur)] = true; /* Python's round: half to even */
      cur += frac_stride;
    }
    start += size;
  }
  return DIT_OK;
}

void schedule_free(DiffusionSchedule *s) {
  if (!s) return;
  free(s->timestep_map);
  double *arrays[] = {s->betas, s->alphas_cumprod, s->alphas_cumprod_prev, s->sqrt_recip_ac,
                      s->sqrt_recipm1_ac, s->post_var, s->post_logvar_clipped, s->post_coef1,
                      s->post_coef2, s->log_betas, s->fixed_large_logvar};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) free(arrays[i]);
  memset(s, 0, sizeof *s);
}

DitStatus schedule_build(const char *spec, DiffusionSchedule *s, DitErr *err) {
  double base[DIT_DIFFUSION_STEPS], base_ac[DIT_DIFFUSION_STEPS];
  bool keep[DIT_DIFFUSION_STEPS] = {false};
  memset(s, 0, sizeof *s);
  DitStatus st = space_timesteps(spec ? spec : "", keep, err);
  if (st) return st;
  base_betas(base);
  double acc = 1.0;
  for (int i = 0; i < DIT_DIFFUSION_STEPS; i++) base_ac[i] = acc *= 1.0 - base[i];
  int n = 0;
  for (int i = 0; i < DIT_DIFFUSION_STEPS; i++) n += keep[i];
  if (n < 2) /* the official GaussianDiffusion reads posterior_variance[1]: IndexError for 1 step */
    return dit_err(err, DIT_ERR_ARG, "steps '%s': a sampler needs at least 2 steps (the official diffusion cannot "
                                     "be built from 1: it reads the posterior variance of step 1)", spec);
  s->n = n;
  s->timestep_map = calloc((size_t)n, sizeof(int64_t));
  double **arrays[] = {&s->betas, &s->alphas_cumprod, &s->alphas_cumprod_prev, &s->sqrt_recip_ac,
                       &s->sqrt_recipm1_ac, &s->post_var, &s->post_logvar_clipped, &s->post_coef1,
                       &s->post_coef2, &s->log_betas, &s->fixed_large_logvar};
  bool oom = !s->timestep_map;
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) oom |= !(*arrays[i] = calloc((size_t)n, sizeof(double)));
  if (oom) {
    schedule_free(s);
    return dit_err(err, DIT_ERR_NOMEM, "out of memory");
  }
  /* respacing: new_beta = 1 - abar_i / abar_last_kept, walking the kept timesteps in order */
  double last = 1.0;
  for (int i = 0, k = 0; i < DIT_DIFFUSION_STEPS; i++) {
    if (!keep[i]) continue;
    s->betas[k] = 1 - base_ac[i] / last;
    last = base_ac[i];
    s->timestep_map[k++] = i;
  }
  /* GaussianDiffusion.__init__ on the respaced betas */
  acc = 1.0;
  for (int k = 0; k < n; k++) {
    double alpha = 1.0 - s->betas[k];
    s->alphas_cumprod[k] = acc *= alpha;
    s->alphas_cumprod_prev[k] = k == 0 ? 1.0 : s->alphas_cumprod[k - 1];
  }
  for (int k = 0; k < n; k++) {
    double ac = s->alphas_cumprod[k], acp = s->alphas_cumprod_prev[k], b = s->betas[k];
    s->sqrt_recip_ac[k] = sqrt(1.0 / ac);
    s->sqrt_recipm1_ac[k] = sqrt(1.0 / ac - 1);
    s->post_var[k] = b * (1.0 - acp) / (1.0 - ac);
    s->post_coef1[k] = b * sqrt(acp) / (1.0 - ac);
    s->post_coef2[k] = (1.0 - acp) * sqrt(1.0 - b) / (1.0 - ac);
    s->log_betas[k] = log(b);
  }
  for (int k = 0; k < n; k++) {
    s->post_logvar_clipped[k] = log(k == 0 ? s->post_var[1] : s->post_var[k]);
    s->fixed_large_logvar[k] = log(k == 0 ? s->post_var[1] : s->betas[k]);
  }
  return DIT_OK;
}

void schedule_step_params(const DiffusionSchedule *s, int k, DitSamplerKind sampler, int learn_sigma,
                          double eta, DitStepParams *p) {
  memset(p, 0, sizeof *p);
  p->sampler = sampler;
  p->add_noise = k != 0;
  /* each coefficient gathered in float64 and rounded to float32 (_extract_into_tensor) */
  p->sqrt_recip_ac = (float)s->sqrt_recip_ac[k];
  p->sqrt_recipm1_ac = (float)s->sqrt_recipm1_ac[k];
  p->post_coef1 = (float)s->post_coef1[k];
  p->post_coef2 = (float)s->post_coef2[k];
  p->min_log = (float)(learn_sigma ? s->post_logvar_clipped[k] : s->fixed_large_logvar[k]);
  p->max_log = (float)s->log_betas[k];
  p->alpha_bar = (float)s->alphas_cumprod[k];
  p->alpha_bar_prev = (float)s->alphas_cumprod_prev[k];
  /* sigma = eta * sqrt((1 - abp) / (1 - ab)) * sqrt(1 - ab / abp), in float32 tensor ops */
  float ab = p->alpha_bar, abp = p->alpha_bar_prev;
  p->ddim_sigma = (float)eta * sqrtf((1.0f - abp) / (1.0f - ab)) * sqrtf(1.0f - ab / abp);
}
