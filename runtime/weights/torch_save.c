/* torch_save.c: see torch_save.h. Three steps: check the tensors and pickle
 * the saved object into memory (data.pkl); lay the archive out (every
 * entry's offset, padding and CRC-32 is known before a byte is written, so
 * local headers carry the real sizes and no data descriptors are needed);
 * stream it into the temp file that atomic_write_file renames. Storages are
 * written from the caller's buffers, never copied. The output is a function
 * of the input alone (no time stamps), so equal states give equal files. */
#include "torch_save.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "atomic_write.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "storages are written in host byte order, which must be little-endian");

#define ARCHIVE "archive/"

enum {
  ALIGN = 64,             /* file offset alignment of every entry's data, as torch */
  LOCAL_BYTES = 30,
  CENTRAL_BYTES = 46,
  EOCD_BYTES = 22,
  EOCD64_BYTES = 56,
  LOCATOR64_BYTES = 20,
  PAD_FIELD_BYTES = 4,    /* the "FB" extra field's id and length */
  Z64_EXTRA_BYTES = 12,   /* central ZIP64 extra field: id, length, local header offset */
  VERSION_PLAIN = 20,     /* "version needed to extract": 2.0, stored entries */
  VERSION_ZIP64 = 45,     /* 4.5, ZIP64 */
  DOS_DATE_1980 = 0x21,   /* 1980-01-01, 00:00:00 (a fixed time stamp) */
  SETITEMS_BATCH = 1000,  /* items per SETITEMS, as CPython's pickler */
  MAX_GLOBALS = 16
};

static const uint64_t U32_LIMIT = 0xFFFFFFFFu; /* this value and above need ZIP64 */

typedef struct StorageType {
  CkptDType dtype;
  const char *cls;        /* torch.<cls> */
  size_t bytes;
} StorageType;

static const StorageType STORAGES[] = {
  {CK_F32, "FloatStorage", 4}, {CK_F16, "HalfStorage", 2}, {CK_BF16, "BFloat16Storage", 2},
  {CK_F64, "DoubleStorage", 8}, {CK_I64, "LongStorage", 8}, {CK_I32, "IntStorage", 4},
  {CK_I8, "CharStorage", 1},   {CK_U8, "ByteStorage", 1},   {CK_BOOL, "BoolStorage", 1},
};

static const StorageType *storage_of(CkptDType dt) {
  for (size_t i = 0; i < sizeof STORAGES / sizeof *STORAGES; i++)
    if (STORAGES[i].dtype == dt) return &STORAGES[i];
  return NULL;
}

/* ---- checking the input ---- */

static int cmp_str_ptr(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first name that occurs twice in names[0..n) (sorted in place), or NULL. */
static const char *duplicate_name(const char **names, size_t n) {
  if (n > 1) qsort((void *)names, n, sizeof *names, cmp_str_ptr);
  for (size_t i = 1; i < n; i++)
    if (strcmp(names[i - 1], names[i]) == 0) return names[i];
  return NULL;
}

/* Storage bytes of a tensor of a known dtype and rank; UINT64_MAX on overflow. */
static uint64_t storage_bytes(const TorchSaveTensor *t) {
  uint64_t b = storage_of(t->dtype)->bytes;
  for (int d = 0; d < t->rank; d++)
    if (__builtin_mul_overflow(b, (uint64_t)t->shape[d], &b)) return UINT64_MAX;
  return b;
}

static DitStatus check_tensor(const char *dict, const TorchSaveTensor *t, DitErr *err) {
  if (!t->name || !t->name[0])
    return dit_err(err, DIT_ERR_ARG, "dict '%s': a tensor has an empty name", dict);
  if (!storage_of(t->dtype))
    return dit_err(err, DIT_ERR_ARG, "'%s.%s': dtype %s cannot be saved", dict, t->name,
                   ckpt_dtype_name(t->dtype));
  if (t->rank < 0 || t->rank > CKPT_MAX_RANK)
    return dit_err(err, DIT_ERR_ARG, "'%s.%s': rank %d is outside 0..%d", dict, t->name, t->rank,
                   CKPT_MAX_RANK);
  for (int d = 0; d < t->rank; d++)
    if (t->shape[d] < 0)
      return dit_err(err, DIT_ERR_ARG, "'%s.%s': dimension %d is %lld", dict, t->name, d,
                     (long long)t->shape[d]);
  uint64_t b = storage_bytes(t);
  if (b >= U32_LIMIT)
    return dit_err(err, DIT_ERR_UNSUPPORTED, "'%s.%s': %llu bytes; tensors of 4 GiB or more "
                   "need ZIP64 entry sizes, which this writer does not write", dict, t->name,
                   (unsigned long long)b);
  if (b > 0 && !t->data)
    return dit_err(err, DIT_ERR_ARG, "'%s.%s': no data", dict, t->name);
  return DIT_OK;
}

/* Top-level names present and unique, tensor names unique in each dict (run after
 * check_tensor, which refuses empty names). */
static DitStatus check_names(const TorchSaveDict *dicts, size_t n_dicts,
                             const TorchSaveOptions *opt, DitErr *err) {
  size_t n_top = n_dicts + opt->n_ints, most = n_top;
  for (size_t i = 0; i < n_dicts; i++) most = dicts[i].n > most ? dicts[i].n : most;
  const char **names = malloc((most ? most : 1) * sizeof *names);
  if (!names) return dit_err(err, DIT_ERR_NOMEM, "out of memory");
  DitStatus st = DIT_OK;
  for (size_t i = 0; i < n_top && !st; i++) {
    names[i] = i < n_dicts ? dicts[i].name : opt->ints[i - n_dicts].name;
    if (!names[i] || !names[i][0])
      st = dit_err(err, DIT_ERR_ARG, "entry %zu has an empty name", i);
  }
  const char *dup = st ? NULL : duplicate_name(names, n_top);
  if (dup) st = dit_err(err, DIT_ERR_ARG, "the saved dict has two entries named '%s'", dup);
  for (size_t i = 0; i < n_dicts && !st; i++) {
    for (size_t j = 0; j < dicts[i].n; j++) names[j] = dicts[i].tensors[j].name;
    dup = duplicate_name(names, dicts[i].n);
    if (dup)
      st = dit_err(err, DIT_ERR_ARG, "dict '%s' has two tensors named '%s'", dicts[i].name, dup);
  }
  free(names);
  return st;
}

/* ---- the pickle (protocol 2, opcodes as CPython's pickler and torch.save emit them) ---- */

typedef struct Pkl {
  unsigned char *p;
  size_t n, cap;
  int oom;
  const char *glob_mod[MAX_GLOBALS], *glob_name[MAX_GLOBALS]; /* memo index i = i-th global */
  int n_globals;
} Pkl;

static void put(Pkl *pk, const void *s, size_t k) {
  if (pk->oom) return;
  if (k > pk->cap - pk->n) {
    size_t cap = pk->cap ? pk->cap : 4096;
    while (k > cap - pk->n) cap *= 2;
    unsigned char *q = realloc(pk->p, cap);
    if (!q) {
      pk->oom = 1;
      return;
    }
    pk->p = q;
    pk->cap = cap;
  }
  memcpy(pk->p + pk->n, s, k);
  pk->n += k;
}

static void op(Pkl *pk, unsigned char c) { put(pk, &c, 1); }

static void put_le(Pkl *pk, uint64_t v, int bytes) {
  unsigned char b[8];
  for (int i = 0; i < bytes; i++) b[i] = (unsigned char)(v >> (8 * i));
  put(pk, b, (size_t)bytes);
}

/* BINUNICODE: a str of a 4-byte length. Names are expected to be UTF-8. */
static void put_str(Pkl *pk, const char *s) {
  size_t k = strlen(s);
  op(pk, 'X');
  put_le(pk, k, 4);
  put(pk, s, k);
}

static void put_int(Pkl *pk, int64_t v) {
  if (v >= 0 && v < 256) {
    op(pk, 'K'); /* BININT1 */
    put_le(pk, (uint64_t)v, 1);
  } else if (v >= 0 && v < 65536) {
    op(pk, 'M'); /* BININT2 */
    put_le(pk, (uint64_t)v, 2);
  } else if (v >= INT32_MIN && v <= INT32_MAX) {
    op(pk, 'J'); /* BININT, signed */
    put_le(pk, (uint64_t)v, 4);
  } else {
    op(pk, 0x8a); /* LONG1: 8 bytes of two's complement */
    put_le(pk, 8, 1);
    put_le(pk, (uint64_t)v, 8);
  }
}

/* GLOBAL 'module name' and BINPUT the first time, BINGET afterwards. */
static void put_global(Pkl *pk, const char *module, const char *name) {
  for (int i = 0; i < pk->n_globals; i++) {
    if (strcmp(pk->glob_mod[i], module) == 0 && strcmp(pk->glob_name[i], name) == 0) {
      op(pk, 'h');
      put_le(pk, (uint64_t)i, 1);
      return;
    }
  }
  op(pk, 'c');
  put(pk, module, strlen(module));
  op(pk, '\n');
  put(pk, name, strlen(name));
  op(pk, '\n');
  if (pk->n_globals == MAX_GLOBALS) return; /* not memoised: still correct */
  op(pk, 'q');
  put_le(pk, (uint64_t)pk->n_globals, 1);
  pk->glob_mod[pk->n_globals] = module;
  pk->glob_name[pk->n_globals++] = name;
}

static void put_int_tuple(Pkl *pk, const int64_t *v, int n) {
  if (n == 0) {
    op(pk, ')'); /* EMPTY_TUPLE */
    return;
  }
  if (n > 3) op(pk, '('); /* MARK */
  for (int i = 0; i < n; i++) put_int(pk, v[i]);
  op(pk, n > 3 ? 't' : (unsigned char)(0x85 + n - 1)); /* TUPLE, TUPLE1..3 */
}

/* collections.OrderedDict(): the dict type of state dicts, and of backward_hooks. */
static void put_empty_ordered_dict(Pkl *pk) {
  put_global(pk, "collections", "OrderedDict");
  op(pk, ')');
  op(pk, 'R'); /* REDUCE */
}

/* _rebuild_tensor_v2(persistent_load(('storage', torch.XStorage, key, 'cpu', numel)),
 *                    0, size, stride, False, OrderedDict()): a contiguous tensor over all
 * of its own storage. Strides are torch's contiguous ones (a 0 dimension counts as 1). */
static void put_tensor(Pkl *pk, const TorchSaveTensor *t, size_t key) {
  const StorageType *stype = storage_of(t->dtype);
  int64_t stride[CKPT_MAX_RANK], numel = 1;
  for (int d = t->rank; d-- > 0;) {
    stride[d] = d == t->rank - 1 ? 1 : stride[d + 1] * (t->shape[d + 1] > 1 ? t->shape[d + 1] : 1);
    numel *= t->shape[d];
  }
  char key_text[24];
  snprintf(key_text, sizeof key_text, "%zu", key);
  put_global(pk, "torch._utils", "_rebuild_tensor_v2");
  op(pk, '('); /* MARK: the arguments */
  op(pk, '('); /* MARK: the persistent id */
  put_str(pk, "storage");
  put_global(pk, "torch", stype->cls);
  put_str(pk, key_text);
  put_str(pk, "cpu");
  put_int(pk, numel);
  op(pk, 't');
  op(pk, 'Q'); /* BINPERSID */
  put_int(pk, 0);
  put_int_tuple(pk, t->shape, t->rank);
  put_int_tuple(pk, stride, t->rank);
  op(pk, 0x89); /* NEWFALSE: requires_grad */
  put_empty_ordered_dict(pk);
  op(pk, 't');
  op(pk, 'R');
}

/* The saved dict: {dict name: OrderedDict{key: tensor}, ..., int name: int}. Storage
 * keys count up from 0 in this order. */
static void put_object(Pkl *pk, const TorchSaveDict *dicts, size_t n_dicts,
                       const TorchSaveOptions *opt) {
  size_t n_top = n_dicts + opt->n_ints, key = 0;
  op(pk, 0x80); /* PROTO 2 */
  op(pk, 2);
  op(pk, '}'); /* EMPTY_DICT */
  for (size_t i = 0; i < n_top; i++) {
    if (i % SETITEMS_BATCH == 0) op(pk, '(');
    if (i < n_dicts) {
      const TorchSaveDict *d = &dicts[i];
      put_str(pk, d->name);
      put_empty_ordered_dict(pk);
      for (size_t j = 0; j < d->n; j++) {
        if (j % SETITEMS_BATCH == 0) op(pk, '(');
        put_str(pk, d->tensors[j].name);
        put_tensor(pk, &d->tensors[j], key++);
        if (j % SETITEMS_BATCH == SETITEMS_BATCH - 1 || j == d->n - 1) op(pk, 'u'); /* SETITEMS */
      }
    } else {
      put_str(pk, opt->ints[i - n_dicts].name);
      put_int(pk, opt->ints[i - n_dicts].value);
    }
    if (i % SETITEMS_BATCH == SETITEMS_BATCH - 1 || i == n_top - 1) op(pk, 'u');
  }
  op(pk, '.'); /* STOP */
}

/* ---- the zip archive ---- */

typedef struct Entry {
  char name[48];          /* "archive/data/123" */
  const void *data;
  uint64_t size;          /* bytes, stored = uncompressed */
  uint32_t crc;
  uint64_t local_off;     /* of its local header */
  uint16_t pad;           /* bytes in the "FB" extra field, so the data lands on ALIGN */
  int zip64;              /* the central header carries the offset in a ZIP64 extra field */
} Entry;

typedef struct Archive {
  Entry *e;
  size_t n;
  uint64_t cd_off, cd_size;
  int zip64_end;          /* ZIP64 end record and locator before the classic one */
} Archive;

static uint32_t crc32_of(const void *data, uint64_t size) {
  uLong c = crc32(0L, Z_NULL, 0);
  const unsigned char *p = data;
  while (size > 0) {
    uInt k = size > (1u << 30) ? (1u << 30) : (uInt)size;
    c = crc32(c, p, k);
    p += k;
    size -= k;
  }
  return (uint32_t)c;
}

static void add_entry(Archive *a, const char *suffix, const void *data, uint64_t size) {
  Entry *e = &a->e[a->n++];
  snprintf(e->name, sizeof e->name, ARCHIVE "%s", suffix);
  e->data = data;
  e->size = size;
  e->crc = crc32_of(data, size);
}

/* Offsets, padding, and the ZIP64 decisions. */
static void lay_out(Archive *a, int force_zip64) {
  uint64_t off = 0;
  for (size_t i = 0; i < a->n; i++) {
    Entry *e = &a->e[i];
    uint64_t data_off = off + LOCAL_BYTES + strlen(e->name) + PAD_FIELD_BYTES;
    e->local_off = off;
    e->pad = (uint16_t)((ALIGN - data_off % ALIGN) % ALIGN);
    e->zip64 = force_zip64 || off >= U32_LIMIT;
    off = data_off + e->pad + e->size;
  }
  a->cd_off = off;
  a->cd_size = 0;
  for (size_t i = 0; i < a->n; i++)
    a->cd_size += CENTRAL_BYTES + strlen(a->e[i].name) + (a->e[i].zip64 ? Z64_EXTRA_BYTES : 0);
  a->zip64_end = force_zip64 || a->cd_off >= U32_LIMIT || a->cd_size >= U32_LIMIT ||
                 a->n >= 0xFFFF;
}

/* Little-endian record builder. */
typedef struct Rec {
  unsigned char b[96];   /* the longest: ZIP64 end record + locator, 76 bytes */
  size_t n;
} Rec;

static void rec_le(Rec *r, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) r->b[r->n++] = (unsigned char)(v >> (8 * i));
}

static uint64_t sat32(uint64_t v) { return v >= U32_LIMIT ? U32_LIMIT : v; }

static int write_all(FILE *f, const void *p, uint64_t n) {
  return n == 0 || fwrite(p, 1, (size_t)n, f) == n ? 0 : -1;
}

static int write_local(FILE *f, const Entry *e) {
  unsigned char zeds[ALIGN];
  memset(zeds, 'Z', sizeof zeds); /* torch pads with 'Z' */
  size_t name_len = strlen(e->name);
  Rec r = {.n = 0};
  rec_le(&r, 0x04034b50, 4);
  rec_le(&r, VERSION_PLAIN, 2);
  rec_le(&r, 0, 2);                /* flags */
  rec_le(&r, 0, 2);                /* method: stored */
  rec_le(&r, 0, 2);                /* time */
  rec_le(&r, DOS_DATE_1980, 2);
  rec_le(&r, e->crc, 4);
  rec_le(&r, e->size, 4);          /* compressed */
  rec_le(&r, e->size, 4);
  rec_le(&r, name_len, 2);
  rec_le(&r, PAD_FIELD_BYTES + e->pad, 2);
  int rc = write_all(f, r.b, r.n) || write_all(f, e->name, name_len);
  r.n = 0;
  rec_le(&r, 'F' | ('B' << 8), 2);
  rec_le(&r, e->pad, 2);
  return rc || write_all(f, r.b, r.n) || write_all(f, zeds, e->pad) ||
         write_all(f, e->data, e->size) ? -1 : 0;
}

static int write_central(FILE *f, const Entry *e) {
  size_t name_len = strlen(e->name);
  int version = e->zip64 ? VERSION_ZIP64 : VERSION_PLAIN;
  Rec r = {.n = 0};
  rec_le(&r, 0x02014b50, 4);
  rec_le(&r, version, 2);          /* made by (MS-DOS attributes) */
  rec_le(&r, version, 2);          /* needed */
  rec_le(&r, 0, 2);
  rec_le(&r, 0, 2);
  rec_le(&r, 0, 2);
  rec_le(&r, DOS_DATE_1980, 2);
  rec_le(&r, e->crc, 4);
  rec_le(&r, e->size, 4);
  rec_le(&r, e->size, 4);
  rec_le(&r, name_len, 2);
  rec_le(&r, e->zip64 ? Z64_EXTRA_BYTES : 0, 2);
  rec_le(&r, 0, 2);                /* comment */
  rec_le(&r, 0, 2);                /* disk */
  rec_le(&r, 0, 2);                /* internal attributes */
  rec_le(&r, 0, 4);                /* external attributes */
  rec_le(&r, e->zip64 ? U32_LIMIT : e->local_off, 4);
  int rc = write_all(f, r.b, r.n) || write_all(f, e->name, name_len);
  if (!e->zip64) return rc ? -1 : 0;
  r.n = 0;
  rec_le(&r, 0x0001, 2);           /* ZIP64 extended information: the offset alone */
  rec_le(&r, 8, 2);
  rec_le(&r, e->local_off, 8);
  return rc || write_all(f, r.b, r.n) ? -1 : 0;
}

static int write_end(FILE *f, const Archive *a) {
  Rec r = {.n = 0};
  if (a->zip64_end) {
    uint64_t rec_off = a->cd_off + a->cd_size;
    rec_le(&r, 0x06064b50, 4);
    rec_le(&r, EOCD64_BYTES - 12, 8);
    rec_le(&r, VERSION_ZIP64, 2);
    rec_le(&r, VERSION_ZIP64, 2);
    rec_le(&r, 0, 4);              /* this disk */
    rec_le(&r, 0, 4);              /* the directory's disk */
    rec_le(&r, a->n, 8);
    rec_le(&r, a->n, 8);
    rec_le(&r, a->cd_size, 8);
    rec_le(&r, a->cd_off, 8);
    rec_le(&r, 0x07064b50, 4);     /* locator */
    rec_le(&r, 0, 4);
    rec_le(&r, rec_off, 8);
    rec_le(&r, 1, 4);              /* disks */
    if (write_all(f, r.b, r.n)) return -1;
    r.n = 0;
  }
  rec_le(&r, 0x06054b50, 4);
  rec_le(&r, 0, 2);
  rec_le(&r, 0, 2);
  rec_le(&r, a->n >= 0xFFFF ? 0xFFFF : a->n, 2);
  rec_le(&r, a->n >= 0xFFFF ? 0xFFFF : a->n, 2);
  rec_le(&r, sat32(a->cd_size), 4);
  rec_le(&r, sat32(a->cd_off), 4);
  rec_le(&r, 0, 2);                /* comment */
  return write_all(f, r.b, r.n);
}

static int write_archive(FILE *f, void *ctx) {
  const Archive *a = ctx;
  for (size_t i = 0; i < a->n; i++)
    if (write_local(f, &a->e[i])) return -1;
  for (size_t i = 0; i < a->n; i++)
    if (write_central(f, &a->e[i])) return -1;
  return write_end(f, a);
}

DitStatus torch_save(const char *path, const TorchSaveDict *dicts, size_t n_dicts,
                     const TorchSaveOptions *opt, DitErr *err) {
  static const TorchSaveOptions defaults = {NULL, 0, 0};
  if (!opt) opt = &defaults;
  Pkl pk;
  memset(&pk, 0, sizeof pk);
  Archive a = {NULL, 0, 0, 0, 0};
  size_t n_tensors = 0;
  DitStatus st = DIT_OK;
  for (size_t i = 0; i < n_dicts && !st; i++) {
    const char *dict = dicts[i].name ? dicts[i].name : "";
    for (size_t j = 0; j < dicts[i].n && !st; j++)
      st = check_tensor(dict, &dicts[i].tensors[j], err);
    n_tensors += dicts[i].n;
  }
  if (!st) st = check_names(dicts, n_dicts, opt, err);
  if (st) goto fail;
  put_object(&pk, dicts, n_dicts, opt);
  a.e = calloc(n_tensors + 3, sizeof *a.e);
  if (pk.oom || !a.e) {
    st = dit_err(err, DIT_ERR_NOMEM, "out of memory");
    goto fail;
  }
  add_entry(&a, "data.pkl", pk.p, pk.n);
  add_entry(&a, "byteorder", "little", 6);
  for (size_t i = 0; i < n_dicts; i++) {
    for (size_t j = 0; j < dicts[i].n; j++) {
      const TorchSaveTensor *t = &dicts[i].tensors[j];
      char suffix[32];
      snprintf(suffix, sizeof suffix, "data/%zu", a.n - 2); /* the key put_object gave it */
      add_entry(&a, suffix, t->data, storage_bytes(t));
    }
  }
  add_entry(&a, "version", "3\n", 2);
  lay_out(&a, opt->force_zip64);
  st = atomic_write_file(path, write_archive, &a, err);
  free(pk.p);
  free(a.e);
  return st;
fail:
  dit_err_context(err, "%s: torch.save", path);
  free(pk.p);
  free(a.e);
  return st;
}
