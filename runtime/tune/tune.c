/* tune.c: dit_tune, the autotuner (docs/autotune.md). On random inputs at
 * the plan's real shapes, the forward's ops run in order; at each op with
 * choices (backend.h: kernel slots, cuBLASLt algorithms, CPU knobs) every
 * choice runs on the op's true inputs, is checked against the default's
 * output (within the plan's dtype tolerance, and bitwise the same on a
 * second run), and is timed (median of repeats); the fastest correct one
 * wins if it beats the default by 3%. An op's inputs that its outputs
 * overwrite are saved and restored around every run. A choice that fails
 * or is wrong is reported and never chosen. The sampler's ops are not tuned;
 * a VAE plan's ops are, both parts. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../runtime_internal.h"

enum { MAX_CHOICES = 64, MAX_SAVED = 8 };
static const uint32_t KINDS[] = {PLAN_TUNE_SLOT, PLAN_TUNE_GEMM_ALGO, PLAN_TUNE_CPU_KNOBS};
#define N_KINDS (sizeof KINDS / sizeof KINDS[0])

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ||a - b|| / ||b|| in double; b all zero: ||a - b||. */
static double rel_err(const float *a, const float *b, int64_t n) {
  double d = 0, r = 0;
  for (int64_t i = 0; i < n; i++) {
    double e = (double)a[i] - (double)b[i];
    d += e * e;
    r += (double)b[i] * (double)b[i];
  }
  if (isnan(d)) return INFINITY;
  return r > 0 ? sqrt(d / r) : sqrt(d);
}

/* The relative error a choice may have against the default: a different
 * order of the same float32 sums, or of bf16 roundings. */
static double tolerance(const PlanView *pv) {
  switch ((PlanDType)pv->header->dtype) {
  case PLAN_DT_F32: return 1e-5;
  case PLAN_DT_TF32: return 2e-3;
  case PLAN_DT_BF16: return 1e-2;
  }
  return 1e-5;
}

static int64_t value_floats(const DitRuntime *rt, uint32_t id, int64_t n) {
  int64_t m = exec_numel(&rt->ex, id, n);
  return rt->pv.values[id].dtype == PLAN_VDT_I64 ? 2 * m : m; /* fetch writes raw int64 as two floats' bytes */
}

static bool overlap(const PlanValue *a, const PlanValue *b) {
  return a->storage == PLAN_STORE_ARENA && b->storage == PLAN_STORE_ARENA && a->offset < b->offset + b->bytes &&
         b->offset < a->offset + a->bytes;
}

/* One op's state during tuning: its outputs, and the inputs they overwrite. */
typedef struct OpIo {
  uint32_t out[2];
  int n_out;
  uint32_t saved[MAX_SAVED];
  float *saved_data[MAX_SAVED];
  int n_saved;
  float *ref[2], *got[2], *again[2]; /* the default's outputs, a choice's, its second run's */
} OpIo;

static void op_io_free(OpIo *io) {
  for (int k = 0; k < io->n_saved; k++) free(io->saved_data[k]);
  for (int k = 0; k < 2; k++) free(io->ref[k]), free(io->got[k]), free(io->again[k]);
  memset(io, 0, sizeof *io);
}

static DitStatus op_io_init(DitRuntime *rt, size_t i, int64_t n, OpIo *io) {
  const PlanView *pv = &rt->pv;
  const PlanOp *op = &pv->ops[i];
  memset(io, 0, sizeof *io);
  io->out[io->n_out++] = op->out;
  if (op->out2 != DIT_PLAN_NONE) io->out[io->n_out++] = op->out2;
  for (int k = 0; k < io->n_out; k++) {
    size_t bytes = (size_t)value_floats(rt, io->out[k], n) * sizeof(float);
    io->ref[k] = malloc(bytes), io->got[k] = malloc(bytes), io->again[k] = malloc(bytes);
    if (!io->ref[k] || !io->got[k] || !io->again[k]) return dit_err(&rt->err, DIT_ERR_NOMEM, "out of memory");
  }
  for (uint32_t j = 0; j < op->n_in; j++) {
    bool clobbered = false;
    for (int k = 0; k < io->n_out; k++) clobbered |= overlap(&pv->values[op->in[j]], &pv->values[io->out[k]]);
    if (!clobbered) continue;
    if (io->n_saved == MAX_SAVED) return dit_err(&rt->err, DIT_ERR_INTERNAL, "op %zu overwrites too many inputs", i);
    uint32_t id = op->in[j];
    float *d = malloc((size_t)value_floats(rt, id, n) * sizeof(float));
    if (!d) return dit_err(&rt->err, DIT_ERR_NOMEM, "out of memory");
    io->saved[io->n_saved] = id;
    io->saved_data[io->n_saved++] = d;
    DitStatus st = rt->be->vt->fetch(rt->be, id, n, d, &rt->err);
    if (st) return st;
  }
  return DIT_OK;
}

/* Restores the op's overwritten inputs, then runs it once; *ms its time. */
static DitStatus run_once(DitRuntime *rt, size_t i, int64_t n, OpIo *io, double *ms) {
  for (int k = 0; k < io->n_saved; k++) {
    DitStatus st = rt->be->vt->put(rt->be, io->saved[k], n, io->saved_data[k], &rt->err);
    if (st) return st;
  }
  return rt->be->vt->time_ops(rt->be, i, i + 1, n, ms, &rt->err);
}

static DitStatus fetch_outs(DitRuntime *rt, int64_t n, OpIo *io, float **dst) {
  for (int k = 0; k < io->n_out; k++) {
    DitStatus st = rt->be->vt->fetch(rt->be, io->out[k], n, dst[k], &rt->err);
    if (st) return st;
  }
  return DIT_OK;
}

static DitStatus time_choice(DitRuntime *rt, size_t i, int64_t n, OpIo *io, int repeats, double *us) {
  double t[64];
  if (repeats > 64) repeats = 64;
  for (int r = 0; r < repeats; r++) {
    DitStatus st = run_once(rt, i, n, io, &t[r]);
    if (st) return st;
  }
  *us = median(t, repeats) * 1e3;
  return DIT_OK;
}

/* "threads 1, tile 128x512", the slot's instantiation, "cuBLASLt algorithm 3 of 8". */
static void describe(const DitRuntime *rt, const PlanTuneChoice *c, int k, int count, char *b, size_t cap) {
  const PlanCudaView *cv = rt->pv.cubin.h ? &rt->pv.cubin : &rt->pv.ptx;
  if (c->kind == PLAN_TUNE_SLOT) {
    snprintf(b, cap, "%s", plan_string(&rt->pv, cv->slots[c->slot].name));
  } else if (c->kind == PLAN_TUNE_GEMM_ALGO) {
    snprintf(b, cap, "cuBLASLt algorithm %d of %d", k + 1, count);
  } else {
    size_t len = 0;
    static const char *const names[] = {"threads", "tile rows", "tile cols", "query block"};
    for (int q = 0; q < 4; q++)
      if (c->cpu[q] && len < cap) len += (size_t)snprintf(b + len, cap - len, "%s%s %d", len ? ", " : "", names[q], c->cpu[q]);
    if (!len) snprintf(b, cap, "default");
  }
}

static void shape_of(const DitRuntime *rt, uint32_t id, int64_t n, char *b, size_t cap) {
  size_t len = 0;
  const PlanValue *v = &rt->pv.values[id];
  b[0] = '\0';
  for (uint32_t k = 0; k < v->rank && len < cap; k++)
    len += (size_t)snprintf(b + len, cap - len, "%s%lld", k ? "x" : "", (long long)exec_dim(&rt->ex, id, k, n));
}

typedef struct TuneRun {
  DitRuntime *rt;
  int64_t n;
  int repeats;
  double tol;
  PlanTuneChoice *kept; /* the chosen non-defaults */
  size_t n_kept, cap_kept;
} TuneRun;

static DitStatus keep(TuneRun *tr, const PlanTuneChoice *c) {
  if (tr->n_kept == tr->cap_kept) {
    size_t cap = tr->cap_kept ? 2 * tr->cap_kept : 64;
    PlanTuneChoice *p = realloc(tr->kept, cap * sizeof *p);
    if (!p) return dit_err(&tr->rt->err, DIT_ERR_NOMEM, "out of memory");
    tr->kept = p, tr->cap_kept = cap;
  }
  tr->kept[tr->n_kept++] = *c;
  return DIT_OK;
}

/* Tunes one kind of op i's choices ch[0..count); row gets the figures. */
static DitStatus tune_kind(TuneRun *tr, size_t i, OpIo *io, PlanTuneChoice *ch, int count, DitTuneOp *row) {
  DitRuntime *rt = tr->rt;
  Backend *be = rt->be;
  double best_us = 0, t_ms;
  int best = 0;
  DitStatus st = be->vt->apply(be, &ch[0], &rt->err);
  if (!st) st = run_once(rt, i, tr->n, io, &t_ms);
  if (!st) st = fetch_outs(rt, tr->n, io, io->ref);
  if (!st) st = time_choice(rt, i, tr->n, io, tr->repeats, &best_us);
  if (st) return st; /* the default itself must run */
  double default_us = best_us;
  for (int k = 1; k < count; k++) {
    char what[192];
    describe(rt, &ch[k], k, count, what, sizeof what);
    row->tried++;
    double us = 0, worst = 0;
    DitStatus cs = be->vt->apply(be, &ch[k], &rt->err);
    if (!cs) cs = run_once(rt, i, tr->n, io, &t_ms);
    if (!cs) cs = fetch_outs(rt, tr->n, io, io->got);
    if (!cs) cs = run_once(rt, i, tr->n, io, &t_ms);
    if (!cs) cs = fetch_outs(rt, tr->n, io, io->again);
    if (cs) { /* failed to apply or to run: skipped */
      row->failed++;
      if (!row->note[0]) snprintf(row->note, sizeof row->note, "%.100s failed: %.140s", what, rt->err.msg);
      rt->err.msg[0] = '\0';
      if ((st = be->vt->apply(be, &ch[0], &rt->err))) return st;
      continue;
    }
    bool same_twice = true;
    for (int o = 0; o < io->n_out; o++) {
      int64_t m = value_floats(rt, io->out[o], tr->n);
      double e = rel_err(io->got[o], io->ref[o], m);
      worst = e > worst ? e : worst;
      same_twice &= memcmp(io->got[o], io->again[o], (size_t)m * sizeof(float)) == 0;
    }
    if (!(worst <= tr->tol) || !same_twice) {
      row->wrong++;
      if (row->note[0]) continue;
      if (same_twice)
        snprintf(row->note, sizeof row->note, "%.100s rejected: its result differs from the default's by %.2g "
                 "(tolerance %.2g)", what, worst, tr->tol);
      else
        snprintf(row->note, sizeof row->note, "%.100s rejected: two runs gave different results", what);
      continue;
    }
    if ((cs = time_choice(rt, i, tr->n, io, tr->repeats, &us))) return cs;
    if (us < best_us) best_us = us, best = k;
  }
  if (best && best_us > 0.97 * default_us) best = 0; /* within noise: keep the default */
  st = be->vt->apply(be, &ch[best], &rt->err);
  if (st) return st;
  row->default_us += default_us;
  row->tuned_us += best ? best_us : default_us;
  if (best) {
    ch[best].default_us = default_us;
    ch[best].tuned_us = best_us;
    char what[192];
    describe(rt, &ch[best], best, count, what, sizeof what);
    size_t len = strcmp(row->chosen, "default") == 0 ? 0 : strlen(row->chosen);
    snprintf(row->chosen + len, sizeof row->chosen - len, "%s%s", len ? "; " : "", what);
    if ((st = keep(tr, &ch[best]))) return st;
  }
  return DIT_OK;
}

/* The forward's random inputs: a DiT's x ~ N(0, 1), t in [0, 1000) and y in
 * [0, num_classes); a VAE's named inputs (z ~ 0.18215 N(0, 1), an image
 * uniform in [-1, 1], noise ~ N(0, 1)). The forward is every op of a VAE
 * plan (both parts), a DiT's forward ops; its results, a DiT's out, a
 * VAE's decoded and latent. */
typedef struct TuneInputs {
  float *x;
  int64_t *t, *y;
  uint32_t vid[3], out[2];
  float *v[3];
  int n_v, n_out;
  size_t end; /* the forward's ops: [0, end) */
} TuneInputs;

static void inputs_free(TuneInputs *in) {
  free(in->x), free(in->t), free(in->y);
  for (int k = 0; k < in->n_v; k++) free(in->v[k]);
}

static DitStatus inputs_init(DitRuntime *rt, int64_t n, uint64_t seed, TuneInputs *in) {
  const PlanView *pv = &rt->pv;
  const PlanModel *m = pv->model;
  memset(in, 0, sizeof *in);
  if (rt->vae) {
    static const char *const names[] = {"z", "image", "noise"}, *const outs[] = {"decoded", "latent"};
    in->end = pv->n_ops;
    for (int k = 0; k < 3; k++) {
      const PlanIoName *e = plan_io_named(pv, names[k]);
      if (!e) continue;
      int64_t c = value_floats(rt, e->value, n);
      float *d = malloc((size_t)c * sizeof *d);
      if (!d) return dit_err(&rt->err, DIT_ERR_NOMEM, "out of memory");
      dit_randn_stream(seed, (uint64_t)k, d, c);
      for (int64_t i = 0; i < c; i++) d[i] = k == 0 ? 0.18215f * d[i] : k == 1 ? d[i] / (1.0f + fabsf(d[i])) : d[i];
      in->vid[in->n_v] = e->value;
      in->v[in->n_v++] = d;
    }
    for (int k = 0; k < 2; k++) {
      const PlanIoName *e = plan_io_named(pv, outs[k]);
      if (e) in->out[in->n_out++] = e->value;
    }
    return DIT_OK;
  }
  int64_t xs = m->in_channels * m->latent_size * m->latent_size;
  in->end = pv->io->n_forward_ops;
  in->out[in->n_out++] = pv->io->out;
  in->x = malloc((size_t)(n * xs) * sizeof *in->x);
  in->t = malloc((size_t)n * sizeof *in->t), in->y = malloc((size_t)n * sizeof *in->y);
  if (!in->x || !in->t || !in->y) return dit_err(&rt->err, DIT_ERR_NOMEM, "out of memory");
  dit_randn_stream(seed, 0, in->x, n * xs);
  for (int64_t r = 0; r < n; r++) {
    in->t[r] = (int64_t)((seed * 7919u + (uint64_t)r * 104729u) % 1000u);
    in->y[r] = (int64_t)((uint64_t)r * 31u % (uint64_t)(m->num_classes > 0 ? m->num_classes : 1));
  }
  return DIT_OK;
}

static DitStatus stage_inputs(DitRuntime *rt, int64_t n, const TuneInputs *in) {
  if (!rt->vae) {
    BackendStage s = {.row0 = 0, .rows = n, .x = in->x, .t = in->t, .y = in->y};
    return rt->be->vt->stage(rt->be, &s, &rt->err);
  }
  for (int k = 0; k < in->n_v; k++) {
    DitStatus st = rt->be->vt->put(rt->be, in->vid[k], n, in->v[k], &rt->err);
    if (st) return st;
  }
  return DIT_OK;
}

/* Median time of the whole forward. */
static DitStatus time_forward(DitRuntime *rt, int64_t n, const TuneInputs *in, int repeats, double *ms) {
  double v[64];
  if (repeats > 64) repeats = 64;
  for (int r = 0; r < repeats; r++) {
    DitStatus st = stage_inputs(rt, n, in);
    if (!st) st = rt->be->vt->time_ops(rt->be, 0, in->end, n, &v[r], &rt->err);
    if (st) return st;
  }
  *ms = median(v, repeats);
  return DIT_OK;
}

/* The forward's results into dst (their floats back to back). */
static DitStatus fetch_results(DitRuntime *rt, int64_t n, const TuneInputs *in, float *dst) {
  for (int k = 0; k < in->n_out; k++) {
    DitStatus st = rt->be->vt->fetch(rt->be, in->out[k], n, dst, &rt->err);
    if (st) return st;
    dst += value_floats(rt, in->out[k], n);
  }
  return DIT_OK;
}

/* Every op back to its defaults (a tuning applied at open included). */
static DitStatus reset_defaults(DitRuntime *rt, int64_t n, size_t end, PlanTuneChoice *ch) {
  for (size_t i = 0; i < end; i++)
    for (size_t k = 0; k < N_KINDS; k++) {
      int count = 0;
      DitStatus st = rt->be->vt->choices(rt->be, i, KINDS[k], n, ch, MAX_CHOICES, &count, &rt->err);
      if (!st && count > 0) st = rt->be->vt->apply(rt->be, &ch[0], &rt->err);
      if (st) return st;
    }
  return DIT_OK;
}

/* A VAE plan's readiness (rt_check_ready is the DiT's). */
static DitStatus vae_ready(DitRuntime *rt, int64_t n) {
  if (!rt->has_weights) return dit_err(&rt->err, DIT_ERR_ARG, "no weights are bound: call dit_load_weights first");
  if (n < 1 || n > (int64_t)rt->pv.header->max_batch)
    return dit_err(&rt->err, DIT_ERR_ARG, "%lld rows do not fit this plan (1 to %u)", (long long)n,
                   rt->pv.header->max_batch);
  return rt_sync_weights(rt);
}

void dit_tune_report_free(DitTuneReport *r) {
  if (!r) return;
  free(r->ops);
  memset(r, 0, sizeof *r);
}

DitStatus dit_tune(DitRuntime *rt, const DitTuneOptions *o, DitTuneReport *rep) {
  const PlanView *pv = &rt->pv;
  DitTuneOptions def = {0};
  if (!o) o = &def;
  memset(rep, 0, sizeof *rep);
  int64_t n = o->rows > 0 ? o->rows : (int64_t)pv->header->max_batch;
  TuneRun tr = {.rt = rt, .n = n, .repeats = o->repeats > 0 ? o->repeats : 5, .tol = tolerance(pv)};
  float *ref_out = NULL, *out = NULL;
  TuneInputs in = {0};
  PlanTuneChoice *ch = calloc(MAX_CHOICES, sizeof *ch);
  OpIo io = {0};
  DitStatus st = rt->vae ? vae_ready(rt, n) : rt_check_ready(rt, n);
  if (!st) st = inputs_init(rt, n, o->seed, &in);
  if (st) goto done;
  int64_t out_floats = 0;
  for (int k = 0; k < in.n_out; k++) out_floats += value_floats(rt, in.out[k], n);
  ref_out = malloc((size_t)out_floats * sizeof *ref_out), out = malloc((size_t)out_floats * sizeof *out);
  rep->ops = calloc(pv->n_ops ? pv->n_ops : 1, sizeof *rep->ops);
  if (!ref_out || !out || !rep->ops || !ch) {
    st = dit_err(&rt->err, DIT_ERR_NOMEM, "out of memory");
    goto done;
  }
  PlanTuning key;
  rt->be->vt->device_key(rt->be, &key);
  snprintf(rep->device, sizeof rep->device, "%s", rt->be->vt->name(rt->be));
  /* the untuned forward: its time and output */
  if ((st = reset_defaults(rt, n, in.end, ch))) goto done;
  if ((st = time_forward(rt, n, &in, tr.repeats, &rep->default_ms))) goto done;
  if ((st = fetch_results(rt, n, &in, ref_out))) goto done;
  /* the ops in order, each on the inputs the ops before it left */
  size_t n_fwd = in.end, total = 0, done_ops = 0;
  int counts[N_KINDS];
  for (size_t i = 0; i < n_fwd; i++) {
    int c = 0;
    for (size_t k = 0; k < N_KINDS && !st; k++) {
      int cnt = 0;
      st = rt->be->vt->choices(rt->be, i, KINDS[k], n, ch, MAX_CHOICES, &cnt, &rt->err);
      c |= cnt > 1;
    }
    if (st) goto done;
    total += (size_t)c;
  }
  double t0 = now_s();
  if ((st = stage_inputs(rt, n, &in))) goto done;
  for (size_t i = 0; i < n_fwd; i++) {
    bool any = false;
    for (size_t k = 0; k < N_KINDS; k++) {
      if ((st = rt->be->vt->choices(rt->be, i, KINDS[k], n, ch, MAX_CHOICES, &counts[k], &rt->err))) goto done;
      any |= counts[k] > 1;
    }
    double ms;
    if (!any || (o->budget_s > 0 && now_s() - t0 > o->budget_s)) { /* nothing to choose, or no time left */
      rep->out_of_budget += any;
      if ((st = rt->be->vt->time_ops(rt->be, i, i + 1, n, &ms, &rt->err))) goto done;
      continue;
    }
    DitTuneOp *row = &rep->ops[rep->n_ops++];
    row->op = i;
    row->op_name = plan_op_name(pv->ops[i].kind);
    shape_of(rt, pv->ops[i].out, n, row->shape, sizeof row->shape);
    snprintf(row->chosen, sizeof row->chosen, "default");
    if ((st = op_io_init(rt, i, n, &io))) goto done;
    for (size_t k = 0; k < N_KINDS; k++) {
      if (counts[k] < 2) continue;
      if ((st = rt->be->vt->choices(rt->be, i, KINDS[k], n, ch, MAX_CHOICES, &counts[k], &rt->err))) goto done;
      if ((st = tune_kind(&tr, i, &io, ch, counts[k], row))) goto done;
    }
    st = run_once(rt, i, n, &io, &ms); /* its outputs as chosen, for the ops after it */
    op_io_free(&io);
    if (st) goto done;
    if (o->progress) o->progress(o->progress_ctx, ++done_ops, total);
  }
  /* the tuned forward: its time, and its output against the untuned one */
  if ((st = time_forward(rt, n, &in, tr.repeats, &rep->tuned_ms))) goto done;
  if ((st = fetch_results(rt, n, &in, out))) goto done;
  rep->rel_err = rel_err(out, ref_out, out_floats);
  if (!(rep->rel_err <= 10 * tr.tol)) {
    st = dit_err(&rt->err, DIT_ERR_INTERNAL, "the tuned forward's output differs from the untuned one's by %.3g "
                 "(each op was within %.2g): the tuning is discarded", rep->rel_err, tr.tol);
    reset_defaults(rt, n, in.end, ch);
    goto done;
  }
  key.rows = (uint32_t)n;
  key.n_choices = (uint32_t)tr.n_kept;
  key.tuned_at = (int64_t)time(NULL);
  key.default_ms = rep->default_ms;
  key.tuned_ms = rep->tuned_ms;
  free(rt->tune_choices);
  rt->tune_choices = tr.kept;
  tr.kept = NULL;
  rt->tuning = key;
  rt->tuned = 1;
  snprintf(rt->tuning_info, sizeof rt->tuning_info, "tuned by dit tune on this device (%s): %zu ops changed",
           key.device, tr.n_kept);
done:
  op_io_free(&io);
  free(tr.kept);
  free(ch);
  inputs_free(&in);
  free(ref_out), free(out);
  if (st) dit_tune_report_free(rep);
  return rt_fail(rt, st);
}
