/* kfam_attention_mma.c: the attention_mma_kernel family
 * (kernels/attention_mma.cuh): bf16 flash attention on tensor cores
 * (mma.sync m16n8k16, sm_80 and newer), for every bf16 attention whose head
 * dim is a multiple of 8 from 16 to 128 (DiT's 64 and 72 among them: 72 is
 * padded to 80 in shared memory); other bf16 attentions and fp32 plans take
 * attention_simt (kfam_attention.c). Knobs: HD, WARPS (16 queries each),
 * BLOCK_N (keys per tile), STAGES (K/V tiles in flight). kfam_all asks it
 * before the CUDA-core family. An sm_90a (wgmma, TMA) kernel would be
 * another family that answers can_implement for sm_90a first. */
#include <stdio.h>

#include "kfam.h"

static KfamFit can_implement(const Graph *g, const Node *n, const char *arch, PlanDType dtype, const char **why) {
  (void)g, (void)arch, (void)dtype, (void)why; /* every arch ditc compiles for is sm_80 or newer */
  if (n->op != OP_ATTENTION || n->type.dtype != DT_BF16) return KFAM_NOT_MINE;
  int64_t hd = n->attr.attn.head_dim;
  return hd % 8 == 0 && hd >= 16 && hd <= 128 ? KFAM_FITS : KFAM_NOT_MINE;
}

/* Static shared memory of a choice, as AttnMmaTraits lays it out: STAGES K
 * and V tiles of BLOCK_N rows of HD rounded up to 16 plus 8 pad elements,
 * and the Q tile in the last stage's space when it fits there. */
static int64_t smem_bytes(int64_t hd, int64_t warps, int64_t bn, int64_t stages) {
  int64_t lds = (hd + 15) / 16 * 16 + 8, stage = 2 * bn * lds, q = 16 * warps * lds;
  bool q_in_stage = stages >= 2 && q <= stage;
  return 2 * (stages * stage + (q_in_stage ? 0 : q));
}

static int candidates(const Graph *g, const Node *n, KernelKnobs *out, int max) {
  (void)g;
  int64_t hd = n->attr.attn.head_dim;
  int count = 0;
  KernelKnobs def = {{hd, 4, hd <= 80 ? 64 : 32, 2}}; /* AttnMmaDefault */
  if (max < 1) return 0;
  out[count++] = def;
  static const int warps[] = {4, 8, 2}, block_n[] = {64, 32, 128}, stages[] = {2, 1, 3};
  for (int w = 0; w < 3; w++)
    for (int b = 0; b < 3; b++)
      for (int s = 0; s < 3 && count < max; s++) {
        KernelKnobs c = {{hd, warps[w], block_n[b], stages[s]}};
        if (smem_bytes(hd, c.v[1], c.v[2], c.v[3]) > 48 * 1024) continue;
        if (c.v[1] != def.v[1] || c.v[2] != def.v[2] || c.v[3] != def.v[3]) out[count++] = c;
      }
  return count;
}

static void instantiate(const Graph *g, const Node *n, const KernelKnobs *kn, KernelChoice *k) {
  (void)g, (void)n;
  kfam_fill(kfam_attention_mma(), k, 32 * (int)kn->v[1], kn);
  k->dtypes = PLAN_SLOT_OUT_BF16 | PLAN_SLOT_IN_BF16;
  snprintf(k->expr, sizeof k->expr, "dit::attention_mma_kernel<%lld, %lld, %lld, %lld>", (long long)kn->v[0],
           (long long)kn->v[1], (long long)kn->v[2], (long long)kn->v[3]);
}

const KernelFamily *kfam_attention_mma(void) {
  static const KernelFamily f = {PLAN_KF_ATTENTION_MMA, "attention_mma.cuh", can_implement, candidates,
                                 instantiate};
  return &f;
}
