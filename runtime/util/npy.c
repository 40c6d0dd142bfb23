/* npy.c: .npy reader and atomic writer (see npy.h). The header is parsed
 * strictly: a Python dict literal with 'descr', 'fortran_order' and 'shape'. */
#define _POSIX_C_SOURCE 200809L
#include "npy.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_write.h"

#define NPY_MAX_HEADER 65536

/* The value text after 'key': in the header dict, or NULL. */
static const char *dict_value(const char *hdr, const char *key) {
  char pat[32];
  snprintf(pat, sizeof pat, "'%s':", key);
  const char *p = strstr(hdr, pat);
  if (!p) return NULL;
  p += strlen(pat);
  while (*p == ' ') p++;
  return p;
}

static int parse_shape(const char *p, NpyArray *a) {
  if (*p++ != '(') return -1;
  a->rank = 0;
  a->numel = 1;
  for (;;) {
    while (*p == ' ') p++;
    if (*p == ')') break;
    if (*p < '0' || *p > '9' || a->rank >= NPY_MAX_RANK) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(p, &end, 10);
    if (errno || v < 0 || v > ((long long)1 << 40)) return -1;
    a->shape[a->rank++] = v;
    if (__builtin_mul_overflow(a->numel, (int64_t)v, &a->numel)) return -1;
    p = end;
    while (*p == ' ') p++;
    if (*p == ',') p++;
    else if (*p != ')') return -1;
  }
  return 0;
}

DitStatus npy_read(const char *path, NpyArray *a, DitErr *err) {
  DitStatus st = DIT_ERR_FORMAT;
  char *hdr = NULL;
  void *raw = NULL;
  memset(a, 0, sizeof *a);
  FILE *f = fopen(path, "rb");
  if (!f) return dit_err(err, DIT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  unsigned char pre[10];
  if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
    st = dit_err(err, DIT_ERR_FORMAT, "%s: not a .npy file (bad magic)", path);
    goto done;
  }
  uint32_t hlen;
  if (pre[6] == 1) {
    hlen = pre[8] | (uint32_t)pre[9] << 8;
  } else if (pre[6] == 2 || pre[6] == 3) {
    unsigned char more[2];
    if (fread(more, 1, 2, f) != 2) {
      st = dit_err(err, DIT_ERR_FORMAT, "%s: truncated .npy header", path);
      goto done;
    }
    hlen = pre[8] | (uint32_t)pre[9] << 8 | (uint32_t)more[0] << 16 | (uint32_t)more[1] << 24;
  } else {
    st = dit_err(err, DIT_ERR_UNSUPPORTED, "%s: .npy format version %u is not supported", path, pre[6]);
    goto done;
  }
  if (hlen > NPY_MAX_HEADER) {
    st = dit_err(err, DIT_ERR_FORMAT, "%s: .npy header too large", path);
    goto done;
  }
  hdr = calloc(hlen + 1, 1);
  if (!hdr) {
    st = dit_err(err, DIT_ERR_NOMEM, "out of memory");
    goto done;
  }
  if (fread(hdr, 1, hlen, f) != hlen) {
    st = dit_err(err, DIT_ERR_FORMAT, "%s: truncated .npy header", path);
    goto done;
  }
  const char *descr = dict_value(hdr, "descr"), *fo = dict_value(hdr, "fortran_order");
  const char *shape = dict_value(hdr, "shape");
  size_t elem = 0;
  bool is_i32 = false;
  if (descr && (!strncmp(descr, "'<f4'", 5) || !strncmp(descr, "'=f4'", 5))) {
    a->type = NPY_F32;
    elem = 4;
  } else if (descr && (!strncmp(descr, "'<i8'", 5) || !strncmp(descr, "'=i8'", 5))) {
    a->type = NPY_I64;
    elem = 8;
  } else if (descr && (!strncmp(descr, "'<i4'", 5) || !strncmp(descr, "'=i4'", 5))) {
    a->type = NPY_I64;
    elem = 4;
    is_i32 = true;
  } else {
    st = dit_err(err, DIT_ERR_UNSUPPORTED,
                 "%s: unsupported dtype %.12s (float32, int64 and int32 little-endian are read)",
                 path, descr ? descr : "(none)");
    goto done;
  }
  if (!fo || strncmp(fo, "False", 5) != 0) {
    st = dit_err(err, DIT_ERR_UNSUPPORTED, "%s: Fortran-ordered arrays are not supported", path);
    goto done;
  }
  if (!shape || parse_shape(shape, a) != 0) {
    st = dit_err(err, DIT_ERR_FORMAT, "%s: malformed shape in the .npy header", path);
    goto done;
  }
  size_t n = (size_t)a->numel;
  raw = malloc(n * elem + 1);
  a->data = malloc(n * (a->type == NPY_F32 ? 4 : 8) + 1);
  if (!raw || !a->data) {
    st = dit_err(err, DIT_ERR_NOMEM, "%s: out of memory for %zu elements", path, n);
    goto done;
  }
  if (fread(raw, elem, n, f) != n) {
    st = dit_err(err, DIT_ERR_FORMAT, "%s: truncated: fewer than %zu elements of data", path, n);
    goto done;
  }
  if (is_i32) {
    for (size_t i = 0; i < n; i++) {
      int32_t v;
      memcpy(&v, (char *)raw + 4 * i, 4);
      ((int64_t *)a->data)[i] = v;
    }
  } else {
    memcpy(a->data, raw, n * elem);
  }
  st = DIT_OK;
done:
  if (st) npy_free(a);
  free(raw);
  free(hdr);
  fclose(f);
  return st;
}

void npy_free(NpyArray *a) {
  if (!a) return;
  free(a->data);
  a->data = NULL;
}

typedef struct NpyWrite {
  const void *data;
  size_t elem;       /* 4: float32, 8: int64 */
  int rank;
  const int64_t *shape;
} NpyWrite;

static int write_npy(FILE *f, void *vctx) {
  const NpyWrite *w = vctx;
  char dict[256];
  int k = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                   w->elem == 8 ? "<i8" : "<f4");
  size_t numel = 1;
  for (int i = 0; i < w->rank; i++) {
    k += snprintf(dict + k, sizeof dict - (size_t)k, "%lld,%s", (long long)w->shape[i],
                  i + 1 < w->rank ? " " : "");
    numel *= (size_t)w->shape[i];
  }
  k += snprintf(dict + k, sizeof dict - (size_t)k, "), }");
  /* pad with spaces so that magic + length + header + newline is a multiple of 64 */
  size_t total = 10 + (size_t)k + 1, pad = (64 - total % 64) % 64;
  unsigned hlen = (unsigned)((size_t)k + pad + 1);
  unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xFF),
                           (unsigned char)(hlen >> 8)};
  if (fwrite(pre, 1, 10, f) != 10 || fwrite(dict, 1, (size_t)k, f) != (size_t)k) return -1;
  for (size_t i = 0; i < pad; i++)
    if (fputc(' ', f) == EOF) return -1;
  if (fputc('\n', f) == EOF) return -1;
  return fwrite(w->data, w->elem, numel, f) == numel ? 0 : -1;
}

DitStatus npy_write_f32(const char *path, const float *data, int rank, const int64_t *shape,
                        DitErr *err) {
  NpyWrite w = {data, sizeof(float), rank, shape};
  return atomic_write_file(path, write_npy, &w, err);
}

DitStatus npy_write_i64(const char *path, const int64_t *data, int rank, const int64_t *shape,
                        DitErr *err) {
  NpyWrite w = {data, sizeof(int64_t), rank, shape};
  return atomic_write_file(path, write_npy, &w, err);
}
