/* dataset.c: the DITDATA reader (see dataset.h, docs/dataset-format.md).
 * The file is mmap'ed read-only; everything the header claims is checked
 * against the file size before any pointer into the mapping is formed. */
#define _POSIX_C_SOURCE 200809L
#include "dataset.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "DITDATA is little-endian; so must the host be");

#define DATASET_MAX_COUNT ((int64_t)1 << 40)
#define DATASET_MAX_SIDE 65535
#define DATASET_MAX_SAMPLE_ELEMS ((int64_t)1 << 31)

struct DitDataset {
  char *path;
  const uint8_t *map; /* the whole file */
  size_t map_bytes;
  DatasetHeader hdr;
  DatasetSpec spec;
  const int64_t *labels;  /* [count] */
  const uint8_t *samples; /* [count, V, C, H, W] of the dtype */
  int64_t sample_bytes;   /* V*C*H*W*elem */
};

uint32_t dataset_crc32(uint32_t crc, const void *p, uint64_t n) {
  uLong c = crc;
  const Bytef *b = p;
  while (n > 0) { /* zlib takes uInt lengths */
    uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
    c = crc32(c, b, chunk);
    b += chunk;
    n -= chunk;
  }
  return (uint32_t)c;
}

int64_t dataset_sample_bytes(const DatasetSpec *s) {
  if (s->channels < 1 || s->height < 1 || s->width < 1 || s->channels > DATASET_MAX_SIDE ||
      s->height > DATASET_MAX_SIDE || s->width > DATASET_MAX_SIDE)
    return -1;
  int64_t elem = s->dtype == DATASET_U8 ? 1 : s->dtype == DATASET_F32 ? 4 : -1;
  if (elem < 0) return -1;
  int64_t v = (s->flags & DATASET_FLAG_FLIP_VARIANTS) ? 2 : 1;
  int64_t n = v * s->channels * s->height * s->width; /* < 2 * 65535^3: no overflow */
  if (n > DATASET_MAX_SAMPLE_ELEMS) return -1;
  return n * elem;
}

DitStatus dataset_check_spec(const DatasetSpec *s, const char *what, DitErr *err) {
  if (s->dtype != DATASET_U8 && s->dtype != DATASET_F32)
    return dit_err(err, DIT_ERR_FORMAT, "%s: unknown sample dtype %d (1 = u8, 2 = f32)", what, (int)s->dtype);
  if (s->count < 1 || s->count > DATASET_MAX_COUNT)
    return dit_err(err, DIT_ERR_FORMAT, "%s: sample count %lld is outside 1..2^40", what, (long long)s->count);
  if (s->num_classes < 1 || s->num_classes > INT32_MAX)
    return dit_err(err, DIT_ERR_FORMAT, "%s: num_classes %lld is outside 1..2^31-1", what,
                   (long long)s->num_classes);
  if (s->flags & ~(uint32_t)DATASET_FLAGS_KNOWN)
    return dit_err(err, DIT_ERR_FORMAT, "%s: unknown flag bits 0x%x", what, s->flags & ~(uint32_t)DATASET_FLAGS_KNOWN);
  if (s->dtype == DATASET_U8 && s->flags)
    return dit_err(err, DIT_ERR_FORMAT, "%s: flags 0x%x are for f32 files only (u8 pixels are always mirrored)",
                   what, s->flags);
  if ((s->flags & DATASET_FLAG_FLIP_VARIANTS) && (s->flags & DATASET_FLAG_FLIP_MIRROR))
    return dit_err(err, DIT_ERR_FORMAT, "%s: FLIP_VARIANTS and FLIP_MIRROR exclude each other", what);
  if (dataset_sample_bytes(s) < 0)
    return dit_err(err, DIT_ERR_FORMAT, "%s: sample shape [%lld, %lld, %lld] is outside the format's limits "
                   "(each side 1..65535, at most 2^31 elements)", what, (long long)s->channels,
                   (long long)s->height, (long long)s->width);
  return DIT_OK;
}

/* Validates the header and the layout it implies against the file size. */
static DitStatus check_header(DitDataset *ds, DitErr *err) {
  const char *path = ds->path;
  const DatasetHeader *h = &ds->hdr;
  if (memcmp(h->magic, DITDATA_MAGIC, 8) != 0)
    return dit_err(err, DIT_ERR_FORMAT, "%s: not a DITDATA file (bad magic)", path);
  if (h->version != DITDATA_VERSION)
    return dit_err(err, DIT_ERR_VERSION, "%s: DITDATA version %u, this build reads version %u", path,
                   h->version, DITDATA_VERSION);
  if (dataset_crc32(0, h, offsetof(DatasetHeader, header_crc32)) != h->header_crc32)
    return dit_err(err, DIT_ERR_FORMAT, "%s: header checksum mismatch (the header is corrupt)", path);
  if (h->header_bytes != DITDATA_HEADER_BYTES || h->reserved != 0)
    return dit_err(err, DIT_ERR_FORMAT, "%s: header_bytes %u or reserved %u is wrong (64 and 0)", path,
                   h->header_bytes, h->reserved);
  if (h->count > (uint64_t)DATASET_MAX_COUNT)
    return dit_err(err, DIT_ERR_FORMAT, "%s: sample count %llu is over 2^40", path, (unsigned long long)h->count);
  DatasetSpec s = {(int64_t)h->count, h->channels, h->height, h->width, (DatasetDType)h->dtype,
                   h->num_classes, h->flags};
  DitStatus st = dataset_check_spec(&s, path, err);
  if (st) return st;
  ds->spec = s;
  ds->sample_bytes = dataset_sample_bytes(&s);
  /* count <= 2^40 and sample_bytes <= 2^33: the product can pass 2^64, so it is checked */
  uint64_t labels_end = DITDATA_HEADER_BYTES + 8u * h->count;
  uint64_t samples_off = (labels_end + DITDATA_ALIGN - 1) / DITDATA_ALIGN * DITDATA_ALIGN;
  uint64_t samples_bytes, total;
  if (__builtin_mul_overflow(h->count, (uint64_t)ds->sample_bytes, &samples_bytes) ||
      __builtin_add_overflow(samples_off, samples_bytes, &total))
    return dit_err(err, DIT_ERR_FORMAT, "%s: the sizes in the header overflow", path);
  if (total != ds->map_bytes)
    return dit_err(err, DIT_ERR_FORMAT, "%s: %s: the header describes %llu bytes (%llu samples [%u, %u, %u]), "
                   "the file has %zu", path, total > ds->map_bytes ? "truncated" : "trailing bytes",
                   (unsigned long long)total, (unsigned long long)h->count, h->channels, h->height,
                   h->width, ds->map_bytes);
  for (uint64_t o = labels_end; o < samples_off; o++)
    if (ds->map[o] != 0) return dit_err(err, DIT_ERR_FORMAT, "%s: non-zero padding at offset %llu", path,
                                         (unsigned long long)o);
  ds->labels = (const int64_t *)(const void *)(ds->map + DITDATA_HEADER_BYTES);
  ds->samples = ds->map + samples_off;
  return DIT_OK;
}

DitStatus dataset_open(const char *path, DitDataset **out, DitErr *err) {
  DitStatus st = DIT_ERR_IO;
  *out = NULL;
  int fd = -1;
  DitDataset *ds = calloc(1, sizeof *ds);
  if (!ds || !(ds->path = strdup(path))) {
    st = dit_err(err, DIT_ERR_NOMEM, "out of memory");
    goto fail;
  }
  fd = open(path, O_RDONLY);
  struct stat sb;
  if (fd < 0 || fstat(fd, &sb) != 0) {
    st = dit_err(err, DIT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    goto fail;
  }
  if (!S_ISREG(sb.st_mode)) {
    st = dit_err(err, DIT_ERR_IO, "%s: not a regular file", path);
    goto fail;
  }
  if ((uint64_t)sb.st_size < DITDATA_HEADER_BYTES) {
    st = dit_err(err, DIT_ERR_FORMAT, "%s: truncated: %lld bytes, shorter than the 64-byte DITDATA header",
                 path, (long long)sb.st_size);
    goto fail;
  }
  ds->map_bytes = (size_t)sb.st_size;
  void *m = mmap(NULL, ds->map_bytes, PROT_READ, MAP_PRIVATE, fd, 0);
  if (m == MAP_FAILED) {
    st = dit_err(err, DIT_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
    goto fail;
  }
  ds->map = m;
  memcpy(&ds->hdr, ds->map, sizeof ds->hdr);
  if ((st = check_header(ds, err))) goto fail;
  int64_t n = ds->spec.count;
  if (dataset_crc32(0, ds->labels, (uint64_t)n * 8u) != ds->hdr.labels_crc32) {
    st = dit_err(err, DIT_ERR_FORMAT, "%s: labels checksum mismatch (the labels are corrupt)", path);
    goto fail;
  }
  for (int64_t i = 0; i < n; i++)
    if (ds->labels[i] < 0 || ds->labels[i] >= ds->spec.num_classes) {
      st = dit_err(err, DIT_ERR_FORMAT, "%s: label %lld of sample %lld is outside 0..%lld", path,
                   (long long)ds->labels[i], (long long)i, (long long)ds->spec.num_classes - 1);
      goto fail;
    }
  close(fd);
  *out = ds;
  return DIT_OK;
fail:
  if (fd >= 0) close(fd);
  dataset_close(ds);
  return st;
}

void dataset_close(DitDataset *ds) {
  if (!ds) return;
  if (ds->map) munmap((void *)(uintptr_t)ds->map, ds->map_bytes);
  free(ds->path);
  free(ds);
}

DitStatus dataset_verify(const DitDataset *ds, DitErr *err) {
  uint64_t n = (uint64_t)ds->spec.count * (uint64_t)ds->sample_bytes;
  if (dataset_crc32(0, ds->samples, n) != ds->hdr.samples_crc32)
    return dit_err(err, DIT_ERR_FORMAT, "%s: samples checksum mismatch (the sample data is corrupt)", ds->path);
  if (ds->spec.dtype == DATASET_F32) {
    int64_t per = ds->sample_bytes / 4;
    for (int64_t i = 0; i < ds->spec.count; i++) {
      const float *p = (const float *)(const void *)(ds->samples + i * ds->sample_bytes);
      for (int64_t k = 0; k < per; k++)
        if (!isfinite(p[k]))
          return dit_err(err, DIT_ERR_FORMAT, "%s: sample %lld holds a non-finite value at element %lld",
                         ds->path, (long long)i, (long long)k);
    }
  }
  return DIT_OK;
}

int64_t dataset_count(const DitDataset *ds) { return ds->spec.count; }
int64_t dataset_channels(const DitDataset *ds) { return ds->spec.channels; }
int64_t dataset_height(const DitDataset *ds) { return ds->spec.height; }
int64_t dataset_width(const DitDataset *ds) { return ds->spec.width; }
int64_t dataset_num_classes(const DitDataset *ds) { return ds->spec.num_classes; }
DatasetDType dataset_dtype(const DitDataset *ds) { return ds->spec.dtype; }
uint32_t dataset_flags(const DitDataset *ds) { return ds->spec.flags; }
const int64_t *dataset_labels(const DitDataset *ds) { return ds->labels; }
const char *dataset_path(const DitDataset *ds) { return ds->path; }

DitStatus dataset_get(const DitDataset *ds, int64_t index, int flip, float *dst_chw, int64_t *label) {
  if (!ds || index < 0 || index >= ds->spec.count) return DIT_ERR_ARG;
  if (label) *label = ds->labels[index];
  if (!dst_chw) return DIT_OK;
  const int64_t C = ds->spec.channels, H = ds->spec.height, W = ds->spec.width;
  const uint8_t *src = ds->samples + index * ds->sample_bytes;
  if (ds->spec.dtype == DATASET_U8) {
    for (int64_t c = 0; c < C; c++)
      for (int64_t y = 0; y < H; y++) {
        const uint8_t *row = src + (c * H + y) * W; /* [W] */
        float *o = dst_chw + (c * H + y) * W;
        for (int64_t x = 0; x < W; x++) /* ToTensor, then Normalize(0.5, 0.5) */
          o[x] = ((float)row[flip ? W - 1 - x : x] / 255.0f - 0.5f) / 0.5f;
      }
    return DIT_OK;
  }
  int64_t plane = C * H * W;
  int mirror = flip && (ds->spec.flags & DATASET_FLAG_FLIP_MIRROR);
  if (flip && (ds->spec.flags & DATASET_FLAG_FLIP_VARIANTS)) src += plane * 4; /* variant 1 */
  const float *f = (const float *)(const void *)src; /* 64-byte aligned section, 4-byte elements */
  if (!mirror) {
    memcpy(dst_chw, f, (size_t)plane * sizeof(float));
    return DIT_OK;
  }
  for (int64_t r = 0; r < C * H; r++)
    for (int64_t x = 0; x < W; x++) dst_chw[r * W + x] = f[r * W + W - 1 - x];
  return DIT_OK;
}
