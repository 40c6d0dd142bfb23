/* runtime.c: the public API (dit/dit.h): opening a plan, allocating every
 * buffer once, binding checkpoint weights, and the forward entry points,
 * including the official classifier-free-guidance forward. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "nonfinite.h"
#include "runtime_internal.h"
#include "weights/checkpoint.h"
#include "weights/dit_weights.h"

static void *alloc_zeroed(size_t bytes) {
  size_t n = (bytes + 255) / 256 * 256;
  void *p = aligned_alloc(256, n ? n : 256);
  if (p) memset(p, 0, n ? n : 256);
  return p;
}

DitStatus rt_fail(DitRuntime *rt, DitStatus st) {
  rt->err.status = st;
  return st;
}

static void fill_info(DitRuntime *rt) {
  const PlanModel *m = rt->pv.model;
  DitModelInfo *i = &rt->info;
  i->name = plan_string(&rt->pv, m->name);
  i->image_size = m->image_size;
  i->latent_size = m->latent_size;
  i->in_channels = m->in_channels;
  i->out_channels = m->out_channels;
  i->num_classes = m->num_classes;
  i->guided_channels = m->guided_channels;
  i->patch_size = m->patch_size;
  i->hidden_size = m->hidden_size;
  i->depth = m->depth;
  i->num_heads = m->num_heads;
  i->max_batch = rt->pv.header->max_batch;
  i->has_null_class = m->label_rows > m->num_classes;
  i->learn_sigma = (int)m->learn_sigma;
  i->arena_bytes = rt->pv.arena_bytes;
  i->weight_bytes = rt->pv.weight_bytes;
  i->training = rt->pv.train != NULL;
  i->class_dropout = m->class_dropout;
}

DitStatus dit_open(const char *plan_path, const DitOptions *opts, DitRuntime **out, DitError *err) {
  DitErr e = {0};
  DitStatus st;
  *out = NULL;
  DitRuntime *rt = calloc(1, sizeof *rt);
  if (!rt) {
    st = dit_err(&e, DIT_ERR_NOMEM, "out of memory");
    goto fail;
  }
  const char *device = opts && opts->device ? opts->device : "cpu";
  /* cuda, or emu: the CUDA backend on the emulated device (libdit_emu.so, tools/emu) */
  int want_cuda = strcmp(device, "cuda") == 0 || strcmp(device, "emu") == 0;
  int want_auto = strcmp(device, "auto") == 0;
  if (!want_cuda && !want_auto && strcmp(device, "cpu") != 0) {
    st = dit_err(&e, DIT_ERR_ARG, "unknown device '%s' (expected cpu, cuda, emu or auto)", device);
    goto fail;
  }
  st = plan_load(plan_path, &rt->pv, &e);
  if (st) goto fail;
  if (strcmp(plan_string(&rt->pv, rt->pv.model->family), "vae") == 0) rt_vae_init(rt);
  if (want_cuda || want_auto) {
    /* auto: the GPU when there is one and the plan has its kernels, else the CPU
     * (dit_last_error then says why) */
    DitErr ce = {0};
    DitStatus cs = backend_cuda_open(&rt->pv, opts, &rt->be, &ce);
    if (cs && want_cuda) {
      st = dit_err(&e, cs, "device '%s': %s", device, ce.msg);
      goto fail;
    }
    if (cs) {
      rt->err = ce;
      rt->err.status = DIT_OK;
      dit_err_context(&rt->err, "no usable GPU");
    }
  }
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  int threads = opts && opts->n_threads > 0 ? opts->n_threads : (cores > 0 ? (int)cores : 1);
  /* GEMM tiles run on ditc's threads: each OpenBLAS call uses one thread */
  openblas_set_num_threads(1);
  Executor *ex = &rt->ex;
  ex->pv = &rt->pv;
  ex->cpu.n_threads = threads;
  ex->cpu.scratch_per_thread = exec_scratch_per_thread(&rt->pv);
  ex->weights = alloc_zeroed(rt->pv.weight_bytes); /* on a GPU, the host copy that checkpoints bind into */
  rt->on_cpu = !rt->be;
  if (rt->on_cpu) {
    ex->arena = alloc_zeroed(exec_arena_bytes(&rt->pv));
    ex->cpu.scratch = alloc_zeroed((size_t)threads * (size_t)ex->cpu.scratch_per_thread * sizeof(float));
  }
  if (rt->pv.train) ex->grads = alloc_zeroed(rt->pv.grad_bytes);
  const PlanModel *m = rt->pv.model;
  size_t rows = rt->pv.header->max_batch;
  rt->host_t = calloc(rows, sizeof(int64_t));
  rt->host_y = calloc(rows, sizeof(int64_t));
  rt->host_noise = calloc(rows * (size_t)(m->in_channels * m->latent_size * m->latent_size), sizeof(float));
  if ((rt->on_cpu && (!ex->arena || !ex->cpu.scratch)) || !ex->weights || (rt->pv.train && !ex->grads) ||
      !rt->host_t || !rt->host_y || !rt->host_noise) {
    st = dit_err(&e, DIT_ERR_NOMEM, "%s: cannot allocate %llu bytes of activations and %llu bytes of weights",
                 plan_path, (unsigned long long)rt->pv.arena_bytes,
                 (unsigned long long)rt->pv.weight_bytes);
    goto fail;
  }
  if (rt->on_cpu) {
    st = backend_cpu_open(ex, &rt->be, &e);
    if (st) goto fail;
  }
  if (rt->pv.train) {
    st = rt_train_init(rt, &e);
    if (st) goto fail;
  }
  st = rt_tuning_open(rt, opts && opts->no_tuning, &e);
  if (st) goto fail;
  fill_info(rt);
  *out = rt;
  return DIT_OK;
fail:
  if (err) {
    err->status = st;
    snprintf(err->message, sizeof err->message, "%s", e.msg);
  }
  dit_close(rt);
  return st;
}

DitStatus dit_load_weights(DitRuntime *rt, const char *checkpoint_path) {
  Checkpoint *ck = NULL;
  WeightRequest *req = NULL;
  const PlanView *pv = &rt->pv;
  DitStatus st = ckpt_open(checkpoint_path, &ck, &rt->err);
  if (st) return rt_fail(rt, st);
  req = calloc(pv->n_weights ? pv->n_weights : 1, sizeof *req);
  if (!req) {
    st = dit_err(&rt->err, DIT_ERR_NOMEM, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < pv->n_weights; i++) {
    const PlanWeight *w = &pv->weights[i];
    req[i].name = plan_string(pv, w->name);
    req[i].rank = (int)w->rank;
    for (uint32_t k = 0; k < w->rank; k++) req[i].shape[k] = w->dims[k];
    req[i].dst = (float *)(rt->ex.weights + w->offset);
  }
  DitGeometry geo = {pv->model->depth, pv->model->hidden_size, pv->model->grid};
  st = rt->vae ? rt_vae_bind(rt, ck, req, pv->n_weights) : dit_weights_bind(ck, req, pv->n_weights, &geo, &rt->err);
  if (!st) st = rt_check_weights_finite(pv, rt->ex.weights, &rt->err);
  if (st) dit_err_context(&rt->err, "%s", checkpoint_path);
  if (!st) st = rt->be->vt->upload_weights(rt->be, rt->ex.weights, &rt->err);
  if (!st) rt->has_weights = 1, rt->weights_dirty = 0;
done:
  free(req);
  ckpt_close(ck);
  return rt_fail(rt, st);
}

const DitModelInfo *dit_model_info(const DitRuntime *rt) { return &rt->info; }
const char *dit_device_name(const DitRuntime *rt) { return rt->be->vt->name(rt->be); }
const char *dit_last_error(const DitRuntime *rt) { return rt ? rt->err.msg : "no runtime"; }

DitStatus rt_check_labels(DitRuntime *rt, const int64_t *y, int64_t n) {
  const PlanModel *m = rt->pv.model;
  for (int64_t i = 0; i < n; i++) {
    if (y[i] < 0 || y[i] >= m->label_rows)
      return dit_err(&rt->err, DIT_ERR_ARG, "label %lld of row %lld is out of range [0, %lld]",
                     (long long)y[i], (long long)i, (long long)m->label_rows - 1);
  }
  return DIT_OK;
}

DitStatus rt_check_ready(DitRuntime *rt, int64_t rows) {
  if (rt->vae)
    return dit_err(&rt->err, DIT_ERR_ARG, "this is a VAE plan (family vae): it decodes and encodes images "
                   "(dit decode, dit encode, dit_vae_decode), it does not run DiT forwards or sample");
  if (rt->pv.train)
    return dit_err(&rt->err, DIT_ERR_ARG,
                   "this is a training plan (ditc --mode train): it computes losses and gradients; "
                   "compile the spec without --mode train to run forwards or sample");
  if (!rt->has_weights)
    return dit_err(&rt->err, DIT_ERR_ARG, "no weights are bound: call dit_load_weights first");
  if (rows < 1 || rows > (int64_t)rt->info.max_batch)
    return dit_err(&rt->err, DIT_ERR_ARG,
                   "a forward of %lld rows does not fit this plan (1 to %lld rows; compile with --batch)",
                   (long long)rows, (long long)rt->info.max_batch);
  return rt_sync_weights(rt);
}

DitStatus rt_sync_weights(DitRuntime *rt) {
  if (!rt->weights_dirty) return DIT_OK; /* dit_weights_set since the last upload */
  DitStatus st = rt->be->vt->upload_weights(rt->be, rt->ex.weights, &rt->err);
  if (!st) rt->weights_dirty = 0;
  return st;
}

/* The guidance mix ops of the sampler step (cfg_mix), at n images. */
static DitStatus run_mix(DitRuntime *rt, int64_t n) {
  DitStatus st = DIT_OK;
  for (size_t i = rt->pv.io->n_forward_ops; i < rt->pv.n_ops && !st; i++)
    if (rt->pv.ops[i].kind == PLAN_OP_CFG_MIX) st = rt->be->vt->run(rt->be, i, i + 1, n, &rt->err);
  return st;
}

/* Rows [0, n) as given; with guidance, rows [n, 2n) the same x and t with the null label. */
static DitStatus stage_rows(DitRuntime *rt, int64_t n, int guided, const float *x, const int64_t *t,
                            const int64_t *y) {
  DitStatus st = rt_check_labels(rt, y, n);
  BackendStage cond = {.row0 = 0, .rows = n, .x = x, .t = t, .y = y};
  if (!st) st = rt->be->vt->stage(rt->be, &cond, &rt->err);
  if (st || !guided) return st;
  for (int64_t i = 0; i < n; i++) rt->host_y[i] = rt->info.num_classes;
  BackendStage unc = {.row0 = n, .rows = n, .x = x, .t = t, .y = rt->host_y};
  return rt->be->vt->stage(rt->be, &unc, &rt->err);
}

/* A non-finite result: the same inputs again, op by op, name the op. */
static DitStatus name_nonfinite(DitRuntime *rt, const char *what, int64_t n, int guided, const float *x,
                                const int64_t *t, const int64_t *y, const DitStepParams *p) {
  size_t bad = SIZE_MAX;
  DitStatus st = stage_rows(rt, n, guided, x, t, y);
  NonfiniteRun r = {0, guided ? rt->pv.n_ops : rt->pv.io->n_forward_ops, guided ? 2 * n : n, n, p, 0};
  if (!st) st = rt_run_checked(rt->be, &rt->pv, &r, &bad, &rt->err);
  return st ? st : rt_nonfinite_error(&rt->err, &rt->pv, what, bad);
}

DitStatus dit_forward(DitRuntime *rt, int64_t n, const float *x, const int64_t *t,
                      const int64_t *y, float *out) {
  DitStatus st = rt_check_ready(rt, n);
  if (!st) st = stage_rows(rt, n, 0, x, t, y);
  if (!st) st = rt->be->vt->run(rt->be, 0, rt->pv.io->n_forward_ops, n, &rt->err);
  if (!st) rt->last_rows = rt->last_n = n;
  if (!st) st = rt->be->vt->fetch(rt->be, rt->pv.io->out, n, out, &rt->err);
  int64_t os = rt->info.out_channels * rt->info.latent_size * rt->info.latent_size;
  if (!st && rt_first_nonfinite(out, n * os) >= 0)
    st = name_nonfinite(rt, "the forward's output", n, 0, x, t, y, NULL);
  return rt_fail(rt, st);
}

DitStatus dit_forward_cfg(DitRuntime *rt, int64_t n, const float *x, const int64_t *t,
                          const int64_t *y, float cfg_scale, float *out) {
  DitStatus st = rt_check_ready(rt, 2 * n);
  if (!st && !rt->info.has_null_class)
    st = dit_err(&rt->err, DIT_ERR_ARG, "guidance needs the null class: this model has class_dropout 0");
  DitStepParams p = {.use_cfg = 1, .cfg_scale = cfg_scale};
  BackendStage params = {.params = &p};
  if (!st) st = stage_rows(rt, n, 1, x, t, y);
  if (!st) st = rt->be->vt->run(rt->be, 0, rt->pv.io->n_forward_ops, 2 * n, &rt->err);
  if (!st) st = rt->be->vt->stage(rt->be, &params, &rt->err);
  if (!st) st = run_mix(rt, n); /* the guidance mix only */
  if (!st) rt->last_rows = 2 * n, rt->last_n = n;
  if (!st) st = rt->be->vt->fetch(rt->be, rt->pv.ops[rt->pv.io->n_forward_ops].out, n, out, &rt->err);
  int64_t os = rt->info.out_channels * rt->info.latent_size * rt->info.latent_size;
  if (!st && rt_first_nonfinite(out, n * os) >= 0)
    st = name_nonfinite(rt, "the guided forward's output", n, 1, x, t, y, &p);
  return rt_fail(rt, st);
}

void dit_close(DitRuntime *rt) {
  if (!rt) return;
  if (rt->be) rt->be->vt->close(rt->be); /* before the plan view it reads */
  free(rt->tune_choices);
  free(rt->host_t);
  free(rt->host_y);
  free(rt->host_noise);
  free(rt->ex.arena);
  free(rt->ex.weights);
  free(rt->ex.cpu.scratch);
  free(rt->ex.grads);
  free(rt->loss_floats);
  plan_view_free(&rt->pv);
  free(rt);
}
