/* kfam_attention.c: the attention_simt_kernel family
 * (kernels/attention_simt.cuh): fp32 flash-style attention on CUDA cores.
 * Knobs: HD (head dim, at most 512: the VAE's one head of hidden_size
 * channels; a lane holds HD / 32 of its query), WARPS (queries per block), BLOCK_N
 * (keys per shared-memory tile); BF16 (qkv and out in bf16) for a bf16 plan
 * whose attention the tensor-core family does not take (kfam_attention_mma.c,
 * which kernel_plan.c asks first). */
#include <stdio.h>

#include "kfam.h"

static KfamFit can_implement(const Graph *g, const Node *n, const char *arch, PlanDType dtype, const char **why) {
  (void)g, (void)arch, (void)dtype;
  if (n->op != OP_ATTENTION) return KFAM_NOT_MINE;
  if (n->attr.attn.head_dim > 512) {
    *why = "attention with a head dim over 512";
    return KFAM_CANNOT;
  }
  return KFAM_FITS;
}

static int candidates(const Graph *g, const Node *n, KernelKnobs *out, int max) {
  (void)g;
  int64_t hd = n->attr.attn.head_dim;
  int count = 0;
  /* the default: 4 warps; BLOCK_N keeps the K and V tiles within 32 KiB */
  out[count++] = (KernelKnobs){{hd, 4, hd > 256 ? 8 : hd > 128 ? 16 : hd > 64 ? 32 : 64, 0}};
  static const int warps[] = {2, 4, 8}, block_n[] = {16, 32, 64}, wide_n[] = {4, 8, 16};
  const int *bns = hd > 128 ? wide_n : block_n; /* the VAE's head dims: smaller tiles */
  for (int w = 0; w < 3; w++)
    for (int b = 0; b < 3 && count < max; b++) {
      if (2 * bns[b] * hd * 4 > 32 * 1024) continue; /* K and V tiles of fp32 */
      KernelKnobs c = {{hd, warps[w], bns[b], 0}};
      if (c.v[1] != out[0].v[1] || c.v[2] != out[0].v[2]) out[count++] = c;
    }
  return count;
}

static void instantiate(const Graph *g, const Node *n, const KernelKnobs *kn, KernelChoice *k) {
  (void)g;
  kfam_fill(kfam_attention(), k, 32 * (int)kn->v[1], kn);
  bool bf16 = n->type.dtype == DT_BF16; /* then qkv is too (pass_bf16) */
  if (bf16) k->dtypes = PLAN_SLOT_OUT_BF16 | PLAN_SLOT_IN_BF16;
  snprintf(k->expr, sizeof k->expr, "dit::attention_simt_kernel<%lld, %lld, %lld, %s>", (long long)kn->v[0],
           (long long)kn->v[1], (long long)kn->v[2], kfam_bool(bf16));
}

const KernelFamily *kfam_attention(void) {
  static const KernelFamily f = {PLAN_KF_ATTENTION, "attention_simt.cuh", can_implement, candidates, instantiate};
  return &f;
}
