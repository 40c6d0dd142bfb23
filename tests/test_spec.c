/* test_spec.c: the spec language: the flat form, optional semicolons,
 * includes and inheritance, defaults, model families and their key tables,
 * and the diagnostics of sema. Bad inputs with fixed expected messages live
 * in tests/golden/errors (test_cli.c). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "compile_mem.h"
#include "family.h"
#include "model_config.h"

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

/* A name a spec can write as a key: [a-z_][a-z0-9_]*, no reserved word. */
static bool key_name_ok(const char *s) {
  static const char *const reserved[] = {"model", "base", "include", "true", "false", "family"};
  if (!s || !*s || (*s >= '0' && *s <= '9')) return false;
  for (const char *p = s; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) return false;
  for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
    if (!strcmp(s, reserved[i])) return false;
  return true;
}

static size_t key_bytes(SpecKeyType t) { return spec_key_bytes(t); }

/* The whole of a text file, NUL-terminated (the caller frees it). */
static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  long n = ftell(f);
  assert_true(n > 0);
  rewind(f);
  char *text = malloc((size_t)n + 1);
  assert_non_null(text);
  assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
  text[n] = '\0';
  fclose(f);
  return text;
}

/* Every family is complete and its key table well-formed: unique names a
 * spec can write, known types, sane ranges, defaults within them, fields of
 * their own inside ModelConfig, a row in docs/spec-language.md for each key
 * (family.h; that page's "Adding a model family"). */
static void test_family_key_tables(void **state) {
  (void)state;
  char *doc = read_text(DIT_SOURCE_DIR "/docs/spec-language.md");
  size_t n_fam = model_family_count();
  assert_true(n_fam >= 1);
  assert_ptr_equal(model_family_at(0), model_family_default());
  assert_string_equal(model_family_default()->name, "dit"); /* a spec that names none is a DiT */
  assert_null(model_family_at(n_fam));
  for (size_t f = 0; f < n_fam; f++) {
    const ModelFamily *fam = model_family_at(f);
    assert_non_null(fam);
    print_message("family %s: %zu keys\n", fam->name, fam->n_keys);
    assert_true(key_name_ok(fam->name));
    assert_ptr_equal(model_family_find(fam->name), fam);
    for (size_t g = 0; g < f; g++) assert_string_not_equal(model_family_at(g)->name, fam->name);
    assert_true(fam->about && *fam->about);
    assert_non_null(fam->check);
    assert_non_null(fam->derive);
    assert_non_null(fam->lower_forward);
    assert_non_null(fam->lower_train);
    assert_non_null(fam->fill_plan_model);
    assert_non_null(fam->keys);
    assert_true(fam->n_keys >= 1);
    for (size_t i = 0; i < fam->n_keys; i++) {
      const SpecKey *k = &fam->keys[i];
      if (!key_name_ok(k->name)) fail_msg("%s: key %zu has the name '%s'", fam->name, i, k->name ? k->name : "(null)");
      char row[96];
      snprintf(row, sizeof row, "| `%s` |", k->name);
      if (!strstr(doc, row)) fail_msg("docs/spec-language.md has no row '%s' for the %s key", row, fam->name);
      assert_int_equal(spec_key_find(fam->keys, fam->n_keys, k->name), (int)i); /* unique */
      assert_true(key_bytes(k->type) > 0);
      assert_string_not_equal(spec_key_type_name(k->type), "a value");
      assert_non_null(k->unit);
      /* a range with room in it; integers and booleans have whole bounds */
      assert_true(k->min < k->max);
      if (k->type != KEY_FLOAT) {
        assert_true(k->min == floor(k->min) && k->max == floor(k->max));
        assert_false(k->min_exclusive || k->max_exclusive);
      }
      if (k->type == KEY_BOOL) assert_true(k->min == 0 && k->max == 1);
      /* required keys have no default; an optional one's is in range, or derived by the check */
      if (k->required) {
        assert_false(k->def_derived);
      } else if (!k->def_derived) {
        if (!spec_key_in_range(k, k->def)) fail_msg("%s: the default %g of '%s' is out of its range", fam->name, k->def, k->name);
        if (k->type != KEY_FLOAT) assert_true(k->def == floor(k->def));
      }
      /* a field of its own in ModelConfig, after the name and the family */
      assert_true(k->offset >= offsetof(ModelConfig, family) + sizeof(const ModelFamily *));
      assert_true(k->offset + key_bytes(k->type) <= sizeof(ModelConfig));
      for (size_t j = 0; j < i; j++) {
        const SpecKey *o = &fam->keys[j];
        bool apart = k->offset + key_bytes(k->type) <= o->offset || o->offset + key_bytes(o->type) <= k->offset;
        if (!apart) fail_msg("%s: keys '%s' and '%s' share a field", fam->name, o->name, k->name);
      }
    }
    assert_int_equal(spec_key_find(fam->keys, fam->n_keys, "family"), -1);
    assert_int_equal(spec_key_find(fam->keys, fam->n_keys, "no_such_key"), -1);
  }
  free(doc);
}

/* A family ditc does not know is an error that lists every known one; the
 * keys of its blocks are not checked (against which table?); `family = "dit"`
 * is what a spec without one gets, also through a base. */
static void test_family_names(void **state) {
  (void)state;
  char names[256];
  model_family_names(names, sizeof names);
  for (size_t f = 0; f < model_family_count(); f++) assert_non_null(strstr(names, model_family_at(f)->name));
  char want[512];
  snprintf(want, sizeof want, "fam.dit:2:12: error: unknown model family \"nope\" (known: %s)\n", names);
  CompileResult r = compile_capture("fam.dit", "model \"m\" {\n  family = \"nope\"\n  depht = 2\n}\n", EMIT_JSON, 1);
  assert_int_equal(r.status, DITC_ERR_SPEC);
  assert_non_null(strstr(r.err, want));
  assert_null(strstr(r.err, "depht"));
  assert_non_null(strstr(r.err, "1 error generated."));
  compile_result_free(&r);

  snprintf(want, sizeof want, "fam.dit:4:12: error: 'family' expects a string naming a model family (%s), got '4'\n", names);
  r = compile_capture("fam.dit", "base \"b\" {\n}\nmodel \"m\" : \"b\" {\n  family = 4\n}\n", EMIT_JSON, 1);
  assert_int_equal(r.status, DITC_ERR_SPEC);
  assert_non_null(strstr(r.err, want));
  assert_non_null(strstr(r.err, "1 error generated."));
  compile_result_free(&r);
  r = compile_capture("fam.dit", "model \"m\" {\n  family = dit\n}\n", EMIT_JSON, 1);
  assert_int_equal(r.status, DITC_ERR_SPEC);
  assert_non_null(strstr(r.err, "'family' expects a string naming a model family ("));
  compile_result_free(&r);

  /* named in the model, in a base, or not at all: the same DiT */
  const char *keys = " image_size = 16; latent_scale = 2; in_channels = 4; patch_size = 2; hidden_size = 64\n"
                     " depth = 2; num_heads = 4; mlp_ratio = 4; num_classes = 10; class_dropout = 0.1; learn_sigma = true\n";
  char text[3][1024];
  snprintf(text[0], sizeof text[0], "model \"m\" {\n%s}\n", keys);
  snprintf(text[1], sizeof text[1], "model \"m\" {\n family = \"dit\"\n%s}\n", keys);
  snprintf(text[2], sizeof text[2], "base \"b\" {\n family = \"dit\"\n}\nmodel \"m\" : \"b\" {\n%s}\n", keys);
  CompileResult ir[3];
  for (int i = 0; i < 3; i++) {
    ir[i] = compile_capture("fam.dit", text[i], EMIT_IR, 2);
    assert_int_equal(ir[i].status, DITC_OK);
    assert_string_equal(ir[i].err, "");
  }
  assert_string_equal(ir[0].out, ir[1].out);
  assert_string_equal(ir[0].out, ir[2].out);
  for (int i = 0; i < 3; i++) compile_result_free(&ir[i]);
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
      cmocka_unit_test(test_family_key_tables),
      cmocka_unit_test(test_family_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
