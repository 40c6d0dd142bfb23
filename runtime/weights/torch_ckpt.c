/* torch_ckpt.c: PyTorch zip checkpoints (torch.save, torch >= 1.6). The
 * archive holds "<archive>/data.pkl" (a pickle of the saved object, where each
 * tensor refers to a storage by key), "<archive>/data/<key>" (the raw
 * little-endian storage bytes, stored uncompressed) and small records such as
 * "version" and "byteorder". This file picks the state dict out of the
 * unpickled object (bare state dict, a train.py dict with "ema"/"model", or an LDM one with "state_dict")
 * and turns each of its tensors into a CkptTensor pointing into the archive,
 * after checking its storage against the zip entry. */
#include "ckpt_internal.h"
#include "pickle.h"
#include "zip_reader.h"

#include <stdio.h>
#include <string.h>

typedef struct TorchDType {
  const char *name;        /* storage class (v2) or torch dtype name (v3) */
  CkptDType dtype;
  size_t bytes;
  const char *label;       /* ckpt_tensor_dtype_name */
} TorchDType;

/* Storage classes that _rebuild_tensor_v2 refers to. */
static const TorchDType STORAGE_TYPES[] = {
  {"FloatStorage", CK_F32, 4, "F32"},      {"HalfStorage", CK_F16, 2, "F16"},
  {"BFloat16Storage", CK_BF16, 2, "BF16"}, {"DoubleStorage", CK_F64, 8, "F64"},
  {"LongStorage", CK_I64, 8, "I64"},       {"IntStorage", CK_I32, 4, "I32"},
  {"ShortStorage", CK_OTHER, 2, "I16"},    {"CharStorage", CK_I8, 1, "I8"},
  {"ByteStorage", CK_U8, 1, "U8"},         {"BoolStorage", CK_BOOL, 1, "BOOL"},
  {"ComplexFloatStorage", CK_OTHER, 8, "C64"}, {"ComplexDoubleStorage", CK_OTHER, 16, "C128"},
  {"QInt8Storage", CK_OTHER, 1, "QI8"},    {"QUInt8Storage", CK_OTHER, 1, "QU8"},
  {"QInt32Storage", CK_OTHER, 4, "QI32"},  {"UntypedStorage", CK_U8, 1, "U8"},
};

/* torch dtypes that _rebuild_tensor_v3 names (newer dtypes over an untyped storage). */
static const TorchDType V3_DTYPES[] = {
  {"float32", CK_F32, 4, "F32"},   {"float16", CK_F16, 2, "F16"},   {"bfloat16", CK_BF16, 2, "BF16"},
  {"float64", CK_F64, 8, "F64"},   {"int64", CK_I64, 8, "I64"},     {"int32", CK_I32, 4, "I32"},
  {"int16", CK_OTHER, 2, "I16"},   {"int8", CK_I8, 1, "I8"},        {"uint8", CK_U8, 1, "U8"},
  {"bool", CK_BOOL, 1, "BOOL"},    {"uint16", CK_OTHER, 2, "U16"},  {"uint32", CK_OTHER, 4, "U32"},
  {"uint64", CK_OTHER, 8, "U64"},  {"float8_e4m3fn", CK_OTHER, 1, "F8_E4M3"},
  {"float8_e5m2", CK_OTHER, 1, "F8_E5M2"}, {"float8_e4m3fnuz", CK_OTHER, 1, "F8_E4M3FNUZ"},
  {"float8_e5m2fnuz", CK_OTHER, 1, "F8_E5M2FNUZ"},
  {"complex64", CK_OTHER, 8, "C64"}, {"complex128", CK_OTHER, 16, "C128"},
};

static const TorchDType *lookup(const TorchDType *table, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(table[i].name, name) == 0) return &table[i];
  return NULL;
}

/* Number of tensor values in a dict. */
static size_t count_tensors(const PyValue *d) {
  size_t n = 0;
  for (size_t i = 0; d && d->kind == PY_DICT && i < d->u.dict.n; i++)
    n += d->u.dict.items[i].val->kind == PY_TENSOR;
  return n;
}

/* The state dict inside the unpickled object, following DiT's find_model:
 * "ema" when present, else "model" when it holds tensors, else (LDM and
 * Lightning checkpoints: vae-ft-mse-840000-ema-pruned.ckpt) "state_dict"
 * when it does, else the object itself. */
static DitStatus select_state_dict(Checkpoint *ck, const PyValue *top, const PyValue **sd,
                                   DitErr *err) {
  if (top->kind != PY_DICT)
    return dit_err(err, DIT_ERR_FORMAT, "the pickled object is a %s, not a dict of tensors",
                   py_kind_name(top->kind));
  const PyValue *ema = py_dict_get(top, "ema"), *model = py_dict_get(top, "model");
  const PyValue *state = py_dict_get(top, "state_dict");
  if (ema && ema->kind == PY_DICT) {
    *sd = ema;
    snprintf(ck->describe, sizeof ck->describe, "PyTorch checkpoint (training dict, using 'ema')");
  } else if (model && count_tensors(model) > 0) {
    *sd = model;
    snprintf(ck->describe, sizeof ck->describe,
             "PyTorch checkpoint (training dict, using 'model')");
  } else if (state && count_tensors(state) > 0) {
    *sd = state;
    snprintf(ck->describe, sizeof ck->describe, "PyTorch checkpoint (LDM/Lightning dict, using 'state_dict')");
  } else if (count_tensors(top) > 0 || top->u.dict.n == 0) {
    *sd = top;
    snprintf(ck->describe, sizeof ck->describe, "PyTorch checkpoint (bare state dict)");
  } else {
    char keys[256] = "";
    size_t k = 0;
    for (size_t i = 0; i < top->u.dict.n && i < 8 && k < sizeof keys; i++) {
      const PyValue *key = top->u.dict.items[i].key;
      if (key->kind == PY_STR)
        k += (size_t)snprintf(keys + k, sizeof keys - k, "%s'%.40s'", k ? ", " : "", key->u.str.s);
    }
    return dit_err(err, DIT_ERR_FORMAT, "no tensors found: the top-level dict (keys %s%s) has no "
                   "tensor values and no 'ema', 'model' or 'state_dict' state dict", keys,
                   top->u.dict.n > 8 ? ", ..." : "");
  }
  return DIT_OK;
}

/* Checks one pickled tensor against its storage entry and records it. */
static DitStatus add_torch_tensor(Checkpoint *ck, const ZipReader *z, const char *prefix,
                                  size_t prefix_len, const char *name, const PyTensor *pt,
                                  DitErr *err) {
  const PyStorage *ps = pt->storage;
  const TorchDType *stype = NULL, *ttype;
  if (strcmp(ps->type_module, "torch") == 0)
    stype = lookup(STORAGE_TYPES, sizeof STORAGE_TYPES / sizeof *STORAGE_TYPES, ps->type_name);
  if (!stype)
    return dit_err(err, DIT_ERR_UNSUPPORTED, "tensor '%s' uses storage type %s.%s, which this "
                   "reader does not know", name, ps->type_module, ps->type_name);
  ttype = stype;
  if (pt->dtype_name) {
    ttype = lookup(V3_DTYPES, sizeof V3_DTYPES / sizeof *V3_DTYPES, pt->dtype_name);
    if (!ttype)
      return dit_err(err, DIT_ERR_UNSUPPORTED, "tensor '%s' has dtype torch.%s, which this "
                     "reader does not know", name, pt->dtype_name);
  }
  if (pt->rank > CKPT_MAX_RANK)
    return dit_err(err, DIT_ERR_UNSUPPORTED, "tensor '%s' has more than %d dimensions", name,
                   CKPT_MAX_RANK);
  TensorRec rec;
  memset(&rec, 0, sizeof rec);
  rec.pub.name = name;
  rec.pub.dtype = ttype->dtype;
  rec.pub.rank = pt->rank;
  rec.dtype_name = ttype->label;
  rec.elem_bytes = ttype->bytes;
  memcpy(rec.pub.shape, pt->shape, sizeof rec.pub.shape);
  memcpy(rec.pub.strides, pt->stride, sizeof rec.pub.strides);
  rec.pub.numel = ckpt_shape_numel(pt->rank, pt->shape);
  if (rec.pub.numel < 0)
    return dit_err(err, DIT_ERR_FORMAT, "tensor '%s' has a shape whose size overflows", name);

  char entry_name[512];
  int n = snprintf(entry_name, sizeof entry_name, "%.*sdata/%s", (int)prefix_len, prefix, ps->key);
  const ZipEntry *e = NULL;
  if (n > 0 && (size_t)n < sizeof entry_name) e = zip_find(z, entry_name, (size_t)n);
  if (!e)
    return dit_err(err, DIT_ERR_FORMAT, "tensor '%s': its storage '%.100s' has no entry "
                   "'%.*sdata/%.100s' in the archive", name, ps->key, (int)prefix_len, prefix,
                   ps->key);
  const unsigned char *base;
  DitStatus st = zip_entry_data(z, e, &base, err);
  if (st) return st;
  uint64_t storage_bytes;
  if (__builtin_mul_overflow((uint64_t)ps->numel, (uint64_t)stype->bytes, &storage_bytes) ||
      storage_bytes > e->size)
    return dit_err(err, DIT_ERR_FORMAT, "tensor '%s': storage '%s' of %lld %s elements does not "
                   "fit its entry of %llu bytes", name, ps->key, (long long)ps->numel,
                   stype->label, (unsigned long long)e->size);
  rec.pub.data = base;
  if (rec.pub.numel > 0) {
    /* The last element the view touches: offset + sum((shape-1)*stride), in tensor elements. */
    uint64_t last = (uint64_t)pt->offset, term, end_bytes;
    int bad = 0;
    for (int d = 0; d < pt->rank && !bad; d++)
      bad = __builtin_mul_overflow((uint64_t)(pt->shape[d] - 1), (uint64_t)pt->stride[d], &term) ||
            __builtin_add_overflow(last, term, &last);
    bad = bad || __builtin_add_overflow(last, 1u, &last) ||
          __builtin_mul_overflow(last, (uint64_t)ttype->bytes, &end_bytes);
    if (bad || end_bytes > storage_bytes) {
      char shape[128];
      ckpt_format_shape(shape, sizeof shape, pt->rank, pt->shape);
      return dit_err(err, DIT_ERR_FORMAT, "tensor '%s' (shape %s, storage offset %lld) reaches "
                     "past the end of its storage '%s' of %llu bytes", name, shape,
                     (long long)pt->offset, ps->key, (unsigned long long)storage_bytes);
    }
    rec.pub.data = base + (size_t)pt->offset * ttype->bytes;
  }
  return ckpt_add_tensor(ck, &rec, err);
}

/* Finds "<prefix>data.pkl": the prefix is the archive name with its slash, or empty. */
static const ZipEntry *find_data_pkl(const ZipReader *z) {
  static const char suffix[] = "data.pkl";
  const size_t sl = sizeof suffix - 1;
  for (size_t i = 0; i < z->n; i++) {
    const ZipEntry *e = &z->entries[i];
    if (e->name_len < sl || memcmp(e->name + e->name_len - sl, suffix, sl) != 0) continue;
    if (e->name_len == sl || e->name[e->name_len - sl - 1] == '/') return e;
  }
  return NULL;
}

DitStatus ckpt_load_torch_zip(Checkpoint *ck, DitErr *err) {
  ZipReader z;
  DitStatus st = zip_open(&z, ck->bytes, ck->len, &ck->arena, err);
  if (st) return st;
  const ZipEntry *pkl = find_data_pkl(&z);
  if (!pkl)
    return dit_err(err, DIT_ERR_FORMAT, "zip archive without a data.pkl entry: not a torch.save "
                   "file");
  const char *prefix = pkl->name;
  size_t prefix_len = pkl->name_len - 8;

  char bo_name[512];
  int n = snprintf(bo_name, sizeof bo_name, "%.*sbyteorder", (int)prefix_len, prefix);
  const ZipEntry *bo = n > 0 && (size_t)n < sizeof bo_name ? zip_find(&z, bo_name, (size_t)n) : NULL;
  if (bo) {
    const unsigned char *text;
    if ((st = zip_entry_data(&z, bo, &text, err))) return st;
    if (bo->size == 3 && memcmp(text, "big", 3) == 0)
      return dit_err(err, DIT_ERR_UNSUPPORTED, "the checkpoint was saved on a big-endian machine; "
                     "re-save it on a little-endian one");
    if (bo->size != 6 || memcmp(text, "little", 6) != 0)
      return dit_err(err, DIT_ERR_FORMAT, "bad byteorder record (expected 'little' or 'big')");
  }

  const unsigned char *pkl_data;
  if ((st = zip_entry_data(&z, pkl, &pkl_data, err))) return st;
  PyValue *top = NULL;
  if ((st = pickle_run(pkl_data, (size_t)pkl->size, &ck->arena, &top, err))) {
    dit_err_context(err, "%.*s", (int)pkl->name_len, pkl->name);
    return st;
  }
  const PyValue *sd = NULL;
  if ((st = select_state_dict(ck, top, &sd, err))) return st;
  for (size_t i = 0; i < sd->u.dict.n; i++) {
    const PyValue *key = sd->u.dict.items[i].key, *val = sd->u.dict.items[i].val;
    /* Not weights: non-string keys, and values such as None, ints or nested dicts. */
    if (key->kind != PY_STR || val->kind != PY_TENSOR) continue;
    if (strlen(key->u.str.s) != key->u.str.len)
      return dit_err(err, DIT_ERR_FORMAT, "a tensor name contains a NUL byte");
    if ((st = add_torch_tensor(ck, &z, prefix, prefix_len, key->u.str.s, val->u.tensor, err)))
      return st;
  }
  return DIT_OK;
}
