/* test_nvrtc.c: the NVRTC wrapper: a kernel template compiles to a cubin
 * (ELF) with its ptxas resources read back; a broken source fails with the
 * NVRTC log and the source, line-numbered. Skipped where libnvrtc is absent. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nvrtc.h"

typedef struct Fix {
  Arena *arena;
  SourceMgr sm;
  Diag d;
  char *buf;
  size_t len;
  FILE *err;
  Nvrtc *nv;
} Fix;

static int setup(void **state) {
  Fix *f = calloc(1, sizeof *f);
  f->arena = arena_new();
  f->err = open_memstream(&f->buf, &f->len);
  srcmgr_init(&f->sm, f->arena);
  diag_init(&f->d, &f->sm, f->err);
  f->nv = nvrtc_open(&f->d);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  Fix *f = *state;
  nvrtc_close(f->nv);
  fclose(f->err);
  free(f->buf);
  arena_free(f->arena);
  free(f);
  return 0;
}

static void test_template_compiles(void **state) {
  Fix *f = *state;
  if (!f->nv) skip();
  KernelImage img;
  assert_int_equal(nvrtc_compile(f->nv, &f->d, "#include \"adaln_norm.cuh\"\n",
                                 "dit::adaln_norm_kernel<384, 128, true>", "sm_80", &img),
                   DITC_OK);
  assert_true(img.cubin_bytes > 4);
  assert_memory_equal(img.cubin, "\x7f" "ELF", 4);
  assert_non_null(strstr(img.lowered_name, "adaln_norm_kernel"));
  assert_true(img.registers > 0 && img.registers <= 255);
  assert_int_equal(img.spill_stores + img.spill_loads, 0);
  kernel_image_free(&img);
}

static void test_failure_prints_log_and_numbered_source(void **state) {
  Fix *f = *state;
  if (!f->nv) skip();
  KernelImage img;
  const char *src = "#include \"common.cuh\"\n__global__ void k(float *x) {\n  x[0] = undefined_name;\n}\n";
  assert_int_not_equal(nvrtc_compile(f->nv, &f->d, src, "k", "sm_90", &img), DITC_OK);
  fflush(f->err);
  assert_non_null(strstr(f->buf, "could not compile k for sm_90"));
  assert_non_null(strstr(f->buf, "undefined_name"));           /* the NVRTC log */
  assert_non_null(strstr(f->buf, "    3 |   x[0] = undefined_name;")); /* the numbered source */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_template_compiles, setup, teardown),
      cmocka_unit_test_setup_teardown(test_failure_prints_log_and_numbered_source, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
