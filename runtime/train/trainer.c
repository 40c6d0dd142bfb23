/* trainer.c: the training loop of `dit train` (see trainer.h). One step:
 *   rows of the global batch -> this rank's share -> dit_loss (loss and
 *   gradients of sum(loss) / B) -> all-reduce the gradients -> AdamW on
 *   every trained weight -> EMA of every weight
 * then logs, checkpoints and sample grids at their intervals. */
#define _POSIX_C_SOURCE 200809L
#include "trainer.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cpu/cpu_grad.h"
#include "dataset.h"
#include "dit/dit.h"
#include "image.h"
#include "init.h"
#include "npy.h"
#include "sample/rng.h"
#include "run_dir.h"
#include "train_ckpt.h"

/* Philox stream families: a draw's stream is FAMILY << 40 | index. */
enum { STREAM_SHUFFLE = 1, STREAM_ROW = 2, STREAM_NOISE = 3, STREAM_SAMPLE = 4 };

static uint64_t stream_of(uint64_t family, uint64_t index) { return family << 40 | index; }

void train_defaults(TrainOptions *o) {
  memset(o, 0, sizeof *o);
  o->steps = 1000;
  o->lr = 1e-4;
  o->beta1 = 0.9;
  o->beta2 = 0.999;
  o->eps = 1e-8;
  o->ema_decay = 0.9999;
  o->log_every = 100;
  o->ckpt_every = 50000;
  o->sample_every = 0;
  o->sample_steps = "100";
}

typedef struct Trainer {
  const TrainOptions *o;
  Dist *dist;
  DitRuntime *rt;        /* the training plan */
  DitRuntime *sampler;   /* an inference plan for EMA grids, or NULL */
  DitDataset *ds;
  TrainState s;
  float *m, *v, *ema;
  int64_t n_floats, B, local, row0, chw, count, spe; /* spe: steps per epoch */
  int64_t *perm, perm_epoch;
  float *x0, *noise_all, *losses;
  int64_t *t, *y;
  FILE *log;
} Trainer;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A uniform integer in [0, n) from 64 random bits (bias below 2^-40 for n < 2^24). */
static int64_t below(uint32_t hi, uint32_t lo, int64_t n) {
  return (int64_t)((((uint64_t)hi << 32) | lo) % (uint64_t)n);
}

/* The shuffle of epoch e: a Fisher-Yates permutation of the dataset. */
static void shuffle(Trainer *tr, int64_t epoch) {
  if (tr->perm_epoch == epoch) return;
  for (int64_t i = 0; i < tr->count; i++) tr->perm[i] = i;
  for (int64_t i = tr->count - 1; i > 0; i--) {
    uint32_t r[4];
    dit_philox(tr->s.seed, stream_of(STREAM_SHUFFLE, (uint64_t)epoch), (uint64_t)i, r);
    int64_t j = below(r[0], r[1], i + 1), tmp = tr->perm[i];
    tr->perm[i] = tr->perm[j];
    tr->perm[j] = tmp;
  }
  tr->perm_epoch = epoch;
}

/* This rank's rows of step `step` (0-based): sample, flip, label dropout, t, noise. */
static DitStatus make_batch(Trainer *tr, int64_t step, DitErr *err) {
  const DitModelInfo *mi = dit_model_info(tr->rt);
  int64_t epoch = step / tr->spe, first = (step % tr->spe) * tr->B;
  shuffle(tr, epoch);
  /* the global batch's noise, so that a row's noise does not depend on the rank count */
  dit_randn(tr->s.seed, stream_of(STREAM_NOISE, (uint64_t)step), tr->noise_all, tr->B * tr->chw,
            tr->o->threads > 0 ? tr->o->threads : 1);
  for (int64_t i = 0; i < tr->local; i++) {
    int64_t row = tr->row0 + i;
    uint32_t r[4];
    dit_philox(tr->s.seed, stream_of(STREAM_ROW, (uint64_t)step), (uint64_t)row, r);
    int flip = (int)(r[2] & 1u);
    int64_t label;
    DitStatus st = dataset_get(tr->ds, tr->perm[first + row], flip, tr->x0 + i * tr->chw, &label);
    if (st) return dit_err(err, st, "%s: cannot read sample %lld", dataset_path(tr->ds),
                           (long long)tr->perm[first + row]);
    tr->t[i] = below(r[0], r[1], 1000);
    /* label dropout (train mode): the null class with probability class_dropout */
    double u = (r[3] + 0.5) / 4294967296.0;
    tr->y[i] = mi->has_null_class && u < mi->class_dropout ? mi->num_classes : label;
  }
  return DIT_OK;
}

/* The rows of this rank at step (0-based), as the reference scripts read them. */
static DitStatus dump_batch(Trainer *tr, int64_t step, DitErr *err) {
  const DitModelInfo *mi = dit_model_info(tr->rt);
  char path[4300];
  int64_t shape[4] = {tr->local, mi->in_channels, mi->latent_size, mi->latent_size};
  const char *dir = tr->o->dump_batches;
  if (mkdir(dir, 0777) && errno != EEXIST) return dit_err(err, DIT_ERR_IO, "%s: %s", dir, strerror(errno));
  snprintf(path, sizeof path, "%s/step%lld_x0.npy", dir, (long long)step);
  DitStatus st = npy_write_f32(path, tr->x0, 4, shape, err);
  snprintf(path, sizeof path, "%s/step%lld_noise.npy", dir, (long long)step);
  if (!st) st = npy_write_f32(path, tr->noise_all + tr->row0 * tr->chw, 4, shape, err);
  snprintf(path, sizeof path, "%s/step%lld_t.npy", dir, (long long)step);
  if (!st) st = npy_write_i64(path, tr->t, 1, &tr->local, err);
  snprintf(path, sizeof path, "%s/step%lld_y.npy", dir, (long long)step);
  if (!st) st = npy_write_i64(path, tr->y, 1, &tr->local, err);
  return st;
}

/* train.py's log line, on rank 0, to the output and log.txt. */
static void log_step(Trainer *tr, int64_t step, double loss, double steps_per_sec) {
  if (dist_rank(tr->dist) != 0) return;
  char line[256];
  snprintf(line, sizeof line, "(step=%07lld) Train Loss: %.4f, Train Steps/Sec: %.2f\n", (long long)step,
           loss, steps_per_sec);
  fputs(line, tr->o->out);
  fflush(tr->o->out);
  if (tr->log) {
    fputs(line, tr->log);
    fflush(tr->log);
  }
}

/* A grid of EMA samples, one column per class (pixel-space models). */
static DitStatus sample_grid(Trainer *tr, int64_t step, DitErr *err) {
  DitRuntime *sr = tr->sampler;
  const DitModelInfo *mi = dit_model_info(sr);
  float *w = dit_weights_flat(sr, NULL);
  DitStatus st = DIT_OK;
  /* EMA weights by name into the inference plan's layout */
  for (size_t i = 0; i < dit_num_weights(sr); i++) {
    DitWeightView a, b;
    dit_weight_view(sr, i, &a);
    size_t j = 0;
    for (; j < dit_num_weights(tr->rt); j++) {
      dit_weight_view(tr->rt, j, &b);
      if (!strcmp(a.name, b.name)) break;
    }
    if (j == dit_num_weights(tr->rt) || a.numel != b.numel)
      return dit_err(err, DIT_ERR_ARG, "%s: weight %s differs from the training plan's",
                     tr->o->sample_plan, a.name);
    memcpy(w + a.offset, tr->ema + b.offset, (size_t)a.numel * sizeof(float));
  }
  dit_weights_set(sr);
  int64_t classes = mi->num_classes, rows = mi->max_batch < 2 * classes ? mi->max_batch : 2 * classes;
  int64_t L = mi->latent_size, C = mi->in_channels, n = rows;
  int64_t *labels = malloc((size_t)n * sizeof *labels);
  float *x = malloc((size_t)(n * C * L * L) * sizeof(float));
  uint8_t *rgb = malloc((size_t)(n * L * L * 3));
  if (!labels || !x || !rgb) {
    st = dit_err(err, DIT_ERR_NOMEM, "out of memory");
    goto done;
  }
  for (int64_t i = 0; i < n; i++) labels[i] = i % classes;
  DitSampleOptions so = {.n = n, .labels = labels, .sampler = DIT_DDPM, .steps = tr->o->sample_steps,
                         .cfg_scale = 1.0f, .seed = stream_of(STREAM_SAMPLE, 0) ^ tr->s.seed};
  if (dit_sample(sr, &so, x)) {
    st = dit_err(err, DIT_ERR_ARG, "sampling: %s", dit_last_error(sr));
    goto done;
  }
  images_to_rgb8(x, n, C, L, L, rgb);
  char dir[4200], path[4300];
  snprintf(dir, sizeof dir, "%s/samples", tr->o->run_dir);
  if (mkdir(dir, 0777) && errno != EEXIST) {
    st = dit_err(err, DIT_ERR_IO, "%s: %s", dir, strerror(errno));
    goto done;
  }
  snprintf(path, sizeof path, "%s/%07lld.png", dir, (long long)step);
  st = png_write_grid(path, rgb, n, L, L, classes < n ? classes : n, err);
done:
  free(labels);
  free(x);
  free(rgb);
  return st;
}

static DitStatus open_all(Trainer *tr, DitErr *err) {
  const TrainOptions *o = tr->o;
  DitError oe;
  DitOptions opt = {.n_threads = o->threads, .device = "cpu"};
  int K = dist_size(tr->dist);
  if (dit_open(o->plan_path, &opt, &tr->rt, &oe)) return dit_err(err, oe.status, "%s", oe.message);
  const DitModelInfo *mi = dit_model_info(tr->rt);
  if (!mi->training)
    return dit_err(err, DIT_ERR_ARG, "%s is an inference plan; compile with ditc SPEC --mode train", o->plan_path);
  DitStatus st = dataset_open(o->data_path, &tr->ds, err);
  if (st) return st;
  int64_t L = mi->latent_size;
  if (dataset_channels(tr->ds) != mi->in_channels || dataset_height(tr->ds) != L || dataset_width(tr->ds) != L)
    return dit_err(err, DIT_ERR_ARG, "%s holds [%lld,%lld,%lld] samples; the model takes [%lld,%lld,%lld]",
                   o->data_path, (long long)dataset_channels(tr->ds), (long long)dataset_height(tr->ds),
                   (long long)dataset_width(tr->ds), (long long)mi->in_channels, (long long)L, (long long)L);
  if (dataset_num_classes(tr->ds) > mi->num_classes)
    return dit_err(err, DIT_ERR_ARG, "%s has %lld classes; the model has %lld", o->data_path,
                   (long long)dataset_num_classes(tr->ds), (long long)mi->num_classes);
  tr->B = tr->s.global_batch > 0 ? tr->s.global_batch : mi->max_batch * K;
  tr->s.global_batch = tr->B;
  if (tr->B % K || tr->B / K > mi->max_batch)
    return dit_err(err, DIT_ERR_ARG,
                   "a global batch of %lld over %d ranks needs %lld rows per rank; the plan takes %lld "
                   "(compile with --batch)", (long long)tr->B, K, (long long)(tr->B / K), (long long)mi->max_batch);
  tr->count = dataset_count(tr->ds);
  if (tr->count < tr->B)
    return dit_err(err, DIT_ERR_ARG, "%s holds %lld samples, fewer than one batch of %lld", o->data_path,
                   (long long)tr->count, (long long)tr->B);
  tr->spe = tr->count / tr->B; /* drop_last */
  tr->local = tr->B / K;
  tr->row0 = dist_rank(tr->dist) * tr->local;
  tr->chw = mi->in_channels * L * L;
  float *w = dit_weights_flat(tr->rt, &tr->n_floats);
  size_t fb = (size_t)tr->n_floats * sizeof(float);
  tr->m = calloc(1, fb + 4);
  tr->v = calloc(1, fb + 4);
  tr->ema = calloc(1, fb + 4);
  tr->perm = malloc((size_t)tr->count * sizeof(int64_t));
  tr->x0 = malloc((size_t)(tr->local * tr->chw) * sizeof(float));
  tr->noise_all = malloc((size_t)(tr->B * tr->chw) * sizeof(float));
  tr->losses = malloc((size_t)tr->local * sizeof(float));
  tr->t = malloc((size_t)tr->local * sizeof(int64_t));
  tr->y = malloc((size_t)tr->local * sizeof(int64_t));
  if (!tr->m || !tr->v || !tr->ema || !tr->perm || !tr->x0 || !tr->noise_all || !tr->losses || !tr->t || !tr->y)
    return dit_err(err, DIT_ERR_NOMEM, "out of memory for the training state");
  tr->perm_epoch = -1;
  tr->s.rt = tr->rt;
  tr->s.w = w;
  tr->s.ema = tr->ema;
  tr->s.m = tr->m;
  tr->s.v = tr->v;
  tr->s.n_floats = tr->n_floats;
  if (o->sample_plan && o->sample_every > 0) {
    if (dit_open(o->sample_plan, &opt, &tr->sampler, &oe)) return dit_err(err, oe.status, "%s", oe.message);
    if (dit_model_info(tr->sampler)->training || dit_model_info(tr->sampler)->image_size != L)
      return dit_err(err, DIT_ERR_ARG, "%s: sample grids need an inference plan of a pixel-space model",
                     o->sample_plan);
  }
  return DIT_OK;
}

/* Weights at step 0: a checkpoint, or the official init; the EMA starts as a copy. */
static DitStatus start_weights(Trainer *tr, DitErr *err) {
  const TrainOptions *o = tr->o;
  if (o->init_path) {
    if (dit_load_weights(tr->rt, o->init_path))
      return dit_err(err, DIT_ERR_FORMAT, "%s", dit_last_error(tr->rt));
  } else {
    train_official_init(tr->rt, tr->s.seed);
  }
  memcpy(tr->ema, tr->s.w, (size_t)tr->n_floats * sizeof(float));
  tr->s.step = 0;
  return DIT_OK;
}

/* AdamW on every trained weight, then the EMA of every weight. */
static void update(Trainer *tr) {
  const float *g = dit_grads_flat(tr->rt);
  CpuCtx c = {.n_threads = tr->o->threads > 0 ? tr->o->threads : 1};
  AdamWParams p = {tr->s.lr, tr->s.beta1, tr->s.beta2, tr->s.eps, tr->s.weight_decay, tr->s.step};
  for (size_t i = 0; i < dit_num_weights(tr->rt); i++) {
    DitWeightView v;
    dit_weight_view(tr->rt, i, &v);
    if (!v.frozen)
      cpu_adamw(&c, tr->s.w + v.offset, g + v.offset, tr->m + v.offset, tr->v + v.offset, v.numel, &p);
    cpu_ema(&c, tr->ema + v.offset, tr->s.w + v.offset, v.numel, tr->s.ema_decay);
  }
}

DitStatus train_run(const TrainOptions *o, Dist *dist, DitErr *err) {
  Trainer tr = {.o = o, .dist = dist};
  DitStatus st;
  char path[4200];
  tr.s.seed = o->seed;
  tr.s.global_batch = o->global_batch;
  tr.s.lr = o->lr, tr.s.beta1 = o->beta1, tr.s.beta2 = o->beta2, tr.s.eps = o->eps;
  tr.s.weight_decay = o->weight_decay, tr.s.ema_decay = o->ema_decay;
  int created = 0, bad_dir = run_dir_check(o->run_dir, o->resume, o->overwrite, err) != DIT_OK, any_bad = 0;
  /* every rank checks before rank 0 creates anything; all learn of any failure */
  st = dist_any_failed(dist, bad_dir, &any_bad, err);
  if (!st && (bad_dir || any_bad)) st = bad_dir ? err->status : dit_err(err, DIT_ERR_ARG, "another rank failed");
  if (!st) st = open_all(&tr, err);
  if (!st && dist_rank(dist) == 0) st = run_dir_prepare(o->run_dir, o->overwrite, &created, err);
  if (st) goto done;
  if (o->resume) {
    st = train_ckpt_load(o->run_dir, &tr.s, err);
    if (st) goto done;
    if (tr.s.global_batch != tr.B) {
      st = dit_err(err, DIT_ERR_ARG, "%s was trained with a global batch of %lld, not %lld", o->run_dir,
                   (long long)tr.s.global_batch, (long long)tr.B);
      goto done;
    }
    dit_weights_set(tr.rt);
    if (dist_rank(dist) == 0) st = run_dir_trim_loss(o->run_dir, tr.s.step, err);
    if (st) goto done;
  } else {
    st = start_weights(&tr, err);
    if (st) goto done;
  }
  if (dist_rank(dist) == 0) {
    snprintf(path, sizeof path, "%s/log.txt", o->run_dir);
    tr.log = fopen(path, "a");
  }
  char loss_path[4200];
  snprintf(loss_path, sizeof loss_path, "%s/loss.tsv", o->run_dir);
  FILE *loss_log = dist_rank(dist) == 0 ? fopen(loss_path, "a") : NULL;
  if (dist_rank(dist) == 0 && (!tr.log || !loss_log)) {
    st = dit_err(err, DIT_ERR_IO, "%s: cannot write the logs: %s", o->run_dir, strerror(errno));
    if (loss_log) fclose(loss_log);
    goto done;
  }
  if (dist_rank(dist) == 0) {
    char head[512];
    snprintf(head, sizeof head,
             "training %s: %lld samples, global batch %lld over %d rank(s), lr %g, EMA %g, seed %llu, "
             "from step %lld to %lld\n",
             dit_model_info(tr.rt)->name, (long long)tr.count, (long long)tr.B, dist_size(dist), tr.s.lr,
             tr.s.ema_decay, (unsigned long long)tr.s.seed, (long long)tr.s.step, (long long)o->steps);
    fputs(head, o->out);
    fputs(head, tr.log);
  }
  double t_last = now_s(), loss_acc = 0;
  int64_t since = 0;
  while (tr.s.step < o->steps) {
    int failed = make_batch(&tr, tr.s.step, err) != DIT_OK;
    if (!failed && o->dump_batches) failed = dump_batch(&tr, tr.s.step, err) != DIT_OK;
    DitStatus lst = failed ? DIT_OK : dit_loss(tr.rt, tr.local, tr.x0, tr.t, tr.y, tr.noise_all + tr.row0 * tr.chw,
                                               1, 1.0f / (float)tr.B, tr.losses);
    if (lst) {
      dit_err(err, lst, "step %lld: %s", (long long)tr.s.step + 1, dit_last_error(tr.rt));
      failed = 1;
    }
    int any = 0;
    st = dist_any_failed(dist, failed, &any, err);
    if (!st && failed) st = err->status ? err->status : DIT_ERR_ARG; /* this rank's own failure, in err */
    if (st) goto close_logs;
    if (any) {
      st = dit_err(err, DIT_ERR_ARG, "another rank failed");
      goto close_logs;
    }
    double sum = 0;
    for (int64_t i = 0; i < tr.local; i++) sum += tr.losses[i];
    st = dist_allreduce_sum_f64(dist, &sum, 1, err);
    if (!st && dist_size(dist) > 1) st = dist_allreduce_sum_f32(dist, dit_grads_flat(tr.rt), tr.n_floats, err);
    if (st) goto close_logs;
    tr.s.step++;
    update(&tr);
    double mean = sum / (double)tr.B;
    if (!isfinite(mean)) { /* each rank's losses were finite: the sum overflowed */
      st = dit_err(err, DIT_ERR_NONFINITE, "step %lld: the mean loss is not finite", (long long)tr.s.step);
      goto close_logs;
    }
    /* a row a step, flushed: a kill loses no row before the last checkpoint */
    if (loss_log && (fprintf(loss_log, "%lld\t%.9g\n", (long long)tr.s.step, mean) < 0 || fflush(loss_log))) {
      st = dit_err(err, DIT_ERR_IO, "%s: cannot write: %s", loss_path, strerror(errno));
      goto close_logs;
    }
    loss_acc += mean;
    since++;
    if (tr.s.step % o->log_every == 0 || tr.s.step == o->steps) {
      double t_now = now_s();
      log_step(&tr, tr.s.step, loss_acc / (double)since, (double)since / (t_now - t_last));
      t_last = t_now;
      loss_acc = 0;
      since = 0;
    }
    bool ckpt = (o->ckpt_every > 0 && tr.s.step % o->ckpt_every == 0) || tr.s.step == o->steps;
    if (ckpt && dist_rank(dist) == 0) {
      st = train_ckpt_save(o->run_dir, &tr.s, err);
      if (st) goto close_logs;
      fprintf(tr.log, "saved checkpoint %s/checkpoints/%07lld.safetensors\n", o->run_dir, (long long)tr.s.step);
    }
    if (tr.sampler && dist_rank(dist) == 0 && (tr.s.step % o->sample_every == 0 || tr.s.step == o->steps)) {
      st = sample_grid(&tr, tr.s.step, err);
      if (st) goto close_logs;
    }
    if (ckpt) {
      st = dist_barrier(dist, err);
      if (st) goto close_logs;
    }
  }
close_logs:
  if (loss_log) fclose(loss_log);
  if (st && tr.log) fprintf(tr.log, "error: %s\n", err->msg);
done:
  if (st) run_dir_abandon(o->run_dir, created);
  if (tr.log) fclose(tr.log);
  free(tr.m);
  free(tr.v);
  free(tr.ema);
  free(tr.perm);
  free(tr.x0);
  free(tr.noise_all);
  free(tr.losses);
  free(tr.t);
  free(tr.y);
  dataset_close(tr.ds);
  dit_close(tr.sampler);
  dit_close(tr.rt);
  return st;
}
