/* pickle.h: a small, bounded pickle virtual machine for the subset of the
 * pickle protocol (2 to 5) that torch.save writes for state dicts and
 * training checkpoints. It never imports or calls anything: GLOBAL makes a
 * PY_GLOBAL value, and REDUCE/NEWOBJ/BUILD build a generic PY_OBJECT, except
 * for the few callables it knows (torch tensor rebuilders, OrderedDict).
 * Persistent ids ('storage', <torch.XStorage>, key, location, numel) become
 * PY_STORAGE values; the caller resolves them against the zip archive.
 * Every read is bounds-checked, and the stack, mark nesting, memo and value
 * count have hard limits, so a hostile pickle fails with DIT_ERR_FORMAT. */
#ifndef DIT_RUNTIME_WEIGHTS_PICKLE_H
#define DIT_RUNTIME_WEIGHTS_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "wt_arena.h"

enum {
  PICKLE_MAX_STACK = 1 << 20,   /* values on the stack, all marks together */
  PICKLE_MAX_MARKS = 4096,      /* MARK nesting */
  PICKLE_MAX_MEMO = 1 << 22,    /* highest memo index + 1 */
  PICKLE_MAX_VALUES = 1 << 24,  /* values created */
  PICKLE_MAX_RANK = 8           /* tensor rank the VM records */
};

typedef enum PyKind {
  PY_NONE,
  PY_BOOL,
  PY_INT,
  PY_FLOAT,
  PY_STR,     /* text (BINUNICODE, ...) or a byte string from protocol 2 BINSTRING */
  PY_BYTES,
  PY_TUPLE,
  PY_LIST,
  PY_SET,
  PY_DICT,    /* insertion ordered; duplicate keys are kept (see py_dict_get) */
  PY_GLOBAL,  /* module.name, never resolved */
  PY_OBJECT,  /* anything else: cls(args) with an optional BUILD state */
  PY_STORAGE, /* persistent id of a torch storage */
  PY_TENSOR,  /* torch._utils._rebuild_tensor_v2/v3, _rebuild_parameter */
  PY_OPAQUE   /* a value the VM does not model (big ints, foreign persistent ids) */
} PyKind;

typedef struct PyValue PyValue;

typedef struct PyPair {
  PyValue *key, *val;
} PyPair;

typedef struct PyStorage {
  const char *type_module, *type_name; /* e.g. "torch", "FloatStorage" */
  const char *key;                     /* zip entry <archive>/data/<key> */
  const char *location;                /* e.g. "cpu", "cuda:0" */
  int64_t numel;                       /* elements of the storage type (bytes if untyped) */
} PyStorage;

typedef struct PyTensor {
  const PyStorage *storage;
  int64_t offset;                      /* storage offset, in elements */
  int rank;                            /* PICKLE_MAX_RANK + 1 when larger than the VM records */
  int64_t shape[PICKLE_MAX_RANK];
  int64_t stride[PICKLE_MAX_RANK];     /* in elements */
  const char *dtype_name;              /* _rebuild_tensor_v3 only (e.g. "float8_e4m3fn"), else NULL */
} PyTensor;

struct PyValue {
  PyKind kind;
  union {
    int64_t i;                                        /* PY_INT, PY_BOOL */
    double f;                                         /* PY_FLOAT */
    struct { const char *s; size_t len; } str;        /* PY_STR, PY_BYTES; NUL-terminated */
    struct { PyValue **items; size_t n, cap; } seq;   /* PY_TUPLE, PY_LIST, PY_SET */
    struct { PyPair *items; size_t n, cap; } dict;
    struct { const char *module, *name; } global;
    struct { PyValue *cls, *args, *state; } obj;
    const PyStorage *storage;
    const PyTensor *tensor;
  } u;
};

/* Runs the pickle data[0..len) and returns the value at STOP in *out.
 * All values live in arena. Errors name the opcode and its byte offset. */
DitStatus pickle_run(const unsigned char *data, size_t len, WtArena *arena, PyValue **out,
                     DitErr *err);

/* dict[key] for a string key (the last assignment wins, as in Python); NULL if absent. */
const PyValue *py_dict_get(const PyValue *dict, const char *key);

/* "dict", "tensor", ... for messages. */
const char *py_kind_name(PyKind k);

#endif
