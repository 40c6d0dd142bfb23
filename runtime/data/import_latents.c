/* import_latents.c: pre-extracted float32 latents -> DITDATA (see import.h):
 * one stacked X/Y pair of .npy files, or fast-DiT's folders of per-sample
 * .npy files. Labels are read first (they are small and fix num_classes);
 * the per-sample feature files are then read one by one as the writer asks. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "import.h"
#include "npy.h"

typedef struct NameList {
  char **names; /* sorted, malloc'ed */
  int64_t n;
} NameList;

static void names_free(NameList *l) {
  for (int64_t i = 0; i < l->n; i++) free(l->names[i]);
  free(l->names);
  l->names = NULL;
  l->n = 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of dir as sorted(os.listdir(dir)) gives them, less hidden names. */
static DitStatus list_dir(const char *dir, NameList *out, DitErr *err) {
  DitStatus st = DIT_OK;
  int64_t cap = 0;
  out->names = NULL;
  out->n = 0;
  DIR *d = opendir(dir);
  if (!d) return dit_err(err, DIT_ERR_IO, "%s: cannot open folder: %s", dir, strerror(errno));
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    if (out->n == cap) {
      cap = cap ? cap * 2 : 1024;
      char **p = realloc(out->names, (size_t)cap * sizeof *p);
      if (!p) {
        st = dit_err(err, DIT_ERR_NOMEM, "out of memory");
        goto fail;
      }
      out->names = p;
    }
    if (!(out->names[out->n] = strdup(e->d_name))) {
      st = dit_err(err, DIT_ERR_NOMEM, "out of memory");
      goto fail;
    }
    out->n++;
  }
  closedir(d);
  if (out->n) qsort(out->names, (size_t)out->n, sizeof *out->names, cmp_str);
  return DIT_OK;
fail:
  closedir(d);
  names_free(out);
  return st;
}

static char *join(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s/%s", dir, name);
  return p;
}

typedef struct LatentSource {
  const LatentImport *li;
  int64_t variants, C, H, W;
  const float *x;        /* stacked: [N, V, C, H, W] */
  const int64_t *labels; /* [N] */
  NameList feats;        /* per-sample form */
} LatentSource;

/* Checks a feature array's shape: [V, C, H, W] (per-sample, lead = 1 or 2)
 * or [N, (2,) C, H, W] (stacked); fills C, H, W from it when s->C is still 0. */
static DitStatus check_feature_shape(const char *path, const NpyArray *a, int stacked, LatentSource *s,
                                     DitErr *err) {
  const char *want = stacked ? (s->li->flipped_included ? "[N, 2, C, H, W]" : "[N, C, H, W]")
                             : (s->li->flipped_included ? "[2, C, H, W]" : "[1, C, H, W]");
  int rank = stacked && s->li->flipped_included ? 5 : 4;
  int64_t lead = s->li->flipped_included ? 2 : 1;
  int lead_at = stacked ? (s->li->flipped_included ? 1 : -1) : 0;
  if (a->type != NPY_F32 || a->rank != rank || (lead_at >= 0 && a->shape[lead_at] != lead))
    return dit_err(err, DIT_ERR_FORMAT, "%s: expected float32 %s%s", path, want,
                   s->li->flipped_included ? " (unflipped, flipped)" : "");
  const int64_t *chw = a->shape + rank - 3;
  if (s->C == 0) {
    s->C = chw[0];
    s->H = chw[1];
    s->W = chw[2];
  } else if (chw[0] != s->C || chw[1] != s->H || chw[2] != s->W) {
    return dit_err(err, DIT_ERR_FORMAT, "%s: shape [%lld, %lld, %lld] differs from the first file's [%lld, %lld, %lld]",
                   path, (long long)chw[0], (long long)chw[1], (long long)chw[2], (long long)s->C,
                   (long long)s->H, (long long)s->W);
  }
  return DIT_OK;
}

static DitStatus fill_latent(void *vctx, int64_t i, void *sample, int64_t *label, DitErr *err) {
  LatentSource *s = vctx;
  size_t bytes = (size_t)(s->variants * s->C * s->H * s->W) * sizeof(float);
  *label = s->labels[i];
  if (s->x) {
    memcpy(sample, (const char *)s->x + (size_t)i * bytes, bytes);
    return DIT_OK;
  }
  DitStatus st;
  NpyArray a = {0};
  char *path = join(s->li->features_dir, s->feats.names[i]);
  if (!path) return dit_err(err, DIT_ERR_NOMEM, "out of memory");
  if ((st = npy_read(path, &a, err)) == DIT_OK) {
    LatentSource probe = *s; /* compares against the first file's C, H, W without writing s */
    st = check_feature_shape(path, &a, 0, &probe, err);
    if (!st) memcpy(sample, a.data, bytes);
  }
  npy_free(&a);
  free(path);
  return st;
}

/* Reads one label file: int [1] or a scalar. */
static DitStatus read_label(const char *dir, const char *name, int64_t *out, DitErr *err) {
  NpyArray a = {0};
  char *path = join(dir, name);
  if (!path) return dit_err(err, DIT_ERR_NOMEM, "out of memory");
  DitStatus st = npy_read(path, &a, err);
  if (!st && (a.type != NPY_I64 || a.numel != 1 || a.rank > 1))
    st = dit_err(err, DIT_ERR_FORMAT, "%s: expected one int64 or int32 label ([1] or a scalar)", path);
  if (!st) *out = ((const int64_t *)a.data)[0];
  npy_free(&a);
  free(path);
  return st;
}

DitStatus import_latents(const LatentImport *li, const char *out, DitErr *err) {
  DitStatus st = DIT_OK;
  LatentSource s = {li, li->flipped_included ? 2 : 1, 0, 0, 0, NULL, NULL, {NULL, 0}};
  NpyArray x = {0}, y = {0};
  NameList labs = {NULL, 0};
  int64_t *labels = NULL, n = 0;
  const char *label_src = li->y_path;
  if (li->flipped_included && li->flip_mirror) {
    st = dit_err(err, DIT_ERR_ARG, "--flipped-included and --flip-latents exclude each other");
    goto done;
  }
  if (li->x_path) { /* stacked */
    if ((st = npy_read(li->x_path, &x, err)) || (st = npy_read(li->y_path, &y, err))) goto done;
    if ((st = check_feature_shape(li->x_path, &x, 1, &s, err))) goto done;
    n = x.shape[0];
    if (y.type != NPY_I64 || y.rank != 1 || y.shape[0] != n) {
      st = dit_err(err, DIT_ERR_FORMAT, "%s: expected int64 or int32 labels [%lld] (the rows of %s)", li->y_path,
                   (long long)n, li->x_path);
      goto done;
    }
    s.x = x.data;
    s.labels = y.data;
  } else { /* fast-DiT folders */
    label_src = li->labels_dir;
    if ((st = list_dir(li->features_dir, &s.feats, err)) || (st = list_dir(li->labels_dir, &labs, err))) goto done;
    n = s.feats.n;
    if (n == 0 || labs.n != n) {
      st = dit_err(err, DIT_ERR_FORMAT, "%s holds %lld files but %s holds %lld (they pair up in sorted order)",
                   li->features_dir, (long long)n, li->labels_dir, (long long)labs.n);
      goto done;
    }
    if (!(labels = malloc((size_t)n * sizeof *labels))) {
      st = dit_err(err, DIT_ERR_NOMEM, "out of memory");
      goto done;
    }
    for (int64_t i = 0; i < n; i++)
      if ((st = read_label(li->labels_dir, labs.names[i], &labels[i], err))) goto done;
    s.labels = labels;
    NpyArray first = {0}; /* the first feature file fixes C, H, W */
    char *p = join(li->features_dir, s.feats.names[0]);
    st = p ? npy_read(p, &first, err) : dit_err(err, DIT_ERR_NOMEM, "out of memory");
    if (!st) st = check_feature_shape(p, &first, 0, &s, err);
    npy_free(&first);
    free(p);
    if (st) goto done;
  }
  int64_t max_label = -1;
  for (int64_t i = 0; i < n; i++) {
    if (s.labels[i] < 0 || (li->num_classes > 0 && s.labels[i] >= li->num_classes)) {
      st = dit_err(err, DIT_ERR_FORMAT, "%s: label %lld of sample %lld is outside 0..%lld", label_src,
                   (long long)s.labels[i], (long long)i, (long long)(li->num_classes > 0 ? li->num_classes - 1 : INT32_MAX));
      goto done;
    }
    if (s.labels[i] > max_label) max_label = s.labels[i];
  }
  uint32_t flags = li->flipped_included ? DATASET_FLAG_FLIP_VARIANTS : li->flip_mirror ? DATASET_FLAG_FLIP_MIRROR : 0;
  DatasetSpec spec = {n, s.C, s.H, s.W, DATASET_F32, li->num_classes > 0 ? li->num_classes : max_label + 1, flags};
  st = dataset_write(out, &spec, fill_latent, &s, s.x ? 1 : 8, err);
done:
  npy_free(&x);
  npy_free(&y);
  names_free(&s.feats);
  names_free(&labs);
  free(labels);
  return st;
}
