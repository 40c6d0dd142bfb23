/* kfam.h: the GPU kernel families of kernels/, as the compiler sees them.
 * A family is one C++ template; its module (kfam_*.c) says which graph
 * nodes it implements, lists its knob space (the choices the autotuner of
 * #12 searches; the first is the default), and turns a knob choice into the
 * instantiation NVRTC compiles. kernel_plan.c collects, compiles and writes
 * them; which family runs which plan op is the op table's (plan_ops.h). */
#ifndef DIT_COMPILER_KFAM_H
#define DIT_COMPILER_KFAM_H

#include <stdint.h>

#include "../runtime/include/dit/plan_format.h"
#include "ir.h"

enum { KFAM_MAX_KNOBS = 4, KFAM_MAX_CANDIDATES = 16 };

/* The template arguments in order, bools as 0/1 (kernels/README.md). */
typedef struct KernelKnobs {
  int64_t v[KFAM_MAX_KNOBS];
} KernelKnobs;

/* One instantiation and what its launcher needs: a plan's kernel slot. */
typedef struct KernelChoice {
  PlanKernelFamily family;
  const char *header;  /* the template's file in kernels/ */
  char expr[160];      /* the instantiation, a C++ name expression */
  int block_threads;   /* threads per block */
  int smem_bytes;      /* dynamic shared memory per block (0: every template's is static) */
  uint32_t dtypes;     /* PLAN_SLOT_*: the bf16 operands (its template's BF16 flags) */
  KernelKnobs knobs;
} KernelChoice;

typedef enum KfamFit {
  KFAM_NOT_MINE = 0, /* not a node of this family */
  KFAM_FITS = 1,
  KFAM_CANNOT = 2,   /* this family's node, but not at these sizes, arch or dtype: *why says */
} KfamFit;

typedef struct KernelFamily {
  PlanKernelFamily id;
  const char *header;
  /* Whether it implements node n for arch ("sm_80") and the plan's dtype. */
  KfamFit (*can_implement)(const Graph *g, const Node *n, const char *arch, PlanDType dtype, const char **why);
  /* Its knob choices for n, the default first, at most max; the count. */
  int (*candidates)(const Graph *g, const Node *n, KernelKnobs *out, int max);
  /* The instantiation of one choice. */
  void (*instantiate)(const Graph *g, const Node *n, const KernelKnobs *knobs, KernelChoice *k);
} KernelFamily;

/* The families, one accessor per module. */
const KernelFamily *kfam_adaln_norm(void);                  /* kfam_adaln_norm.c */
const KernelFamily *kfam_attention(void);                   /* kfam_attention.c */
const KernelFamily *kfam_attention_mma(void);               /* kfam_attention_mma.c: bf16, tensor cores */
const KernelFamily *const *kfam_elementwise(int *count);    /* kfam_elementwise.c: patchify ... embedding */
const KernelFamily *const *kfam_sampler(int *count);        /* kfam_sampler.c: cfg_mix, diffusion_step */
const KernelFamily *const *kfam_vae(int *count);            /* kfam_vae.c: group_norm ... latent_sample */

/* Every family, in a fixed order (at most max); the count. */
int kfam_all(const KernelFamily **out, int max);

/* Fills k from family f's choice: family, header, block and knobs (expr is
 * the family's to write); dtypes 0. */
void kfam_fill(const KernelFamily *f, KernelChoice *k, int block_threads, const KernelKnobs *knobs);

/* "true" or "false": a template's bool argument. */
static inline const char *kfam_bool(bool b) { return b ? "true" : "false"; }

/* Threads per block of the one-thread-per-element kernels: a launch choice,
 * not a template argument. */
enum { KFAM_ELEMENTWISE_THREADS = 256 };

#endif
