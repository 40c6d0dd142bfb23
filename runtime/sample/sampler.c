/* sampler.c: dit_sample, the reverse-diffusion loop, once for every
 * backend (backend.h). The host draws or takes each step's noise, computes
 * the step's coefficients and hands the step to the backend, which runs the
 * forward (twice the rows, with the null labels, under guidance), the
 * plan's sampler ops (guidance mix + fused DDPM/DDIM/DPM-Solver++ update),
 * and makes the result the new state. Every buffer was allocated when the plan loaded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../nonfinite.h"
#include "../runtime_internal.h"
#include "rng.h"
#include "schedule.h"
#include "schedule_dpm.h"

void dit_randn_stream(uint64_t seed, uint64_t stream, float *out, int64_t n) {
  dit_randn(seed, stream, out, n, 1);
}

/* A DPM-Solver++ step count: a plain number (no respacing syntax). */
static DitStatus dpm_steps(const char *steps, int *n, DitErr *err) {
  const char *s = steps ? steps : "20";
  char *end = NULL;
  long v = strtol(s, &end, 10);
  if (!*s || *end || v < 1 || v > 1000)
    return dit_err(err, DIT_ERR_ARG, "dpm++ takes a step count from 1 to 1000, got '%s'", s);
  *n = (int)v;
  return DIT_OK;
}

int dit_sample_steps(DitRuntime *rt, const char *steps) {
  DiffusionSchedule s;
  if (schedule_build(steps ? steps : "250", &s, &rt->err)) return -1;
  int n = s.n;
  schedule_free(&s);
  return n;
}

/* The noise of step s (0: the initial state) for n images into dst. */
static void draw_noise(const DitSampleOptions *o, int s, int64_t count, int threads, float *dst) {
  if (s > 0 && o->step_noise) memcpy(dst, o->step_noise + (int64_t)(s - 1) * count, (size_t)count * sizeof(float));
  else if (s == 0 && o->noise) memcpy(dst, o->noise, (size_t)count * sizeof(float));
  else dit_randn(o->seed, (uint64_t)s, dst, count, threads);
}

/* Step s gave a non-finite state (io.x still holds the step's input): the
 * same step again, one op at a time, names the op. */
static DitStatus step_nonfinite(DitRuntime *rt, int s, int n_steps, int64_t timestep, const DitSampleOptions *o,
                                const BackendStep *st_in) {
  const PlanIO *io = rt->pv.io;
  Backend *be = rt->be;
  size_t bad = SIZE_MAX;
  int64_t n = st_in->n, rows = st_in->rows;
  /* the guided rows are a copy of the state: stage them from the host's copy of it */
  int64_t xs = rt->info.in_channels * rt->info.latent_size * rt->info.latent_size;
  float *x = malloc((size_t)(n * xs) * sizeof(float));
  DitStatus st = x ? be->vt->fetch(be, io->x, n, x, &rt->err) : dit_err(&rt->err, DIT_ERR_NOMEM, "out of memory");
  BackendStage in = {.row0 = n, .rows = rows - n, .x = x};
  if (!st && rows > n) st = be->vt->stage(be, &in, &rt->err);
  BackendStage ty = {.row0 = 0, .rows = rows, .t = st_in->t, .y = st_in->y};
  if (!st) st = be->vt->stage(be, &ty, &rt->err);
  NonfiniteRun fwd = {0, io->n_forward_ops, rows, n, st_in->params, 1};
  if (!st) st = rt_run_checked(be, &rt->pv, &fwd, &bad, &rt->err);
  if (!st && bad == SIZE_MAX) { /* the sampler ops, with the step's noise */
    BackendStage nz = {.row0 = 0, .rows = n, .noise = st_in->noise};
    NonfiniteRun smp = {io->n_forward_ops, rt->pv.n_ops, rows, n, st_in->params, 1};
    st = be->vt->stage(be, &nz, &rt->err);
    if (!st) st = rt_run_checked(be, &rt->pv, &smp, &bad, &rt->err);
  }
  free(x);
  if (st) return st;
  char what[96];
  snprintf(what, sizeof what, "sampling step %d of %d (timestep %lld)", s + 1, n_steps, (long long)timestep);
  st = rt_nonfinite_error(&rt->err, &rt->pv, what, bad);
  if (bad != SIZE_MAX && rt->pv.ops[bad].kind == PLAN_OP_DIFFUSION_STEP && o->sampler == DIT_DDIM && o->eta > 1)
    dit_err_context(&rt->err, "DDIM with eta %g > 1 asks for a negative variance", o->eta);
  return st;
}

DitStatus dit_sample(DitRuntime *rt, const DitSampleOptions *o, float *out) {
  const DitModelInfo *mi = &rt->info;
  Backend *be = rt->be;
  int use_cfg = o->cfg_scale > 1.0f;
  int64_t n = o->n, rows = use_cfg ? 2 * n : n;
  int64_t xs = mi->in_channels * mi->latent_size * mi->latent_size; /* floats per image */
  int threads = rt->ex.cpu.n_threads;
  int dpm = o->sampler == DIT_DPM_SOLVER, n_steps = 0;
  DiffusionSchedule sched = {0};
  DpmSchedule dsched = {0};
  DitStatus st = rt_check_ready(rt, rows);
  if (!st && use_cfg && !mi->has_null_class)
    st = dit_err(&rt->err, DIT_ERR_ARG, "guidance needs the null class: this model has class_dropout 0");
  if (!st && o->sampler != DIT_DDPM && o->sampler != DIT_DDIM && !dpm)
    st = dit_err(&rt->err, DIT_ERR_ARG, "unknown sampler %d", (int)o->sampler);
  if (!st) st = rt_check_labels(rt, o->labels, n);
  if (!st && dpm) st = dpm_steps(o->steps, &n_steps, &rt->err);
  if (!st && dpm) st = dpm_schedule_build(n_steps, o->dpm_order ? o->dpm_order : 2, o->dpm_karras, &dsched, &rt->err);
  if (!st && !dpm) st = schedule_build(o->steps ? o->steps : "250", &sched, &rt->err);
  if (!st && !dpm) n_steps = sched.n;
  if (st) {
    dpm_schedule_free(&dsched);
    return rt_fail(rt, st);
  }

  /* the state starts as the initial noise; labels, then the null rows under guidance */
  int64_t *t = rt->host_t, *y = rt->host_y;
  float *noise = rt->host_noise; // [n, C, H, W]
  memcpy(y, o->labels, (size_t)n * sizeof(int64_t));
  for (int64_t i = 0; i < n && use_cfg; i++) y[n + i] = mi->num_classes;
  draw_noise(o, 0, n * xs, threads, noise);
  BackendStage init = {.row0 = 0, .rows = n, .x = noise};
  st = be->vt->stage(be, &init, &rt->err);
  rt->last_rows = rows, rt->last_n = n;

  for (int s = 0; s < n_steps && !st; s++) {
    int k = n_steps - 1 - s; /* respaced index, from the noisiest */
    int64_t timestep = dpm ? dsched.timesteps[s] : sched.timestep_map[k]; /* the original timestep */
    for (int64_t r = 0; r < rows; r++) t[r] = timestep;
    DitStepParams p;
    if (dpm) { /* deterministic: no noise (the step leaves the buffer as it is) */
      dpm_step_params(&dsched, s, &p);
    } else {
      draw_noise(o, s + 1, n * xs, threads, noise);
      schedule_step_params(&sched, k, o->sampler == DIT_DDIM ? DIT_SAMPLER_DDIM : DIT_SAMPLER_DDPM,
                           mi->learn_sigma, o->eta, &p);
    }
    p.use_cfg = use_cfg;
    p.cfg_scale = o->cfg_scale;
    BackendStep step = {s, n, rows, t, y, noise, &p};
    int finite = 1;
    st = be->vt->step(be, &step, &finite, &rt->err);
    if (!st && !finite) st = step_nonfinite(rt, s, n_steps, timestep, o, &step);
    if (!st && o->progress) o->progress(o->progress_ctx, s + 1, n_steps);
  }
  be->vt->end_steps(be);
  if (!st) st = be->vt->fetch(be, rt->pv.io->x, n, out, &rt->err);
  if (!st && rt_first_nonfinite(out, n * xs) >= 0) /* a backend that does not check each step */
    st = dit_err(&rt->err, DIT_ERR_NONFINITE, "the samples are not finite (NaN or infinity) on %s; run with "
                 "--device cpu to find the step and op that produced them", dit_device_name(rt));
  schedule_free(&sched);
  dpm_schedule_free(&dsched);
  return rt_fail(rt, st);
}
