/* test_dit_cli.c: the dit executable end to end on a tiny model: a good
 * forward, and every kind of bad input with its message and exit code:
 * usage, missing or corrupt plan, unknown device, .npy of the wrong shape,
 * labels out of range, too many rows, checkpoints with a missing,
 * unexpected or mis-shaped key, a file that is not a checkpoint. The
 * checkpoints are safetensors written here from the plan's weight table. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "npy.h"
#include "plan/plan_view.h"
#include "run_tool.h"

#define DIT_BIN_PATH DITC_BIN_DIR "/../runtime/dit"

typedef struct Env {
  char dir[64];
  char plan[128], x[128], t[128], y[128], out[128], ckpt[128];
} Env;

static char *path_in(const Env *e, char *buf, const char *name) {
  sprintf(buf, "%s/%s", e->dir, name);
  return buf;
}

static ToolResult run(const char *const *argv) {
  ToolResult r;
  assert_int_equal(run_tool(argv, NULL, &r), 0);
  return r;
}

static void expect(ToolResult *r, int code, const char *fragment) {
  if (r->signal) fail_msg("died from signal %d", r->signal);
  if (r->exit_code != code || !strstr(r->err, fragment))
    fail_msg("exit %d (want %d), stderr:\n%s\nwant: %s", r->exit_code, code, r->err, fragment);
}

/* safetensors with every weight of the plan (random values); `skip` omits a
 * key, `extra` adds one, `bad_shape` changes the shape of one key. */
static void write_ckpt(const char *path, const PlanView *pv, const char *skip, const char *extra,
                       const char *bad_shape) {
  char *hdr = malloc(1 << 16);
  size_t k = (size_t)sprintf(hdr, "{");
  uint64_t off = 0;
  for (size_t i = 0; i < pv->n_weights + (extra ? 1 : 0); i++) {
    const PlanWeight *w = &pv->weights[i < pv->n_weights ? i : 0];
    const char *name = i < pv->n_weights ? plan_string(pv, w->name) : extra;
    if (skip && !strcmp(name, skip)) continue;
    k += (size_t)sprintf(hdr + k, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[", k > 1 ? "," : "", name);
    for (uint32_t d = 0; d < w->rank; d++)
      k += (size_t)sprintf(hdr + k, "%s%lld", d ? "," : "",
                           (long long)(w->dims[d] + (bad_shape && !strcmp(name, bad_shape) && d == 0)));
    uint64_t bytes = w->bytes + (bad_shape && !strcmp(name, bad_shape) ? w->bytes / (uint64_t)w->dims[0] : 0);
    k += (size_t)sprintf(hdr + k, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                         (unsigned long long)(off + bytes));
    off += bytes;
  }
  k += (size_t)sprintf(hdr + k, "}");
  while (k % 8) hdr[k++] = ' ';
  FILE *f = fopen(path, "wb");
  uint64_t hl = k;
  fwrite(&hl, 8, 1, f);
  fwrite(hdr, 1, k, f);
  for (uint64_t i = 0; i < off / 4; i++) {
    float v = (float)((i * 2654435761u) % 1000) / 5000.0f - 0.1f;
    fwrite(&v, 4, 1, f);
  }
  fclose(f);
  free(hdr);
}

static int setup(void **state) {
  Env *e = calloc(1, sizeof *e);
  strcpy(e->dir, "/tmp/ditc_cli_XXXXXX");
  if (!mkdtemp(e->dir)) return -1;
  path_in(e, e->plan, "tiny.plan");
  path_in(e, e->x, "x.npy");
  path_in(e, e->t, "t.npy");
  path_in(e, e->y, "y.npy");
  path_in(e, e->out, "out.npy");
  path_in(e, e->ckpt, "w.safetensors");
  const char *argv[] = {DITC_BIN, DIT_SOURCE_DIR "/specs/tests/tiny.dit", "-o", e->plan, "--batch", "2", NULL};
  ToolResult r = run(argv);
  tool_result_free(&r);
  PlanView pv;
  DitErr err;
  if (plan_load(e->plan, &pv, &err)) return -1;
  write_ckpt(e->ckpt, &pv, NULL, NULL, NULL);
  plan_view_free(&pv);
  float x[2 * 4 * 8 * 8];
  for (int i = 0; i < 2 * 4 * 8 * 8; i++) x[i] = (float)(i % 17) / 8.0f - 1.0f;
  int64_t xs[4] = {2, 4, 8, 8}, ns[1] = {2};
  float tv[2] = {0, 999}, yv[2] = {3, 10};
  DitErr we;
  if (npy_write_f32(e->x, x, 4, xs, &we) || npy_write_f32(e->t, tv, 1, ns, &we) ||
      npy_write_f32(e->y, yv, 1, ns, &we))
    return -1;
  *state = e;
  return 0;
}

static int teardown(void **state) {
  Env *e = *state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", e->dir);
  if (system(cmd) != 0) return -1;
  free(e);
  return 0;
}

/* t and y must be integer arrays: write them as int64 .npy by hand */
static void write_i64(const char *path, const int64_t *v, int n) {
  FILE *f = fopen(path, "wb");
  char hdr[118];
  memset(hdr, ' ', sizeof hdr);
  int k = sprintf(hdr, "{'descr': '<i8', 'fortran_order': False, 'shape': (%d,), }", n);
  hdr[k] = ' ';
  hdr[117] = '\n';
  unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 118, 0};
  fwrite(pre, 1, 10, f);
  fwrite(hdr, 1, 118, f);
  fwrite(v, 8, (size_t)n, f);
  fclose(f);
}

static void test_forward_ok_and_float_labels_refused(void **state) {
  Env *e = *state;
  const char *argv[] = {DIT_BIN_PATH, "forward", e->plan, "--weights", e->ckpt, "--x", e->x,
                        "--t", e->t, "--y", e->y, "-o", e->out, NULL};
  ToolResult r = run(argv);
  expect(&r, 1, "--t and --y must be int64 or int32 vectors of length 2");
  tool_result_free(&r);
  int64_t tv[2] = {0, 999}, yv[2] = {3, 10};
  write_i64(e->t, tv, 2);
  write_i64(e->y, yv, 2);
  r = run(argv);
  expect(&r, 0, "");
  tool_result_free(&r);
  NpyArray out;
  DitErr err;
  assert_int_equal(npy_read(e->out, &out, &err), DIT_OK);
  assert_int_equal(out.rank, 4);
  assert_int_equal(out.shape[0], 2);
  assert_int_equal(out.shape[1], 8);
  npy_free(&out);
  /* guidance needs 2N rows: N = 1 fits a plan of 2, N = 2 does not */
  const char *cfg[] = {DIT_BIN_PATH, "forward", e->plan, "--weights", e->ckpt, "--x", e->x, "--t", e->t,
                       "--y", e->y, "-o", e->out, "--cfg-scale", "4", NULL};
  r = run(cfg);
  expect(&r, 1, "a forward of 4 rows does not fit this plan (1 to 2 rows; compile with --batch)");
  tool_result_free(&r);
}

static void test_bad_inputs(void **state) {
  Env *e = *state;
  int64_t tv[2] = {0, 999}, yv[2] = {3, 11};
  write_i64(e->t, tv, 2);
  write_i64(e->y, yv, 2);
  const char *argv[] = {DIT_BIN_PATH, "forward", e->plan, "--weights", e->ckpt, "--x", e->x,
                        "--t", e->t, "--y", e->y, "-o", e->out, NULL};
  ToolResult r = run(argv);
  expect(&r, 1, "label 11 of row 1 is out of range [0, 10]");
  tool_result_free(&r);
  yv[1] = 10;
  write_i64(e->y, yv, 2);
  /* x of the wrong shape: t's file as x */
  const char *wrong_x[] = {DIT_BIN_PATH, "forward", e->plan, "--weights", e->ckpt, "--x", e->t,
                           "--t", e->t, "--y", e->y, "-o", e->out, NULL};
  r = run(wrong_x);
  expect(&r, 1, "expected float32 [N,4,8,8]");
  tool_result_free(&r);
  const char *no_file[] = {DIT_BIN_PATH, "forward", e->plan, "--weights", e->ckpt, "--x", "/nonexistent.npy",
                           "--t", e->t, "--y", e->y, "-o", e->out, NULL};
  r = run(no_file);
  expect(&r, 1, "/nonexistent.npy: cannot open");
  tool_result_free(&r);
  const char *not_npy[] = {DIT_BIN_PATH, "forward", e->plan, "--weights", e->ckpt, "--x", e->plan,
                           "--t", e->t, "--y", e->y, "-o", e->out, NULL};
  r = run(not_npy);
  expect(&r, 1, "not a .npy file (bad magic)");
  tool_result_free(&r);
}

static void test_bad_plan_and_device(void **state) {
  Env *e = *state;
  const char *none[] = {DIT_BIN_PATH, NULL};
  ToolResult r = run(none);
  expect(&r, 2, "usage: dit forward");
  tool_result_free(&r);
  const char *missing[] = {DIT_BIN_PATH, "forward", e->plan, "--x", e->x, NULL};
  r = run(missing);
  expect(&r, 2, "forward needs --weights");
  tool_result_free(&r);
  const char *noplan[] = {DIT_BIN_PATH, "info", "/nonexistent.plan", NULL};
  r = run(noplan);
  expect(&r, 1, "/nonexistent.plan: cannot open plan: No such file or directory");
  tool_result_free(&r);
  const char *textplan[] = {DIT_BIN_PATH, "info", DIT_SOURCE_DIR "/specs/XL2_256.dit", NULL};
  r = run(textplan);
  expect(&r, 1, "not a ditc plan (bad magic); compile one with ditc SPEC -o PLAN");
  tool_result_free(&r);
  const char *info[] = {DIT_BIN_PATH, "info", e->plan, NULL};
  r = run(info);
  expect(&r, 0, "");
  assert_non_null(strstr(r.out, "tiny  ("));
  assert_non_null(strstr(r.out, "batch 1 to 2 rows"));
  tool_result_free(&r);
  const char *cuda[] = {DIT_BIN_PATH, "forward", e->plan, "--weights", e->ckpt, "--x", e->x, "--t", e->t,
                        "--y", e->y, "-o", e->out, "--device", "cuda", NULL};
  r = run(cuda);
  /* no driver, no device, no CUDA backend in this build, or (on a GPU) a plan without kernels */
  expect(&r, 1, "dit: error: device 'cuda': ");
  tool_result_free(&r);
}

static void test_bad_checkpoints(void **state) {
  Env *e = *state;
  int64_t tv[2] = {0, 999}, yv[2] = {3, 10};
  write_i64(e->t, tv, 2);
  write_i64(e->y, yv, 2);
  PlanView pv;
  DitErr err;
  assert_int_equal(plan_load(e->plan, &pv, &err), DIT_OK);
  char bad[128];
  path_in(e, bad, "bad.safetensors");
  const char *argv[] = {DIT_BIN_PATH, "forward", e->plan, "--weights", bad, "--x", e->x,
                        "--t", e->t, "--y", e->y, "-o", e->out, NULL};
  FILE *f = fopen(e->out, "w");
  fputs("previous result", f);
  fclose(f);

  write_ckpt(bad, &pv, "blocks.1.mlp.fc2.weight", NULL, NULL);
  ToolResult r = run(argv);
  expect(&r, 1, "blocks.1.mlp.fc2.weight");
  assert_non_null(strstr(r.err, "missing"));
  tool_result_free(&r);

  write_ckpt(bad, &pv, NULL, "blocks.7.attn.qkv.weight", NULL);
  r = run(argv);
  expect(&r, 1, "unexpected key 'blocks.7.attn.qkv.weight'");
  tool_result_free(&r);

  write_ckpt(bad, &pv, NULL, NULL, "final_layer.linear.weight");
  r = run(argv);
  expect(&r, 1, "final_layer.linear.weight");
  assert_non_null(strstr(r.err, "shape"));
  tool_result_free(&r);

  const char *plan_as_ckpt[] = {DIT_BIN_PATH, "forward", e->plan, "--weights", e->plan, "--x", e->x,
                                "--t", e->t, "--y", e->y, "-o", e->out, NULL};
  r = run(plan_as_ckpt);
  expect(&r, 1, "not a checkpoint");
  tool_result_free(&r);

  /* no failure touched the existing output */
  char *kept = read_text_file(e->out, NULL);
  assert_string_equal(kept, "previous result");
  free(kept);
  plan_view_free(&pv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_forward_ok_and_float_labels_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_inputs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_plan_and_device, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_checkpoints, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
