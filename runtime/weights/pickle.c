/* pickle.c: the bounded pickle VM of the checkpoint readers (see pickle.h).
 * It follows CPython's Unpickler (Lib/pickle.py) for the opcodes it knows:
 * MARK starts a new frame of the stack, ops that pop below the innermost
 * mark fail, the memo maps indices to shared values. Mutating ops (SETITEMS,
 * APPENDS, BUILD) on a generic object are accepted and ignored, so objects it
 * does not model (argparse.Namespace, optimizer state) are skipped, not fatal.
 * Opcodes of protocol 0/1 text form, EXT*, PERSID and buffers are rejected. */
#include "pickle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Vm {
  const unsigned char *data;
  size_t len, pos;
  size_t op_pos;        /* offset of the opcode being run, for messages */
  unsigned op;
  WtArena *arena;
  PyValue **stack;      /* [sp], malloc'ed */
  size_t sp, stack_cap;
  size_t *marks;        /* [n_marks] stack heights at each MARK, malloc'ed */
  size_t n_marks;
  PyValue **memo;       /* [memo_cap], NULL = unset, malloc'ed */
  size_t memo_cap, memo_count;
  size_t n_values;
  DitErr *err;
} Vm;

static DitStatus vm_fail(Vm *vm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static DitStatus push(Vm *vm, PyValue *v);

static DitStatus vm_fail(Vm *vm, const char *fmt, ...) {
  char what[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return dit_err(vm->err, DIT_ERR_FORMAT, "pickle: opcode 0x%02x at offset %zu: %s", vm->op,
                 vm->op_pos, what);
}

static DitStatus vm_nomem(Vm *vm) {
  return dit_err(vm->err, DIT_ERR_NOMEM, "pickle: out of memory at offset %zu", vm->op_pos);
}

/* ---- reading the byte stream ---- */

static DitStatus need(Vm *vm, size_t n) {
  if (vm->len - vm->pos < n)
    return vm_fail(vm, "truncated: needs %zu more bytes, the pickle has %zu", n,
                   vm->len - vm->pos);
  return DIT_OK;
}

static uint64_t rd_le(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

/* Reads an n-byte little-endian unsigned argument. */
static DitStatus arg_u(Vm *vm, int n, uint64_t *v) {
  DitStatus st = need(vm, (size_t)n);
  if (st) return st;
  *v = rd_le(vm->data + vm->pos, n);
  vm->pos += (size_t)n;
  return DIT_OK;
}

/* ---- values ---- */

static PyValue *new_value(Vm *vm, PyKind kind) {
  if (vm->n_values >= PICKLE_MAX_VALUES) return NULL;
  PyValue *v = wt_arena_alloc(vm->arena, sizeof *v);
  if (!v) return NULL;
  vm->n_values++;
  v->kind = kind;
  return v;
}

static DitStatus make_value(Vm *vm, PyKind kind, PyValue **out) {
  *out = new_value(vm, kind);
  if (*out) return DIT_OK;
  if (vm->n_values >= PICKLE_MAX_VALUES)
    return vm_fail(vm, "more than %d values", PICKLE_MAX_VALUES);
  return vm_nomem(vm);
}

static DitStatus seq_add(Vm *vm, PyValue *seq, PyValue *item) {
  if (wt_arena_grow(vm->arena, (void **)&seq->u.seq.items, &seq->u.seq.cap, seq->u.seq.n + 1,
                    sizeof *seq->u.seq.items))
    return vm_nomem(vm);
  seq->u.seq.items[seq->u.seq.n++] = item;
  return DIT_OK;
}

static DitStatus dict_add(Vm *vm, PyValue *dict, PyValue *key, PyValue *val) {
  if (wt_arena_grow(vm->arena, (void **)&dict->u.dict.items, &dict->u.dict.cap,
                    dict->u.dict.n + 1, sizeof *dict->u.dict.items))
    return vm_nomem(vm);
  dict->u.dict.items[dict->u.dict.n].key = key;
  dict->u.dict.items[dict->u.dict.n].val = val;
  dict->u.dict.n++;
  return DIT_OK;
}

/* A sequence value of the given kind holding items[0..n). */
static DitStatus make_seq(Vm *vm, PyKind kind, PyValue **items, size_t n, PyValue **out) {
  DitStatus st = make_value(vm, kind, out);
  if (st) return st;
  if (n == 0) return DIT_OK;
  (*out)->u.seq.items = wt_arena_array(vm->arena, n, sizeof *items);
  if (!(*out)->u.seq.items) return vm_nomem(vm);
  memcpy((*out)->u.seq.items, items, n * sizeof *items);
  (*out)->u.seq.n = (*out)->u.seq.cap = n;
  return DIT_OK;
}

static DitStatus make_str(Vm *vm, PyKind kind, const unsigned char *s, size_t n, PyValue **out) {
  DitStatus st = make_value(vm, kind, out);
  if (st) return st;
  char *copy = wt_arena_strndup(vm->arena, (const char *)s, n);
  if (!copy) return vm_nomem(vm);
  (*out)->u.str.s = copy;
  (*out)->u.str.len = n;
  return DIT_OK;
}

/* Reads a length-prefixed string argument (len_bytes of little-endian length). */
static DitStatus load_string(Vm *vm, int len_bytes, int is_signed, PyKind kind) {
  uint64_t n;
  DitStatus st = arg_u(vm, len_bytes, &n);
  if (st) return st;
  if (is_signed && (n & 0x80000000u))
    return vm_fail(vm, "negative string length");
  if (n > vm->len - vm->pos)
    return vm_fail(vm, "truncated: a string of %llu bytes, the pickle has %zu left",
                   (unsigned long long)n, vm->len - vm->pos);
  PyValue *v = NULL;
  st = make_str(vm, kind, vm->data + vm->pos, (size_t)n, &v);
  if (st) return st;
  vm->pos += (size_t)n;
  return push(vm, v);
}

static int str_is(const PyValue *v, const char *s) {
  return v && v->kind == PY_STR && v->u.str.len == strlen(s) && memcmp(v->u.str.s, s, v->u.str.len) == 0;
}

static int global_is(const PyValue *v, const char *module, const char *name) {
  return v && v->kind == PY_GLOBAL && strcmp(v->u.global.module, module) == 0 &&
         strcmp(v->u.global.name, name) == 0;
}

const PyValue *py_dict_get(const PyValue *dict, const char *key) {
  if (!dict || dict->kind != PY_DICT) return NULL;
  for (size_t i = dict->u.dict.n; i-- > 0;)
    if (str_is(dict->u.dict.items[i].key, key)) return dict->u.dict.items[i].val;
  return NULL;
}

const char *py_kind_name(PyKind k) {
  switch (k) {
  case PY_NONE: return "None";
  case PY_BOOL: return "bool";
  case PY_INT: return "int";
  case PY_FLOAT: return "float";
  case PY_STR: return "str";
  case PY_BYTES: return "bytes";
  case PY_TUPLE: return "tuple";
  case PY_LIST: return "list";
  case PY_SET: return "set";
  case PY_DICT: return "dict";
  case PY_GLOBAL: return "global";
  case PY_OBJECT: return "object";
  case PY_STORAGE: return "storage";
  case PY_TENSOR: return "tensor";
  case PY_OPAQUE: return "opaque value";
  }
  return "?";
}

/* ---- the stack ---- */

static size_t frame_base(const Vm *vm) { return vm->n_marks ? vm->marks[vm->n_marks - 1] : 0; }

static DitStatus push(Vm *vm, PyValue *v) {
  if (vm->sp == vm->stack_cap) {
    if (vm->stack_cap >= PICKLE_MAX_STACK)
      return vm_fail(vm, "the stack grows past %d values", PICKLE_MAX_STACK);
    size_t ncap = vm->stack_cap ? vm->stack_cap * 2 : 64;
    PyValue **ns = realloc(vm->stack, ncap * sizeof *ns);
    if (!ns) return vm_nomem(vm);
    vm->stack = ns;
    vm->stack_cap = ncap;
  }
  vm->stack[vm->sp++] = v;
  return DIT_OK;
}

static DitStatus pop(Vm *vm, PyValue **v) {
  if (vm->sp <= frame_base(vm)) return vm_fail(vm, "stack underflow");
  *v = vm->stack[--vm->sp];
  return DIT_OK;
}

static DitStatus top(Vm *vm, PyValue **v) {
  if (vm->sp <= frame_base(vm)) return vm_fail(vm, "stack underflow");
  *v = vm->stack[vm->sp - 1];
  return DIT_OK;
}

/* Ends the innermost mark: its items are stack[*base .. vm->sp). */
static DitStatus pop_mark(Vm *vm, size_t *base) {
  if (vm->n_marks == 0) return vm_fail(vm, "no MARK to pop");
  *base = vm->marks[--vm->n_marks];
  return DIT_OK;
}

/* The value just below the innermost mark's items (the target of SETITEMS, APPENDS). */
static DitStatus below_mark(Vm *vm, size_t base, PyValue **v) {
  if (base == 0 || base - 1 < frame_base(vm)) return vm_fail(vm, "stack underflow");
  *v = vm->stack[base - 1];
  return DIT_OK;
}

/* ---- the memo ---- */

static DitStatus memo_put(Vm *vm, uint64_t idx) {
  if (idx >= PICKLE_MAX_MEMO)
    return vm_fail(vm, "memo index %llu is past the limit of %d", (unsigned long long)idx,
                   PICKLE_MAX_MEMO);
  PyValue *v = NULL;
  DitStatus st = top(vm, &v);
  if (st) return st;
  if (idx >= vm->memo_cap) {
    size_t ncap = vm->memo_cap ? vm->memo_cap : 64;
    while (ncap <= idx) ncap *= 2;
    PyValue **nm = realloc(vm->memo, ncap * sizeof *nm);
    if (!nm) return vm_nomem(vm);
    memset(nm + vm->memo_cap, 0, (ncap - vm->memo_cap) * sizeof *nm);
    vm->memo = nm;
    vm->memo_cap = ncap;
  }
  if (!vm->memo[idx]) vm->memo_count++;
  vm->memo[(size_t)idx] = v;
  return DIT_OK;
}

static DitStatus memo_get(Vm *vm, uint64_t idx) {
  if (idx >= vm->memo_cap || !vm->memo[idx])
    return vm_fail(vm, "memo index %llu is not set", (unsigned long long)idx);
  return push(vm, vm->memo[idx]);
}

/* ---- torch rebuild functions ---- */

static DitStatus int_arg(Vm *vm, const PyValue *v, const char *what, int64_t *out) {
  if (!v || v->kind != PY_INT || v->u.i < 0)
    return vm_fail(vm, "tensor rebuild: %s is not a non-negative int", what);
  *out = v->u.i;
  return DIT_OK;
}

/* torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
 * backward_hooks[, metadata]) and _rebuild_tensor_v3(..., backward_hooks, dtype[, metadata]). */
static DitStatus rebuild_tensor(Vm *vm, const PyValue *args, int v3, PyValue **out) {
  size_t n = args->u.seq.n, min_n = v3 ? 7 : 6;
  PyValue **a = args->u.seq.items;
  if (n < min_n || n > min_n + 1)
    return vm_fail(vm, "_rebuild_tensor_v%d takes %zu or %zu arguments, got %zu", v3 ? 3 : 2,
                   min_n, min_n + 1, n);
  if (a[0]->kind != PY_STORAGE) return vm_fail(vm, "tensor rebuild: argument 0 is not a storage");
  const PyValue *size = a[2], *stride = a[3];
  if (size->kind != PY_TUPLE || stride->kind != PY_TUPLE || size->u.seq.n != stride->u.seq.n)
    return vm_fail(vm, "tensor rebuild: size and stride are not tuples of the same length");
  PyTensor *t = wt_arena_alloc(vm->arena, sizeof *t);
  if (!t) return vm_nomem(vm);
  t->storage = a[0]->u.storage;
  DitStatus st = int_arg(vm, a[1], "the storage offset", &t->offset);
  if (st) return st;
  size_t rank = size->u.seq.n;
  t->rank = rank > PICKLE_MAX_RANK ? PICKLE_MAX_RANK + 1 : (int)rank;
  for (size_t i = 0; i < rank; i++) {
    int64_t d = 0, s = 0;
    if ((st = int_arg(vm, size->u.seq.items[i], "a size", &d))) return st;
    if ((st = int_arg(vm, stride->u.seq.items[i], "a stride", &s))) return st;
    if (i < PICKLE_MAX_RANK) {
      t->shape[i] = d;
      t->stride[i] = s;
    }
  }
  if (v3) {
    const PyValue *dt = a[6];
    if (dt->kind != PY_GLOBAL || strcmp(dt->u.global.module, "torch") != 0)
      return vm_fail(vm, "_rebuild_tensor_v3: argument 6 is not a torch dtype");
    t->dtype_name = dt->u.global.name;
  }
  if ((st = make_value(vm, PY_TENSOR, out))) return st;
  (*out)->u.tensor = t;
  return DIT_OK;
}

static DitStatus make_object(Vm *vm, PyValue *cls, PyValue *args, PyValue **out) {
  DitStatus st = make_value(vm, PY_OBJECT, out);
  if (st) return st;
  (*out)->u.obj.cls = cls;
  (*out)->u.obj.args = args;
  return DIT_OK;
}

/* collections.OrderedDict(), or OrderedDict(iterable of pairs). */
static DitStatus make_ordered_dict(Vm *vm, PyValue *cls, PyValue *args, PyValue **out) {
  size_t n = args->u.seq.n;
  const PyValue *src = n == 1 ? args->u.seq.items[0] : NULL;
  if (n > 1 || (src && src->kind != PY_LIST && src->kind != PY_TUPLE))
    return make_object(vm, cls, args, out);
  DitStatus st = make_value(vm, PY_DICT, out);
  for (size_t i = 0; !st && src && i < src->u.seq.n; i++) {
    const PyValue *pair = src->u.seq.items[i];
    if (pair->kind != PY_TUPLE || pair->u.seq.n != 2)
      return vm_fail(vm, "OrderedDict: item %zu is not a pair", i);
    st = dict_add(vm, *out, pair->u.seq.items[0], pair->u.seq.items[1]);
  }
  return st;
}

/* callable(*args) for REDUCE; args is a tuple. */
static DitStatus call(Vm *vm, PyValue *callable, PyValue *args, PyValue **out) {
  if (global_is(callable, "torch._utils", "_rebuild_tensor_v2"))
    return rebuild_tensor(vm, args, 0, out);
  if (global_is(callable, "torch._utils", "_rebuild_tensor_v3"))
    return rebuild_tensor(vm, args, 1, out);
  if ((global_is(callable, "torch._utils", "_rebuild_parameter") ||
       global_is(callable, "torch._utils", "_rebuild_parameter_with_state")) &&
      args->u.seq.n >= 1 && args->u.seq.items[0]->kind == PY_TENSOR) {
    *out = args->u.seq.items[0];
    return DIT_OK;
  }
  if (global_is(callable, "collections", "OrderedDict"))
    return make_ordered_dict(vm, callable, args, out);
  return make_object(vm, callable, args, out);
}

/* ('storage', <torch.XStorage>, key, location, numel) -> PY_STORAGE; other ids -> PY_OPAQUE. */
static DitStatus persistent_load(Vm *vm, const PyValue *pid, PyValue **out) {
  if (pid->kind != PY_TUPLE || pid->u.seq.n < 1 || !str_is(pid->u.seq.items[0], "storage"))
    return make_value(vm, PY_OPAQUE, out);
  PyValue **a = pid->u.seq.items;
  if (pid->u.seq.n != 5 || a[1]->kind != PY_GLOBAL || a[2]->kind != PY_STR ||
      a[3]->kind != PY_STR || a[4]->kind != PY_INT || a[4]->u.i < 0)
    return vm_fail(vm, "malformed storage persistent id (expected ('storage', type, key, "
                   "location, numel))");
  PyStorage *s = wt_arena_alloc(vm->arena, sizeof *s);
  if (!s) return vm_nomem(vm);
  s->type_module = a[1]->u.global.module;
  s->type_name = a[1]->u.global.name;
  s->key = a[2]->u.str.s;
  s->location = a[3]->u.str.s;
  s->numel = a[4]->u.i;
  DitStatus st = make_value(vm, PY_STORAGE, out);
  if (st) return st;
  (*out)->u.storage = s;
  return DIT_OK;
}

/* ---- opcode families ---- */

/* GLOBAL: "module\nname\n". */
static DitStatus read_line(Vm *vm, const char **out) {
  const unsigned char *start = vm->data + vm->pos;
  const unsigned char *nl = memchr(start, '\n', vm->len - vm->pos);
  if (!nl) return vm_fail(vm, "truncated: GLOBAL line has no newline");
  size_t n = (size_t)(nl - start);
  *out = wt_arena_strndup(vm->arena, (const char *)start, n);
  if (!*out) return vm_nomem(vm);
  vm->pos += n + 1;
  return DIT_OK;
}

static DitStatus make_global(Vm *vm, const char *module, const char *name) {
  PyValue *v = NULL;
  DitStatus st = make_value(vm, PY_GLOBAL, &v);
  if (st) return st;
  v->u.global.module = module;
  v->u.global.name = name;
  return push(vm, v);
}

static DitStatus op_long(Vm *vm, int len_bytes) {
  uint64_t n;
  DitStatus st = arg_u(vm, len_bytes, &n);
  if (st) return st;
  if (len_bytes == 4 && (n & 0x80000000u)) return vm_fail(vm, "negative LONG4 length");
  if ((st = need(vm, (size_t)n))) return st;
  PyValue *v = NULL;
  if (n > 8) {
    /* Too big for int64: representable only as an opaque value (e.g. a seed in args). */
    st = make_value(vm, PY_OPAQUE, &v);
  } else {
    uint64_t u = rd_le(vm->data + vm->pos, (int)n);
    if (n > 0 && n < 8 && (u >> (8 * n - 1)) & 1u) u |= ~(uint64_t)0 << (8 * n); /* sign */
    st = make_value(vm, PY_INT, &v);
    if (!st) memcpy(&v->u.i, &u, sizeof u);
  }
  if (st) return st;
  vm->pos += (size_t)n;
  return push(vm, v);
}

static DitStatus op_int(Vm *vm, int len_bytes) {
  uint64_t u;
  DitStatus st = arg_u(vm, len_bytes, &u);
  if (st) return st;
  PyValue *v = NULL;
  if ((st = make_value(vm, PY_INT, &v))) return st;
  if (len_bytes == 4) v->u.i = (int32_t)(uint32_t)u;
  else v->u.i = (int64_t)u;
  return push(vm, v);
}

static DitStatus op_float(Vm *vm) {
  DitStatus st = need(vm, 8);
  if (st) return st;
  uint64_t u = 0;
  for (int i = 0; i < 8; i++) u = (u << 8) | vm->data[vm->pos + (size_t)i]; /* big-endian */
  vm->pos += 8;
  PyValue *v = NULL;
  if ((st = make_value(vm, PY_FLOAT, &v))) return st;
  memcpy(&v->u.f, &u, sizeof u);
  return push(vm, v);
}

static DitStatus op_tuple_n(Vm *vm, size_t n) {
  PyValue *items[3] = {NULL, NULL, NULL};
  for (size_t i = n; i-- > 0;) {
    DitStatus st = pop(vm, &items[i]);
    if (st) return st;
  }
  PyValue *t = NULL;
  DitStatus st = make_seq(vm, PY_TUPLE, items, n, &t);
  return st ? st : push(vm, t);
}

/* TUPLE, LIST, FROZENSET, DICT: a new container from the innermost mark's items. */
static DitStatus op_from_mark(Vm *vm, PyKind kind) {
  size_t base = 0;
  DitStatus st = pop_mark(vm, &base);
  if (st) return st;
  size_t n = vm->sp - base;
  PyValue *v = NULL;
  if (kind == PY_DICT) {
    if (n % 2) return vm_fail(vm, "DICT with an odd number of items");
    st = make_value(vm, PY_DICT, &v);
    for (size_t i = 0; !st && i < n; i += 2)
      st = dict_add(vm, v, vm->stack[base + i], vm->stack[base + i + 1]);
  } else {
    st = make_seq(vm, kind, vm->stack + base, n, &v);
  }
  if (st) return st;
  vm->sp = base;
  return push(vm, v);
}

/* SETITEM (one pair on the stack) and SETITEMS (pairs above the innermost mark). */
static DitStatus op_setitems(Vm *vm, int many) {
  size_t base = 0;
  DitStatus st;
  PyValue *target = NULL;
  if (many) {
    if ((st = pop_mark(vm, &base))) return st;
    if ((vm->sp - base) % 2) return vm_fail(vm, "SETITEMS with an odd number of items");
  } else {
    if (vm->sp < frame_base(vm) + 2) return vm_fail(vm, "stack underflow");
    base = vm->sp - 2;
  }
  if ((st = below_mark(vm, base, &target))) return st;
  if (target->kind == PY_DICT) {
    for (size_t i = base; i < vm->sp; i += 2)
      if ((st = dict_add(vm, target, vm->stack[i], vm->stack[i + 1]))) return st;
  } else if (target->kind != PY_OBJECT) {
    return vm_fail(vm, "SETITEM on a %s", py_kind_name(target->kind));
  }
  vm->sp = base;
  return DIT_OK;
}

/* APPEND, APPENDS, ADDITEMS. */
static DitStatus op_append(Vm *vm, int many, PyKind want) {
  size_t base = 0;
  DitStatus st;
  PyValue *target = NULL;
  if (many) {
    if ((st = pop_mark(vm, &base))) return st;
  } else {
    if (vm->sp < frame_base(vm) + 1) return vm_fail(vm, "stack underflow");
    base = vm->sp - 1;
  }
  if ((st = below_mark(vm, base, &target))) return st;
  if (target->kind == want) {
    for (size_t i = base; i < vm->sp; i++)
      if ((st = seq_add(vm, target, vm->stack[i]))) return st;
  } else if (target->kind != PY_OBJECT) {
    return vm_fail(vm, "appending to a %s", py_kind_name(target->kind));
  }
  vm->sp = base;
  return DIT_OK;
}

/* REDUCE, NEWOBJ, NEWOBJ_EX. */
static DitStatus op_call(Vm *vm, int newobj_ex, int reduce) {
  PyValue *kwargs = NULL, *args = NULL, *callable = NULL, *out = NULL;
  DitStatus st = DIT_OK;
  if (newobj_ex) st = pop(vm, &kwargs);
  if (!st) st = pop(vm, &args);
  if (!st) st = pop(vm, &callable);
  if (st) return st;
  if (args->kind != PY_TUPLE) return vm_fail(vm, "arguments are a %s, not a tuple",
                                              py_kind_name(args->kind));
  if (reduce) st = call(vm, callable, args, &out);
  else if (global_is(callable, "collections", "OrderedDict")) st = make_value(vm, PY_DICT, &out);
  else st = make_object(vm, callable, args, &out);
  return st ? st : push(vm, out);
}

static DitStatus op_build(Vm *vm) {
  PyValue *state = NULL, *obj = NULL;
  DitStatus st = pop(vm, &state);
  if (!st) st = top(vm, &obj);
  if (st) return st;
  /* Dicts (an OrderedDict's _metadata), tensors and others: the state is not needed. */
  if (obj->kind == PY_OBJECT) obj->u.obj.state = state;
  return DIT_OK;
}

/* Runs one opcode; *done is set by STOP. */
static DitStatus step(Vm *vm, PyValue **result, int *done) {
  DitStatus st;
  PyValue *v = NULL;
  uint64_t u;
  vm->op_pos = vm->pos;
  vm->op = vm->data[vm->pos++];
  switch (vm->op) {
  case 0x80: /* PROTO */
    if ((st = arg_u(vm, 1, &u))) return st;
    if (u < 2 || u > 5) return vm_fail(vm, "pickle protocol %llu is not supported",
                                       (unsigned long long)u);
    return DIT_OK;
  case 0x95: return arg_u(vm, 8, &u); /* FRAME: framing is only a hint for buffered readers */
  case '.': /* STOP */
    if ((st = pop(vm, result))) return st;
    *done = 1;
    return DIT_OK;
  case '(': /* MARK */
    if (vm->n_marks >= PICKLE_MAX_MARKS)
      return vm_fail(vm, "MARKs nest deeper than %d", PICKLE_MAX_MARKS);
    vm->marks[vm->n_marks++] = vm->sp;
    return DIT_OK;
  case '}': st = make_value(vm, PY_DICT, &v); return st ? st : push(vm, v);
  case ']': st = make_value(vm, PY_LIST, &v); return st ? st : push(vm, v);
  case ')': st = make_value(vm, PY_TUPLE, &v); return st ? st : push(vm, v);
  case 0x8f: st = make_value(vm, PY_SET, &v); return st ? st : push(vm, v); /* EMPTY_SET */
  case 'N': st = make_value(vm, PY_NONE, &v); return st ? st : push(vm, v);
  case 0x88: case 0x89: /* NEWTRUE, NEWFALSE */
    if ((st = make_value(vm, PY_BOOL, &v))) return st;
    v->u.i = vm->op == 0x88;
    return push(vm, v);
  case 't': return op_from_mark(vm, PY_TUPLE);
  case 'l': return op_from_mark(vm, PY_LIST);
  case 'd': return op_from_mark(vm, PY_DICT);
  case 0x91: return op_from_mark(vm, PY_SET); /* FROZENSET */
  case 0x85: return op_tuple_n(vm, 1);
  case 0x86: return op_tuple_n(vm, 2);
  case 0x87: return op_tuple_n(vm, 3);
  case 's': return op_setitems(vm, 0);
  case 'u': return op_setitems(vm, 1);
  case 'a': return op_append(vm, 0, PY_LIST);
  case 'e': return op_append(vm, 1, PY_LIST);
  case 0x90: return op_append(vm, 1, PY_SET); /* ADDITEMS */
  case 'q': return (st = arg_u(vm, 1, &u)) ? st : memo_put(vm, u);  /* BINPUT */
  case 'r': return (st = arg_u(vm, 4, &u)) ? st : memo_put(vm, u);  /* LONG_BINPUT */
  case 0x94: return memo_put(vm, vm->memo_count);                   /* MEMOIZE */
  case 'h': return (st = arg_u(vm, 1, &u)) ? st : memo_get(vm, u);  /* BINGET */
  case 'j': return (st = arg_u(vm, 4, &u)) ? st : memo_get(vm, u);  /* LONG_BINGET */
  case 'J': return op_int(vm, 4);
  case 'K': return op_int(vm, 1);
  case 'M': return op_int(vm, 2);
  case 0x8a: return op_long(vm, 1);
  case 0x8b: return op_long(vm, 4);
  case 'G': return op_float(vm);
  case 'X': return load_string(vm, 4, 0, PY_STR);    /* BINUNICODE */
  case 0x8c: return load_string(vm, 1, 0, PY_STR);   /* SHORT_BINUNICODE */
  case 0x8d: return load_string(vm, 8, 0, PY_STR);   /* BINUNICODE8 */
  case 'T': return load_string(vm, 4, 1, PY_STR);    /* BINSTRING */
  case 'U': return load_string(vm, 1, 0, PY_STR);    /* SHORT_BINSTRING */
  case 'B': return load_string(vm, 4, 0, PY_BYTES);  /* BINBYTES */
  case 'C': return load_string(vm, 1, 0, PY_BYTES);  /* SHORT_BINBYTES */
  case 0x8e: return load_string(vm, 8, 0, PY_BYTES); /* BINBYTES8 */
  case 'c': { /* GLOBAL */
    const char *module, *name;
    if ((st = read_line(vm, &module)) || (st = read_line(vm, &name))) return st;
    return make_global(vm, module, name);
  }
  case 0x93: { /* STACK_GLOBAL */
    PyValue *m = NULL, *n = NULL;
    if ((st = pop(vm, &n)) || (st = pop(vm, &m))) return st;
    if (m->kind != PY_STR || n->kind != PY_STR)
      return vm_fail(vm, "STACK_GLOBAL needs two strings");
    return make_global(vm, m->u.str.s, n->u.str.s);
  }
  case 'R': return op_call(vm, 0, 1);
  case 0x81: return op_call(vm, 0, 0); /* NEWOBJ */
  case 0x92: return op_call(vm, 1, 0); /* NEWOBJ_EX */
  case 'b': return op_build(vm);
  case 'Q': /* BINPERSID */
    if ((st = pop(vm, &v)) || (st = persistent_load(vm, v, &v))) return st;
    return push(vm, v);
  case '0': /* POP: the top item, or the whole innermost mark when the frame is empty */
    if (vm->sp > frame_base(vm)) {
      vm->sp--;
      return DIT_OK;
    }
    {
      size_t base = 0;
      if ((st = pop_mark(vm, &base))) return st;
      vm->sp = base;
      return DIT_OK;
    }
  case '1': { /* POP_MARK */
    size_t base = 0;
    if ((st = pop_mark(vm, &base))) return st;
    vm->sp = base;
    return DIT_OK;
  }
  case '2': return (st = top(vm, &v)) ? st : push(vm, v); /* DUP */
  default:
    return vm_fail(vm, "unsupported opcode (not one torch.save writes for state dicts)");
  }
}

DitStatus pickle_run(const unsigned char *data, size_t len, WtArena *arena, PyValue **out,
                     DitErr *err) {
  Vm vm;
  memset(&vm, 0, sizeof vm);
  vm.data = data;
  vm.len = len;
  vm.arena = arena;
  vm.err = err;
  *out = NULL;
  DitStatus st = DIT_OK;
  vm.marks = malloc(PICKLE_MAX_MARKS * sizeof *vm.marks);
  if (!vm.marks) {
    st = dit_err(err, DIT_ERR_NOMEM, "pickle: out of memory");
    goto done;
  }
  int finished = 0;
  while (!finished) {
    if (vm.pos >= vm.len) {
      st = dit_err(err, DIT_ERR_FORMAT, "pickle: truncated: no STOP opcode in %zu bytes", len);
      goto done;
    }
    st = step(&vm, out, &finished);
    if (st) goto done;
  }
done:
  free(vm.stack);
  free(vm.marks);
  free(vm.memo);
  if (st) *out = NULL;
  return st;
}
