/* test_vae_spec.c: the vae family and the config.json importer through the
 * ditc executable: the parameters of sd-vae-ft-mse by part (the issue's
 * figures, whatever --part compiles), a diffusers config.json compiling to
 * the same plan bytes as the .dit, --part and --image-size, the DiT's
 * config.json, and every broken config of tests/golden/json giving exactly
 * its .expected diagnostics. The list syntax and the family's spec errors
 * are golden files of tests/golden/errors (test_cli). */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "run_tool.h"

#define SPECS DIT_SOURCE_DIR "/specs"
#define CONFIGS DIT_SOURCE_DIR "/tests/configs"
#define GOLDEN_JSON DIT_SOURCE_DIR "/tests/golden/json"

/* ditc with up to 8 arguments (NULL-terminated), in cwd (NULL: here). */
static ToolResult ditc(const char *cwd, const char *a1, const char *a2, const char *a3, const char *a4,
                       const char *a5, const char *a6, const char *a7, const char *a8) {
  const char *argv[] = {DITC_BIN, a1, a2, a3, a4, a5, a6, a7, a8, NULL};
  ToolOptions opt = {cwd, 0};
  ToolResult r;
  assert_int_equal(run_tool(argv, &opt, &r), 0);
  return r;
}

static void expect_ok(const ToolResult *r) {
  if (r->signal || r->exit_code != 0) fail_msg("ditc: exit %d, signal %d; stderr:\n%s", r->exit_code, r->signal, r->err);
}

static void expect_failure(const ToolResult *r, int code, const char *fragment) {
  if (r->signal) fail_msg("ditc died from signal %d", r->signal);
  if (r->exit_code != code) fail_msg("exit %d, expected %d; stderr:\n%s", r->exit_code, code, r->err);
  if (!strstr(r->err, fragment)) fail_msg("stderr lacks '%s':\n%s", fragment, r->err);
}

static void expect_out(const ToolResult *r, const char *fragment) {
  if (!strstr(r->out, fragment)) fail_msg("stdout lacks '%s':\n%s", fragment, r->out);
}

/* 49,490,199 (decoder with post_quant_conv), 34,163,664 (encoder with
 * quant_conv), 83,653,863 in all, whatever part is compiled; "params" is the
 * part's, and its weights 4 bytes each. */
static void test_vae_params_by_part(void **state) {
  (void)state;
  static const struct { const char *part; const char *params; const char *bytes; } cases[] = {
      {"decoder", "\"params\":49490199,", "\"weight_bytes_fp32\":197960796,"},
      {"encoder", "\"params\":34163664,", "\"weight_bytes_fp32\":136654656,"},
      {"both", "\"params\":83653863,", "\"weight_bytes_fp32\":334615452,"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ToolResult r = ditc(NULL, SPECS "/vae/sd-vae-ft-mse.dit", "--info", "--json", "--part", cases[i].part, "--batch",
                        "1", NULL);
    expect_ok(&r);
    expect_out(&r, "\"params_decoder\":49490199,\"params_encoder\":34163664,\"params_all\":83653863,");
    expect_out(&r, cases[i].params);
    expect_out(&r, cases[i].bytes);
    tool_result_free(&r);
  }
  ToolResult r = ditc(NULL, SPECS "/vae/sd-vae-ft-mse.dit", "--info", "--batch", "1", NULL, NULL, NULL, NULL);
  expect_ok(&r);
  expect_out(&r, "parameters    49,490,199 decoder (with post_quant_conv), 34,163,664 encoder (with quant_conv), "
                 "83,653,863 in all");
  expect_out(&r, "compiled      decoder: 49,490,199 parameters");
  expect_out(&r, "attention     mid block: 1 head x 512 over 1024 tokens");
  tool_result_free(&r);
}

static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)len + 1);
  assert_non_null(b);
  assert_int_equal(fread(b, 1, (size_t)len, f), (size_t)len);
  fclose(f);
  *n = (size_t)len;
  return b;
}

static void same_plan(const char *dit, const char *json, const char *part, const char *size) {
  char a[] = "/tmp/test_vae_spec_a_XXXXXX", b[] = "/tmp/test_vae_spec_b_XXXXXX";
  int fa = mkstemp(a), fb = mkstemp(b);
  assert_true(fa >= 0 && fb >= 0);
  close(fa);
  close(fb);
  ToolResult r = ditc(NULL, dit, "-o", a, "--part", part, "--image-size", size, NULL);
  expect_ok(&r);
  tool_result_free(&r);
  r = ditc(NULL, json, "-o", b, "--part", part, "--image-size", size, NULL);
  expect_ok(&r);
  tool_result_free(&r);
  size_t na, nb;
  unsigned char *pa = slurp(a, &na), *pb = slurp(b, &nb);
  if (na != nb || memcmp(pa, pb, na)) fail_msg("%s and %s compile to different plans (%zu, %zu bytes)", dit, json, na, nb);
  free(pa);
  free(pb);
  unlink(a);
  unlink(b);
}

/* A diffusers config.json compiles to the very bytes of the .dit: the
 * 0.4.2 config of sd-vae-ft-mse (no scaling_factor: the default) and a
 * 0.25 one of -ema with every newer key (null ones ignored). */
static void test_config_json_same_plan(void **state) {
  (void)state;
  same_plan(SPECS "/vae/sd-vae-ft-mse.dit", CONFIGS "/sd-vae-ft-mse/config.json", "decoder", "256");
  same_plan(SPECS "/vae/sd-vae-ft-ema.dit", CONFIGS "/sd-vae-ft-ema/config.json", "both", "512");
}

static void test_part_and_image_size(void **state) {
  (void)state;
  ToolResult r = ditc(NULL, SPECS "/S2_256.dit", "--part", "both", NULL, NULL, NULL, NULL, NULL);
  expect_failure(&r, 1, "<command line>:1:1: error: --part does not apply to model 'DiT-S/2', a model of the family \"dit\"");
  tool_result_free(&r);
  r = ditc(NULL, SPECS "/vae/sd-vae-ft-mse.dit", "--part", "middle", NULL, NULL, NULL, NULL, NULL);
  expect_failure(&r, 2, "ditc: error: --part takes decoder, encoder or both, got 'middle'");
  tool_result_free(&r);
  r = ditc(NULL, SPECS "/vae/sd-vae-ft-mse.dit", "--image-size", "100", NULL, NULL, NULL, NULL, NULL);
  expect_failure(&r, 1, "<command line>:1:14: error: image_size 100 is not a multiple of 8, the downsampling of 4 "
                        "levels (2^3)");
  tool_result_free(&r);
  r = ditc(NULL, SPECS "/vae/sd-vae-ft-mse.dit", "--image-size", "0", NULL, NULL, NULL, NULL, NULL);
  expect_failure(&r, 2, "--image-size takes an image side in pixels (1 to 65536), got '0'");
  tool_result_free(&r);
  r = ditc(NULL, "DiT-S/2", "--image-size", "384", NULL, NULL, NULL, NULL, NULL);
  expect_failure(&r, 2, "--image-size takes 256 or 512, got '384' (with an official model name)");
  tool_result_free(&r);
  r = ditc(NULL, SPECS "/vae/sd-vae-ft-mse.dit", "--image-size", "512", "--info", "--json", "--batch", "1", NULL);
  expect_ok(&r);
  expect_out(&r, "\"image_size\":512,\"latent_scale\":8,\"latent_size\":64,");
  tool_result_free(&r);
  r = ditc(NULL, SPECS "/S2_256.dit", "--image-size", "512", "--info", "--json", NULL, NULL, NULL);
  expect_ok(&r); /* a DiT spec specialised too: DiT-S/2 at 512 */
  expect_out(&r, "\"image_size\":512,\"latent_scale\":8,\"latent_size\":64,");
  tool_result_free(&r);
  r = ditc(NULL, SPECS "/tests/tiny_vae.dit", "--mode", "train", "--batch", "2", NULL, NULL, NULL);
  expect_failure(&r, 2, "ditc compiles VAEs for inference only");
  tool_result_free(&r);
}

/* DiTTransformer2DModel's config (the hub's legacy Transformer2DModel) is
 * DiT-XL/2: the official parameter count. */
static void test_dit_config_json(void **state) {
  (void)state;
  ToolResult r = ditc(NULL, CONFIGS "/DiT-XL-2-256/config.json", "--info", "--json", NULL, NULL, NULL, NULL, NULL);
  expect_ok(&r);
  expect_out(&r, "{\"model\":\"DiT-XL-2-256\"");
  expect_out(&r, "\"image_size\":256,\"latent_scale\":8,\"latent_size\":32,\"in_channels\":4,\"out_channels\":8,"
                 "\"patch_size\":2,\"hidden_size\":1152,\"depth\":28,\"num_heads\":16,");
  expect_out(&r, "\"params\":675129632,");
  tool_result_free(&r);
}

/* tests/golden/json/NAME.json -> exactly NAME.expected on stderr, exit 1. */
static void test_golden_json(void **state) {
  (void)state;
  DIR *d = opendir(GOLDEN_JSON);
  assert_non_null(d);
  int cases = 0;
  for (struct dirent *e; (e = readdir(d));) {
    size_t n = strlen(e->d_name);
    if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0) continue;
    char path[1024];
    snprintf(path, sizeof path, "%s/%.*s.expected", GOLDEN_JSON, (int)(n - 5), e->d_name);
    char *want = read_text_file(path, NULL);
    if (!want) fail_msg("missing %s", path);
    ToolResult r = ditc(GOLDEN_JSON, e->d_name, "--info", NULL, NULL, NULL, NULL, NULL, NULL);
    if (r.signal || r.exit_code != 1 || strcmp(r.err, want) != 0 || r.out[0])
      fail_msg("%s: exit %d, stderr:\n%s\nexpected:\n%s", e->d_name, r.exit_code, r.err, want);
    free(want);
    tool_result_free(&r);
    cases++;
  }
  closedir(d);
  assert_true(cases >= 10);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_vae_params_by_part),
      cmocka_unit_test(test_config_json_same_plan),
      cmocka_unit_test(test_part_and_image_size),
      cmocka_unit_test(test_dit_config_json),
      cmocka_unit_test(test_golden_json),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
