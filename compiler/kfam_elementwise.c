/* kfam_elementwise.c: the one-thread-per-element families of
 * kernels/embed.cuh: patchify, unpatchify, broadcast add, SiLU, a linear
 * op's GELU, timestep features, label gather. Their knobs are the sizes they specialise on; the
 * block is a launch choice (KFAM_ELEMENTWISE_THREADS), so each has a single
 * candidate. Where a bf16 plan stores a result in bf16 (patchify, SiLU, a
 * linear's activation, the timestep features) the template's OUT_BF16 is
 * true. */
#include <stdio.h>
#include <string.h>

#include "kfam.h"

static KfamFit fits(const Node *n, OpKind op) { return n->op == op ? KFAM_FITS : KFAM_NOT_MINE; }

/* A result stored in bf16: the OUT_BF16 flag and the slot's dtypes. */
static bool out_bf16(const Node *n, KernelChoice *k) {
  bool b = n->type.dtype == DT_BF16;
  if (b) k->dtypes |= PLAN_SLOT_OUT_BF16;
  return b;
}

static int one(KernelKnobs *out, int max, KernelKnobs k) {
  if (max < 1) return 0;
  out[0] = k;
  return 1;
}

/* patchify_kernel<C, H, W, P, OUT_BF16> */
static KfamFit patchify_can(const Graph *g, const Node *n, const char *a, PlanDType d, const char **why) {
  (void)g, (void)a, (void)d, (void)why;
  return fits(n, OP_PATCHIFY);
}
static int patchify_knobs(const Graph *g, const Node *n, KernelKnobs *out, int max) {
  const TensorType *x = &g->nodes[n->src[0]].type;
  return one(out, max, (KernelKnobs){{x->dims[1], x->dims[2], x->dims[3], n->attr.patch.p}});
}
static void patchify_inst(const Graph *g, const Node *n, const KernelKnobs *kn, KernelChoice *k);

/* unpatchify_kernel<C, G, P> */
static KfamFit unpatchify_can(const Graph *g, const Node *n, const char *a, PlanDType d, const char **why) {
  (void)g, (void)a, (void)d, (void)why;
  return fits(n, OP_UNPATCHIFY);
}
static int unpatchify_knobs(const Graph *g, const Node *n, KernelKnobs *out, int max) {
  (void)g;
  return one(out, max, (KernelKnobs){{n->attr.patch.channels, n->type.dims[2] / n->attr.patch.p, n->attr.patch.p, 0}});
}
static void unpatchify_inst(const Graph *g, const Node *n, const KernelKnobs *kn, KernelChoice *k);

/* add_kernel<NB>: b repeats with period NB = numel(b); 0 when b has a's own
 * shape (an activation with the batch), which is read as is */
static KfamFit add_can(const Graph *g, const Node *n, const char *a, PlanDType d, const char **why) {
  (void)g, (void)a, (void)d, (void)why;
  return fits(n, OP_ADD);
}
static int add_knobs(const Graph *g, const Node *n, KernelKnobs *out, int max) {
  const TensorType *a = &g->nodes[n->src[0]].type, *b = &g->nodes[n->src[1]].type;
  int64_t nb = 1;
  for (int d = 0; d < b->rank; d++) nb *= b->dims[d];
  bool weight = g->nodes[n->src[1]].op == OP_PARAM || g->nodes[n->src[1]].op == OP_PARAM_PACK;
  if (!weight && b->rank == a->rank && memcmp(a->dims, b->dims, sizeof(int64_t) * (size_t)a->rank) == 0) nb = 0;
  return one(out, max, (KernelKnobs){{nb, 0, 0, 0}});
}
static void add_inst(const Graph *g, const Node *n, const KernelKnobs *kn, KernelChoice *k);

/* silu_kernel<OUT_BF16>: the silu op, and a linear op's SiLU after its BIAS
 * GEMM (in place in fp32; in bf16 plans from the GEMM's fp32 scratch) */
static KfamFit silu_can(const Graph *g, const Node *n, const char *a, PlanDType d, const char **why) {
  (void)g, (void)a, (void)d, (void)why;
  return n->op == OP_LINEAR && n->attr.linear.act == ACT_SILU ? KFAM_FITS : fits(n, OP_SILU);
}
static int silu_knobs(const Graph *g, const Node *n, KernelKnobs *out, int max) {
  (void)g, (void)n;
  return one(out, max, (KernelKnobs){{0, 0, 0, 0}});
}
static void silu_inst(const Graph *g, const Node *n, const KernelKnobs *kn, KernelChoice *k);

/* gelu_tanh_kernel<OUT_BF16>: the activation of a linear op with GELU, when
 * its GEMM has a BIAS epilogue (kernel_plan.c decides: ditc --gelu-epilogue) */
static KfamFit gelu_can(const Graph *g, const Node *n, const char *a, PlanDType d, const char **why) {
  (void)g, (void)a, (void)d, (void)why;
  return n->op == OP_LINEAR && n->attr.linear.act == ACT_GELU_TANH ? KFAM_FITS : KFAM_NOT_MINE;
}
static int gelu_knobs(const Graph *g, const Node *n, KernelKnobs *out, int max) {
  (void)g, (void)n;
  return one(out, max, (KernelKnobs){{0, 0, 0, 0}});
}
static void gelu_inst(const Graph *g, const Node *n, const KernelKnobs *kn, KernelChoice *k);

/* timestep_freq_kernel<HALF, OUT_BF16> */
static KfamFit tfreq_can(const Graph *g, const Node *n, const char *a, PlanDType d, const char **why) {
  (void)g, (void)a, (void)d, (void)why;
  return fits(n, OP_TIMESTEP_FREQ);
}
static int tfreq_knobs(const Graph *g, const Node *n, KernelKnobs *out, int max) {
  (void)g;
  return one(out, max, (KernelKnobs){{n->attr.tfreq.dim / 2, 0, 0, 0}});
}
static void tfreq_inst(const Graph *g, const Node *n, const KernelKnobs *kn, KernelChoice *k);

/* embedding_kernel<D> */
static KfamFit embedding_can(const Graph *g, const Node *n, const char *a, PlanDType d, const char **why) {
  (void)g, (void)a, (void)d, (void)why;
  return fits(n, OP_EMBEDDING);
}
static int embedding_knobs(const Graph *g, const Node *n, KernelKnobs *out, int max) {
  (void)g;
  return one(out, max, (KernelKnobs){{n->type.dims[1], 0, 0, 0}});
}
static void embedding_inst(const Graph *g, const Node *n, const KernelKnobs *kn, KernelChoice *k);

static const KernelFamily PATCHIFY = {PLAN_KF_PATCHIFY, "embed.cuh", patchify_can, patchify_knobs, patchify_inst};
static const KernelFamily UNPATCHIFY = {PLAN_KF_UNPATCHIFY, "embed.cuh", unpatchify_can, unpatchify_knobs,
                                        unpatchify_inst};
static const KernelFamily ADD = {PLAN_KF_ADD, "embed.cuh", add_can, add_knobs, add_inst};
static const KernelFamily SILU = {PLAN_KF_SILU, "embed.cuh", silu_can, silu_knobs, silu_inst};
static const KernelFamily GELU = {PLAN_KF_GELU, "embed.cuh", gelu_can, gelu_knobs, gelu_inst};
static const KernelFamily TFREQ = {PLAN_KF_TIMESTEP_FREQ, "embed.cuh", tfreq_can, tfreq_knobs, tfreq_inst};
static const KernelFamily EMBEDDING = {PLAN_KF_EMBEDDING, "embed.cuh", embedding_can, embedding_knobs,
                                       embedding_inst};

static void patchify_inst(const Graph *g, const Node *n, const KernelKnobs *kn, KernelChoice *k) {
  (void)g;
  kfam_fill(&PATCHIFY, k, KFAM_ELEMENTWISE_THREADS, kn);
  snprintf(k->expr, sizeof k->expr, "dit::patchify_kernel<%lld, %lld, %lld, %lld, %s>", (long long)kn->v[0],
           (long long)kn->v[1], (long long)kn->v[2], (long long)kn->v[3], kfam_bool(out_bf16(n, k)));
}
static void unpatchify_inst(const Graph *g, const Node *n, const KernelKnobs *kn, KernelChoice *k) {
  (void)g, (void)n;
  kfam_fill(&UNPATCHIFY, k, KFAM_ELEMENTWISE_THREADS, kn);
  snprintf(k->expr, sizeof k->expr, "dit::unpatchify_kernel<%lld, %lld, %lld>", (long long)kn->v[0],
           (long long)kn->v[1], (long long)kn->v[2]);
}
static void add_inst(const Graph *g, const Node *n, const KernelKnobs *kn, KernelChoice *k) {
  (void)g, (void)n;
  kfam_fill(&ADD, k, KFAM_ELEMENTWISE_THREADS, kn);
  snprintf(k->expr, sizeof k->expr, "dit::add_kernel<%lldLL>", (long long)kn->v[0]);
}
static void silu_inst(const Graph *g, const Node *n, const KernelKnobs *kn, KernelChoice *k) {
  (void)g;
  kfam_fill(&SILU, k, KFAM_ELEMENTWISE_THREADS, kn);
  snprintf(k->expr, sizeof k->expr, "dit::silu_kernel<%s>", kfam_bool(out_bf16(n, k)));
}
static void gelu_inst(const Graph *g, const Node *n, const KernelKnobs *kn, KernelChoice *k) {
  (void)g;
  kfam_fill(&GELU, k, KFAM_ELEMENTWISE_THREADS, kn);
  snprintf(k->expr, sizeof k->expr, "dit::gelu_tanh_kernel<%s>", kfam_bool(out_bf16(n, k)));
}
static void tfreq_inst(const Graph *g, const Node *n, const KernelKnobs *kn, KernelChoice *k) {
  (void)g;
  kfam_fill(&TFREQ, k, KFAM_ELEMENTWISE_THREADS, kn);
  snprintf(k->expr, sizeof k->expr, "dit::timestep_freq_kernel<%lld, %s>", (long long)kn->v[0],
           kfam_bool(out_bf16(n, k)));
}
static void embedding_inst(const Graph *g, const Node *n, const KernelKnobs *kn, KernelChoice *k) {
  (void)g, (void)n;
  kfam_fill(&EMBEDDING, k, KFAM_ELEMENTWISE_THREADS, kn);
  snprintf(k->expr, sizeof k->expr, "dit::embedding_kernel<%lld>", (long long)kn->v[0]);
}

const KernelFamily *const *kfam_elementwise(int *count) {
  static const KernelFamily *const all[] = {&PATCHIFY, &UNPATCHIFY, &ADD, &SILU, &GELU, &TFREQ, &EMBEDDING};
  *count = (int)(sizeof all / sizeof all[0]);
  return all;
}
