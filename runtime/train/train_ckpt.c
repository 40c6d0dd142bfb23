/* train_ckpt.c: see train_ckpt.h. */
#define _POSIX_C_SOURCE 200809L
#include "train_ckpt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "atomic_write.h"
#include "safetensors_write.h"
#include "weights/checkpoint.h"
#include "weights/torch_save.h"

enum { NAME_MAX_BYTES = 512 };

static DitStatus make_dir(const char *path, DitErr *err) {
  if (mkdir(path, 0777) == 0 || errno == EEXIST) return DIT_OK;
  return dit_err(err, DIT_ERR_IO, "%s: cannot create directory: %s", path, strerror(errno));
}

/* Arena of the tensor names one checkpoint needs. */
typedef struct Names {
  char *buf;
  size_t used, cap;
} Names;

static const char *name_of(Names *nm, const char *prefix, const char *key, const char *suffix) {
  size_t need = strlen(prefix) + strlen(key) + strlen(suffix) + 1;
  if (nm->used + need > nm->cap) return NULL;
  char *p = nm->buf + nm->used;
  snprintf(p, need, "%s%s%s", prefix, key, suffix);
  nm->used += need;
  return p;
}

static void add_f32(StTensor *t, const char *name, const DitWeightView *v, const float *flat) {
  t->name = name;
  t->dtype = "F32";
  t->rank = v->rank;
  for (int d = 0; d < v->rank; d++) t->shape[d] = v->dims[d];
  t->data = flat + v->offset;
  t->bytes = (uint64_t)v->numel * sizeof(float);
}

/* DIR/NNNNNNN.pt: {"model": state dict, "ema": state dict} for torch.load
 * (DiT's sample.py takes its "ema"). */
static DitStatus save_torch_pt(const char *dir, const TrainState *s, DitErr *err) {
  size_t nw = dit_num_weights(s->rt);
  TorchSaveTensor *t = calloc(2 * nw + 1, sizeof *t);
  if (!t) return dit_err(err, DIT_ERR_NOMEM, "out of memory");
  for (size_t i = 0; i < nw; i++) {
    DitWeightView v;
    dit_weight_view(s->rt, i, &v);
    TorchSaveTensor *m = &t[i], *e = &t[nw + i];
    *m = (TorchSaveTensor){.name = v.name, .dtype = CK_F32, .rank = v.rank};
    for (int d = 0; d < v.rank; d++) m->shape[d] = v.dims[d];
    *e = *m;
    m->data = s->w + v.offset;
    e->data = s->ema + v.offset;
  }
  const TorchSaveDict dicts[2] = {{"model", t, nw}, {"ema", t + nw, nw}};
  char path[4200];
  snprintf(path, sizeof path, "%s/%07lld.pt", dir, (long long)s->step);
  DitStatus st = torch_save(path, dicts, 2, NULL, err);
  free(t);
  return st;
}

DitStatus train_ckpt_save(const char *run_dir, const TrainState *s, DitErr *err) {
  size_t nw = dit_num_weights(s->rt);
  StTensor *ts = calloc(4 * nw + 2, sizeof *ts);
  Names nm = {calloc(1, (4 * nw + 2) * NAME_MAX_BYTES), 0, (4 * nw + 2) * NAME_MAX_BYTES};
  char dir[4096], path[4200], epath[4200], latest[4200], text[64];
  DitStatus st;
  if (!ts || !nm.buf) {
    st = dit_err(err, DIT_ERR_NOMEM, "out of memory");
    goto done;
  }
  snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
  st = make_dir(dir, err);
  if (st) goto done;
  int64_t n = 0, n_ema = 0;
  /* the EMA-only file first: official keys */
  for (size_t i = 0; i < nw; i++) {
    DitWeightView v;
    dit_weight_view(s->rt, i, &v);
    add_f32(&ts[n++], v.name, &v, s->ema);
  }
  snprintf(epath, sizeof epath, "%s/%07lld-ema.safetensors", dir, (long long)s->step);
  static const char *const meta[] = {"format", "pt"};
  st = st_write(epath, ts, n, meta, 1, err);
  if (st) goto done;
  n_ema = n;
  n = 0;
  for (size_t i = 0; i < nw; i++) {
    DitWeightView v;
    dit_weight_view(s->rt, i, &v);
    const char *a = name_of(&nm, "model.", v.name, ""), *b = name_of(&nm, "ema.", v.name, "");
    if (!a || !b) {
      st = dit_err(err, DIT_ERR_NOMEM, "weight names too long");
      goto done;
    }
    add_f32(&ts[n++], a, &v, s->w);
    add_f32(&ts[n++], b, &v, s->ema);
    if (v.frozen) continue;
    const char *c = name_of(&nm, "opt.", v.name, ".exp_avg"), *d = name_of(&nm, "opt.", v.name, ".exp_avg_sq");
    if (!c || !d) {
      st = dit_err(err, DIT_ERR_NOMEM, "weight names too long");
      goto done;
    }
    add_f32(&ts[n++], c, &v, s->m);
    add_f32(&ts[n++], d, &v, s->v);
  }
  int64_t state[3] = {s->step, (int64_t)s->seed, s->global_batch};
  double hp[6] = {s->lr, s->beta1, s->beta2, s->eps, s->weight_decay, s->ema_decay};
  ts[n++] = (StTensor){"train.state", "I64", 1, {3}, state, sizeof state};
  ts[n++] = (StTensor){"train.hparams", "F64", 1, {6}, hp, sizeof hp};
  snprintf(path, sizeof path, "%s/%07lld.safetensors", dir, (long long)s->step);
  st = st_write(path, ts, n, meta, 1, err);
  if (st) goto done;
  st = save_torch_pt(dir, s, err);
  if (st) goto done;
  snprintf(latest, sizeof latest, "%s/latest", dir);
  snprintf(text, sizeof text, "%lld\n", (long long)s->step);
  st = atomic_write_bytes(latest, text, strlen(text), err);
  (void)n_ema;
done:
  free(ts);
  free(nm.buf);
  return st;
}

/* A float32 tensor of the checkpoint into dst, its shape checked against v. */
static DitStatus read_into(const Checkpoint *ck, const char *path, const char *name,
                           const DitWeightView *v, float *dst, DitErr *err) {
  const CkptTensor *t = ckpt_find(ck, name);
  if (!t) return dit_err(err, DIT_ERR_FORMAT, "%s: no tensor '%s'", path, name);
  int same = t->rank == v->rank && t->numel == v->numel;
  for (int d = 0; same && d < v->rank; d++) same = t->shape[d] == v->dims[d];
  if (!same || t->dtype != CK_F32)
    return dit_err(err, DIT_ERR_FORMAT, "%s: '%s' is not float32 of the plan's shape", path, name);
  return ckpt_read_f32(ck, t, dst, err);
}

static DitStatus read_raw(const Checkpoint *ck, const char *path, const char *name, CkptDType dt,
                          int64_t numel, void *dst, DitErr *err) {
  const CkptTensor *t = ckpt_find(ck, name);
  if (!t || t->dtype != dt || t->numel != numel || t->rank != 1)
    return dit_err(err, DIT_ERR_FORMAT, "%s: '%s' is missing or malformed", path, name);
  memcpy(dst, t->data, (size_t)numel * 8); /* little-endian, as this runtime */
  return DIT_OK;
}

DitStatus train_ckpt_load(const char *run_dir, TrainState *s, DitErr *err) {
  char latest[4200], path[4200], line[64] = {0};
  Checkpoint *ck = NULL;
  DitStatus st = DIT_OK;
  char *names = malloc(NAME_MAX_BYTES);
  if (!names) return dit_err(err, DIT_ERR_NOMEM, "out of memory");
  snprintf(latest, sizeof latest, "%s/checkpoints/latest", run_dir);
  FILE *f = fopen(latest, "r");
  long long step = -1;
  if (!f || !fgets(line, sizeof line, f) || sscanf(line, "%lld", &step) != 1 || step < 0) {
    st = dit_err(err, DIT_ERR_IO, "%s: no checkpoint to resume from (%s)", run_dir,
                 f ? "unreadable 'latest'" : "checkpoints/latest is missing");
    if (f) fclose(f);
    goto done;
  }
  fclose(f);
  snprintf(path, sizeof path, "%s/checkpoints/%07lld.safetensors", run_dir, step);
  st = ckpt_open(path, &ck, err);
  if (st) goto done;
  int64_t state[3];
  double hp[6];
  st = read_raw(ck, path, "train.state", CK_I64, 3, state, err);
  if (!st) st = read_raw(ck, path, "train.hparams", CK_F64, 6, hp, err);
  if (st) goto done;
  if (state[0] != step) {
    st = dit_err(err, DIT_ERR_FORMAT, "%s: holds step %lld, not %lld", path, (long long)state[0], step);
    goto done;
  }
  s->step = state[0];
  s->seed = (uint64_t)state[1];
  s->global_batch = state[2];
  s->lr = hp[0], s->beta1 = hp[1], s->beta2 = hp[2], s->eps = hp[3];
  s->weight_decay = hp[4], s->ema_decay = hp[5];
  for (size_t i = 0; i < dit_num_weights(s->rt) && !st; i++) {
    DitWeightView v;
    dit_weight_view(s->rt, i, &v);
    snprintf(names, NAME_MAX_BYTES, "model.%s", v.name);
    st = read_into(ck, path, names, &v, s->w + v.offset, err);
    if (st) break;
    snprintf(names, NAME_MAX_BYTES, "ema.%s", v.name);
    st = read_into(ck, path, names, &v, s->ema + v.offset, err);
    if (st || v.frozen) continue;
    snprintf(names, NAME_MAX_BYTES, "opt.%s.exp_avg", v.name);
    st = read_into(ck, path, names, &v, s->m + v.offset, err);
    if (st) break;
    snprintf(names, NAME_MAX_BYTES, "opt.%s.exp_avg_sq", v.name);
    st = read_into(ck, path, names, &v, s->v + v.offset, err);
  }
done:
  ckpt_close(ck);
  free(names);
  return st;
}
