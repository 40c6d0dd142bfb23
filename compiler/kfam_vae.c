/* kfam_vae.c: the families of kernels/vae.cuh, the ops of the
 * convolutional models (the VAE, issue 13), all fp32 (pass_bf16 stores no
 * VAE value in bf16: no conv or norm reads one):
 *   group_norm_kernel<THREADS, SILU>     knobs THREADS, SILU; one block per (group, image)
 *   conv2d_kernel<KS, BM, BN, BK>        knobs KS (1 or 3), the implicit GEMM's tile BM x BN, BK;
 *                                        block BM * BN / 16
 *   to_tokens_kernel<C>, from_tokens_kernel<C>, latent_sample_kernel<C>: the channels; one
 *                                        thread per output element (KFAM_ELEMENTWISE_THREADS)
 * group_norm and conv2d list knob candidates for dit tune. */
#include <stdio.h>

#include "kfam.h"

static int one(KernelKnobs *out, int max, KernelKnobs k) {
  if (max < 1) return 0;
  out[0] = k;
  return 1;
}

/* ---- group_norm ---- */

static KfamFit gn_can(const Graph *g, const Node *n, const char *a, PlanDType d, const char **why) {
  (void)g, (void)a, (void)d, (void)why;
  return n->op == OP_GROUP_NORM ? KFAM_FITS : KFAM_NOT_MINE;
}

/* THREADS: 256 by default (a group holds C/G * H * W elements: 128 in the
 * tiny VAE, a million in sd-vae's 512 x 512 layers); 128, 512, 1024. */
static int gn_knobs(const Graph *g, const Node *n, KernelKnobs *out, int max) {
  (void)g;
  int64_t silu = n->attr.gnorm.act == ACT_SILU;
  static const int threads[] = {256, 128, 512, 1024};
  int count = 0;
  for (int i = 0; i < 4 && count < max; i++) out[count++] = (KernelKnobs){{threads[i], silu, 0, 0}};
  return count;
}

static void gn_inst(const Graph *g, const Node *n, const KernelKnobs *kn, KernelChoice *k);
static const KernelFamily GROUP_NORM = {PLAN_KF_GROUP_NORM, "vae.cuh", gn_can, gn_knobs, gn_inst};
static void gn_inst(const Graph *g, const Node *n, const KernelKnobs *kn, KernelChoice *k) {
  (void)g, (void)n;
  kfam_fill(&GROUP_NORM, k, (int)kn->v[0], kn);
  snprintf(k->expr, sizeof k->expr, "dit::group_norm_kernel<%lld, %s>", (long long)kn->v[0],
           kfam_bool(kn->v[1]));
}

/* ---- conv2d ---- */

static KfamFit conv_can(const Graph *g, const Node *n, const char *a, PlanDType d, const char **why) {
  (void)a, (void)d;
  if (n->op != OP_CONV2D) return KFAM_NOT_MINE;
  int64_t ks = g->nodes[n->src[1]].type.dims[2]; /* w [Cout, Cin, k, k] */
  if (ks != 1 && ks != 3) {
    *why = "a convolution other than 1x1 or 3x3";
    return KFAM_CANNOT;
  }
  return KFAM_FITS;
}

/* The tiles (BM channels, BN pixels, BK of K), as Conv2dTraits allows:
 * BM * BN / 16 threads, a multiple of BN and of BK. The default takes 32
 * channels when there are at most 32 (the 3- and 4-channel convolutions at
 * either end, the 8-channel quant_conv), else 64. */
static int conv_knobs(const Graph *g, const Node *n, KernelKnobs *out, int max) {
  int64_t ks = g->nodes[n->src[1]].type.dims[2], cout = n->type.dims[1];
  static const int tiles[][3] = {{64, 64, 16}, {32, 64, 16}, {64, 32, 16}, {128, 64, 8}, {64, 128, 8},
                                 {32, 32, 16}, {128, 32, 8}, {64, 64, 8}};
  int count = 0, def = cout <= 32 ? 1 : 0;
  if (max < 1) return 0;
  out[count++] = (KernelKnobs){{ks, tiles[def][0], tiles[def][1], tiles[def][2]}};
  for (int i = 0; i < (int)(sizeof tiles / sizeof tiles[0]) && count < max; i++)
    if (i != def) out[count++] = (KernelKnobs){{ks, tiles[i][0], tiles[i][1], tiles[i][2]}};
  return count;
}

static void conv_inst(const Graph *g, const Node *n, const KernelKnobs *kn, KernelChoice *k);
static const KernelFamily CONV2D = {PLAN_KF_CONV2D, "vae.cuh", conv_can, conv_knobs, conv_inst};
static void conv_inst(const Graph *g, const Node *n, const KernelKnobs *kn, KernelChoice *k) {
  (void)g, (void)n;
  kfam_fill(&CONV2D, k, (int)(kn->v[1] * kn->v[2] / 16), kn);
  snprintf(k->expr, sizeof k->expr, "dit::conv2d_kernel<%lld, %lld, %lld, %lld>", (long long)kn->v[0],
           (long long)kn->v[1], (long long)kn->v[2], (long long)kn->v[3]);
}

/* ---- to_tokens, from_tokens, latent_sample: <C> ---- */

static KfamFit tt_can(const Graph *g, const Node *n, const char *a, PlanDType d, const char **why) {
  (void)g, (void)a, (void)d, (void)why;
  return n->op == OP_TO_TOKENS ? KFAM_FITS : KFAM_NOT_MINE;
}
static int tt_knobs(const Graph *g, const Node *n, KernelKnobs *out, int max) {
  (void)g;
  return one(out, max, (KernelKnobs){{n->type.dims[2], 0, 0, 0}}); /* out [N, HW, C] */
}
static KfamFit ft_can(const Graph *g, const Node *n, const char *a, PlanDType d, const char **why) {
  (void)g, (void)a, (void)d, (void)why;
  return n->op == OP_FROM_TOKENS ? KFAM_FITS : KFAM_NOT_MINE;
}
static int ft_knobs(const Graph *g, const Node *n, KernelKnobs *out, int max) {
  (void)g;
  return one(out, max, (KernelKnobs){{n->type.dims[1], 0, 0, 0}}); /* out [N, C, H, W] */
}
static KfamFit ls_can(const Graph *g, const Node *n, const char *a, PlanDType d, const char **why) {
  (void)g, (void)a, (void)d, (void)why;
  return n->op == OP_LATENT_SAMPLE ? KFAM_FITS : KFAM_NOT_MINE;
}
static int ls_knobs(const Graph *g, const Node *n, KernelKnobs *out, int max) {
  (void)g;
  return one(out, max, (KernelKnobs){{n->type.dims[1], 0, 0, 0}}); /* out [N, C, h, w] */
}

static void tt_inst(const Graph *g, const Node *n, const KernelKnobs *kn, KernelChoice *k);
static void ft_inst(const Graph *g, const Node *n, const KernelKnobs *kn, KernelChoice *k);
static void ls_inst(const Graph *g, const Node *n, const KernelKnobs *kn, KernelChoice *k);
static const KernelFamily TO_TOKENS = {PLAN_KF_TO_TOKENS, "vae.cuh", tt_can, tt_knobs, tt_inst};
static const KernelFamily FROM_TOKENS = {PLAN_KF_FROM_TOKENS, "vae.cuh", ft_can, ft_knobs, ft_inst};
static const KernelFamily LATENT_SAMPLE = {PLAN_KF_LATENT_SAMPLE, "vae.cuh", ls_can, ls_knobs, ls_inst};

static void channels_inst(const KernelFamily *f, const char *name, const KernelKnobs *kn, KernelChoice *k) {
  kfam_fill(f, k, KFAM_ELEMENTWISE_THREADS, kn);
  snprintf(k->expr, sizeof k->expr, "dit::%s<%lld>", name, (long long)kn->v[0]);
}
static void tt_inst(const Graph *g, const Node *n, const KernelKnobs *kn, KernelChoice *k) {
  (void)g, (void)n;
  channels_inst(&TO_TOKENS, "to_tokens_kernel", kn, k);
}
static void ft_inst(const Graph *g, const Node *n, const KernelKnobs *kn, KernelChoice *k) {
  (void)g, (void)n;
  channels_inst(&FROM_TOKENS, "from_tokens_kernel", kn, k);
}
static void ls_inst(const Graph *g, const Node *n, const KernelKnobs *kn, KernelChoice *k) {
  (void)g, (void)n;
  channels_inst(&LATENT_SAMPLE, "latent_sample_kernel", kn, k);
}

const KernelFamily *const *kfam_vae(int *count) {
  static const KernelFamily *const all[] = {&GROUP_NORM, &CONV2D, &TO_TOKENS, &FROM_TOKENS, &LATENT_SAMPLE};
  *count = (int)(sizeof all / sizeof all[0]);
  return all;
}
