/* test_pickle.c: the bounded pickle VM on hand-assembled pickles: the
 * opcodes torch.save uses, generic objects that must be skippable, torch
 * tensor rebuilding, and every limit and malformation that must fail with a
 * message naming the opcode offset instead of exhausting memory or crashing. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pickle.h"

typedef struct Run {
  WtArena arena;
  PyValue *v;
  DitErr err;
  DitStatus st;
} Run;

/* Runs the pickle p[0..n) from an exact-size heap copy (so ASan sees overreads). */
static void run(Run *r, const char *p, size_t n) {
  unsigned char *buf = malloc(n ? n : 1);
  assert_non_null(buf);
  memcpy(buf, p, n);
  wt_arena_init(&r->arena, 1u << 30);
  memset(&r->err, 0, sizeof r->err);
  r->st = pickle_run(buf, n, &r->arena, &r->v, &r->err);
  free(buf);
}

#define RUN(r, lit) run((r), (lit), sizeof(lit) - 1)

static void expect_error(const char *p, size_t n, const char *msg) {
  Run r;
  run(&r, p, n);
  if (r.st != DIT_ERR_FORMAT || !strstr(r.err.msg, msg))
    fail_msg("status %d, message '%s'; expected '%s'", r.st, r.err.msg, msg);
  assert_null(r.v);
  wt_arena_free(&r.arena);
}

#define EXPECT_ERROR(lit, msg) expect_error((lit), sizeof(lit) - 1, (msg))

static void test_scalars_and_containers(void **state) {
  (void)state;
  Run r;
  /* (1, -1, 300, -2, 2**40, 1.5, 'ab', b'c', True, None) as a list, via MARK/APPENDS. */
  RUN(&r, "\x80\x02]q\x00(K\x01J\xff\xff\xff\xffM,\x01\x8a\x01\xfe\x8a\x06\0\0\0\0\0\x01"
          "G?\xf8\0\0\0\0\0\0X\x02\0\0\0abC\x01" "c\x88Ne.");
  assert_int_equal(r.st, DIT_OK);
  assert_int_equal(r.v->kind, PY_LIST);
  assert_int_equal(r.v->u.seq.n, 10);
  PyValue **it = r.v->u.seq.items;
  assert_int_equal(it[0]->u.i, 1);
  assert_int_equal(it[1]->u.i, -1);
  assert_int_equal(it[2]->u.i, 300);
  assert_int_equal(it[3]->u.i, -2);
  assert_int_equal(it[4]->u.i, (int64_t)1 << 40);
  assert_true(it[5]->kind == PY_FLOAT && it[5]->u.f == 1.5);
  assert_string_equal(it[6]->u.str.s, "ab");
  assert_int_equal(it[7]->kind, PY_BYTES);
  assert_true(it[8]->kind == PY_BOOL && it[8]->u.i == 1);
  assert_int_equal(it[9]->kind, PY_NONE);
  wt_arena_free(&r.arena);

  /* A 9-byte LONG1 does not fit int64: an opaque value, not an error. */
  RUN(&r, "\x80\x02\x8a\x09\0\0\0\0\0\0\0\0\x01.");
  assert_int_equal(r.st, DIT_OK);
  assert_int_equal(r.v->kind, PY_OPAQUE);
  wt_arena_free(&r.arena);

  /* Memo sharing: the same dict under two keys; a later SETITEM wins in py_dict_get. */
  RUN(&r, "\x80\x02}q\x00(X\x01\0\0\0a}q\x01X\x01\0\0\0bh\x01X\x01\0\0\0aK\x07u.");
  assert_int_equal(r.st, DIT_OK);
  assert_int_equal(r.v->u.dict.n, 3);
  const PyValue *a = py_dict_get(r.v, "a"), *b = py_dict_get(r.v, "b");
  assert_int_equal(a->kind, PY_INT);
  assert_int_equal(b->kind, PY_DICT);
  assert_null(py_dict_get(r.v, "c"));
  wt_arena_free(&r.arena);

  /* Protocol 4: FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL, EMPTY_SET/ADDITEMS, TUPLE3. */
  RUN(&r, "\x80\x04\x95\x10\0\0\0\0\0\0\0\x8c\x01m\x94\x8c\x01n\x94\x93\x94\x8f(K\x01K\x02\x90"
          "h\x00\x87.");
  assert_int_equal(r.st, DIT_OK);
  assert_int_equal(r.v->kind, PY_TUPLE);
  assert_int_equal(r.v->u.seq.n, 3);
  assert_string_equal(r.v->u.seq.items[0]->u.global.module, "m");
  assert_string_equal(r.v->u.seq.items[0]->u.global.name, "n");
  assert_int_equal(r.v->u.seq.items[1]->kind, PY_SET);
  assert_int_equal(r.v->u.seq.items[1]->u.seq.n, 2);
  assert_string_equal(r.v->u.seq.items[2]->u.str.s, "m");
  wt_arena_free(&r.arena);
}

static void test_generic_objects_are_skippable(void **state) {
  (void)state;
  Run r;
  /* argparse.Namespace via NEWOBJ + BUILD, a REDUCE of an unknown callable with SETITEMS and
   * APPENDS on it (ignored), and an OrderedDict built from a list of pairs. */
  RUN(&r, "\x80\x02}(X\x04\0\0\0argscargparse\nNamespace\n)\x81}X\x01\0\0\0xK\x01sb"
          "X\x03\0\0\0objcfoo\nBar\n)R(K\x01K\x02u(K\x03" "e"
          "X\x02\0\0\0odccollections\nOrderedDict\n]X\x01\0\0\0kK\x05\x86" "a\x85R"
          "u.");
  if (r.st != DIT_OK) fail_msg("%s", r.err.msg);
  const PyValue *args = py_dict_get(r.v, "args");
  assert_int_equal(args->kind, PY_OBJECT);
  assert_string_equal(args->u.obj.cls->u.global.name, "Namespace");
  assert_int_equal(args->u.obj.state->kind, PY_DICT);
  assert_int_equal(py_dict_get(r.v, "obj")->kind, PY_OBJECT);
  const PyValue *od = py_dict_get(r.v, "od");
  assert_int_equal(od->kind, PY_DICT);
  assert_int_equal(py_dict_get(od, "k")->u.i, 5);
  wt_arena_free(&r.arena);
}

/* A tensor: _rebuild_tensor_v2(('storage', torch.FloatStorage, '0', 'cpu', 6), 1, (2, 2), (3, 1),
 * False, OrderedDict()), wrapped by _rebuild_parameter. */
#define STORAGE_PID "(X\x07\0\0\0storagectorch\nFloatStorage\nX\x01\0\0\0" "0X\x03\0\0\0cpuK\x06tQ"
#define HOOKS "ccollections\nOrderedDict\n)R"

static void test_tensor_rebuild(void **state) {
  (void)state;
  Run r;
  RUN(&r, "\x80\x02" "ctorch._utils\n_rebuild_parameter\nctorch._utils\n_rebuild_tensor_v2\n("
          STORAGE_PID "K\x01K\x02K\x02\x86K\x03K\x01\x86\x89" HOOKS "tR\x88" HOOKS "\x87R.");
  if (r.st != DIT_OK) fail_msg("%s", r.err.msg);
  assert_int_equal(r.v->kind, PY_TENSOR);
  const PyTensor *t = r.v->u.tensor;
  assert_int_equal(t->rank, 2);
  assert_int_equal(t->offset, 1);
  assert_int_equal(t->shape[0], 2);
  assert_int_equal(t->stride[0], 3);
  assert_string_equal(t->storage->type_name, "FloatStorage");
  assert_string_equal(t->storage->key, "0");
  assert_int_equal(t->storage->numel, 6);
  assert_null(t->dtype_name);
  wt_arena_free(&r.arena);

  /* v3 names its dtype; a foreign persistent id is opaque. */
  RUN(&r, "\x80\x02" "ctorch._utils\n_rebuild_tensor_v3\n(" STORAGE_PID
          "K\0))\x89" HOOKS "ctorch\nfloat8_e4m3fn\ntR.");
  if (r.st != DIT_OK) fail_msg("%s", r.err.msg);
  assert_string_equal(r.v->u.tensor->dtype_name, "float8_e4m3fn");
  assert_int_equal(r.v->u.tensor->rank, 0);
  wt_arena_free(&r.arena);
  RUN(&r, "\x80\x02X\x03\0\0\0fooQ.");
  assert_int_equal(r.v->kind, PY_OPAQUE);
  wt_arena_free(&r.arena);

  EXPECT_ERROR("\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n(K\x01K\0)))\x89NtR.",
               "argument 0 is not a storage");
  EXPECT_ERROR("\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n(" STORAGE_PID "K\0K\x02\x85)\x89NtR.",
               "size and stride are not tuples of the same length");
  EXPECT_ERROR("\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n(" STORAGE_PID
               "K\0J\xff\xff\xff\xff\x85K\x01\x85\x89NtR.", "a size is not a non-negative int");
  EXPECT_ERROR("\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n(" STORAGE_PID "K\0tR.",
               "takes 6 or 7 arguments, got 2");
  EXPECT_ERROR("\x80\x02(X\x07\0\0\0storageK\x01tQ.", "malformed storage persistent id");
}

static void test_malformed_pickles_fail_with_offsets(void **state) {
  (void)state;
  EXPECT_ERROR("", "no STOP opcode");
  EXPECT_ERROR("\x80\x02}", "no STOP opcode");
  EXPECT_ERROR("\x80\x01}.", "pickle protocol 1 is not supported");
  EXPECT_ERROR("\x80\x02.", "opcode 0x2e at offset 2: stack underflow");
  EXPECT_ERROR("\x80\x02t.", "no MARK to pop");
  EXPECT_ERROR("\x80\x02(\x85.", "stack underflow"); /* TUPLE1 may not pop below the mark */
  EXPECT_ERROR("\x80\x02I1\n.", "opcode 0x49 at offset 2: unsupported opcode");
  EXPECT_ERROR("\x80\x02X\xff\0\0\0ab.", "a string of 255 bytes");
  EXPECT_ERROR("\x80\x02T\xff\xff\xff\xff.", "negative string length");
  EXPECT_ERROR("\x80\x02\x8b\0\0\0\x80.", "negative LONG4 length");
  EXPECT_ERROR("\x80\x02J\x01\x02", "truncated: needs 4 more bytes");
  EXPECT_ERROR("\x80\x02h\x05.", "memo index 5 is not set");
  EXPECT_ERROR("\x80\x02Nr\xff\xff\xff\xff.", "past the limit");
  EXPECT_ERROR("\x80\x02" "cfoo", "GLOBAL line has no newline");
  EXPECT_ERROR("\x80\x02K\x01K\x02\x93.", "STACK_GLOBAL needs two strings");
  EXPECT_ERROR("\x80\x02]K\x01K\x02s.", "SETITEM on a list");
  EXPECT_ERROR("\x80\x02}K\x01\x61.", "appending to a dict");
  EXPECT_ERROR("\x80\x02}(K\x01u.", "odd number of items");
  EXPECT_ERROR("\x80\x02" "cfoo\nbar\nK\x01R.", "arguments are a int, not a tuple");
  EXPECT_ERROR("\x80\x02" "ccollections\nOrderedDict\n]K\x01\x61\x85R.", "item 0 is not a pair");
}

static void test_limits(void **state) {
  (void)state;
  /* MARK nesting. */
  size_t n = PICKLE_MAX_MARKS + 10;
  char *p = malloc(n + 3);
  assert_non_null(p);
  memcpy(p, "\x80\x02", 2);
  memset(p + 2, '(', n);
  p[n + 2] = '.';
  expect_error(p, n + 3, "MARKs nest deeper than 4096");
  free(p);

  /* Stack size: None, then DUP past the limit (one byte per value). */
  n = PICKLE_MAX_STACK + 10;
  p = malloc(n + 4);
  assert_non_null(p);
  memcpy(p, "\x80\x02N", 3);
  memset(p + 3, '2', n);
  p[n + 3] = '.';
  expect_error(p, n + 4, "the stack grows past");
  free(p);

  /* Many values, but within the limits: a long list built with APPEND. */
  n = 100000;
  p = malloc(2 * n + 4);
  assert_non_null(p);
  memcpy(p, "\x80\x02]", 3);
  for (size_t i = 0; i < n; i++) memcpy(p + 3 + 2 * i, "Na", 2);
  p[2 * n + 3] = '.';
  Run r;
  run(&r, p, 2 * n + 4);
  assert_int_equal(r.st, DIT_OK);
  assert_int_equal(r.v->u.seq.n, n);
  wt_arena_free(&r.arena);
  free(p);

  /* An arena cap turns into an error, not a crash. */
  wt_arena_init(&r.arena, 1024);
  static const unsigned char big[] = "\x80\x02X\x00\x10\x00\x00";
  unsigned char *q = calloc(1, 4096 + 8);
  assert_non_null(q);
  memcpy(q, big, 7);
  q[7 + 4096] = '.';
  assert_int_equal(pickle_run(q, 4096 + 8, &r.arena, &r.v, &r.err), DIT_ERR_NOMEM);
  wt_arena_free(&r.arena);
  free(q);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_scalars_and_containers),
    cmocka_unit_test(test_generic_objects_are_skippable),
    cmocka_unit_test(test_tensor_rebuild),
    cmocka_unit_test(test_malformed_pickles_fail_with_offsets),
    cmocka_unit_test(test_limits),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
