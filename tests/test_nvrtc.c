/* test_nvrtc.c: the NVRTC wrapper: a kernel template compiles to a cubin
 * (ELF) with its ptxas resources read back; several kernels compile as one
 * program into one module (cubin and PTX), or to PTX alone for compute_XX;
 * a broken source fails with the NVRTC log and the source, line-numbered.
 * Skipped where libnvrtc is absent. */
#define _GNU_SOURCE /* memmem */
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
                                 "dit::adaln_norm_kernel<384, 128, true, false>", "sm_80", &img),
                   DITC_OK);
  assert_true(img.cubin_bytes > 4);
  assert_memory_equal(img.cubin, "\x7f" "ELF", 4);
  assert_non_null(strstr(img.lowered_name, "adaln_norm_kernel"));
  assert_true(img.registers > 0 && img.registers <= 255);
  assert_int_equal(img.spill_stores + img.spill_loads, 0);
  kernel_image_free(&img);
}

static void test_many_kernels_one_program(void **state) {
  Fix *f = *state;
  if (!f->nv) skip();
  const char *exprs[] = {"dit::adaln_norm_kernel<384, 128, true, true>", "dit::silu_kernel<false>",
                         "dit::attention_simt_kernel<72, 4, 32, true>"};
  const char *src = "#include \"adaln_norm.cuh\"\n#include \"attention_simt.cuh\"\n#include \"embed.cuh\"\n";
  KernelModule mod;
  KernelImage k[3];
  assert_int_equal(nvrtc_compile_many(f->nv, &f->d, src, exprs, 3, "sm_90", &mod, k), DITC_OK);
  assert_memory_equal(mod.cubin, "\x7f" "ELF", 4);
  assert_int_equal(mod.ptx[mod.ptx_bytes - 1], '\0');
  assert_non_null(strstr(mod.ptx, ".target sm_90"));
  for (int i = 0; i < 3; i++) {
    assert_null(k[i].cubin); /* the code is in the module */
    assert_true(k[i].registers > 0 && k[i].registers <= 255);
    assert_non_null(memmem(mod.cubin, mod.cubin_bytes, k[i].lowered_name, strlen(k[i].lowered_name)));
    char entry[300];
    snprintf(entry, sizeof entry, ".entry %s(", k[i].lowered_name);
    assert_non_null(strstr(mod.ptx, entry));
  }
  assert_int_equal(k[2].smem_bytes, 2 * 32 * 72 * 4); /* the K and V tiles */
  kernel_module_free(&mod);
  /* a virtual arch: PTX only, the same text as the real arch's */
  KernelModule vmod;
  assert_int_equal(nvrtc_compile_many(f->nv, &f->d, src, exprs, 3, "compute_90", &vmod, k), DITC_OK);
  assert_null(vmod.cubin);
  assert_int_equal(k[0].registers, 0);
  assert_non_null(strstr(vmod.ptx, ".target sm_90"));
  kernel_module_free(&vmod);
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
      cmocka_unit_test_setup_teardown(test_many_kernels_one_program, setup, teardown),
      cmocka_unit_test_setup_teardown(test_failure_prints_log_and_numbered_source, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
