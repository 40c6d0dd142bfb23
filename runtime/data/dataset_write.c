/* dataset_write.c: the DITDATA writer (see dataset.h). It streams: the
 * header and labels are written as zeros first, the samples follow block by
 * block as `fill` makes them, then the labels and the header (with the
 * checksums now known) are written over the zeros. All inside
 * atomic_write_file, so a reader sees the finished file or none. */
#define _POSIX_C_SOURCE 200809L
#include "dataset.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "atomic_write.h"

#define WRITE_BLOCK 64 /* samples made per block (in parallel when threads > 1) */

typedef struct WriteJob {
  const char *path;
  const DatasetSpec *spec;
  DatasetFillFn fill;
  void *ctx;
  int threads;
  int64_t sample_bytes;
  DitErr *err;
} WriteJob;

static int write_zeros(FILE *f, uint64_t n) {
  static const uint8_t zero[4096];
  while (n > 0) {
    size_t k = n > sizeof zero ? sizeof zero : (size_t)n;
    if (fwrite(zero, 1, k, f) != k) return -1;
    n -= k;
  }
  return 0;
}

/* Checks a sample and its label once made; labels come from user files. */
static DitStatus check_sample(const WriteJob *j, int64_t i, const void *sample, int64_t label, DitErr *err) {
  if (label < 0 || label >= j->spec->num_classes)
    return dit_err(err, DIT_ERR_FORMAT, "%s: sample %lld: label %lld is outside 0..%lld", j->path, (long long)i,
                   (long long)label, (long long)j->spec->num_classes - 1);
  if (j->spec->dtype == DATASET_F32) {
    const float *p = sample;
    for (int64_t k = 0; k < j->sample_bytes / 4; k++)
      if (!isfinite(p[k]))
        return dit_err(err, DIT_ERR_FORMAT, "%s: sample %lld: non-finite value at element %lld", j->path, (long long)i,
                       (long long)k);
  }
  return DIT_OK;
}

static int write_body(FILE *f, void *vctx) {
  WriteJob *j = vctx;
  const int64_t n = j->spec->count, sb = j->sample_bytes;
  int rc = -1;
  int64_t *labels = malloc((size_t)n * sizeof(int64_t));
  uint8_t *block = malloc((size_t)(WRITE_BLOCK * sb));
  DitErr *errs = calloc(WRITE_BLOCK, sizeof(DitErr));
  if (!labels || !block || !errs) {
    dit_err(j->err, DIT_ERR_NOMEM, "out of memory");
    goto done;
  }
  uint64_t labels_end = DITDATA_HEADER_BYTES + 8u * (uint64_t)n;
  uint64_t samples_off = (labels_end + DITDATA_ALIGN - 1) / DITDATA_ALIGN * DITDATA_ALIGN;
  if (write_zeros(f, samples_off)) goto done;
  uint32_t samples_crc = 0;
  for (int64_t first = 0; first < n; first += WRITE_BLOCK) {
    int k = (int)(n - first < WRITE_BLOCK ? n - first : WRITE_BLOCK);
    int failed = -1, nt = j->threads;
#ifdef _OPENMP
    if (nt <= 0) nt = omp_get_max_threads();
#endif
    /* fill must be safe to call concurrently for different indices (the importers are) */
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt > 1 ? nt : 1)
    for (int b = 0; b < k; b++) {
      errs[b].status = DIT_OK;
      int64_t i = first + b;
      uint8_t *dst = block + b * sb;
      if (j->fill(j->ctx, i, dst, &labels[i], &errs[b]) == DIT_OK)
        check_sample(j, i, dst, labels[i], &errs[b]);
    }
    for (int b = 0; b < k && failed < 0; b++)
      if (errs[b].status) failed = b;
    if (failed >= 0) {
      *j->err = errs[failed];
      goto done;
    }
    if (fwrite(block, 1, (size_t)(k * sb), f) != (size_t)(k * sb)) goto done;
    samples_crc = dataset_crc32(samples_crc, block, (uint64_t)(k * sb));
  }
  DatasetHeader h;
  memset(&h, 0, sizeof h);
  memcpy(h.magic, DITDATA_MAGIC, 8);
  h.version = DITDATA_VERSION;
  h.header_bytes = DITDATA_HEADER_BYTES;
  h.count = (uint64_t)n;
  h.channels = (uint32_t)j->spec->channels;
  h.height = (uint32_t)j->spec->height;
  h.width = (uint32_t)j->spec->width;
  h.dtype = (uint32_t)j->spec->dtype;
  h.num_classes = (uint32_t)j->spec->num_classes;
  h.flags = j->spec->flags;
  h.labels_crc32 = dataset_crc32(0, labels, (uint64_t)n * 8u);
  h.samples_crc32 = (uint32_t)samples_crc;
  h.header_crc32 = dataset_crc32(0, &h, offsetof(DatasetHeader, header_crc32));
  if (fseek(f, 0, SEEK_SET) != 0 || fwrite(&h, 1, sizeof h, f) != sizeof h ||
      fwrite(labels, sizeof(int64_t), (size_t)n, f) != (size_t)n)
    goto done;
  rc = 0;
done:
  free(labels);
  free(block);
  free(errs);
  return rc;
}

DitStatus dataset_write(const char *path, const DatasetSpec *spec, DatasetFillFn fill, void *ctx,
                        int threads, DitErr *err) {
  DitStatus st = dataset_check_spec(spec, path, err);
  if (st) return st;
  WriteJob j = {path, spec, fill, ctx, threads, dataset_sample_bytes(spec), err};
  return atomic_write_file(path, write_body, &j, err);
}

typedef struct MemSource {
  const int64_t *labels;
  const uint8_t *samples;
  int64_t sample_bytes;
} MemSource;

static DitStatus fill_mem(void *vctx, int64_t i, void *sample, int64_t *label, DitErr *err) {
  (void)err;
  const MemSource *m = vctx;
  memcpy(sample, m->samples + i * m->sample_bytes, (size_t)m->sample_bytes);
  *label = m->labels[i];
  return DIT_OK;
}

DitStatus dataset_write_mem(const char *path, const DatasetSpec *spec, const int64_t *labels,
                            const void *samples, DitErr *err) {
  DitStatus st = dataset_check_spec(spec, path, err);
  if (st) return st;
  MemSource m = {labels, samples, dataset_sample_bytes(spec)};
  return dataset_write(path, spec, fill_mem, &m, 1, err);
}
