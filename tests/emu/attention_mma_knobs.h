/* attention_mma_knobs.h: the candidate knob sets of kernels/attention_mma.cuh
 * that test_emu_attention_mma.c runs on the emulated device and
 * test_attention_mma_nvrtc.c compiles for sm_80 and sm_90 (the first of each
 * head dim is AttnMmaDefault's), and the kernel's mangled name. */
#ifndef DIT_TESTS_ATTENTION_MMA_KNOBS_H
#define DIT_TESTS_ATTENTION_MMA_KNOBS_H

#include <stdio.h>

typedef struct AttnKnobs {
  int hd, warps, block_n, stages;
} AttnKnobs;

static const AttnKnobs ATTN_KNOBS[] = {
    {64, 4, 64, 2}, {64, 4, 64, 1}, {64, 4, 32, 2}, {64, 8, 64, 2}, {64, 4, 32, 3},
    {72, 4, 64, 2}, {72, 4, 64, 1}, {72, 4, 32, 2}, {72, 8, 64, 2},
};
enum { N_ATTN_KNOBS = sizeof ATTN_KNOBS / sizeof ATTN_KNOBS[0] };

/* dit::attention_mma_kernel<HD, WARPS, BLOCK_N, STAGES> as NVRTC and g++ mangle it. */
static inline void attn_kernel_name(const AttnKnobs *k, char *buf, size_t n) {
  snprintf(buf, n, "_ZN3dit20attention_mma_kernelILi%dELi%dELi%dELi%dEEEv16DitAttentionArgs", k->hd, k->warps,
           k->block_n, k->stages);
}

#endif
