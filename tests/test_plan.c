/* test_plan.c: plan.bin from the compiler through the runtime's loader:
 * a round trip, then every kind of damage: bad magic, another version, a
 * corrupt header or section, truncation at every length, records that point
 * outside their buffers, ops that break their kernel's contract, unknown
 * sections. Each must fail with its own clear message, never crash. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "compile_mem.h"
#include "plan/plan_view.h"

typedef struct Bytes {
  unsigned char *data;
  size_t len;
} Bytes;

static Bytes compile_plan(const char *spec, int64_t batch) {
  char path[512];
  snprintf(path, sizeof path, "%s/specs/%s", DIT_SOURCE_DIR, spec);
  char *buf = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&buf, &len);
  FILE *err = fopen("/dev/null", "w");
  CompileOptions o = {.emit = EMIT_PLAN, .batch = batch};
  o.spec.path = path;
  o.spec.allow_include = true;
  assert_int_equal(compile_pipeline(&o, out, err), DITC_OK);
  fclose(out);
  fclose(err);
  return (Bytes){(unsigned char *)buf, len};
}

/* Loads a private copy (the loader owns and frees its buffer). */
static DitStatus load_copy(const Bytes *b, size_t len, PlanView *pv, DitErr *e) {
  unsigned char *copy = malloc(len ? len : 1);
  memcpy(copy, b->data, len);
  return plan_load_buffer(copy, len, "test.plan", pv, e);
}

static PlanSection *sections(Bytes *b) {
  PlanHeader *h = (PlanHeader *)b->data;
  return (PlanSection *)(b->data + h->section_table);
}

static PlanSection *find_section(Bytes *b, uint32_t kind) {
  PlanHeader *h = (PlanHeader *)b->data;
  for (uint32_t i = 0; i < h->n_sections; i++)
    if (sections(b)[i].kind == kind) return &sections(b)[i];
  fail_msg("no section %u", kind);
  return NULL;
}

/* Recomputes every checksum after a deliberate edit, so that only the edit's meaning is tested. */
static void reseal(Bytes *b) {
  PlanHeader *h = (PlanHeader *)b->data;
  for (uint32_t i = 0; i < h->n_sections; i++) {
    PlanSection *s = &sections(b)[i];
    s->crc32 = dit_plan_crc32(0, b->data + s->offset, s->bytes);
  }
  h->header_crc32 = 0;
  h->header_crc32 = dit_plan_crc32(0, h, sizeof *h);
}

static void expect_error(Bytes *b, DitStatus want, const char *fragment) {
  PlanView pv;
  DitErr e = {0};
  DitStatus st = load_copy(b, b->len, &pv, &e);
  if (st != want || !strstr(e.msg, fragment))
    fail_msg("status %d (want %d), message '%s' (want '%s')", st, want, e.msg, fragment);
}

static void test_round_trip(void **state) {
  (void)state;
  Bytes b = compile_plan("tests/tiny.dit", 4);
  PlanView pv;
  DitErr e = {0};
  assert_int_equal(load_copy(&b, b.len, &pv, &e), DIT_OK);
  assert_string_equal(plan_string(&pv, pv.model->name), "tiny");
  assert_int_equal(pv.header->max_batch, 4);
  assert_int_equal(pv.model->tokens, 16);
  assert_int_equal(pv.model->hidden_size, 64);
  assert_int_equal(pv.n_weights, 12 + 10 * 2);
  assert_int_equal(pv.n_ops, 27 + 2); /* the forward, then guidance and the sampler step */
  assert_int_equal(pv.io->n_forward_ops, 27);
  assert_int_equal(pv.ops[27].kind, PLAN_OP_CFG_MIX);
  assert_int_equal(pv.ops[28].kind, PLAN_OP_DIFFUSION_STEP);
  bool pos = false;
  for (size_t i = 0; i < pv.n_weights; i++)
    if (!strcmp(plan_string(&pv, pv.weights[i].name), "pos_embed"))
      pos = pv.weights[i].flags & PLAN_WEIGHT_FROZEN;
  assert_true(pos);
  assert_true(pv.io->arena_bytes < pv.io->unplanned_bytes);
  plan_view_free(&pv);
  free(b.data);
}

static void test_bad_magic_and_version(void **state) {
  (void)state;
  Bytes b = compile_plan("tests/tiny.dit", 2);
  b.data[0] = 'X';
  expect_error(&b, DIT_ERR_FORMAT, "test.plan: not a ditc plan (bad magic)");
  b.data[0] = 'D';
  ((PlanHeader *)b.data)->version = DIT_PLAN_VERSION + 1;
  reseal(&b);
  char want[128];
  snprintf(want, sizeof want, "test.plan: plan format version %u, but this runtime reads version %u",
           DIT_PLAN_VERSION + 1, DIT_PLAN_VERSION);
  expect_error(&b, DIT_ERR_VERSION, want);
  /* version 3, before kernel slots named their family: refused, asking for a recompile */
  ((PlanHeader *)b.data)->version = 3;
  reseal(&b);
  expect_error(&b, DIT_ERR_VERSION,
               "test.plan: plan format version 3, but this runtime reads version 6; recompile it with this ditc");
  ((PlanHeader *)b.data)->version = DIT_PLAN_VERSION;
  reseal(&b);
  b.data[20] ^= 0x40; /* inside the compiler version string */
  expect_error(&b, DIT_ERR_FORMAT, "the plan header is corrupt (checksum mismatch)");
  free(b.data);
}

static void test_truncated_everywhere(void **state) {
  (void)state;
  Bytes b = compile_plan("tests/tiny.dit", 2);
  for (size_t len = 0; len < b.len; len += (len < 256 ? 1 : 61)) {
    PlanView pv;
    DitErr e = {0};
    DitStatus st = load_copy(&b, len, &pv, &e);
    assert_int_not_equal(st, DIT_OK);
    assert_true(strlen(e.msg) > 0);
    if (len >= sizeof(PlanHeader) && !strstr(e.msg, "truncated"))
      fail_msg("cut at %zu: '%s' does not say truncated", len, e.msg);
  }
  free(b.data);
}

static void test_corrupt_sections(void **state) {
  (void)state;
  static const struct { uint32_t kind; const char *name; } kinds[] = {
      {PLAN_SEC_MODEL, "model"}, {PLAN_SEC_STRINGS, "strings"}, {PLAN_SEC_WEIGHTS, "weights"},
      {PLAN_SEC_VALUES, "values"}, {PLAN_SEC_OPS, "ops"}, {PLAN_SEC_IO, "io"}};
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
    Bytes b = compile_plan("tests/tiny.dit", 2);
    PlanSection *s = find_section(&b, kinds[k].kind);
    b.data[s->offset + s->bytes / 2] ^= 0x01;
    char want[128];
    snprintf(want, sizeof want, "(%s) is corrupt: checksum mismatch", kinds[k].name);
    expect_error(&b, DIT_ERR_FORMAT, want);
    free(b.data);
  }
}

static void test_records_outside_buffers(void **state) {
  (void)state;
  Bytes b = compile_plan("tests/tiny.dit", 2);
  PlanSection *vs = find_section(&b, PLAN_SEC_VALUES);
  PlanValue *v = (PlanValue *)(b.data + vs->offset);
  uint64_t saved = v[5].offset;
  v[5].offset = ((PlanIO *)(b.data + find_section(&b, PLAN_SEC_IO)->offset))->arena_bytes;
  if (v[5].storage == PLAN_STORE_WEIGHTS)
    v[5].offset = ((PlanIO *)(b.data + find_section(&b, PLAN_SEC_IO)->offset))->weight_bytes;
  reseal(&b);
  expect_error(&b, DIT_ERR_FORMAT, "value record 5 is invalid");
  v[5].offset = saved;
  PlanWeight *w = (PlanWeight *)(b.data + find_section(&b, PLAN_SEC_WEIGHTS)->offset);
  w[3].name = 0x7FFFFFFF;
  reseal(&b);
  expect_error(&b, DIT_ERR_FORMAT, "weight record 3 is invalid");
  free(b.data);
}

static void test_ops_against_contracts(void **state) {
  (void)state;
  Bytes b = compile_plan("tests/tiny.dit", 2);
  PlanSection *os = find_section(&b, PLAN_SEC_OPS);
  PlanOp *ops = (PlanOp *)(b.data + os->offset);
  size_t n_ops = os->count, lin = 0;
  while (lin < n_ops && ops[lin].kind != PLAN_OP_LINEAR) lin++;
  PlanOp saved = ops[lin];

  ops[lin].in[0] = 100000;
  reseal(&b);
  expect_error(&b, DIT_ERR_FORMAT, "reads a value that is not defined before it");
  ops[lin] = saved;

  ops[lin].in[1] = ops[lin].in[2]; /* the bias as the weight matrix */
  reseal(&b);
  expect_error(&b, DIT_ERR_FORMAT, "linear operand types");
  ops[lin] = saved;

  ops[lin].out = ops[lin].in[1]; /* write into the weights */
  reseal(&b);
  expect_error(&b, DIT_ERR_FORMAT, "writes outside the activation arena");
  ops[lin] = saved;

  ops[lin].out = ops[lin].in[0]; /* result over its own operand */
  reseal(&b);
  expect_error(&b, DIT_ERR_FORMAT, "a result overlaps an operand");
  ops[lin] = saved;

  ops[lin].kind = 77;
  reseal(&b);
  expect_error(&b, DIT_ERR_FORMAT, "op ");
  ops[lin] = saved;

  size_t at = 0;
  while (at < n_ops && ops[at].kind != PLAN_OP_ATTENTION) at++;
  ops[at].i[0] += 1; /* heads */
  reseal(&b);
  expect_error(&b, DIT_ERR_FORMAT, "attention shapes");
  free(b.data);
}

static void test_unknown_sections(void **state) {
  (void)state;
  Bytes b = compile_plan("tests/tiny.dit", 2);
  PlanSection *s = find_section(&b, PLAN_SEC_IO);
  s->kind = 250; /* a future required section; io is now missing too, but the unknown kind comes first */
  reseal(&b);
  expect_error(&b, DIT_ERR_VERSION, "section kind 250 is unknown to this runtime");
  s->flags = PLAN_SECTION_OPTIONAL;
  reseal(&b);
  expect_error(&b, DIT_ERR_FORMAT, "the io section is missing");
  free(b.data);
}

/* The named inputs and outputs, and the model family. */
static void test_io_names_and_family(void **state) {
  (void)state;
  Bytes b = compile_plan("tests/tiny.dit", 2);
  PlanView pv;
  DitErr e = {0};
  assert_int_equal(load_copy(&b, b.len, &pv, &e), DIT_OK);
  assert_int_equal(pv.n_io_names, 7);
  const PlanIoName *x = plan_io_named(&pv, "x"), *out = plan_io_named(&pv, "out");
  const PlanIoName *hist = plan_io_named(&pv, "history"); /* DPM-Solver++'s x0 of the last steps */
  assert_non_null(hist);
  assert_int_equal(hist->role, PLAN_IO_STEP_INPUT);
  assert_int_equal(pv.values[hist->value].dims[1], 3 * pv.values[pv.io->x].dims[1]);
  assert_non_null(x);
  assert_non_null(out);
  assert_int_equal(x->value, pv.io->x);
  assert_int_equal(x->role, PLAN_IO_INPUT);
  assert_int_equal(out->value, pv.io->out);
  assert_int_equal(out->role, PLAN_IO_OUTPUT);
  assert_string_equal(plan_string(&pv, pv.model->family), "dit");
  assert_null(plan_io_named(&pv, "z"));
  plan_view_free(&pv);
  PlanSection *s = find_section(&b, PLAN_SEC_IO_NAMES);
  PlanIoName *names = (PlanIoName *)(b.data + s->offset), saved = names[1];
  names[1].value = names[0].value; /* "t" naming x's value */
  reseal(&b);
  expect_error(&b, DIT_ERR_FORMAT, "the io-names section gives another value for 't'");
  names[1] = saved;
  names[2].name = names[0].name; /* "x" twice */
  reseal(&b);
  expect_error(&b, DIT_ERR_FORMAT, "the io name 'x' appears twice");
  names[2] = saved, names[2].role = 9;
  reseal(&b);
  expect_error(&b, DIT_ERR_FORMAT, "io name 2 is invalid");
  s->kind = 250, s->flags = PLAN_SECTION_OPTIONAL;
  reseal(&b);
  expect_error(&b, DIT_ERR_FORMAT, "the io-names section is missing");
  free(b.data);
  /* a family this runtime does not run: "dit" -> "vit" in the string table */
  b = compile_plan("tests/tiny.dit", 2);
  PlanModel *m = (PlanModel *)(b.data + find_section(&b, PLAN_SEC_MODEL)->offset);
  memcpy(b.data + find_section(&b, PLAN_SEC_STRINGS)->offset + m->family, "vit", 3);
  reseal(&b);
  expect_error(&b, DIT_ERR_UNSUPPORTED, "a plan of the model family 'vit'; this runtime runs 'dit' and 'vae' plans");
  free(b.data);
}

static void test_load_from_path(void **state) {
  (void)state;
  PlanView pv;
  DitErr e = {0};
  assert_int_equal(plan_load("/nonexistent.plan", &pv, &e), DIT_ERR_IO);
  assert_non_null(strstr(e.msg, "/nonexistent.plan: cannot open plan: No such file or directory"));
  assert_int_equal(plan_load("/tmp", &pv, &e), DIT_ERR_IO);
  assert_non_null(strstr(e.msg, "/tmp: not a regular file"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_bad_magic_and_version),
      cmocka_unit_test(test_truncated_everywhere),
      cmocka_unit_test(test_corrupt_sections),
      cmocka_unit_test(test_records_outside_buffers),
      cmocka_unit_test(test_ops_against_contracts),
      cmocka_unit_test(test_unknown_sections),
      cmocka_unit_test(test_io_names_and_family),
      cmocka_unit_test(test_load_from_path),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
