/* kfam_sampler.c: the sampler-step families of kernels/sampler_step.cuh:
 * the guidance mix and the fused DDPM/DDIM step, one thread per element.
 * Knobs: the sizes they specialise on (C_OUT, HW; C, HW, LEARN_SIGMA). */
#include <stdio.h>

#include "kfam.h"

static KfamFit mix_can(const Graph *g, const Node *n, const char *a, PlanDType d, const char **why) {
  (void)g, (void)a, (void)d, (void)why;
  return n->op == OP_CFG_MIX ? KFAM_FITS : KFAM_NOT_MINE;
}
static int mix_knobs(const Graph *g, const Node *n, KernelKnobs *out, int max) {
  (void)g;
  if (max < 1) return 0;
  out[0] = (KernelKnobs){{n->type.dims[1], n->type.dims[2] * n->type.dims[3], 0, 0}};
  return 1;
}
static void mix_inst(const Graph *g, const Node *n, const KernelKnobs *kn, KernelChoice *k);

static KfamFit step_can(const Graph *g, const Node *n, const char *a, PlanDType d, const char **why) {
  (void)g, (void)a, (void)d, (void)why;
  return n->op == OP_DIFFUSION_STEP ? KFAM_FITS : KFAM_NOT_MINE;
}
static int step_knobs(const Graph *g, const Node *n, KernelKnobs *out, int max) {
  (void)g;
  if (max < 1) return 0;
  out[0] = (KernelKnobs){{n->attr.step.channels, n->type.dims[2] * n->type.dims[3], n->attr.step.learn_sigma != 0, 0}};
  return 1;
}
static void step_inst(const Graph *g, const Node *n, const KernelKnobs *kn, KernelChoice *k);

static const KernelFamily CFG_MIX = {PLAN_KF_CFG_MIX, "sampler_step.cuh", mix_can, mix_knobs, mix_inst};
static const KernelFamily STEP = {PLAN_KF_DIFFUSION_STEP, "sampler_step.cuh", step_can, step_knobs, step_inst};

static void mix_inst(const Graph *g, const Node *n, const KernelKnobs *kn, KernelChoice *k) {
  (void)g, (void)n;
  kfam_fill(&CFG_MIX, k, KFAM_ELEMENTWISE_THREADS, kn);
  snprintf(k->expr, sizeof k->expr, "dit::cfg_mix_kernel<%lld, %lld>", (long long)kn->v[0], (long long)kn->v[1]);
}
static void step_inst(const Graph *g, const Node *n, const KernelKnobs *kn, KernelChoice *k) {
  (void)g, (void)n;
  kfam_fill(&STEP, k, KFAM_ELEMENTWISE_THREADS, kn);
  snprintf(k->expr, sizeof k->expr, "dit::diffusion_step_kernel<%lld, %lld, %s>", (long long)kn->v[0],
           (long long)kn->v[1], kn->v[2] ? "true" : "false");
}

const KernelFamily *const *kfam_sampler(int *count) {
  static const KernelFamily *const all[] = {&CFG_MIX, &STEP};
  *count = (int)(sizeof all / sizeof all[0]);
  return all;
}
