/* test_cli.c: the ditc executable end to end: every golden bad spec gives
 * exactly its expected diagnostics and exit 1; bad files (missing, directory,
 * empty, binary, invalid UTF-8, huge, FIFO, unreadable) get clear messages;
 * usage errors exit 2; --help anywhere exits 0; -o is atomic; --dump-ir
 * matches the golden IR. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdbool.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "run_tool.h"

#define GOLDEN_ERRORS DIT_SOURCE_DIR "/tests/golden/errors"

static ToolResult ditc(const char *cwd, const char *a1, const char *a2, const char *a3,
                       const char *a4, const char *a5) {
  const char *argv[] = {DITC_BIN, a1, a2, a3, a4, a5, NULL};
  ToolOptions opt = {cwd, 0};
  ToolResult r;
  assert_int_equal(run_tool(argv, &opt, &r), 0);
  return r;
}

static void expect_failure(ToolResult *r, int code, const char *fragment) {
  if (r->signal) fail_msg("ditc died from signal %d", r->signal);
  if (r->exit_code != code)
    fail_msg("exit %d, expected %d; stderr:\n%s", r->exit_code, code, r->err);
  if (!strstr(r->err, fragment)) fail_msg("stderr lacks '%s':\n%s", fragment, r->err);
  assert_string_equal(r->out, "");
}

/* tests/golden/errors/NAME.dit -> exactly NAME.expected on stderr, exit 1. */
static void test_golden_error_specs(void **state) {
  (void)state;
  DIR *d = opendir(GOLDEN_ERRORS);
  assert_non_null(d);
  int cases = 0;
  for (struct dirent *e; (e = readdir(d));) {
    size_t n = strlen(e->d_name);
    if (n < 5 || strcmp(e->d_name + n - 4, ".dit") != 0) continue;
    char expected_path[1024];
    snprintf(expected_path, sizeof expected_path, "%s/%.*s.expected", GOLDEN_ERRORS,
             (int)(n - 4), e->d_name);
    char *expected = read_text_file(expected_path, NULL);
    if (!expected) fail_msg("missing %s", expected_path);
    ToolResult r = ditc(GOLDEN_ERRORS, e->d_name, NULL, NULL, NULL, NULL);
    if (r.signal || r.exit_code != 1 || strcmp(r.err, expected) != 0 || r.out[0])
      fail_msg("%s: exit %d, stderr:\n%s\nexpected:\n%s", e->d_name, r.exit_code, r.err,
               expected);
    free(expected);
    tool_result_free(&r);
    cases++;
  }
  closedir(d);
  assert_true(cases >= 25);
}

static void test_missing_file_and_directory(void **state) {
  (void)state;
  ToolResult r = ditc(NULL, "/nonexistent/spec.dit", NULL, NULL, NULL, NULL);
  expect_failure(&r, 1, "/nonexistent/spec.dit: error: cannot open file: No such file or directory");
  tool_result_free(&r);
  r = ditc(NULL, "/tmp", NULL, NULL, NULL, NULL);
  expect_failure(&r, 1, "/tmp: error: is a directory, not a spec file");
  tool_result_free(&r);
  r = ditc(NULL, "/dev/null", NULL, NULL, NULL, NULL);
  expect_failure(&r, 1, "/dev/null: error: is not a regular file");
  tool_result_free(&r);
}

static void write_bytes(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, n, f), n);
  fclose(f);
}

static void test_empty_binary_huge_files(void **state) {
  (void)state;
  char dir[] = "/tmp/ditc_cli_XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[512];

  snprintf(path, sizeof path, "%s/empty.dit", dir);
  write_bytes(path, "", 0);
  ToolResult r = ditc(NULL, path, NULL, NULL, NULL, NULL);
  expect_failure(&r, 1, "empty.dit: error: file is empty; expected a model definition");
  tool_result_free(&r);
  unlink(path);

  /* binary junk: bytes of an ELF header, NULs included */
  snprintf(path, sizeof path, "%s/junk.dit", dir);
  unsigned char junk[256];
  for (int i = 0; i < 256; i++) junk[i] = (unsigned char)(i * 37 + 11);
  memcpy(junk, "\x7f" "ELF\x02\x01\x01\x00", 8);
  write_bytes(path, junk, sizeof junk);
  r = ditc(NULL, path, NULL, NULL, NULL, NULL);
  expect_failure(&r, 1, "junk.dit: error: not a text file (NUL byte at offset 7)");
  tool_result_free(&r);

  /* invalid UTF-8 without NUL bytes */
  write_bytes(path, "model \"a\xc3\x28\" {}\n", 14);
  r = ditc(NULL, path, NULL, NULL, NULL, NULL);
  expect_failure(&r, 1, "junk.dit: error: not a text file (invalid UTF-8 at offset 8)");
  tool_result_free(&r);
  unlink(path);

  /* huge: 2 MiB of comments */
  snprintf(path, sizeof path, "%s/huge.dit", dir);
  size_t n = 2u << 20;
  char *big = malloc(n);
  for (size_t i = 0; i < n; i++) big[i] = (i % 64 == 63) ? '\n' : (i % 64 == 0 ? '#' : 'x');
  write_bytes(path, big, n);
  free(big);
  r = ditc(NULL, path, NULL, NULL, NULL, NULL);
  expect_failure(&r, 1, "huge.dit: error: file is too large (2097152 bytes; a spec may be at most 1048576 bytes)");
  tool_result_free(&r);
  unlink(path);

  /* a FIFO must not hang the compiler */
  snprintf(path, sizeof path, "%s/fifo.dit", dir);
  assert_int_equal(mkfifo(path, 0644), 0);
  r = ditc(NULL, path, NULL, NULL, NULL, NULL);
  expect_failure(&r, 1, "fifo.dit: error: is not a regular file");
  tool_result_free(&r);
  unlink(path);
  rmdir(dir);
}

/* Root reads everything, so the unreadable case runs ditc as 'nobody'. */
static void test_unreadable_file(void **state) {
  (void)state;
  char path[] = "/tmp/ditc_unreadable_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "model \"m\" {}\n", 13), 13);
  close(fd);
  assert_int_equal(chmod(path, 0), 0);
  const char *argv[] = {DITC_BIN, path, NULL};
  ToolOptions opt = {"/", 1};
  ToolResult r;
  assert_int_equal(run_tool(argv, &opt, &r), 0);
  expect_failure(&r, 1, "error: cannot open file: Permission denied");
  tool_result_free(&r);
  unlink(path);
}

static void test_usage_errors(void **state) {
  (void)state;
  const char *spec = DIT_SOURCE_DIR "/specs/S8_256.dit";
  unlink("/tmp/ditc_should_not_exist.bin");
  ToolResult r = ditc(NULL, NULL, NULL, NULL, NULL, NULL);
  expect_failure(&r, 2, "ditc: error: no spec file given");
  tool_result_free(&r);
  r = ditc(NULL, spec, "--frobnicate", NULL, NULL, NULL);
  expect_failure(&r, 2, "ditc: error: unknown option '--frobnicate'");
  tool_result_free(&r);
  r = ditc(NULL, spec, "--batch", "0", NULL, NULL);
  expect_failure(&r, 2, "--batch takes an integer from 1 to 65536, got '0'");
  tool_result_free(&r);
  r = ditc(NULL, spec, "--batch", "12x", NULL, NULL);
  expect_failure(&r, 2, "--batch takes an integer");
  tool_result_free(&r);
  r = ditc(NULL, spec, "--batch", NULL, NULL, NULL);
  expect_failure(&r, 2, "--batch needs a value");
  tool_result_free(&r);
  r = ditc(NULL, spec, "--json", NULL, NULL, NULL);
  expect_failure(&r, 2, "--json goes with --info");
  tool_result_free(&r);
  r = ditc(NULL, spec, spec, NULL, NULL, NULL);
  expect_failure(&r, 2, "more than one spec file given");
  tool_result_free(&r);
  r = ditc(NULL, spec, "--arch", "sm_80,sm_8", "-o", "/tmp/ditc_should_not_exist.bin");
  expect_failure(&r, 2, "--arch: 'sm_8' is not a GPU architecture like sm_80, sm_90 or sm_90a");
  tool_result_free(&r);
  r = ditc(NULL, spec, "--arch", "sm_90,sm_90", "-o", "/tmp/ditc_should_not_exist.bin");
  expect_failure(&r, 2, "--arch names sm_90 twice");
  tool_result_free(&r);
  r = ditc(NULL, spec, "--arch", "sm_90;rm", "-o", "/tmp/ditc_should_not_exist.bin");
  expect_failure(&r, 2, "--arch takes a list like sm_80,sm_90 or none, got 'sm_90;rm'");
  tool_result_free(&r);
  r = ditc(NULL, spec, "--dtype", "fp64", "-o", "/tmp/ditc_should_not_exist.bin");
  expect_failure(&r, 2, "--dtype takes fp32, tf32 or bf16, got 'fp64'");
  tool_result_free(&r);
  r = ditc(NULL, spec, "--dump-after", "frobnicate", NULL, NULL);
  expect_failure(&r, 2, "--dump-after: unknown stage 'frobnicate'");
  tool_result_free(&r);
  assert_int_not_equal(access("/tmp/ditc_should_not_exist.bin", F_OK), 0);
}

/* --help or -h anywhere, even where an option's value goes: the usage on
 * stdout, exit 0, nothing compiled. */
/* Official model names: DiT-XL/2 --image-size 512 is the shipped spec; an
 * unknown name lists the twelve; DITC_SPEC_PATH comes first. */
static void test_official_model_names(void **state) {
  (void)state;
  ToolResult r = ditc(NULL, "DiT-XL/2", "--image-size", "512", "--info", "--json");
  if (r.exit_code || !strstr(r.out, "\"model\":\"DiT-XL/2\"") || !strstr(r.out, "\"image_size\":512") ||
      !strstr(r.out, "/specs/XL2_512.dit\""))
    fail_msg("ditc DiT-XL/2 --image-size 512 --info --json: exit %d\n%s%s", r.exit_code, r.out, r.err);
  tool_result_free(&r);
  r = ditc(NULL, "DiT-S/8", "--info", "--json", NULL, NULL); /* 256 by default */
  if (r.exit_code || !strstr(r.out, "\"image_size\":256") || !strstr(r.out, "/specs/S8_256.dit\""))
    fail_msg("ditc DiT-S/8 --info --json: exit %d\n%s%s", r.exit_code, r.out, r.err);
  tool_result_free(&r);
  r = ditc(NULL, "DiT-XL/3", "--info", NULL, NULL, NULL);
  expect_failure(&r, 1, "unknown model 'DiT-XL/3'; the official models are: DiT-XL/2, DiT-XL/4, DiT-XL/8, DiT-L/2, "
                        "DiT-L/4, DiT-L/8, DiT-B/2, DiT-B/4, DiT-B/8, DiT-S/2, DiT-S/4, DiT-S/8");
  tool_result_free(&r);
  r = ditc(NULL, "DiT-XL/2", "--image-size", "384", NULL, NULL);
  expect_failure(&r, 2, "--image-size takes 256 or 512, got '384'");
  tool_result_free(&r);
  /* with a spec, --image-size specialises its image_size, checked as the spec's */
  r = ditc(NULL, DIT_SOURCE_DIR "/specs/S8_256.dit", "--image-size", "100", NULL, NULL);
  expect_failure(&r, 1, "<command line>:1:14: error: image_size 100 is not divisible by latent_scale 8");
  tool_result_free(&r);
  /* DITC_SPEC_PATH first: a folder whose S8_256.dit is another model */
  char dir[] = "/tmp/ditc_names_XXXXXX", spec[128];
  assert_non_null(mkdtemp(dir));
  snprintf(spec, sizeof spec, "%s/S8_256.dit", dir);
  FILE *f = fopen(spec, "w");
  assert_non_null(f);
  fprintf(f, "include \"%s/specs/families/dit.dit\"\nmodel \"DiT-S/8\" : \"DiT-S\" {\n  image_size = 128\n"
             "  patch_size = 8\n}\n", DIT_SOURCE_DIR);
  fclose(f);
  setenv("DITC_SPEC_PATH", dir, 1);
  r = ditc(NULL, "DiT-S/8", "--info", "--json", NULL, NULL);
  unsetenv("DITC_SPEC_PATH");
  if (r.exit_code || !strstr(r.out, "\"image_size\":128")) fail_msg("DITC_SPEC_PATH ignored: %s%s", r.out, r.err);
  tool_result_free(&r);
  r = ditc(NULL, "--list-models", NULL, NULL, NULL, NULL);
  if (r.exit_code || !strstr(r.out, "DiT-B/4") || !strstr(r.out, "B4_512.dit")) fail_msg("--list-models: %s", r.out);
  tool_result_free(&r);
  unlink(spec);
  rmdir(dir);
}

static void test_help(void **state) {
  (void)state;
  const char *spec = DIT_SOURCE_DIR "/specs/S8_256.dit";
  const char *const cases[][5] = {{"--help"},
                                  {"-h"},
                                  {spec, "--help"},
                                  {spec, "-o", "/tmp/ditc_should_not_exist.bin", "-h"},
                                  {spec, "--batch", "--help"},
                                  {"--frobnicate", "--help"}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    ToolResult r = ditc(NULL, cases[c][0], cases[c][1], cases[c][2], cases[c][3], cases[c][4]);
    if (r.signal || r.exit_code != 0 || strncmp(r.out, "usage: ditc SPEC", 16) || r.err[0])
      fail_msg("ditc %s %s: exit %d, stdout:\n%.200s\nstderr:\n%s", cases[c][0],
               cases[c][1] ? cases[c][1] : "", r.exit_code, r.out, r.err);
    assert_non_null(strstr(r.out, "-h, --help"));
    tool_result_free(&r);
  }
  assert_int_not_equal(access("/tmp/ditc_should_not_exist.bin", F_OK), 0);
}

static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.' || strlen(e->d_name) > 2;
  if (d) closedir(d);
  return n;
}

/* A failed compile neither creates, truncates nor replaces the output, and
 * leaves no temp file; a good one replaces the file whole. */
static void test_atomic_output(void **state) {
  (void)state;
  char dir[] = "/tmp/ditc_out_XXXXXX";
  assert_non_null(mkdtemp(dir));
  char out[512], fresh[512];
  snprintf(out, sizeof out, "%s/info.json", dir);
  snprintf(fresh, sizeof fresh, "%s/new.json", dir);
  write_bytes(out, "precious\n", 9);
  const char *bad = GOLDEN_ERRORS "/heads_divide.dit";
  const char *good = DIT_SOURCE_DIR "/specs/S8_256.dit";

  ToolResult r = ditc(NULL, bad, "--info", "--json", "-o", out);
  expect_failure(&r, 1, "hidden_size 1152 is not divisible by num_heads 10");
  tool_result_free(&r);
  char *kept = read_text_file(out, NULL);
  assert_string_equal(kept, "precious\n");
  free(kept);
  r = ditc(NULL, bad, "--info", "-o", fresh, NULL);
  expect_failure(&r, 1, "not divisible");
  tool_result_free(&r);
  assert_int_not_equal(access(fresh, F_OK), 0);
  assert_int_equal(count_entries(dir), 1);

  r = ditc(NULL, good, "--info", "--json", "-o", out);
  assert_int_equal(r.exit_code, 0);
  assert_string_equal(r.out, "");
  tool_result_free(&r);
  char *json = read_text_file(out, NULL);
  assert_non_null(strstr(json, "\"params\":33148160"));
  free(json);
  assert_int_equal(count_entries(dir), 1);

  /* unwritable destinations: a missing directory, a directory */
  r = ditc(NULL, good, "--info", "-o", "/nonexistent/dir/out.txt", NULL);
  expect_failure(&r, 1, "/nonexistent/dir/out.txt: error: cannot write: No such file or directory");
  tool_result_free(&r);
  r = ditc(NULL, good, "--info", "-o", dir, NULL);
  expect_failure(&r, 1, "error: cannot write: is a directory");
  tool_result_free(&r);
  assert_int_equal(count_entries(dir), 1);
  unlink(out);
  rmdir(dir);
}

/* --dump-ir is stable: the lowered and the fused graphs match the golden
 * dumps byte for byte. */
static void test_golden_ir(void **state) {
  (void)state;
  static const char *const specs[] = {"tiny", "tiny_pixel", "tiny", "tiny_pixel"};
  for (int i = 0; i < 4; i++) {
    bool fused = i >= 2;
    char spec[512], golden[512];
    snprintf(spec, sizeof spec, "specs/tests/%s.dit", specs[i]);
    snprintf(golden, sizeof golden, "%s/tests/golden/ir/%s%s.ir", DIT_SOURCE_DIR, specs[i],
             fused ? ".fused" : "");
    ToolResult r = fused ? ditc(DIT_SOURCE_DIR, spec, "--dump-ir", "--batch", "2", NULL)
                         : ditc(DIT_SOURCE_DIR, spec, "--dump-after", "lower", "--batch", "2");
    assert_int_equal(r.exit_code, 0);
    char *want = read_text_file(golden, NULL);
    assert_non_null(want);
    if (strcmp(r.out, want) != 0)
      fail_msg("%s: --dump-ir differs from %s (run tools/update_golden.sh and review)", spec,
               golden);
    free(want);
    tool_result_free(&r);
  }
}

static void test_info_xl2_done_when(void **state) {
  (void)state;
  ToolResult r = ditc(DIT_SOURCE_DIR, "specs/XL2_256.dit", "--info", NULL, NULL, NULL);
  assert_int_equal(r.exit_code, 0);
  assert_non_null(strstr(r.out, "parameters    675,129,632"));
  assert_non_null(strstr(r.out, "118.64 Gflops per image"));
  assert_string_equal(r.err, "");
  tool_result_free(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_golden_error_specs),
      cmocka_unit_test(test_missing_file_and_directory),
      cmocka_unit_test(test_empty_binary_huge_files),
      cmocka_unit_test(test_unreadable_file),
      cmocka_unit_test(test_usage_errors),
      cmocka_unit_test(test_help),
      cmocka_unit_test(test_official_model_names),
      cmocka_unit_test(test_atomic_output),
      cmocka_unit_test(test_golden_ir),
      cmocka_unit_test(test_info_xl2_done_when),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
