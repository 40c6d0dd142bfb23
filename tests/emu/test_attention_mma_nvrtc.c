/* test_attention_mma_nvrtc.c: kernels/attention_mma.cuh compiles with NVRTC,
 * through ditc's own wrapper (compiler/nvrtc.c: the embedded headers, ditc's
 * options), for sm_80 and sm_90, every candidate knob set of
 * attention_mma_knobs.h as one program per architecture: ptxas spills
 * nothing and gives no kernel a stack frame (no local memory: the PTX
 * declares none), shared memory stays within 48 KiB, the lowered names are
 * the ones the emulator test uses, and the PTX holds the tensor-core
 * instructions (mma bf16, ldmatrix and its .trans, cp.async, cvt to bf16x2).
 * Prints each kernel's registers. No GPU needed; exits 77 (skipped) without
 * libnvrtc. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "attention_mma_knobs.h"
#include "diag.h"
#include "nvrtc.h"
#include "source.h"

static const char *const INSTRUCTIONS[] = {
    "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32",
    "ldmatrix.sync.aligned.m8n8.x4.shared.b16",
    "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16",
    "cp.async.cg.shared.global",
    "cp.async.commit_group",
    "cp.async.wait_group",
    "cvt.rn.bf16x2.f32",
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
  static const char source[] = "#include \"attention_mma.cuh\"\n";
  char exprs[N_ATTN_KNOBS][96];
  const char *names[N_ATTN_KNOBS];
  for (int i = 0; i < N_ATTN_KNOBS; i++) {
    const AttnKnobs *k = &ATTN_KNOBS[i];
    snprintf(exprs[i], sizeof exprs[i], "dit::attention_mma_kernel<%d, %d, %d, %d>", k->hd, k->warps, k->block_n,
             k->stages);
    names[i] = exprs[i];
  }
  int failures = 0;
  static const char *const archs[] = {"sm_80", "sm_90"};
  for (int a = 0; a < 2; a++) {
    KernelModule mod;
    KernelImage k[N_ATTN_KNOBS];
    if (nvrtc_compile_many(nv, &d, source, names, N_ATTN_KNOBS, archs[a], &mod, k) != DITC_OK) {
      printf("FAIL: NVRTC %s cannot compile attention_mma.cuh for %s (log above)\n", nvrtc_version(nv), archs[a]);
      failures++;
      continue;
    }
    for (size_t i = 0; i < sizeof INSTRUCTIONS / sizeof INSTRUCTIONS[0]; i++)
      if (!strstr(mod.ptx, INSTRUCTIONS[i])) {
        printf("FAIL %s: the PTX has no %s\n", archs[a], INSTRUCTIONS[i]);
        failures++;
      }
    if (strstr(mod.ptx, ".local")) {
      printf("FAIL %s: the PTX uses local memory (.local)\n", archs[a]);
      failures++;
    }
    for (int i = 0; i < N_ATTN_KNOBS; i++) {
      char want[128];
      attn_kernel_name(&ATTN_KNOBS[i], want, sizeof want);
      int bad = 0;
      if (strcmp(k[i].lowered_name, want) != 0) {
        printf("FAIL %s: %s is lowered to %s, the emulator test expects %s\n", archs[a], names[i], k[i].lowered_name,
               want);
        bad++;
      }
      if (k[i].registers <= 0) { /* the ptxas lines were not found: nothing below would be known */
        printf("FAIL %s: no ptxas resource usage for %s\n", archs[a], names[i]);
        bad++;
      }
      if (k[i].spill_stores + k[i].spill_loads || k[i].stack_bytes) {
        printf("FAIL %s: %s spills (%d bytes stored, %d loaded) or has a %d-byte stack frame\n", archs[a], names[i],
               k[i].spill_stores, k[i].spill_loads, k[i].stack_bytes);
        bad++;
      }
      if (k[i].smem_bytes <= 0 || k[i].smem_bytes > 48 * 1024) {
        printf("FAIL %s: %s uses %d bytes of shared memory (want 1 to 48 KiB)\n", archs[a], names[i], k[i].smem_bytes);
        bad++;
      }
      if (!bad)
        printf("ok   %s %-40s %3d registers, %5d bytes of shared memory, no spills, no stack\n", archs[a], names[i],
               k[i].registers, k[i].smem_bytes);
      failures += bad;
    }
    kernel_module_free(&mod);
  }
  printf("NVRTC %s: %d failures\n", nvrtc_version(nv), failures);
  nvrtc_close(nv);
  arena_free(arena);
  return failures ? 1 : 0;
}
