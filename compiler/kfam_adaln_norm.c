/* kfam_adaln_norm.c: the adaln_norm_kernel family (kernels/adaln_norm.cuh):
 * LayerNorm + adaLN modulate, alone or after the gated residual (plan ops
 * ln_modulate and res_gate_ln_modulate). Knobs: D, THREADS, RESIDUAL;
 * OUT_BF16 when a bf16 plan stores its result in bf16 (it feeds a GEMM). */
#include <stdio.h>

#include "kfam.h"

/* The default block: one warp per 32 channels up to 256 threads. */
static int default_threads(int64_t D) {
  int64_t t = (D + 31) / 32 * 32;
  if (t > 256) t = D >= 1024 ? 256 : 128;
  return (int)t;
}

static KfamFit can_implement(const Graph *g, const Node *n, const char *arch, PlanDType dtype, const char **why) {
  (void)g, (void)arch, (void)dtype, (void)why; /* fp32 statistics for every plan dtype, any arch from sm_80 */
  return n->op == OP_LN_MODULATE || n->op == OP_RES_GATE_LN_MODULATE ? KFAM_FITS : KFAM_NOT_MINE;
}

static int candidates(const Graph *g, const Node *n, KernelKnobs *out, int max) {
  (void)g;
  int64_t D = n->type.dims[2], residual = n->op == OP_RES_GATE_LN_MODULATE;
  int count = 0, def = default_threads(D);
  out[count++] = (KernelKnobs){{D, def, residual, 0}};
  for (int t = 64; t <= 512 && count < max; t *= 2) /* whole warps, each thread at least one channel */
    if (t != def && t <= (D + 31) / 32 * 32) out[count++] = (KernelKnobs){{D, t, residual, 0}};
  return count;
}

static void instantiate(const Graph *g, const Node *n, const KernelKnobs *kn, KernelChoice *k) {
  (void)g;
  kfam_fill(kfam_adaln_norm(), k, (int)kn->v[1], kn);
  bool bf16 = n->type.dtype == DT_BF16;
  if (bf16) k->dtypes = PLAN_SLOT_OUT_BF16;
  snprintf(k->expr, sizeof k->expr, "dit::adaln_norm_kernel<%lld, %lld, %s, %s>", (long long)kn->v[0],
           (long long)kn->v[1], kfam_bool(kn->v[2]), kfam_bool(bf16));
}

const KernelFamily *kfam_adaln_norm(void) {
  static const KernelFamily f = {PLAN_KF_ADALN_NORM, "adaln_norm.cuh", can_implement, candidates, instantiate};
  return &f;
}
