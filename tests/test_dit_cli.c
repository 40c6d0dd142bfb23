/* test_dit_cli.c: the dit executable end to end on a tiny model: a good
 * forward, and every kind of bad input with its message and exit code:
 * usage, missing or corrupt plan, unknown device, .npy of the wrong shape,
 * labels out of range, too many rows, checkpoints with a missing,
 * unexpected or mis-shaped key, a file that is not a checkpoint. The
 * checkpoints are safetensors written here from the plan's weight table.
 * The CLI convention of every command and subcommand (--help, unknown
 * options, missing values, unknown commands), and dit info on training
 * plans. */
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

/* --help and -h anywhere, and dit help CMD: the usage on stdout, exit 0. */
static void test_help_everywhere(void **state) {
  (void)state;
  static const char *const cases[][5] = {
      {"--help"}, {"-h"}, {"help"}, {"help", "forward"}, {"help", "data", "images"},
      {"forward", "--help"}, {"forward", "-h"}, {"forward", "p.plan", "--weights", "w", "--help"},
      {"sample", "--help"}, {"train", "--help"}, {"loss", "--help"}, {"loss", "p.plan", "-h"},
      {"info", "--help"}, {"info", "-h"}, {"data", "--help"}, {"data", "fashion-mnist", "--help"},
      {"data", "images", "--help"}, {"data", "latents", "--help"}, {"data", "info", "--help"},
      {"data", "info", "f.ditdata", "-h"},
  };
  int failed = 0; /* every case is tried and each failure printed */
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const char *argv[7] = {DIT_BIN_PATH};
    for (int k = 0; k < 5 && cases[c][k]; k++) argv[k + 1] = cases[c][k];
    ToolResult r = run(argv);
    char want[64] = "usage: dit"; /* a command's help is its own usage */
    if (argv[2] && strcmp(argv[1], "help")) snprintf(want, sizeof want, "usage: dit %s", argv[1]);
    if (r.signal || r.exit_code != 0 || !strstr(r.out, want) || r.err[0]) {
      print_error("dit %s %s %s: exit %d (want 0 and '%s' on stdout), stdout:\n%.200s\nstderr:\n%s\n", argv[1],
                  argv[2] ? argv[2] : "", argv[2] && argv[3] ? argv[3] : "", r.exit_code, want, r.out, r.err);
      failed++;
    }
    tool_result_free(&r);
  }
  assert_int_equal(failed, 0);
  const char *img[] = {DIT_BIN_PATH, "data", "images", "--help", NULL};
  ToolResult r = run(img);
  assert_non_null(strstr(r.out, "usage: dit data images"));
  assert_null(strstr(r.out, "fashion-mnist")); /* only the subcommand's */
  tool_result_free(&r);
}

/* exit 2 with the message on stderr, nothing on stdout; else prints why
 * and counts a failure */
static void expect_usage_error(const char *const *argv, const char *fragment, int *failed) {
  ToolResult r = run(argv);
  if (r.signal || r.exit_code != 2 || !strstr(r.err, fragment) || r.out[0]) {
    print_error("dit %s %s %s: exit %d (want 2), stdout:\n%.200s\nstderr:\n%s\nwant: %s\n", argv[1] ? argv[1] : "",
                argv[1] && argv[2] ? argv[2] : "", argv[1] && argv[2] && argv[3] ? argv[3] : "", r.exit_code, r.out,
                r.err, fragment);
    ++*failed;
  }
  tool_result_free(&r);
}

static void test_unknown_options_and_missing_values(void **state) {
  (void)state;
  int failed = 0;
  static const char *const unknown[][5] = {
      {"forward", "--bogus"}, {"forward", "p.plan", "--bogus", "x"}, {"loss", "--bogus", "x"},
      {"sample", "p.plan", "--bogus"}, {"train", "p.plan", "--bogus"}, {"info", "--bogus"},
      {"data", "fashion-mnist", "--bogus"}, {"data", "images", "--bogus", "x"}, {"data", "latents", "--bogus"},
      {"data", "info", "--bogus"},
  };
  for (size_t c = 0; c < sizeof unknown / sizeof unknown[0]; c++) {
    const char *argv[7] = {DIT_BIN_PATH};
    for (int k = 0; k < 5 && unknown[c][k]; k++) argv[k + 1] = unknown[c][k];
    expect_usage_error(argv, "unknown option '--bogus'", &failed);
  }
  /* a data subcommand takes only its own options */
  const char *wrong_sub[] = {DIT_BIN_PATH, "data", "images", "--split", "train", NULL};
  expect_usage_error(wrong_sub, "unknown option '--split' for dit data images", &failed);
  const char *wrong_sub2[] = {DIT_BIN_PATH, "data", "info", "f.ditdata", "-o", "x", NULL};
  expect_usage_error(wrong_sub2, "unknown option '-o' for dit data info", &failed);
  /* a missing value, at the end or followed by the next option */
  const char *fwd[] = {DIT_BIN_PATH, "forward", "p.plan", "--weights", NULL};
  expect_usage_error(fwd, "--weights needs a value", &failed);
  const char *fwd2[] = {DIT_BIN_PATH, "forward", "p.plan", "--weights", "--x", "x.npy", NULL};
  expect_usage_error(fwd2, "--weights needs a value", &failed);
  const char *loss[] = {DIT_BIN_PATH, "loss", "p.plan", "--x0", NULL};
  expect_usage_error(loss, "--x0 needs a value", &failed);
  const char *loss2[] = {DIT_BIN_PATH, "loss", "p.plan", "--threads", "--x0", "a", NULL};
  expect_usage_error(loss2, "--threads needs a value", &failed);
  const char *data[] = {DIT_BIN_PATH, "data", "images", "--root", NULL};
  expect_usage_error(data, "--root needs a value", &failed);
  const char *data2[] = {DIT_BIN_PATH, "data", "fashion-mnist", "--pad-to", "-o", "x", NULL};
  expect_usage_error(data2, "--pad-to takes 1 to 65535, got '-o'", &failed);
  /* extra arguments */
  const char *info2[] = {DIT_BIN_PATH, "info", "a.plan", "b.plan", NULL};
  expect_usage_error(info2, "unexpected argument 'b.plan'", &failed);
  const char *info0[] = {DIT_BIN_PATH, "info", NULL};
  expect_usage_error(info0, "info needs PLAN", &failed);
  assert_int_equal(failed, 0);
}

/* An unknown command or data subcommand lists them all, exit 2. */
static void test_unknown_commands(void **state) {
  (void)state;
  const char *const cmds[][4] = {{"bogus"}, {"help", "bogus"}, {"Forward", "x"}};
  for (size_t c = 0; c < sizeof cmds / sizeof cmds[0]; c++) {
    const char *argv[5] = {DIT_BIN_PATH, cmds[c][0], cmds[c][1], cmds[c][2], NULL};
    ToolResult r = run(argv);
    expect(&r, 2, "unknown command");
    static const char *const all[] = {"forward", "sample", "loss", "train", "data", "info"};
    for (size_t k = 0; k < 6; k++)
      if (!strstr(r.err, all[k])) fail_msg("the unknown-command message lacks %s:\n%s", all[k], r.err);
    tool_result_free(&r);
  }
  const char *sub[] = {DIT_BIN_PATH, "data", "bogus", "--help", NULL};
  ToolResult r = run(sub);
  expect(&r, 2, "unknown data command 'bogus' (fashion-mnist, images, latents, info)");
  tool_result_free(&r);
}

/* dit info on a training plan (it crashed: a training plan has no PlanIO):
 * exit 0, the recompute mode, the loss, the gradients and the memory peaks,
 * each number the plan's own. */
static void test_info_training_plan(void **state) {
  Env *e = *state;
  static const char *const modes[] = {"none", "block"};
  for (int m = 0; m < 2; m++) {
    char plan[160];
    path_in(e, plan, "train.plan");
    const char *c[] = {DITC_BIN, DIT_SOURCE_DIR "/specs/tests/tiny.dit", "--mode", "train", "--batch", "2",
                       "--recompute", modes[m], "-o", plan, NULL};
    ToolResult r = run(c);
    expect(&r, 0, "");
    tool_result_free(&r);
    PlanView pv;
    DitErr err;
    assert_int_equal(plan_load(plan, &pv, &err), DIT_OK);
    assert_non_null(pv.train);
    const char *info[] = {DIT_BIN_PATH, "info", plan, NULL};
    r = run(info);
    expect(&r, 0, "");
    unsigned long long w = pv.train->weight_bytes, a = pv.train->arena_bytes, trainable = 0;
    size_t n_trainable = 0;
    for (size_t i = 0; i < pv.n_weights; i++)
      if (!(pv.weights[i].flags & PLAN_WEIGHT_FROZEN)) trainable += pv.weights[i].bytes, n_trainable++;
    assert_int_equal(n_trainable, pv.n_weights - 1); /* pos_embed */
    char l[8][256];
    snprintf(l[0], 256, "plan        dit training plan, dtype fp32, batch 1 to 2 rows");
    snprintf(l[1], 256, "recompute   %s (", modes[m]);
    snprintf(l[2], 256, "loss        the official training loss: mse + vb (learned sigma), %u timesteps",
             pv.train->timesteps);
    snprintf(l[3], 256, "gradients   %zu trainable tensors, %llu bytes (1 frozen: pos_embed); gradient buffer %llu",
             n_trainable, trainable, (unsigned long long)pv.train->grad_bytes);
    snprintf(l[4], 256, "activations %llu bytes in one arena (%llu without reuse)", a,
             (unsigned long long)pv.train->unplanned_bytes);
    snprintf(l[5], 256, "peak %llu bytes in dit loss (weights, gradients, arena), %llu bytes in", 2 * w + a,
             5 * w + a);
    snprintf(l[6], 256, "ops         %u to the loss: patchify x1 linear x13", pv.train->n_loss_ops);
    snprintf(l[7], 256, "%zu backward: %s", pv.n_ops - pv.train->n_loss_ops, m ? "linear x6" : "loss_grad x1");
    for (int k = 0; k < 8; k++)
      if (!strstr(r.out, l[k])) fail_msg("dit info lacks '%s':\n%s", l[k], r.out);
    for (const char *p = r.out; *p; p++) assert_true(*p != '?'); /* every op kind named */
    tool_result_free(&r);
    plan_view_free(&pv);
  }
}

/* the peak of --recompute none is what ditc --info reports for training */
static void test_info_peak_matches_ditc(void **state) {
  Env *e = *state;
  char plan[160];
  path_in(e, plan, "train.plan");
  const char *c[] = {DITC_BIN, DIT_SOURCE_DIR "/specs/tests/tiny.dit", "--mode", "train", "--batch", "2", "-o",
                     plan, NULL};
  ToolResult r = run(c);
  expect(&r, 0, "");
  tool_result_free(&r);
  const char *json[] = {DITC_BIN, DIT_SOURCE_DIR "/specs/tests/tiny.dit", "--mode", "train", "--batch", "2",
                        "--info", "--json", NULL};
  r = run(json);
  expect(&r, 0, "");
  const char *k = strstr(r.out, "\"train_peak_bytes_none\":");
  assert_non_null(k);
  char want[64];
  snprintf(want, sizeof want, "%lld bytes in\n", atoll(k + strlen("\"train_peak_bytes_none\":")));
  tool_result_free(&r);
  const char *info[] = {DIT_BIN_PATH, "info", plan, NULL};
  r = run(info);
  expect(&r, 0, "");
  if (!strstr(r.out, want)) fail_msg("dit info's dit train peak is not ditc's '%s':\n%s", want, r.out);
  tool_result_free(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_forward_ok_and_float_labels_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_inputs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_plan_and_device, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_checkpoints, setup, teardown),
      cmocka_unit_test(test_help_everywhere),
      cmocka_unit_test(test_unknown_options_and_missing_values),
      cmocka_unit_test(test_unknown_commands),
      cmocka_unit_test_setup_teardown(test_info_training_plan, setup, teardown),
      cmocka_unit_test_setup_teardown(test_info_peak_matches_ditc, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
