/* kernel_plan.c: kernel selection, the resource report, and the GPU
 * kernel-image sections of plan.bin (see kernel_plan.h). */
#include "kernel_plan.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "nvrtc.h"

/* One kernel template instantiation and what its launcher needs. */
typedef struct KernelChoice {
  const char *header;  /* the template's file */
  char expr[160];      /* the instantiation, a C++ name expression */
  int block_threads;   /* threads per block */
  int smem_bytes;      /* dynamic shared memory per block */
  int64_t knobs[4];    /* the template arguments in order, bools as 0/1 (kernels/README.md) */
} KernelChoice;

/* Threads per block of the one-thread-per-element kernels (embed.cuh,
 * sampler_step.cuh): a launch choice, not a template argument. */
enum { ELEMENTWISE_THREADS = 256 };

/* Threads per block of adaln_norm: a tile knob; one warp per 32 channels up to 256. */
static int adaln_threads(int64_t D) {
  int64_t t = (D + 31) / 32 * 32;
  if (t > 256) t = D >= 1024 ? 256 : 128;
  return (int)t;
}

/* Records the template arguments and the launch shape of a choice. */
static void set_launch(KernelChoice *k, int block_threads, int n_knobs, const int64_t *knobs) {
  k->block_threads = block_threads;
  k->smem_bytes = 0; /* every template's shared memory is static (in the image) */
  for (int i = 0; i < n_knobs && i < 4; i++) k->knobs[i] = knobs[i];
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
    bool residual = n->op == OP_RES_GATE_LN_MODULATE;
    snprintf(k->expr, sizeof k->expr, "dit::adaln_norm_kernel<%lld, %d, %s>", (long long)D,
             adaln_threads(D), residual ? "true" : "false");
    set_launch(k, adaln_threads(D), 3, (int64_t[]){D, adaln_threads(D), residual});
    return 1;
  }
  case OP_CFG_MIX:
    k->header = "sampler_step.cuh";
    snprintf(k->expr, sizeof k->expr, "dit::cfg_mix_kernel<%lld, %lld>", (long long)n->type.dims[1],
             (long long)(n->type.dims[2] * n->type.dims[3]));
    set_launch(k, ELEMENTWISE_THREADS, 2, (int64_t[]){n->type.dims[1], n->type.dims[2] * n->type.dims[3]});
    return 1;
  case OP_DIFFUSION_STEP:
    k->header = "sampler_step.cuh";
    snprintf(k->expr, sizeof k->expr, "dit::diffusion_step_kernel<%lld, %lld, %s>",
             (long long)n->attr.step.channels, (long long)(n->type.dims[2] * n->type.dims[3]),
             n->attr.step.learn_sigma ? "true" : "false");
    set_launch(k, ELEMENTWISE_THREADS, 3,
               (int64_t[]){n->attr.step.channels, n->type.dims[2] * n->type.dims[3], n->attr.step.learn_sigma != 0});
    return 1;
  case OP_PATCHIFY: {
    const TensorType *x = &g->nodes[n->src[0]].type;
    k->header = "embed.cuh";
    snprintf(k->expr, sizeof k->expr, "dit::patchify_kernel<%lld, %lld, %lld, %lld>", (long long)x->dims[1],
             (long long)x->dims[2], (long long)x->dims[3], (long long)n->attr.patch.p);
    set_launch(k, ELEMENTWISE_THREADS, 4, (int64_t[]){x->dims[1], x->dims[2], x->dims[3], n->attr.patch.p});
    return 1;
  }
  case OP_UNPATCHIFY:
    k->header = "embed.cuh";
    snprintf(k->expr, sizeof k->expr, "dit::unpatchify_kernel<%lld, %lld, %lld>",
             (long long)n->attr.patch.channels, (long long)(n->type.dims[2] / n->attr.patch.p),
             (long long)n->attr.patch.p);
    set_launch(k, ELEMENTWISE_THREADS, 3,
               (int64_t[]){n->attr.patch.channels, n->type.dims[2] / n->attr.patch.p, n->attr.patch.p});
    return 1;
  case OP_ADD: {
    const TensorType *a = &g->nodes[n->src[0]].type, *b = &g->nodes[n->src[1]].type;
    int64_t nb = 1;
    for (int d = 0; d < b->rank; d++) nb *= b->dims[d];
    /* b repeats with period numel(b); a b of a's own shape (it has the batch) is read as is */
    bool weight = g->nodes[n->src[1]].op == OP_PARAM || g->nodes[n->src[1]].op == OP_PARAM_PACK;
    if (!weight && b->rank == a->rank && memcmp(a->dims, b->dims, sizeof(int64_t) * (size_t)a->rank) == 0)
      nb = 0;
    k->header = "embed.cuh";
    snprintf(k->expr, sizeof k->expr, "dit::add_kernel<%lldLL>", (long long)nb);
    set_launch(k, ELEMENTWISE_THREADS, 1, &nb);
    return 1;
  }
  case OP_SILU:
    k->header = "embed.cuh";
    snprintf(k->expr, sizeof k->expr, "dit::silu_kernel");
    set_launch(k, ELEMENTWISE_THREADS, 0, NULL);
    return 1;
  case OP_TIMESTEP_FREQ:
    k->header = "embed.cuh";
    snprintf(k->expr, sizeof k->expr, "dit::timestep_freq_kernel<%lld>", (long long)(n->attr.tfreq.dim / 2));
    set_launch(k, ELEMENTWISE_THREADS, 1, (int64_t[]){n->attr.tfreq.dim / 2});
    return 1;
  case OP_EMBEDDING:
    k->header = "embed.cuh";
    snprintf(k->expr, sizeof k->expr, "dit::embedding_kernel<%lld>", (long long)n->type.dims[1]);
    set_launch(k, ELEMENTWISE_THREADS, 1, (int64_t[]){n->type.dims[1]});
    return 1;
  case OP_ATTENTION: {
    /* the fp32 path; BLOCK_N keeps the K and V tiles within 32 KiB */
    int64_t hd = n->attr.attn.head_dim;
    if (hd > 128) {
      *missing = "attention with a head dim over 128";
      return 0;
    }
    k->header = "attention_simt.cuh";
    int warps = 4, block_n = hd > 64 ? 32 : 64;
    snprintf(k->expr, sizeof k->expr, "dit::attention_simt_kernel<%lld, %d, %d>", (long long)hd, warps,
             block_n);
    set_launch(k, 32 * warps, 3, (int64_t[]){hd, warps, block_n});
    return 1;
  }
  case OP_INPUT: case OP_PARAM: case OP_RESHAPE: case OP_PERMUTE: case OP_SLICE: case OP_MATMUL: case OP_BMM:
  case OP_SCALE: case OP_GELU_TANH: case OP_SOFTMAX: case OP_LAYERNORM: case OP_MODULATE:
  case OP_RESIDUAL_GATE: case OP_OUTPUT: case OP_LINEAR: case OP_PARAM_PACK: case OP_AUX: case OP_Q_SAMPLE:
  case OP_DIFFUSION_LOSS: case OP_LOSS_GRAD: case OP_ZEROS: case OP_ACT_GRAD: case OP_LINEAR_GRAD_X:
  case OP_LINEAR_GRAD_W: case OP_LN_MODULATE_GRAD: case OP_RESIDUAL_GATE_GRAD: case OP_ATTENTION_GRAD:
  case OP_EMBEDDING_GRAD: case OP_UNPATCHIFY_GRAD: case OP_SUM_ROWS: case OP_PARAM_GRAD: case OP_GROUP_NORM:
  case OP_COUNT:
    return 0; /* inputs, weights, views; linear runs on cuBLASLt */
  }
  return 0; /* not an OpKind */
}

enum { MAX_KERNELS = 64, MAX_SMEM = 48 * 1024, MAX_ARCHS = 8 };

/* Adds k to the distinct kernels ks[0..*n) unless it is there; its index,
 * or -1 when there are already MAX_KERNELS. */
static int add_kernel(KernelChoice *ks, int *n, const KernelChoice *k) {
  for (int j = 0; j < *n; j++)
    if (strcmp(ks[j].expr, k->expr) == 0) return j;
  if (*n == MAX_KERNELS) return -1;
  ks[*n] = *k;
  return (*n)++;
}

/* The distinct kernels of the graph, in first-use order; missing[op] names
 * the ops that have no template yet. */
static int collect(const Graph *g, KernelChoice *ks, const char **missing) {
  int n_k = 0;
  for (size_t i = 0; i < g->n_nodes; i++) {
    KernelChoice k;
    const char *miss;
    if (!choose(g, i, &k, &miss)) {
      if (miss) missing[g->nodes[i].op] = miss;
      continue;
    }
    add_kernel(ks, &n_k, &k);
  }
  return n_k;
}

/* The one program that instantiates every kernel of ks: the headers they
 * need (the kernels themselves are named by expression). */
static void program_source(const KernelChoice *ks, int n_k, char *src, size_t cap) {
  size_t len = 0;
  src[0] = '\0';
  for (int j = 0; j < n_k; j++) {
    bool seen = false;
    for (int i = 0; i < j; i++) seen |= strcmp(ks[i].header, ks[j].header) == 0;
    if (!seen && len < cap) len += (size_t)snprintf(src + len, cap - len, "#include \"%s\"\n", ks[j].header);
  }
}

typedef struct Arch {
  char name[16]; /* "sm_90a" */
  uint32_t code; /* PlanKernelImage.arch: 901 */
} Arch;

/* "sm_90a,sm_80" -> {sm_80, 800}, {sm_90a, 901}: real architectures only,
 * each once, in ascending order (plan.bin sorts images by slot, then arch). */
static DitcStatus parse_archs(Diag *d, const char *list, Arch *archs, int *n_archs) {
  int n = 0;
  for (const char *a = list;;) {
    size_t len = strcspn(a, ",");
    const char *p = a + 3, *end = a + len;
    unsigned num = 0;
    int digits = 0;
    bool ok = len >= 5 && len < sizeof archs[0].name && strncmp(a, "sm_", 3) == 0;
    for (; ok && p < end && *p >= '0' && *p <= '9'; p++, digits++) num = num * 10 + (unsigned)(*p - '0');
    bool variant = ok && p < end && *p == 'a'; /* sm_90a: the arch-specific features (wgmma) */
    ok = ok && p + variant == end && (digits == 2 || digits == 3) && num >= 50 && num <= 199;
    if (!ok) {
      diag_error(d, span_none(), "--arch: '%.*s' is not a GPU architecture like sm_80, sm_90 or sm_90a",
                 (int)len, a);
      return DITC_ERR_USAGE;
    }
    if (n == MAX_ARCHS) {
      diag_error(d, span_none(), "--arch: at most %d architectures", MAX_ARCHS);
      return DITC_ERR_USAGE;
    }
    archs[n].code = num * 10 + variant;
    snprintf(archs[n].name, sizeof archs[n].name, "%.*s", (int)len, a);
    for (int i = 0; i < n; i++) {
      if (archs[i].code == archs[n].code) {
        diag_error(d, span_none(), "--arch names %s twice", archs[n].name);
        return DITC_ERR_USAGE;
      }
    }
    for (int i = n; i > 0 && archs[i - 1].code > archs[i].code; i--) { /* insertion: keep them sorted */
      Arch t = archs[i];
      archs[i] = archs[i - 1];
      archs[i - 1] = t;
    }
    n++;
    a = end;
    if (!*a) break;
    a++;
  }
  *n_archs = n;
  return DITC_OK;
}

/* Spills and static shared memory over 48 KiB are errors. */
static DitcStatus check_limits(Diag *d, const KernelChoice *k, const KernelImage *img, const char *arch) {
  int spills = img->spill_stores + img->spill_loads;
  if (!spills && img->smem_bytes <= MAX_SMEM) return DITC_OK;
  diag_error(d, span_none(), "%s for %s: %d bytes of register spills, %d bytes of shared memory", k->expr,
             arch, spills, img->smem_bytes);
  return DITC_ERR_LIMIT;
}

void kernel_emit_source(const Graph *g, const char *spec_path, FILE *out) {
  KernelChoice ks[MAX_KERNELS];
  const char *missing[OP_COUNT] = {0};
  int n_k = collect(g, ks, missing);
  fprintf(out, "// GENERATED by ditc from %s -- do not edit\n", spec_path);
  fprintf(out, "// The GPU kernels of model \"%s\", specialised for its sizes: the source\n", g->cfg->name);
  fprintf(out, "// NVRTC compiles for each --arch (ditc --kernel-report). Compiles with nvcc too:\n");
  fprintf(out, "//   nvcc -std=c++17 -cubin -arch=sm_80 -I kernels generated/<spec>.cu\n");
  static const char *const headers[] = {"adaln_norm.cuh", "attention_simt.cuh", "embed.cuh",
                                        "sampler_step.cuh"};
  for (size_t h = 0; h < sizeof headers / sizeof headers[0]; h++) fprintf(out, "#include \"%s\"\n", headers[h]);
  fprintf(out, "\nextern const void *const dit_kernels[] = {\n");
  for (int j = 0; j < n_k; j++) fprintf(out, "    (const void *)&%s,\n", ks[j].expr);
  fprintf(out, "};\n");
  for (int op = 0; op < OP_COUNT; op++)
    if (missing[op]) fprintf(out, "// no GPU template yet: %s\n", missing[op]);
}

DitcStatus kernel_report(const Graph *g, const char *arch_list, Diag *d, FILE *out) {
  Arch archs[MAX_ARCHS];
  int n_archs = 0;
  DitcStatus st = parse_archs(d, arch_list, archs, &n_archs);
  if (st) return st;
  Nvrtc *nv = nvrtc_open(d);
  if (!nv) return DITC_ERR_IO;
  KernelChoice ks[MAX_KERNELS];
  const char *exprs[MAX_KERNELS];
  KernelImage imgs[MAX_KERNELS];
  const char *missing[OP_COUNT] = {0};
  int n_k = collect(g, ks, missing);
  char src[512];
  program_source(ks, n_k, src, sizeof src);
  for (int j = 0; j < n_k; j++) exprs[j] = ks[j].expr;
  fprintf(out, "NVRTC %s; %d kernels\n%-8s %-56s %5s %6s %6s %6s\n", nvrtc_version(nv), n_k, "arch",
          "kernel", "regs", "smem", "stack", "spill");
  for (int a = 0; a < n_archs; a++) {
    KernelModule mod;
    DitcStatus s2 = nvrtc_compile_many(nv, d, src, exprs, n_k, archs[a].name, &mod, imgs);
    if (s2) {
      st = s2;
      continue;
    }
    for (int j = 0; j < n_k; j++) {
      fprintf(out, "%-8s %-56s %5d %6d %6d %6d\n", archs[a].name, ks[j].expr, imgs[j].registers,
              imgs[j].smem_bytes, imgs[j].stack_bytes, imgs[j].spill_stores + imgs[j].spill_loads);
      s2 = check_limits(d, &ks[j], &imgs[j], archs[a].name);
      if (s2) st = s2;
    }
    kernel_module_free(&mod);
  }
  for (int op = 0; op < OP_COUNT; op++)
    if (missing[op]) fprintf(out, "no GPU template yet: %s\n", missing[op]);
  nvrtc_close(nv);
  return st;
}

/* One module's code, which the images of several slots share. */
typedef struct ModuleBytes {
  const void *data;
  size_t bytes;
} ModuleBytes;

static uint64_t align_to(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

/* Lays out one kernel-image section (plan_format.h): PlanCudaHeader,
 * op_slot, slots, images, then each module's bytes once, 64-aligned;
 * image i points at module image_module[i]. */
static DitcStatus assemble(Arena *a, const Plan *p, const uint32_t *op_slot, const PlanKernelSlot *slots,
                           uint32_t n_slots, PlanKernelImage *images, const int *image_module,
                           uint32_t n_images, const ModuleBytes *mods, int n_mods, PlanBlob *out) {
  PlanCudaHeader h = {.n_ops = (uint32_t)p->n_ops, .n_slots = n_slots, .n_images = n_images};
  h.op_slot_offset = sizeof h;
  h.slots_offset = align_to(h.op_slot_offset + sizeof(uint32_t) * p->n_ops, 8);
  h.images_offset = h.slots_offset + sizeof(PlanKernelSlot) * n_slots;
  uint64_t mod_offset[MAX_ARCHS], end = h.images_offset + sizeof(PlanKernelImage) * n_images;
  for (int m = 0; m < n_mods; m++) {
    mod_offset[m] = align_to(end, DIT_PLAN_ALIGN);
    end = mod_offset[m] + mods[m].bytes;
  }
  unsigned char *b = arena_alloc(a, (size_t)end);
  if (!b) return DITC_ERR_NOMEM;
  for (uint32_t i = 0; i < n_images; i++) {
    images[i].offset = mod_offset[image_module[i]];
    images[i].bytes = mods[image_module[i]].bytes;
  }
  memcpy(b, &h, sizeof h);
  memcpy(b + h.op_slot_offset, op_slot, sizeof(uint32_t) * p->n_ops);
  memcpy(b + h.slots_offset, slots, sizeof(PlanKernelSlot) * n_slots);
  memcpy(b + h.images_offset, images, sizeof(PlanKernelImage) * n_images);
  for (int m = 0; m < n_mods; m++) memcpy(b + mod_offset[m], mods[m].data, mods[m].bytes);
  out->data = b;
  out->bytes = (size_t)end;
  return DITC_OK;
}

DitcStatus kernel_plan_build(Arena *a, Diag *d, const Graph *g, Plan *p, const char *arch_list) {
  Arch archs[MAX_ARCHS];
  int n_archs = 0, n_k = 0; /* archs come sorted: archs[0] is the lowest, whose PTX the plan keeps */
  Nvrtc *nv = NULL;
  KernelModule mods[MAX_ARCHS];
  memset(mods, 0, sizeof mods);
  KernelChoice *ks = arena_array(a, MAX_KERNELS, sizeof *ks);
  KernelImage *imgs = arena_array(a, (size_t)MAX_ARCHS * MAX_KERNELS, sizeof *imgs); /* [arch][kernel] */
  uint32_t *op_slot = arena_array(a, p->n_ops ? p->n_ops : 1, sizeof *op_slot);
  DitcStatus st = DITC_ERR_NOMEM;
  if (!ks || !imgs || !op_slot) goto done;
  if (p->train) {
    diag_error(d, span_none(), "--arch: training plans have no GPU kernels yet; compile them with --arch none");
    st = DITC_ERR_USAGE;
    goto done;
  }
  st = parse_archs(d, arch_list, archs, &n_archs);
  if (st) goto done;
  /* each plan op to its slot, in op order; GEMMs run on cuBLASLt */
  for (size_t k = 0; k < p->n_ops; k++) {
    KernelChoice c;
    const char *miss = NULL;
    const Node *n = &g->nodes[p->op_node[k]];
    if (p->ops[k].kind == PLAN_OP_LINEAR) {
      op_slot[k] = DIT_PLAN_NONE;
      continue;
    }
    if (!choose(g, p->op_node[k], &c, &miss)) {
      diag_error(d, span_none(), "%sop %zu (%s) has no GPU kernel%s%s", miss ? "" : "internal error: ", k,
                 op_name(n->op), miss ? " yet: " : "", miss ? miss : "");
      st = miss ? DITC_ERR_LIMIT : DITC_ERR_INTERNAL;
      goto done;
    }
    int slot = add_kernel(ks, &n_k, &c);
    if (slot < 0) {
      diag_error(d, span_none(), "the plan needs more than %d distinct GPU kernels", MAX_KERNELS);
      st = DITC_ERR_LIMIT;
      goto done;
    }
    op_slot[k] = (uint32_t)slot;
  }
  nv = nvrtc_open(d);
  if (!nv) {
    st = DITC_ERR_IO;
    goto done;
  }
  /* one program per arch holds every kernel */
  char src[512];
  const char *exprs[MAX_KERNELS];
  program_source(ks, n_k, src, sizeof src);
  for (int j = 0; j < n_k; j++) exprs[j] = ks[j].expr;
  for (int i = 0; i < n_archs; i++) {
    KernelImage *row = imgs + (size_t)i * MAX_KERNELS;
    st = nvrtc_compile_many(nv, d, src, exprs, n_k, archs[i].name, &mods[i], row);
    for (int j = 0; !st && j < n_k; j++) {
      st = check_limits(d, &ks[j], &row[j], archs[i].name);
      if (!st && strcmp(row[j].lowered_name, imgs[j].lowered_name) != 0) {
        diag_error(d, span_none(), "internal error: %s has another lowered name for %s", ks[j].expr,
                   archs[i].name);
        st = DITC_ERR_INTERNAL;
      }
    }
    if (st) goto done;
  }
  /* the slots, with their names in the string table */
  PlanKernelSlot *slots = arena_array(a, (size_t)n_k, sizeof *slots);
  PlanKernelImage *cubins = arena_array(a, (size_t)n_k * (size_t)n_archs, sizeof *cubins);
  PlanKernelImage *ptxs = arena_array(a, (size_t)n_k, sizeof *ptxs);
  int *cubin_module = arena_array(a, (size_t)n_k * (size_t)n_archs, sizeof(int));
  int *ptx_module = arena_array(a, (size_t)n_k, sizeof(int));
  st = DITC_ERR_NOMEM;
  if (!slots || !cubins || !ptxs || !cubin_module || !ptx_module) goto done;
  for (int j = 0; j < n_k; j++) {
    PlanKernelSlot *s = &slots[j];
    s->name = plan_add_string(a, p, ks[j].expr);
    s->entry = plan_add_string(a, p, imgs[j].lowered_name);
    if (s->name == UINT32_MAX || s->entry == UINT32_MAX) goto done;
    s->block_threads = (uint32_t)ks[j].block_threads;
    s->smem_bytes = (uint32_t)ks[j].smem_bytes;
    memcpy(s->knobs, ks[j].knobs, sizeof s->knobs);
    for (int i = 0; i < n_archs; i++) {
      PlanKernelImage *im = &cubins[j * n_archs + i];
      im->slot = (uint32_t)j;
      im->arch = archs[i].code;
      im->registers = (uint32_t)imgs[(size_t)i * MAX_KERNELS + j].registers;
      cubin_module[j * n_archs + i] = i;
    }
    ptxs[j] = (PlanKernelImage){.slot = (uint32_t)j, .arch = archs[0].code};
  }
  /* cubins: one module per arch; PTX: the lowest arch's, a JIT fallback for newer GPUs */
  ModuleBytes cubin_mods[MAX_ARCHS], ptx_mod = {mods[0].ptx, mods[0].ptx_bytes};
  for (int i = 0; i < n_archs; i++) cubin_mods[i] = (ModuleBytes){mods[i].cubin, mods[i].cubin_bytes};
  st = assemble(a, p, op_slot, slots, (uint32_t)n_k, cubins, cubin_module, (uint32_t)(n_k * n_archs),
                cubin_mods, n_archs, &p->cuda_cubin);
  if (!st)
    st = assemble(a, p, op_slot, slots, (uint32_t)n_k, ptxs, ptx_module, (uint32_t)n_k, &ptx_mod, 1,
                  &p->cuda_ptx);
done:
  for (int i = 0; i < MAX_ARCHS; i++) kernel_module_free(&mods[i]);
  nvrtc_close(nv);
  return st;
}
