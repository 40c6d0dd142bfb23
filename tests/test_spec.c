/* test_spec.c: the spec language: the flat form, optional semicolons,
 * includes and inheritance, defaults, and the diagnostics of sema. Bad inputs
 * with fixed expected messages live in tests/golden/errors (test_cli.c). */
#define _POSIX_C_SOURCE 200809L
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

#include "compile_mem.h"

static const char XL2_FLAT[] =
    "# DiT-XL/2 at 256x256 (latent 32x32x4)\n"
    "model \"DiT-XL/2\" {\n"
    "    image_size    = 256     # pixels\n"
    "    latent_scale  = 8;\n"
    "    in_channels   = 4\n"
    "    patch_size    = 2;\n"
    "    hidden_size   = 1152\n"
    "    depth         = 28\n"
    "    num_heads     = 16\n"
    "    mlp_ratio     = 4.0\n"
    "    num_classes   = 1000\n"
    "    class_dropout = 0.1\n"
    "    learn_sigma   = true\n"
    "}\n";

static void test_flat_form_with_optional_semicolons(void **state) {
  (void)state;
  CompileResult r = compile_capture("xl.dit", XL2_FLAT, EMIT_JSON, 1);
  assert_int_equal(r.status, DITC_OK);
  assert_string_equal(r.err, "");
  assert_true(json_number(r.out, "params") == 675129632.0);
  assert_true(json_number(r.out, "tokens") == 256.0);
  compile_result_free(&r);
}

static void test_one_line_block_and_crlf(void **state) {
  (void)state;
  const char *one_line =
      "model \"m\" { image_size = 16; latent_scale = 2; in_channels = 4; patch_size = 2; "
      "hidden_size = 64; depth = 2; num_heads = 4; mlp_ratio = 4; num_classes = 10; "
      "class_dropout = 0.1; learn_sigma = false }";
  CompileResult r = compile_capture("one.dit", one_line, EMIT_JSON, 1);
  assert_int_equal(r.status, DITC_OK);
  assert_true(json_number(r.out, "mlp_hidden") == 256.0);
  assert_true(json_number(r.out, "out_channels") == 4.0); /* learn_sigma false */
  compile_result_free(&r);

  /* The same XL spec with Windows line endings. */
  char crlf[2048];
  size_t k = 0;
  for (const char *p = XL2_FLAT; *p && k + 2 < sizeof crlf; p++) {
    if (*p == '\n') crlf[k++] = '\r';
    crlf[k++] = *p;
  }
  crlf[k] = '\0';
  r = compile_capture("crlf.dit", crlf, EMIT_JSON, 1);
  assert_int_equal(r.status, DITC_OK);
  assert_true(json_number(r.out, "params") == 675129632.0);
  compile_result_free(&r);
}

static void test_defaults_and_optional_keys(void **state) {
  (void)state;
  CompileResult r = compile_capture("xl.dit", XL2_FLAT, EMIT_JSON, 1);
  assert_int_equal(r.status, DITC_OK);
  assert_true(json_number(r.out, "guided_channels") == 3.0); /* official: 3 of 4 */
  assert_true(json_number(r.out, "layernorm_eps") == 1e-6);
  assert_true(json_number(r.out, "freq_embed_size") == 256.0);
  assert_true(json_number(r.out, "max_period") == 10000.0);
  compile_result_free(&r);

  const char *pixel =
      "model \"p\" {\n image_size = 8\n latent_scale = 1\n in_channels = 1\n patch_size = 2\n"
      " hidden_size = 32\n depth = 1\n num_heads = 2\n mlp_ratio = 4.0\n num_classes = 10\n"
      " class_dropout = 0\n learn_sigma = false\n layernorm_eps = 1e-5\n}\n";
  r = compile_capture("p.dit", pixel, EMIT_JSON, 1);
  assert_int_equal(r.status, DITC_OK);
  assert_true(json_number(r.out, "guided_channels") == 1.0); /* min(3, in_channels) */
  assert_true(json_number(r.out, "layernorm_eps") == 1e-5);
  /* class_dropout 0: no null class, so the label table has num_classes rows */
  assert_true(json_number(r.out, "params") > 0);
  compile_result_free(&r);

  r = compile_capture("p.dit", pixel, EMIT_IR, 1);
  assert_int_equal(r.status, DITC_OK);
  assert_non_null(strstr(r.out, "\"y_embedder.embedding_table.weight\" : f32[10,32]"));
  assert_non_null(strstr(r.out, "ln_modulate %"));
  assert_non_null(strstr(r.out, "{eps=1e-05, shift="));
  compile_result_free(&r);
}

/* specs/tests/XL2_256_inherited.dit goes through includes and two levels of
 * inheritance; its graph must be identical to the flat specs/XL2_256.dit. */
static void test_inherited_spec_equals_flat(void **state) {
  (void)state;
  CompileResult flat = compile_capture(DIT_SOURCE_DIR "/specs/XL2_256.dit", NULL, EMIT_IR, 2);
  CompileResult inh =
      compile_capture(DIT_SOURCE_DIR "/specs/tests/XL2_256_inherited.dit", NULL, EMIT_IR, 2);
  assert_int_equal(flat.status, DITC_OK);
  assert_int_equal(inh.status, DITC_OK);
  assert_string_equal(flat.out, inh.out);
  compile_result_free(&flat);
  compile_result_free(&inh);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* A child overrides its parent; a diamond of includes loads each file once. */
static void test_override_and_include_once(void **state) {
  (void)state;
  char dir[] = "/tmp/ditc_spec_XXXXXX";
  assert_non_null(mkdtemp(dir));
  char p[4][512];
  snprintf(p[0], sizeof p[0], "%s/common.dit", dir);
  snprintf(p[1], sizeof p[1], "%s/a.dit", dir);
  snprintf(p[2], sizeof p[2], "%s/b.dit", dir);
  snprintf(p[3], sizeof p[3], "%s/top.dit", dir);
  write_file(p[0], "base \"common\" {\n latent_scale = 1\n in_channels = 3\n mlp_ratio = 2.0\n"
                   " num_classes = 5\n class_dropout = 0.1\n learn_sigma = true\n"
                   " hidden_size = 64\n}\n");
  write_file(p[1], "include \"common.dit\"\nbase \"a\" : \"common\" {\n depth = 3\n num_heads = 4\n}\n");
  write_file(p[2], "include \"common.dit\"\nbase \"b\" : \"common\" {\n patch_size = 2\n}\n");
  write_file(p[3], "include \"a.dit\"\ninclude \"b.dit\"\n"
                   "model \"top\" : \"a\" {\n image_size = 16\n patch_size = 4\n hidden_size = 128\n}\n");
  CompileResult r = compile_capture(p[3], NULL, EMIT_JSON, 1);
  assert_string_equal(r.err, "");
  assert_int_equal(r.status, DITC_OK);
  assert_true(json_number(r.out, "hidden_size") == 128.0); /* child wins */
  assert_true(json_number(r.out, "depth") == 3.0);         /* from a */
  assert_true(json_number(r.out, "in_channels") == 3.0);   /* from common */
  assert_true(json_number(r.out, "tokens") == 16.0);
  assert_true(json_number(r.out, "mlp_hidden") == 256.0);
  compile_result_free(&r);
  for (int i = 0; i < 4; i++) unlink(p[i]);
  rmdir(dir);
}

static void test_in_memory_include_refused(void **state) {
  (void)state;
  CompileResult r = compile_capture("mem.dit", "include \"x.dit\"\n", EMIT_JSON, 1);
  assert_int_equal(r.status, DITC_ERR_SPEC);
  assert_non_null(strstr(r.err, "mem.dit:1:9: error: include is not available for in-memory specs"));
  compile_result_free(&r);
}

/* Hundreds of errors are counted, but only the first DIAG_MAX_ERRORS shown. */
static void test_error_limit(void **state) {
  (void)state;
  char *text = malloc(64 * 1024);
  assert_non_null(text);
  size_t k = (size_t)sprintf(text, "model \"m\" {\n");
  for (int i = 0; i < 300; i++) k += (size_t)sprintf(text + k, "  bogus_%d = 1\n", i);
  sprintf(text + k, "}\n");
  CompileResult r = compile_capture("many.dit", text, EMIT_JSON, 1);
  assert_int_equal(r.status, DITC_ERR_SPEC);
  assert_non_null(strstr(r.err, "more errors not shown"));
  assert_non_null(strstr(r.err, "301 errors generated.")); /* 300 unknown keys + missing keys */
  compile_result_free(&r);
  free(text);
}

/* Columns count bytes from 1; a tab in the line is kept under the caret. */
static void test_location_with_tab(void **state) {
  (void)state;
  CompileResult r = compile_capture("tab.dit", "model \"m\" {\n\tdepht = 2\n}\n", EMIT_JSON, 1);
  assert_int_equal(r.status, DITC_ERR_SPEC);
  assert_non_null(strstr(r.err, "tab.dit:2:2: error: unknown key 'depht'; did you mean 'depth'?\n"
                                "    2 | \tdepht = 2\n"
                                "      | \t^~~~~\n"));
  compile_result_free(&r);
}

static void test_bad_bytes_rejected_before_lexing(void **state) {
  (void)state;
  const char bad_utf8[] = "model \"\xff\" {}\n";
  CompileResult r = compile_capture("junk.dit", bad_utf8, EMIT_JSON, 1);
  assert_int_equal(r.status, DITC_ERR_SPEC);
  assert_string_equal(r.err, "junk.dit: error: not a text file (invalid UTF-8 at offset 7)\n"
                             "1 error generated.\n");
  compile_result_free(&r);
  r = compile_capture("empty.dit", "", EMIT_JSON, 1);
  assert_int_equal(r.status, DITC_ERR_SPEC);
  assert_non_null(strstr(r.err, "empty.dit: error: file is empty"));
  compile_result_free(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_flat_form_with_optional_semicolons),
      cmocka_unit_test(test_one_line_block_and_crlf),
      cmocka_unit_test(test_defaults_and_optional_keys),
      cmocka_unit_test(test_inherited_spec_equals_flat),
      cmocka_unit_test(test_override_and_include_once),
      cmocka_unit_test(test_in_memory_include_refused),
      cmocka_unit_test(test_error_limit),
      cmocka_unit_test(test_location_with_tab),
      cmocka_unit_test(test_bad_bytes_rejected_before_lexing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
