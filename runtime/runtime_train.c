/* runtime_train.c: the training half of the public API (dit/dit.h): the
 * training diffusion's coefficient table, the loss and gradients of one
 * batch, and access to the flat weight and gradient buffers that optimizers
 * and checkpoint writers work on. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nonfinite.h"
#include "runtime_internal.h"
#include "sample/schedule.h"

DitStatus rt_train_init(DitRuntime *rt, DitErr *err) {
  DiffusionSchedule s;
  const PlanTrain *tr = rt->pv.train;
  /* train.py: create_diffusion("") keeps all 1000 steps */
  DitStatus st = schedule_build("", &s, err);
  if (st) return st;
  if ((uint32_t)s.n != tr->timesteps) {
    st = dit_err(err, DIT_ERR_FORMAT, "the plan trains over %u timesteps; this runtime knows %d",
                 tr->timesteps, s.n);
    goto done;
  }
  enum { N_TABLES = 8 };
  size_t n = (size_t)s.n;
  rt->loss_floats = malloc(N_TABLES * n * sizeof(float));
  if (!rt->loss_floats) {
    st = dit_err(err, DIT_ERR_NOMEM, "out of memory");
    goto done;
  }
  float *f[N_TABLES];
  for (int k = 0; k < N_TABLES; k++) f[k] = rt->loss_floats + (size_t)k * n;
  /* each coefficient: float64 as numpy computes it, rounded to float32 */
  for (size_t i = 0; i < n; i++) {
    f[0][i] = (float)sqrt(s.alphas_cumprod[i]);
    f[1][i] = (float)sqrt(1.0 - s.alphas_cumprod[i]);
    f[2][i] = (float)s.sqrt_recip_ac[i];
    f[3][i] = (float)s.sqrt_recipm1_ac[i];
    f[4][i] = (float)s.post_coef1[i];
    f[5][i] = (float)s.post_coef2[i];
    f[6][i] = (float)s.post_logvar_clipped[i];
    f[7][i] = (float)s.log_betas[i];
  }
  rt->loss_table = (DitLossTable){.steps = (int64_t)n, .sqrt_abar = f[0], .sqrt_1m_abar = f[1],
                                  .sqrt_recip_abar = f[2], .sqrt_recipm1_abar = f[3],
                                  .post_coef1 = f[4], .post_coef2 = f[5], .post_logvar = f[6],
                                  .log_beta = f[7]};
  rt->ex.loss_table = &rt->loss_table;
done:
  schedule_free(&s);
  return st;
}

size_t dit_num_weights(const DitRuntime *rt) { return rt->pv.n_weights; }

DitStatus dit_weight_view(const DitRuntime *rt, size_t i, DitWeightView *out) {
  if (i >= rt->pv.n_weights) return DIT_ERR_ARG;
  const PlanWeight *w = &rt->pv.weights[i];
  memset(out, 0, sizeof *out);
  out->name = plan_string(&rt->pv, w->name);
  out->rank = (int)w->rank;
  out->numel = 1;
  for (uint32_t k = 0; k < w->rank; k++) {
    out->dims[k] = w->dims[k];
    out->numel *= w->dims[k];
  }
  out->frozen = (w->flags & PLAN_WEIGHT_FROZEN) != 0;
  out->offset = (int64_t)(w->offset / sizeof(float));
  return DIT_OK;
}

float *dit_weights_flat(DitRuntime *rt, int64_t *n_floats) {
  if (n_floats) *n_floats = (int64_t)(rt->pv.weight_bytes / sizeof(float));
  return (float *)rt->ex.weights;
}

float *dit_grads_flat(DitRuntime *rt) { return (float *)rt->ex.grads; }

void dit_weights_set(DitRuntime *rt) { rt->has_weights = 1, rt->weights_dirty = 1; /* CUDA: uploaded by the next run */ }

/* A batch's inputs into the arena. */
static void stage_batch(DitRuntime *rt, int64_t n, const float *x0, const int64_t *t, const int64_t *y,
                        const float *noise) {
  const PlanTrain *tr = rt->pv.train;
  const PlanModel *m = rt->pv.model;
  int64_t xs = m->in_channels * m->latent_size * m->latent_size;
  memcpy(exec_value(&rt->ex, tr->x0), x0, (size_t)(n * xs) * sizeof(float));
  memcpy(exec_value(&rt->ex, tr->noise), noise, (size_t)(n * xs) * sizeof(float));
  memcpy(exec_value(&rt->ex, tr->t), t, (size_t)n * sizeof(int64_t));
  memcpy(exec_value(&rt->ex, tr->y), y, (size_t)n * sizeof(int64_t));
}

DitStatus dit_loss(DitRuntime *rt, int64_t n, const float *x0, const int64_t *t, const int64_t *y,
                   const float *noise, int grads, float grad_scale, float *losses) {
  const PlanTrain *tr = rt->pv.train;
  DitStatus st = DIT_OK;
  if (!tr) {
    st = dit_err(&rt->err, DIT_ERR_ARG,
                 "this is an inference plan: compile the spec with ditc --mode train for losses");
  } else if (!rt->has_weights) {
    st = dit_err(&rt->err, DIT_ERR_ARG, "no weights are bound: call dit_load_weights first");
  } else if (n < 1 || n > (int64_t)rt->info.max_batch) {
    st = dit_err(&rt->err, DIT_ERR_ARG, "a batch of %lld rows does not fit this plan (1 to %lld rows)",
                 (long long)n, (long long)rt->info.max_batch);
  }
  for (int64_t i = 0; !st && i < n; i++)
    if (t[i] < 0 || t[i] >= (int64_t)tr->timesteps)
      st = dit_err(&rt->err, DIT_ERR_ARG, "timestep %lld of row %lld is out of range [0, %u)",
                   (long long)t[i], (long long)i, tr->timesteps);
  if (!st) st = rt_check_labels(rt, y, n);
  if (st) return rt_fail(rt, st);
  stage_batch(rt, n, x0, t, y, noise);
  rt->ex.grad_scale = grad_scale;
  if (grads) exec_train(&rt->ex, n);
  else exec_loss(&rt->ex, n);
  memcpy(losses, exec_value(&rt->ex, tr->loss), (size_t)n * sizeof(float));
  if (rt_first_nonfinite(losses, n) >= 0) { /* the same batch again, op by op, to the loss */
    stage_batch(rt, n, x0, t, y, noise);
    NonfiniteRun r = {0, tr->n_loss_ops, n, n, NULL, 0};
    size_t bad = SIZE_MAX;
    st = rt_run_checked(rt->be, &rt->pv, &r, &bad, &rt->err); /* training plans run on the CPU executor */
    if (!st) st = rt_nonfinite_error(&rt->err, &rt->pv, "the loss", bad);
  }
  return rt_fail(rt, st);
}
