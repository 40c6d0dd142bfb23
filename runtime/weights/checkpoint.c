/* checkpoint.c: opening a checkpoint (mmap, format detection by content),
 * the tensor table (lookup by name), and reading a tensor as float32 with
 * exact fp16/bf16 conversion. The formats themselves live in torch_ckpt.c
 * (zip + pickle) and safetensors.c. */
#define _POSIX_C_SOURCE 200809L
#include "ckpt_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the checkpoint readers assume a little-endian host (checkpoints are little-endian)"
#endif
#endif

/* ---- dtypes and conversions ---- */

const char *ckpt_dtype_name(CkptDType dt) {
  switch (dt) {
  case CK_F32: return "F32";
  case CK_F16: return "F16";
  case CK_BF16: return "BF16";
  case CK_F64: return "F64";
  case CK_I64: return "I64";
  case CK_I32: return "I32";
  case CK_I8: return "I8";
  case CK_U8: return "U8";
  case CK_BOOL: return "BOOL";
  case CK_OTHER: return "OTHER";
  }
  return "?";
}

size_t ckpt_dtype_size(CkptDType dt) {
  switch (dt) {
  case CK_F64: case CK_I64: return 8;
  case CK_F32: case CK_I32: return 4;
  case CK_F16: case CK_BF16: return 2;
  case CK_I8: case CK_U8: case CK_BOOL: return 1;
  case CK_OTHER: return 0;
  }
  return 0;
}

static float bits_to_f32(uint32_t bits) {
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

float ckpt_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
  if (exp == 0x1F) {
    /* inf; NaN with its payload, quieted as IEEE conversion (and x86 F16C, hence torch) does */
    return bits_to_f32(sign | 0x7F800000u | (man << 13) | (man ? 0x00400000u : 0));
  }
  if (exp != 0) return bits_to_f32(sign | ((exp + 112u) << 23) | (man << 13));
  if (man == 0) return bits_to_f32(sign); /* +-0 */
  /* Subnormal: man * 2^-24. Shift the leading 1 up to bit 10 to make it normal in f32. */
  uint32_t e = 113; /* biased exponent of 2^-14, less one per shift below */
  while (!(man & 0x400u)) {
    man <<= 1;
    e--;
  }
  return bits_to_f32(sign | (e << 23) | ((man & 0x3FFu) << 13));
}

float ckpt_bf16_to_f32(uint16_t b) { return bits_to_f32((uint32_t)b << 16); }

/* ---- the tensor table ---- */

int64_t ckpt_shape_numel(int rank, const int64_t *shape) {
  int64_t n = 1;
  int empty = 0;
  for (int i = 0; i < rank; i++) {
    if (shape[i] < 0) return -1;
    empty |= shape[i] == 0;
  }
  if (empty) return 0; /* however large the other dims */
  for (int i = 0; i < rank; i++)
    if (__builtin_mul_overflow(n, shape[i], &n)) return -1;
  return n;
}

void ckpt_format_shape(char *buf, size_t size, int rank, const int64_t *shape) {
  size_t k = 0;
  if (size == 0) return;
  buf[0] = '\0';
  k += (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < rank && k < size; i++)
    k += (size_t)snprintf(buf + k, size - k, "%s%lld", i ? "," : "", (long long)shape[i]);
  if (k < size) snprintf(buf + k, size - k, "]");
}

DitStatus ckpt_add_tensor(Checkpoint *ck, const TensorRec *rec, DitErr *err) {
  if (wt_arena_grow(&ck->arena, (void **)&ck->tensors, &ck->cap, ck->n + 1, sizeof *ck->tensors))
    return dit_err(err, DIT_ERR_NOMEM, "no memory for %zu tensors", ck->n + 1);
  ck->tensors[ck->n++] = *rec;
  return DIT_OK;
}

static int cmp_rec_name(const void *a, const void *b) {
  const TensorRec *x = *(const TensorRec *const *)a, *y = *(const TensorRec *const *)b;
  return strcmp(x->pub.name, y->pub.name);
}

/* Sorts the name index; a name given twice is an error (which one would the plan get?). */
static DitStatus index_names(Checkpoint *ck, DitErr *err) {
  ck->by_name = wt_arena_array(&ck->arena, ck->n, sizeof *ck->by_name);
  if (!ck->by_name) return dit_err(err, DIT_ERR_NOMEM, "no memory for the tensor index");
  for (size_t i = 0; i < ck->n; i++) ck->by_name[i] = &ck->tensors[i];
  if (ck->n > 1) qsort((void *)ck->by_name, ck->n, sizeof *ck->by_name, cmp_rec_name);
  for (size_t i = 1; i < ck->n; i++)
    if (strcmp(ck->by_name[i - 1]->pub.name, ck->by_name[i]->pub.name) == 0)
      return dit_err(err, DIT_ERR_FORMAT, "tensor '%s' appears twice", ck->by_name[i]->pub.name);
  return DIT_OK;
}

size_t ckpt_num_tensors(const Checkpoint *ck) { return ck ? ck->n : 0; }

const CkptTensor *ckpt_tensor_at(const Checkpoint *ck, size_t i) {
  return ck && i < ck->n ? &ck->tensors[i].pub : NULL;
}

size_t ckpt_find_index(const Checkpoint *ck, const char *name) {
  if (!ck || !name) return (size_t)-1;
  size_t lo = 0, hi = ck->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(name, ck->by_name[mid]->pub.name);
    if (c == 0) return (size_t)(ck->by_name[mid] - ck->tensors);
    if (c < 0) hi = mid;
    else lo = mid + 1;
  }
  return (size_t)-1;
}

const CkptTensor *ckpt_find(const Checkpoint *ck, const char *name) {
  size_t i = ckpt_find_index(ck, name);
  return i == (size_t)-1 ? NULL : &ck->tensors[i].pub;
}

const char *ckpt_describe(const Checkpoint *ck) { return ck ? ck->describe : ""; }

const char *ckpt_tensor_dtype_name(const Checkpoint *ck, const CkptTensor *t) {
  (void)ck;
  return ((const TensorRec *)t)->dtype_name;
}

/* ---- strided traversal ---- */

/* Walks a tensor row by row: each row is row_len elements, row_stride apart,
 * starting at the element offset that rows_next returns. */
typedef struct RowIter {
  const CkptTensor *t;
  int64_t idx[CKPT_MAX_RANK];
  int64_t off, row_len, row_stride, rows_left;
  int outer; /* dims 0 .. outer-1 are walked by the iterator */
} RowIter;

static int is_contiguous(const CkptTensor *t) {
  int64_t expect = 1;
  for (int d = t->rank - 1; d >= 0; d--) {
    if (t->shape[d] != 1 && t->strides[d] != expect) return 0;
    expect *= t->shape[d];
  }
  return 1;
}

static void rows_init(RowIter *it, const CkptTensor *t) {
  memset(it, 0, sizeof *it);
  it->t = t;
  if (t->numel == 0) return;
  if (t->rank == 0 || is_contiguous(t)) {
    it->row_len = t->numel;
    it->row_stride = 1;
    it->rows_left = 1;
    return;
  }
  it->outer = t->rank - 1;
  it->row_len = t->shape[t->rank - 1];
  it->row_stride = t->strides[t->rank - 1];
  it->rows_left = t->numel / it->row_len;
}

static int rows_next(RowIter *it, int64_t *off) {
  if (it->rows_left == 0) return 0;
  *off = it->off;
  it->rows_left--;
  for (int d = it->outer - 1; d >= 0; d--) {
    if (++it->idx[d] < it->t->shape[d]) {
      it->off += it->t->strides[d];
      break;
    }
    it->off -= it->t->strides[d] * (it->t->shape[d] - 1);
    it->idx[d] = 0;
  }
  return 1;
}

static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

DitStatus ckpt_read_f32(const Checkpoint *ck, const CkptTensor *t, float *dst, DitErr *err) {
  if (t->dtype != CK_F32 && t->dtype != CK_F16 && t->dtype != CK_BF16)
    return dit_err(err, DIT_ERR_UNSUPPORTED, "tensor '%s' has dtype %s; only F32, F16 and BF16 "
                   "weights can be loaded", t->name, ckpt_tensor_dtype_name(ck, t));
  size_t elem = ckpt_dtype_size(t->dtype);
  RowIter it;
  rows_init(&it, t);
  int64_t off;
  while (rows_next(&it, &off)) {
    const unsigned char *p = t->data + (size_t)off * elem;
    size_t step = (size_t)it.row_stride * elem;
    size_t n = (size_t)it.row_len;
    switch (t->dtype) {
    case CK_F32:
      if (step == 4) memcpy(dst, p, n * 4);
      else for (size_t i = 0; i < n; i++) memcpy(&dst[i], p + i * step, 4);
      break;
    case CK_F16:
      for (size_t i = 0; i < n; i++) dst[i] = ckpt_f16_to_f32(rd16(p + i * step));
      break;
    case CK_BF16: case CK_F64: case CK_I64: case CK_I32: case CK_I8: case CK_U8: case CK_BOOL: case CK_OTHER:
      for (size_t i = 0; i < n; i++) dst[i] = ckpt_bf16_to_f32(rd16(p + i * step));
      break;
    }
    dst += n;
  }
  return DIT_OK;
}

int ckpt_tensors_equal(const Checkpoint *ck, const CkptTensor *a, const CkptTensor *b) {
  const TensorRec *ra = (const TensorRec *)a, *rb = (const TensorRec *)b;
  (void)ck;
  if (a->dtype != b->dtype || strcmp(ra->dtype_name, rb->dtype_name) != 0 ||
      ra->elem_bytes != rb->elem_bytes || a->rank != b->rank)
    return 0;
  for (int d = 0; d < a->rank; d++)
    if (a->shape[d] != b->shape[d]) return 0;
  size_t elem = ra->elem_bytes;
  RowIter ia, ib;
  rows_init(&ia, a);
  rows_init(&ib, b);
  /* Compare element by element: the two tensors may be laid out differently. */
  int64_t oa = 0, ob = 0, ka = 0, kb = 0;
  for (int64_t i = 0; i < a->numel; i++) {
    if (ka == 0 && !rows_next(&ia, &oa)) return 0;
    if (kb == 0 && !rows_next(&ib, &ob)) return 0;
    if (memcmp(a->data + (size_t)(oa + ka * ia.row_stride) * elem,
               b->data + (size_t)(ob + kb * ib.row_stride) * elem, elem) != 0)
      return 0;
    if (++ka == ia.row_len) ka = 0;
    if (++kb == ib.row_len) kb = 0;
  }
  return 1;
}

/* ---- opening ---- */

/* torch.save before 1.6 (or with _use_new_zipfile_serialization=False): a
 * pickle whose first value is the LONG magic number 0x1950a86a20f9469cfc6c. */
static int is_legacy_torch(const unsigned char *b, size_t len) {
  static const unsigned char magic[] = {0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9,
                                        0x20, 0x6a, 0xa8, 0x50, 0x19};
  if (len < 2 || b[0] != 0x80) return 0;
  for (size_t i = 2; i + sizeof magic <= len && i <= 11 + 2; i++)
    if (memcmp(b + i, magic, sizeof magic) == 0) return 1;
  return 0;
}

static DitStatus parse(Checkpoint *ck, DitErr *err) {
  const unsigned char *b = ck->bytes;
  size_t len = ck->len;
  DitStatus st;
  if (len == 0) return dit_err(err, DIT_ERR_FORMAT, "file is empty, not a checkpoint");
  if (len >= 4 && memcmp(b, "PK\x03\x04", 4) == 0) {
    st = ckpt_load_torch_zip(ck, err);
  } else if (is_legacy_torch(b, len)) {
    return dit_err(err, DIT_ERR_UNSUPPORTED, "legacy PyTorch checkpoint format (saved by torch "
                   "< 1.6 or with _use_new_zipfile_serialization=False); re-save it with "
                   "torch >= 1.6 (torch.save(torch.load(f), f2)) or convert it to safetensors");
  } else if (len >= 9 && b[8] == '{') {
    st = ckpt_load_safetensors(ck, err);
  } else {
    return dit_err(err, DIT_ERR_FORMAT, "not a checkpoint (neither a PyTorch zip archive nor "
                   "safetensors)%s", b[0] == 0x80 ? "; it looks like a plain Python pickle" : "");
  }
  if (st) return st;
  return index_names(ck, err);
}

static DitStatus open_common(Checkpoint *ck, Checkpoint **out, DitErr *err) {
  DitStatus st = parse(ck, err);
  if (st) {
    dit_err_context(err, "%s", ck->name);
    ckpt_close(ck);
    return st;
  }
  *out = ck;
  return DIT_OK;
}

static Checkpoint *ckpt_new(const char *name, DitErr *err) {
  Checkpoint *ck = calloc(1, sizeof *ck);
  if (!ck) {
    dit_err(err, DIT_ERR_NOMEM, "%s: out of memory", name);
    return NULL;
  }
  wt_arena_init(&ck->arena, CKPT_ARENA_CAP_BYTES);
  ck->name = wt_arena_strndup(&ck->arena, name, strlen(name));
  if (!ck->name) {
    free(ck);
    dit_err(err, DIT_ERR_NOMEM, "%s: out of memory", name);
    return NULL;
  }
  return ck;
}

DitStatus ckpt_open_memory(const void *data, size_t len, const char *name, Checkpoint **out,
                           DitErr *err) {
  *out = NULL;
  if (!name) name = "<memory>";
  if (!data && len) return dit_err(err, DIT_ERR_ARG, "%s: NULL data", name);
  Checkpoint *ck = ckpt_new(name, err);
  if (!ck) return DIT_ERR_NOMEM;
  ck->bytes = data;
  ck->len = len;
  return open_common(ck, out, err);
}

DitStatus ckpt_open(const char *path, Checkpoint **out, DitErr *err) {
  *out = NULL;
  DitStatus st = DIT_ERR_IO;
  void *map = NULL;
  size_t size = 0;
  /* O_NONBLOCK: opening a FIFO must not hang; fstat rejects it right after. */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    st = dit_err(err, DIT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    goto fail;
  }
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    st = dit_err(err, DIT_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    goto fail;
  }
  if (S_ISDIR(sb.st_mode)) {
    st = dit_err(err, DIT_ERR_IO, "%s: is a directory, not a checkpoint file", path);
    goto fail;
  }
  if (!S_ISREG(sb.st_mode)) {
    st = dit_err(err, DIT_ERR_IO, "%s: is not a regular file", path);
    goto fail;
  }
  if ((uintmax_t)sb.st_size > SIZE_MAX) {
    st = dit_err(err, DIT_ERR_IO, "%s: too large to map", path);
    goto fail;
  }
  size = (size_t)sb.st_size;
  if (size > 0) {
    map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      map = NULL;
      st = dit_err(err, DIT_ERR_IO, "%s: cannot mmap %zu bytes: %s", path, size, strerror(errno));
      goto fail;
    }
  }
  close(fd);
  fd = -1;
  Checkpoint *ck = ckpt_new(path, err);
  if (!ck) {
    st = DIT_ERR_NOMEM;
    goto fail;
  }
  ck->map = map;
  ck->map_len = size;
  ck->bytes = map;
  ck->len = size;
  return open_common(ck, out, err); /* owns the mapping from here on, also on failure */
fail:
  if (map) munmap(map, size);
  if (fd >= 0) close(fd);
  return st;
}

void ckpt_close(Checkpoint *ck) {
  if (!ck) return;
  if (ck->map) munmap(ck->map, ck->map_len);
  wt_arena_free(&ck->arena);
  free(ck);
}
