/* kernel_plan.c: kernel selection and the resource report (see kernel_plan.h). */
#include "kernel_plan.h"

#include <stdbool.h>
#include <string.h>

#include "nvrtc.h"

typedef struct KernelChoice {
  const char *header;  /* the template's file */
  char expr[160];      /* the instantiation, a C++ name expression */
} KernelChoice;

/* Threads per block of adaln_norm: a tile knob; one warp per 32 channels up to 256. */
static int adaln_threads(int64_t D) {
  int64_t t = (D + 31) / 32 * 32;
  if (t > 256) t = D >= 1024 ? 256 : 128;
  return (int)t;
}

/* The kernel of node i, or 0 when the op has none (a view, a GEMM) or no template yet. */
static int choose(const Graph *g, size_t i, KernelChoice *k, const char **missing) {
  const Node *n = &g->nodes[i];
  memset(k, 0, sizeof *k);
  *missing = NULL;
  switch (n->op) {
  case OP_LN_MODULATE:
  case OP_RES_GATE_LN_MODULATE: {
    int64_t D = n->type.dims[2];
    k->header = "adaln_norm.cuh";
    snprintf(k->expr, sizeof k->expr, "dit::adaln_norm_kernel<%lld, %d, %s>", (long long)D,
             adaln_threads(D), n->op == OP_RES_GATE_LN_MODULATE ? "true" : "false");
    return 1;
  }
  case OP_CFG_MIX:
    k->header = "sampler_step.cuh";
    snprintf(k->expr, sizeof k->expr, "dit::cfg_mix_kernel<%lld, %lld>", (long long)n->type.dims[1],
             (long long)(n->type.dims[2] * n->type.dims[3]));
    return 1;
  case OP_DIFFUSION_STEP:
    k->header = "sampler_step.cuh";
    snprintf(k->expr, sizeof k->expr, "dit::diffusion_step_kernel<%lld, %lld, %s>",
             (long long)n->attr.step.channels, (long long)(n->type.dims[2] * n->type.dims[3]),
             n->attr.step.learn_sigma ? "true" : "false");
    return 1;
  case OP_ATTENTION:
  case OP_PATCHIFY:
  case OP_UNPATCHIFY:
  case OP_TIMESTEP_FREQ:
  case OP_EMBEDDING:
  case OP_ADD:
  case OP_SILU:
    *missing = op_name(n->op);
    return 0;
  default:
    return 0; /* inputs, weights, views; linear runs on cuBLASLt */
  }
}

DitcStatus kernel_report(const Graph *g, const char *arch_list, Diag *d, FILE *out) {
  DitcStatus st = DITC_OK;
  Nvrtc *nv = nvrtc_open(d);
  if (!nv) return DITC_ERR_IO;
  enum { MAX_KERNELS = 64, MAX_SMEM = 48 * 1024 };
  KernelChoice ks[MAX_KERNELS];
  int n_k = 0;
  const char *missing[OP_COUNT] = {0};
  for (size_t i = 0; i < g->n_nodes; i++) {
    KernelChoice k;
    const char *miss;
    if (!choose(g, i, &k, &miss)) {
      if (miss) missing[g->nodes[i].op] = miss;
      continue;
    }
    bool dup = false;
    for (int j = 0; j < n_k; j++) dup |= strcmp(ks[j].expr, k.expr) == 0;
    if (!dup && n_k < MAX_KERNELS) ks[n_k++] = k;
  }
  fprintf(out, "NVRTC %s; %d kernels\n%-8s %-56s %5s %6s %6s %6s\n", nvrtc_version(nv), n_k, "arch",
          "kernel", "regs", "smem", "stack", "spill");
  char arch[32];
  for (const char *a = arch_list; *a;) {
    size_t len = strcspn(a, ",");
    snprintf(arch, sizeof arch, "%.*s", (int)(len < sizeof arch ? len : sizeof arch - 1), a);
    a += len + (a[len] == ',');
    for (int j = 0; j < n_k; j++) {
      char src[256];
      snprintf(src, sizeof src, "#include \"%s\"\n", ks[j].header);
      KernelImage img;
      DitcStatus s2 = nvrtc_compile(nv, d, src, ks[j].expr, arch, &img);
      if (s2) {
        st = s2;
        continue;
      }
      int spills = img.spill_stores + img.spill_loads;
      fprintf(out, "%-8s %-56s %5d %6d %6d %6d\n", arch, ks[j].expr, img.registers, img.smem_bytes,
              img.stack_bytes, spills);
      if (spills || img.smem_bytes > MAX_SMEM) {
        diag_error(d, span_none(), "%s for %s: %d bytes of register spills, %d bytes of shared memory",
                   ks[j].expr, arch, spills, img.smem_bytes);
        st = DITC_ERR_LIMIT;
      }
      kernel_image_free(&img);
    }
  }
  for (int op = 0; op < OP_COUNT; op++)
    if (missing[op]) fprintf(out, "no GPU template yet: %s\n", missing[op]);
  nvrtc_close(nv);
  return st;
}
