/* test_schedule.c: the respaced diffusion tables against the official code's
 * values (the files in tests/golden/schedule, written by tests/ref/sample_ref.py),
 * bit for bit: "250", "25" with its round-half-to-even ties, "ddim50" and
 * "10,20,30"; the float32 step coefficients; specs the official code
 * rejects; and the noise generator's independence from the thread count. */
#include <math.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "run_tool.h"
#include "sample/rng.h"
#include "sample/schedule.h"

/* The numbers after `key ` on its line of the golden file. */
static int golden_row(const char *text, const char *key, double *out, int max) {
  char pat[64];
  snprintf(pat, sizeof pat, "\n%s ", key);
  const char *p = strstr(text, pat);
  if (!p) fail_msg("no row %s", key);
  p += strlen(pat);
  int n = 0;
  while (*p && *p != '\n' && n < max) {
    char *end;
    out[n++] = strtod(p, &end);
    p = end;
    while (*p == ' ') p++;
  }
  return n;
}

static void check_spec(const char *spec, const char *file, int expect_n) {
  char path[512];
  snprintf(path, sizeof path, "%s/tests/golden/schedule/%s", DIT_SOURCE_DIR, file);
  char *text = read_text_file(path, NULL);
  assert_non_null(text);
  DiffusionSchedule s;
  DitErr e = {0};
  assert_int_equal(schedule_build(spec, &s, &e), DIT_OK);
  assert_int_equal(s.n, expect_n);
  static double want[1000];
  assert_int_equal(golden_row(text, "timestep_map", want, 1000), s.n);
  for (int k = 0; k < s.n; k++) assert_true(want[k] == (double)s.timestep_map[k]);
  const struct { const char *key; const double *have; } rows[] = {
      {"betas", s.betas}, {"alphas_cumprod", s.alphas_cumprod}, {"alphas_cumprod_prev", s.alphas_cumprod_prev},
      {"sqrt_recip_alphas_cumprod", s.sqrt_recip_ac}, {"sqrt_recipm1_alphas_cumprod", s.sqrt_recipm1_ac},
      {"posterior_variance", s.post_var}, {"posterior_log_variance_clipped", s.post_logvar_clipped},
      {"posterior_mean_coef1", s.post_coef1}, {"posterior_mean_coef2", s.post_coef2},
      {"log_betas", s.log_betas}, {"fixed_large_log_variance", s.fixed_large_logvar}};
  int log_ulps = 0;
  for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
    assert_int_equal(golden_row(text, rows[r].key, want, 1000), s.n);
    /* numpy's SIMD log is not glibc's: the log tables may differ by one ulp
     * in float64. Everything else is bit-exact, and so is every value
     * after the float32 rounding the samplers apply. */
    bool is_log = strstr(rows[r].key, "log") != NULL;
    for (int k = 0; k < s.n; k++) {
      double have = rows[r].have[k];
      bool exact = want[k] == have;
      bool one_ulp = is_log && (nextafter(have, INFINITY) == want[k] || nextafter(have, -INFINITY) == want[k]);
      log_ulps += !exact && one_ulp;
      if ((!exact && !one_ulp) || (float)want[k] != (float)have)
        fail_msg("\"%s\" %s[%d]: %.17g, official %.17g", spec, rows[r].key, k, have, want[k]);
    }
  }
  print_message("\"%s\": %d log entries one float64 ulp from numpy's\n", spec, log_ulps);
  schedule_free(&s);
  free(text);
}

static void test_official_tables(void **state) {
  (void)state;
  check_spec("250", "250.txt", 250);
  check_spec("25", "25.txt", 25);
  check_spec("ddim50", "ddim50.txt", 50);
  check_spec("10,20,30", "10_20_30.txt", 60);
}

/* The reference document's numbers (3.3), and the 25-step ties. */
static void test_reference_values(void **state) {
  (void)state;
  DiffusionSchedule s;
  DitErr e = {0};
  assert_int_equal(schedule_build("250", &s, &e), DIT_OK);
  assert_int_equal(s.timestep_map[1], 4);
  assert_int_equal(s.timestep_map[249], 999);
  assert_true(fabs(s.betas[1] - 5.990655644756e-4) < 1e-15);
  assert_true(fabs(s.post_logvar_clipped[0] - -9.364628159803) < 1e-11);
  assert_true(fabs(s.sqrt_recip_ac[249] - 157.410457251501) < 1e-9);
  schedule_free(&s);
  assert_int_equal(schedule_build("25", &s, &e), DIT_OK);
  int64_t ties[3] = {166, 500, 832}; /* 166.5 -> 166, 499.5 -> 500, 832.5 -> 832 */
  for (int i = 0; i < 3; i++) {
    int found = 0;
    for (int k = 0; k < s.n; k++) found |= s.timestep_map[k] == ties[i];
    assert_true(found);
  }
  schedule_free(&s);
  assert_int_equal(schedule_build("ddim50", &s, &e), DIT_OK);
  for (int k = 0; k < 50; k++) assert_int_equal(s.timestep_map[k], 20 * k);
  schedule_free(&s);
  assert_int_equal(schedule_build("", &s, &e), DIT_OK);
  assert_int_equal(s.n, 1000);
  schedule_free(&s);
}

static void test_rejected_specs(void **state) {
  (void)state;
  DiffusionSchedule s;
  DitErr e = {0};
  assert_int_equal(schedule_build("ddim600", &s, &e), DIT_ERR_ARG);
  assert_non_null(strstr(e.msg, "cannot create exactly 600 steps with an integer stride"));
  assert_int_equal(schedule_build("1001", &s, &e), DIT_ERR_ARG);
  assert_non_null(strstr(e.msg, "cannot divide section of 1000 steps into 1001"));
  assert_int_equal(schedule_build("25x", &s, &e), DIT_ERR_ARG);
  assert_int_equal(schedule_build("1", &s, &e), DIT_ERR_ARG);
  assert_non_null(strstr(e.msg, "at least 2 steps"));
}

/* Step coefficients are float64 table entries rounded to float32 once. */
static void test_step_params(void **state) {
  (void)state;
  DiffusionSchedule s;
  DitErr e = {0};
  assert_int_equal(schedule_build("250", &s, &e), DIT_OK);
  DitStepParams p;
  schedule_step_params(&s, 249, DIT_SAMPLER_DDPM, 1, 0.0, &p);
  assert_true(p.sqrt_recip_ac == (float)s.sqrt_recip_ac[249]);
  assert_true(p.min_log == (float)s.post_logvar_clipped[249]);
  assert_true(p.max_log == (float)s.log_betas[249]);
  assert_int_equal(p.add_noise, 1);
  schedule_step_params(&s, 0, DIT_SAMPLER_DDPM, 0, 0.0, &p);
  assert_int_equal(p.add_noise, 0);
  assert_true(p.min_log == (float)s.fixed_large_logvar[0]);
  schedule_step_params(&s, 100, DIT_SAMPLER_DDIM, 1, 0.0, &p);
  assert_true(p.ddim_sigma == 0.0f);
  schedule_step_params(&s, 100, DIT_SAMPLER_DDIM, 1, 1.0, &p);
  assert_true(p.ddim_sigma > 0.0f);
  schedule_free(&s);
}

static void test_noise_streams(void **state) {
  (void)state;
  enum { N = 10001 };
  static float a[N], b[N], c[N];
  dit_randn(42, 3, a, N, 1);
  dit_randn(42, 3, b, N, 2);
  assert_memory_equal(a, b, sizeof a); /* thread count does not matter */
  dit_randn(42, 4, c, N, 2);
  assert_memory_not_equal(a, c, sizeof a); /* streams differ */
  double mean = 0, var = 0;
  for (int i = 0; i < N; i++) mean += a[i];
  mean /= N;
  for (int i = 0; i < N; i++) var += (a[i] - mean) * (a[i] - mean);
  var /= N;
  assert_true(fabs(mean) < 0.05 && fabs(var - 1.0) < 0.05);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_official_tables),
      cmocka_unit_test(test_reference_values),
      cmocka_unit_test(test_rejected_specs),
      cmocka_unit_test(test_step_params),
      cmocka_unit_test(test_noise_streams),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
