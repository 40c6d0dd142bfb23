/* test_mma_nvrtc.c: kernels/mma.cuh compiles with NVRTC, through ditc's own
 * wrapper (compiler/nvrtc.c: the embedded headers, ditc's options), for sm_80
 * and sm_90: the kernels of mma_test_kernels.cuh, which call every wrapper,
 * as one program; the PTX holds each instruction the wrappers stand for, and
 * ptxas spills nothing. No GPU needed; exits 77 (skipped) without libnvrtc. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "diag.h"
#include "nvrtc.h"
#include "source.h"

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  if (s && fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
  if (s) s[n] = '\0';
  fclose(f);
  return s;
}

static const char *const KERNELS[] = {
    "k_frag_bf16",   "k_frag_f16",    "k_tile_bf16",   "k_tile_f16", "k_tile_bt_bf16",
    "k_tile_bt_f16", "k_gemm64_bf16", "k_gemm64_f16",  "k_nowait_bf16", "k_groups",
    "k_err_sites",   "k_err_ldm_align", "k_err_cp_align",
};
enum { N_KERNELS = sizeof KERNELS / sizeof KERNELS[0] };

/* What each wrapper must become (the PTX of the program). */
static const char *const INSTRUCTIONS[] = {
    "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32",
    "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32",
    "ldmatrix.sync.aligned.m8n8.x4.shared.b16",
    "ldmatrix.sync.aligned.m8n8.x2.shared.b16",
    "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16",
    "ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16",
    "cp.async.cg.shared.global",
    "cp.async.commit_group",
    "cp.async.wait_group 0",
    "cp.async.wait_group 1",
    "cp.async.wait_all",
};

int main(void) {
  Arena *arena = arena_new();
  SourceMgr sm;
  Diag d;
  srcmgr_init(&sm, arena);
  diag_init(&d, &sm, stderr);
  Nvrtc *nv = nvrtc_open(&d);
  if (!nv) {
    printf("skipped: NVRTC is not available on this machine\n");
    arena_free(arena);
    return 77;
  }
  char path[512];
  snprintf(path, sizeof path, "%s/tests/emu/mma_test_kernels.cuh", DIT_SOURCE_DIR);
  char *src = read_text(path);
  if (!src) {
    printf("FAIL: cannot read %s\n", path);
    return 1;
  }
  int failures = 0;
  static const char *const archs[] = {"sm_80", "sm_90"};
  for (int a = 0; a < 2; a++) {
    KernelModule mod;
    KernelImage k[N_KERNELS];
    if (nvrtc_compile_many(nv, &d, src, KERNELS, N_KERNELS, archs[a], &mod, k) != DITC_OK) {
      printf("FAIL: NVRTC %s cannot compile mma_test_kernels.cuh for %s (log above)\n", nvrtc_version(nv), archs[a]);
      failures++;
      continue;
    }
    for (size_t i = 0; i < sizeof INSTRUCTIONS / sizeof INSTRUCTIONS[0]; i++)
      if (!strstr(mod.ptx, INSTRUCTIONS[i])) {
        printf("FAIL %s: the PTX has no %s\n", archs[a], INSTRUCTIONS[i]);
        failures++;
      }
    for (int i = 0; i < N_KERNELS; i++) {
      if (k[i].spill_stores + k[i].spill_loads) {
        printf("FAIL %s: %s spills (%d stores, %d loads)\n", archs[a], KERNELS[i], k[i].spill_stores,
               k[i].spill_loads);
        failures++;
      }
      if (strncmp(KERNELS[i], "k_err", 5) != 0)
        printf("ok   %s %-15s %3d registers, %5d bytes of shared memory, no spills\n", archs[a], KERNELS[i],
               k[i].registers, k[i].smem_bytes);
    }
    kernel_module_free(&mod);
  }
  printf("NVRTC %s: %d failures\n", nvrtc_version(nv), failures);
  free(src);
  nvrtc_close(nv);
  arena_free(arena);
  return failures ? 1 : 0;
}
