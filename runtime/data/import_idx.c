/* import_idx.c: MNIST-style IDX files -> DITDATA (see import.h). zlib's gz
 * reader handles both the .gz files Debian ships and plain ones. The whole
 * image file is read into memory (Fashion-MNIST train: 47 MB), growing the
 * buffer as bytes arrive so that a header claiming more than the file holds
 * ends as "truncated", not as a huge allocation. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "dataset.h"
#include "import.h"

#define IDX_IMAGES_MAGIC 2051u /* 0x00000803: u8, 3 dims */
#define IDX_LABELS_MAGIC 2049u /* 0x00000801: u8, 1 dim */
#define IDX_MAX_ITEMS ((uint64_t)1 << 31)

typedef struct IdxFile {
  uint32_t dims[3]; /* [N] or [N, rows, cols] */
  uint8_t *data;    /* N * rows * cols bytes, malloc'ed */
} IdxFile;

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Reads exactly n bytes; returns the count read (short at the end of the data) or -1 on an error. */
static int64_t gz_read_full(gzFile g, uint8_t *dst, uint64_t n) {
  uint64_t got = 0;
  while (got < n) {
    unsigned chunk = n - got > (1u << 30) ? (1u << 30) : (unsigned)(n - got);
    int r = gzread(g, dst + got, chunk);
    if (r < 0) return -1;
    if (r == 0) break;
    got += (uint64_t)r;
  }
  return (int64_t)got;
}

static const char *gz_message(gzFile g) {
  int code;
  const char *m = gzerror(g, &code);
  return code == Z_ERRNO ? strerror(errno) : m;
}

/* Reads an IDX file of the expected magic and rank. */
static DitStatus idx_read(const char *path, uint32_t magic, int rank, IdxFile *out, DitErr *err) {
  DitStatus st = DIT_ERR_FORMAT;
  memset(out, 0, sizeof *out);
  gzFile g = gzopen(path, "rb");
  if (!g) return dit_err(err, DIT_ERR_IO, "%s: cannot open: %s", path, errno ? strerror(errno) : "gzopen failed");
  uint8_t hdr[16];
  uint64_t hbytes = 4u + 4u * (uint64_t)rank;
  int64_t got = gz_read_full(g, hdr, hbytes);
  if (got < 0) {
    st = dit_err(err, DIT_ERR_IO, "%s: cannot read: %s", path, gz_message(g));
    goto fail;
  }
  if (got >= 4 && be32(hdr) != magic) {
    st = dit_err(err, DIT_ERR_FORMAT, "%s: not an IDX %s file: magic %u, expected %u", path,
                 magic == IDX_IMAGES_MAGIC ? "images" : "labels", be32(hdr), magic);
    goto fail;
  }
  if ((uint64_t)got < hbytes) {
    st = dit_err(err, DIT_ERR_FORMAT, "%s: truncated: %lld bytes, shorter than the %llu-byte IDX header", path,
                 (long long)got, (unsigned long long)hbytes);
    goto fail;
  }
  uint64_t total = 1;
  for (int d = 0; d < rank; d++) {
    out->dims[d] = be32(hdr + 4 + 4 * d);
    total *= out->dims[d]; /* each factor < 2^32 and checked below: fits */
    if (out->dims[d] == 0 || (d == 0 && out->dims[d] > IDX_MAX_ITEMS) || (d > 0 && out->dims[d] > 65535)) {
      st = dit_err(err, DIT_ERR_FORMAT, "%s: dimension %d is %u (items 1..2^31, sides 1..65535)", path, d,
                   out->dims[d]);
      goto fail;
    }
  }
  uint64_t cap = 0, have = 0;
  while (have < total) { /* grow as the data arrives */
    uint64_t want = cap ? cap * 2 : (1u << 20);
    if (want > total) want = total;
    uint8_t *p = realloc(out->data, (size_t)want);
    if (!p) {
      st = dit_err(err, DIT_ERR_NOMEM, "%s: out of memory for %llu bytes", path, (unsigned long long)total);
      goto fail;
    }
    out->data = p;
    cap = want;
    int64_t r = gz_read_full(g, out->data + have, cap - have);
    if (r < 0) {
      st = dit_err(err, DIT_ERR_FORMAT, "%s: cannot read: %s", path, gz_message(g));
      goto fail;
    }
    have += (uint64_t)r;
    if (have < cap) {
      st = dit_err(err, DIT_ERR_FORMAT, "%s: truncated: the header promises %llu data bytes, the file has %llu",
                   path, (unsigned long long)total, (unsigned long long)have);
      goto fail;
    }
  }
  uint8_t extra;
  int64_t r = gz_read_full(g, &extra, 1);
  if (r != 0) {
    st = r < 0 ? dit_err(err, DIT_ERR_FORMAT, "%s: cannot read: %s", path, gz_message(g))
               : dit_err(err, DIT_ERR_FORMAT, "%s: trailing bytes after the %llu data bytes the header promises",
                         path, (unsigned long long)total);
    goto fail;
  }
  gzclose(g);
  return DIT_OK;
fail:
  gzclose(g);
  free(out->data);
  out->data = NULL;
  return st;
}

typedef struct IdxSource {
  const IdxFile *images;
  const IdxFile *labels;
  int64_t rows, cols, P_h, P_w, top, left;
} IdxSource;

static DitStatus fill_idx(void *vctx, int64_t i, void *sample, int64_t *label, DitErr *err) {
  (void)err;
  const IdxSource *s = vctx;
  uint8_t *dst = sample; /* [1, P_h, P_w] */
  memset(dst, 0, (size_t)(s->P_h * s->P_w)); /* the background value */
  const uint8_t *src = s->images->data + i * s->rows * s->cols;
  for (int64_t y = 0; y < s->rows; y++)
    memcpy(dst + (y + s->top) * s->P_w + s->left, src + y * s->cols, (size_t)s->cols);
  *label = s->labels->data[i];
  return DIT_OK;
}

DitStatus import_idx(const char *images_path, const char *labels_path, int64_t pad_to, int64_t num_classes,
                     const char *out, DitErr *err) {
  DitStatus st;
  IdxFile im = {{0}, NULL}, lb = {{0}, NULL};
  if ((st = idx_read(images_path, IDX_IMAGES_MAGIC, 3, &im, err))) goto done;
  if ((st = idx_read(labels_path, IDX_LABELS_MAGIC, 1, &lb, err))) goto done;
  if (im.dims[0] != lb.dims[0]) {
    st = dit_err(err, DIT_ERR_FORMAT, "%s holds %u images but %s holds %u labels", images_path, im.dims[0],
                 labels_path, lb.dims[0]);
    goto done;
  }
  for (uint32_t i = 0; i < lb.dims[0]; i++)
    if ((int64_t)lb.data[i] >= num_classes) {
      st = dit_err(err, DIT_ERR_FORMAT, "%s: label %u of item %u is outside 0..%lld", labels_path, lb.data[i], i,
                   (long long)num_classes - 1);
      goto done;
    }
  IdxSource src = {&im, &lb, im.dims[1], im.dims[2], im.dims[1], im.dims[2], 0, 0};
  if (pad_to > 0) {
    if (pad_to < src.rows || pad_to < src.cols || pad_to > 65535) {
      st = dit_err(err, DIT_ERR_ARG, "--pad-to %lld is smaller than the %lldx%lld images (or over 65535)",
                   (long long)pad_to, (long long)src.rows, (long long)src.cols);
      goto done;
    }
    src.P_h = src.P_w = pad_to;
    src.top = (pad_to - src.rows) / 2;
    src.left = (pad_to - src.cols) / 2;
  }
  DatasetSpec spec = {im.dims[0], 1, src.P_h, src.P_w, DATASET_U8, num_classes, 0};
  st = dataset_write(out, &spec, fill_idx, &src, 1, err);
done:
  free(im.data);
  free(lb.data);
  return st;
}
