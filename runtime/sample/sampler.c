/* sampler.c: dit_sample, the reverse-diffusion loop. Each step: stage the
 * state (twice, with the null labels, under guidance) and the original
 * timestep, run the plan's forward, draw or take this step's noise, run the
 * plan's sampler ops (guidance mix + fused DDPM/DDIM update), copy the result
 * back into the state. Every buffer was allocated when the plan loaded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../nonfinite.h"
#include "../runtime_internal.h"
#include "rng.h"
#include "schedule.h"

void dit_randn_stream(uint64_t seed, uint64_t stream, float *out, int64_t n) {
  dit_randn(seed, stream, out, n, 1);
}

int dit_sample_steps(DitRuntime *rt, const char *steps) {
  DiffusionSchedule s;
  if (schedule_build(steps ? steps : "250", &s, &rt->err)) return -1;
  int n = s.n;
  schedule_free(&s);
  return n;
}

/* Step s gave a non-finite state: the same step again, one op at a time,
 * names the op (x still holds the step's input). */
static DitStatus step_nonfinite(DitRuntime *rt, const DiffusionSchedule *sched, int s, const DitSampleOptions *o,
                                const DitStepParams *p, int64_t rows) {
  const PlanIO *io = rt->pv.io;
  const DitModelInfo *mi = &rt->info;
  int64_t n = o->n, xs = mi->in_channels * mi->latent_size * mi->latent_size;
  int k = sched->n - 1 - s;
  float *x = exec_value(&rt->ex, io->x);
  int64_t *t = exec_value(&rt->ex, io->t), *y = exec_value(&rt->ex, io->y);
  if (rows > n) memcpy(x + n * xs, x, (size_t)(n * xs) * sizeof(float));
  for (int64_t r = 0; r < rows; r++) t[r] = sched->timestep_map[k];
  memcpy(y, o->labels, (size_t)n * sizeof(int64_t));
  for (int64_t i = n; i < rows; i++) y[i] = mi->num_classes;
  NonfiniteRun fwd = {0, io->n_forward_ops, rows, n, p, 1};
  size_t bad = rt_run_checked(&rt->ex, &fwd);
  if (bad == SIZE_MAX) { /* the sampler ops, with the step's noise */
    float *noise = exec_value(&rt->ex, io->noise);
    if (o->step_noise) memcpy(noise, o->step_noise + (int64_t)s * n * xs, (size_t)(n * xs) * sizeof(float));
    else dit_randn(o->seed, (uint64_t)s + 1, noise, n * xs, rt->ex.cpu.n_threads);
    NonfiniteRun smp = {io->n_forward_ops, rt->pv.n_ops, rows, n, p, 1};
    bad = rt_run_checked(&rt->ex, &smp);
  }
  char what[96];
  snprintf(what, sizeof what, "sampling step %d of %d (timestep %lld)", s + 1, sched->n,
           (long long)sched->timestep_map[k]);
  DitStatus st = rt_nonfinite_error(&rt->err, &rt->pv, what, bad);
  if (bad != SIZE_MAX && rt->pv.ops[bad].kind == PLAN_OP_DIFFUSION_STEP && o->sampler == DIT_DDIM && o->eta > 1)
    dit_err_context(&rt->err, "DDIM with eta %g > 1 asks for a negative variance", o->eta);
  return st;
}

DitStatus dit_sample(DitRuntime *rt, const DitSampleOptions *o, float *out) {
  const DitModelInfo *mi = &rt->info;
  const PlanIO *io = rt->pv.io;
  int use_cfg = o->cfg_scale > 1.0f;
  int64_t n = o->n, rows = use_cfg ? 2 * n : n;
  DiffusionSchedule sched = {0};
  DitStatus st = rt_check_ready(rt, rows);
  if (!st && use_cfg && !mi->has_null_class)
    st = dit_err(&rt->err, DIT_ERR_ARG, "guidance needs the null class: this model has class_dropout 0");
  if (!st && o->sampler != DIT_DDPM && o->sampler != DIT_DDIM)
    st = dit_err(&rt->err, DIT_ERR_ARG, "unknown sampler %d", (int)o->sampler);
  if (!st) st = schedule_build(o->steps ? o->steps : "250", &sched, &rt->err);
  if (st) return rt_fail(rt, st);
  if (rt->cuda) { /* the same loop on the device: one step captured as a CUDA graph, replayed (cuda/cuda_sample.c) */
    st = rt_check_labels(rt, o->labels, n);
    CudaSampleArgs a = {o, &sched, use_cfg, mi->learn_sigma, mi->num_classes, rt->ex.cpu.n_threads};
    if (!st) st = cuda_backend_sample(rt->cuda, &a, out, &rt->err);
    if (!st) rt->last_rows = rows, rt->last_n = n;
    if (!st && rt_first_nonfinite(out, n * mi->in_channels * mi->latent_size * mi->latent_size) >= 0)
      st = dit_err(&rt->err, DIT_ERR_NONFINITE, "the samples are not finite (NaN or infinity) on %s; run with "
                   "--device cpu to find the step and op that produced them", dit_device_name(rt));
    schedule_free(&sched);
    return rt_fail(rt, st);
  }

  int64_t xs = mi->in_channels * mi->latent_size * mi->latent_size; /* floats per image */
  float *x = exec_value(&rt->ex, io->x);                              // [rows, C, H, W]
  int64_t *t = exec_value(&rt->ex, io->t), *y = exec_value(&rt->ex, io->y);
  float *noise = exec_value(&rt->ex, io->noise);                      // [n, C, H, W]
  const float *x_next = exec_value(&rt->ex, io->x_next);
  int threads = rt->ex.cpu.n_threads;

  /* the state starts as the initial noise; labels, then the null rows under guidance */
  st = rt_check_labels(rt, o->labels, n);
  if (st) goto done;
  if (o->noise) memcpy(x, o->noise, (size_t)(n * xs) * sizeof(float));
  else dit_randn(o->seed, 0, x, n * xs, threads);

  for (int s = 0; s < sched.n; s++) {
    int k = sched.n - 1 - s; /* respaced index, from the noisiest */
    if (use_cfg) memcpy(x + n * xs, x, (size_t)(n * xs) * sizeof(float));
    /* t and y every step: the planner reuses their bytes once the embeddings have read them */
    for (int64_t r = 0; r < rows; r++) t[r] = sched.timestep_map[k]; /* the original timestep */
    memcpy(y, o->labels, (size_t)n * sizeof(int64_t));
    for (int64_t i = 0; i < n && use_cfg; i++) y[n + i] = mi->num_classes;
    rt->last_rows = rows, rt->last_n = n;
    exec_forward(&rt->ex, rows);
    if (o->step_noise) memcpy(noise, o->step_noise + (int64_t)s * n * xs, (size_t)(n * xs) * sizeof(float));
    else dit_randn(o->seed, (uint64_t)s + 1, noise, n * xs, threads);
    DitStepParams p;
    schedule_step_params(&sched, k, o->sampler == DIT_DDIM ? DIT_SAMPLER_DDIM : DIT_SAMPLER_DDPM,
                         mi->learn_sigma, o->eta, &p);
    p.use_cfg = use_cfg;
    p.cfg_scale = o->cfg_scale;
    exec_sampler(&rt->ex, n, &p, 1);
    if (rt_first_nonfinite(x_next, n * xs) >= 0) { /* x still holds the step's input: run it again, op by op */
      st = step_nonfinite(rt, &sched, s, o, &p, rows);
      goto done;
    }
    memcpy(x, x_next, (size_t)(n * xs) * sizeof(float));
    if (o->progress) o->progress(o->progress_ctx, s + 1, sched.n);
  }
  memcpy(out, x, (size_t)(n * xs) * sizeof(float));
done:
  schedule_free(&sched);
  return rt_fail(rt, st);
}
