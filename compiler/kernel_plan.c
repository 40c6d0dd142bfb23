/* kernel_plan.c: kernel selection, the resource report, and the GPU
 * kernel-image sections of plan.bin (see kernel_plan.h), including the
 * emulated device's image (--arch emu, tools/emu/README.md) and the
 * autotuner's candidate slots (--tune-candidates, section
 * PLAN_SEC_CANDIDATES). NVRTC runs through its cache (nvrtc_cache.h). */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "kernel_plan.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernel_sources.h"
#include "kfam.h"
#include "nvrtc.h"
#include "nvrtc_cache.h"

/* The kernel of node i for arch and dtype, by the first family that
 * implements it (*fam, when fam is not NULL), with that family's default
 * knobs; 0 when none does (a view, a weight, a GEMM on cuBLASLt, a CPU-only
 * op), *missing saying why when a family could but not at these sizes. */
static int choose(const Graph *g, size_t i, const char *arch, PlanDType dtype, KernelChoice *k,
                  const char **missing, const KernelFamily **fam) {
  const Node *n = &g->nodes[i];
  const KernelFamily *fams[32];
  int n_f = kfam_all(fams, 32);
  memset(k, 0, sizeof *k);
  *missing = NULL;
  for (int f = 0; f < n_f; f++) {
    const char *why = NULL;
    KfamFit fit = fams[f]->can_implement(g, n, arch, dtype, &why);
    if (fit == KFAM_NOT_MINE) continue;
    KernelKnobs c[KFAM_MAX_CANDIDATES];
    if (fit == KFAM_CANNOT || fams[f]->candidates(g, n, c, KFAM_MAX_CANDIDATES) < 1) {
      *missing = why ? why : "a kernel family with no knob choice for these sizes";
      return 0;
    }
    fams[f]->instantiate(g, n, &c[0], k);
    if (fam) *fam = fams[f];
    return 1;
  }
  return 0;
}

/* MAX_KERNELS: a plan's slots, its defaults and candidates (--tune-candidates
 * 16 on the largest DiT needs about 130); MAX_DEFAULT_KERNELS: a graph's
 * distinct default kernels (the report and --emit-cuda, on the stack). */
enum { MAX_KERNELS = 512, MAX_DEFAULT_KERNELS = 64, MAX_SMEM = 48 * 1024, MAX_ARCHS = 8 };

/* Adds k to the distinct kernels ks[0..*n) unless it is there; its index,
 * or -1 when there are already cap. */
static int add_kernel(KernelChoice *ks, int *n, int cap, const KernelChoice *k) {
  for (int j = 0; j < *n; j++)
    if (strcmp(ks[j].expr, k->expr) == 0) return j;
  if (*n == cap) return -1;
  ks[*n] = *k;
  return (*n)++;
}

/* The distinct kernels of the graph (fp32) for arch, in first-use order;
 * missing[op] names the ops that have no template yet. */
static int collect(const Graph *g, const char *arch, KernelChoice *ks, const char **missing) {
  int n_k = 0;
  for (size_t i = 0; i < g->n_nodes; i++) {
    KernelChoice k;
    const char *miss;
    if (!choose(g, i, arch, PLAN_DT_F32, &k, &miss, NULL)) {
      if (miss) missing[g->nodes[i].op] = miss;
      continue;
    }
    add_kernel(ks, &n_k, MAX_DEFAULT_KERNELS, &k);
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

/* Adds the real architecture a[0..len) ("sm_90a") to archs[0..*n), kept in
 * ascending order (plan.bin sorts images by slot, then arch). */
static DitcStatus add_arch(Diag *d, const char *a, size_t len, Arch *archs, int *n) {
  const char *p = a + 3, *end = a + len;
  unsigned num = 0;
  int digits = 0;
  bool ok = len >= 5 && len < sizeof archs[0].name && strncmp(a, "sm_", 3) == 0;
  for (; ok && p < end && *p >= '0' && *p <= '9'; p++, digits++) num = num * 10 + (unsigned)(*p - '0');
  bool variant = ok && p < end && *p == 'a'; /* sm_90a: the arch-specific features (wgmma) */
  ok = ok && p + variant == end && (digits == 2 || digits == 3) && num >= 50 && num <= 199;
  if (!ok) {
    diag_error(d, span_none(), "--arch: '%.*s' is not a GPU architecture like sm_80, sm_90 or sm_90a, nor emu",
               (int)len, a);
    return DITC_ERR_USAGE;
  }
  if (*n == MAX_ARCHS) {
    diag_error(d, span_none(), "--arch: at most %d architectures", MAX_ARCHS);
    return DITC_ERR_USAGE;
  }
  Arch *x = &archs[*n];
  x->code = num * 10 + variant;
  snprintf(x->name, sizeof x->name, "%.*s", (int)len, a);
  for (int i = 0; i < *n; i++) {
    if (archs[i].code == x->code) {
      diag_error(d, span_none(), "--arch names %s twice", x->name);
      return DITC_ERR_USAGE;
    }
  }
  for (int i = *n; i > 0 && archs[i - 1].code > archs[i].code; i--) { /* insertion: keep them sorted */
    Arch t = archs[i];
    archs[i] = archs[i - 1];
    archs[i - 1] = t;
  }
  (*n)++;
  return DITC_OK;
}

/* "sm_90a,emu,sm_80" -> {sm_80, 800}, {sm_90a, 901} and *emu: the real
 * architectures, each once, in ascending order, and whether the list names
 * the emulated device (tools/emu/README.md), also at most once. */
static DitcStatus parse_archs(Diag *d, const char *list, Arch *archs, int *n_archs, bool *emu) {
  int n = 0;
  *emu = false;
  for (const char *a = list;;) {
    size_t len = strcspn(a, ",");
    if (len == 3 && strncmp(a, "emu", 3) == 0) {
      if (*emu) {
        diag_error(d, span_none(), "--arch names emu twice");
        return DITC_ERR_USAGE;
      }
      *emu = true;
    } else {
      DitcStatus st = add_arch(d, a, len, archs, &n);
      if (st) return st;
    }
    a += len;
    if (!*a) break;
    a++;
  }
  *n_archs = n;
  return DITC_OK;
}

/* Spills and static shared memory over 48 KiB are errors, or with
 * candidate, a note that drops it (DITC_ERR_LIMIT either way). */
static DitcStatus check_limits(Diag *d, const KernelChoice *k, const KernelImage *img, const char *arch,
                               bool candidate) {
  int spills = img->spill_stores + img->spill_loads;
  if (!spills && img->smem_bytes <= MAX_SMEM) return DITC_OK;
  if (candidate)
    diag_note(d, span_none(), "candidate %s dropped: for %s it has %d bytes of register spills, %d bytes of "
              "shared memory", k->expr, arch, spills, img->smem_bytes);
  else
    diag_error(d, span_none(), "%s for %s: %d bytes of register spills, %d bytes of shared memory", k->expr,
               arch, spills, img->smem_bytes);
  return DITC_ERR_LIMIT;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* "ditc: 58 kernels for emu,sm_80,sm_90 in 12.4 s (NVRTC cache: 1 hit, 2
 * misses)": what compiling them cost, on the diagnostics stream. */
static void report_compile(Diag *d, int n_k, int n_cand, bool emu, const Arch *archs, int n_archs, double secs,
                           const NvrtcCache *c) {
  char list[MAX_ARCHS * 16 + 8] = "", cand[64] = "", cache[64];
  size_t len = 0;
  if (emu) len += (size_t)snprintf(list, sizeof list, "emu");
  for (int i = 0; i < n_archs && len < sizeof list; i++)
    len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", len ? "," : "", archs[i].name);
  if (n_cand) snprintf(cand, sizeof cand, " (%d of them candidates)", n_cand);
  if (c->reads || c->writes)
    snprintf(cache, sizeof cache, "NVRTC cache: %d hit%s, %d miss%s", c->hits, c->hits == 1 ? "" : "s", c->misses,
             c->misses == 1 ? "" : "es");
  else
    snprintf(cache, sizeof cache, "NVRTC cache off");
  fprintf(d->out, "ditc: %d kernel%s%s for %s in %.*f s (%s)\n", n_k, n_k == 1 ? "" : "s", cand, list,
          secs < 1 ? 2 : 1, secs, cache);
}

void kernel_emit_source(const Graph *g, const char *spec_path, FILE *out) {
  KernelChoice ks[MAX_DEFAULT_KERNELS];
  const char *missing[OP_COUNT] = {0};
  int n_k = collect(g, "sm_80", ks, missing); /* the kernels are the same for every arch today */
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

DitcStatus kernel_report(const Graph *g, const char *arch_list, const char *cache_dir, Diag *d, FILE *out) {
  Arch archs[MAX_ARCHS];
  int n_archs = 0;
  bool emu;
  DitcStatus st = parse_archs(d, arch_list, archs, &n_archs, &emu); /* emu has no resources to report */
  if (st) return st;
  if (n_archs == 0) {
    diag_error(d, span_none(), "--kernel-report: emu has no registers or shared memory to report; name a "
                               "GPU architecture (sm_80, sm_90, ...)");
    return DITC_ERR_USAGE;
  }
  Nvrtc *nv = nvrtc_open(d);
  if (!nv) return DITC_ERR_IO;
  NvrtcCache cache;
  nvrtc_cache_init(&cache, cache_dir, d);
  double t0 = now_s();
  KernelChoice ks[MAX_DEFAULT_KERNELS];
  const char *exprs[MAX_DEFAULT_KERNELS];
  KernelImage imgs[MAX_DEFAULT_KERNELS];
  const char *missing[OP_COUNT] = {0};
  int n_k = collect(g, archs[0].name, ks, missing);
  char src[512];
  program_source(ks, n_k, src, sizeof src);
  for (int j = 0; j < n_k; j++) exprs[j] = ks[j].expr;
  fprintf(out, "NVRTC %s; %d kernels\n%-8s %-56s %5s %6s %6s %6s\n", nvrtc_version(nv), n_k, "arch",
          "kernel", "regs", "smem", "stack", "spill");
  for (int a = 0; a < n_archs; a++) {
    KernelModule mod;
    DitcStatus s2 = nvrtc_cache_compile(&cache, nv, d, src, exprs, n_k, archs[a].name, &mod, imgs);
    if (s2) {
      st = s2;
      continue;
    }
    for (int j = 0; j < n_k; j++) {
      fprintf(out, "%-8s %-56s %5d %6d %6d %6d\n", archs[a].name, ks[j].expr, imgs[j].registers,
              imgs[j].smem_bytes, imgs[j].stack_bytes, imgs[j].spill_stores + imgs[j].spill_loads);
      s2 = check_limits(d, &ks[j], &imgs[j], archs[a].name, false);
      if (s2) st = s2;
    }
    kernel_module_free(&mod);
  }
  for (int op = 0; op < OP_COUNT; op++)
    if (missing[op]) fprintf(out, "no GPU template yet: %s\n", missing[op]);
  if (n_k) report_compile(d, n_k, 0, false, archs, n_archs, now_s() - t0, &cache);
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
  uint64_t mod_offset[MAX_ARCHS + 1], end = h.images_offset + sizeof(PlanKernelImage) * n_images;
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

/* Appends printf output to b[*len..cap) (nothing is written when b is
 * NULL: a measuring pass); *len counts every byte either way. */
__attribute__((format(printf, 4, 5))) static void put(char *b, size_t *len, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(b ? b + *len : NULL, b ? cap - *len : 0, fmt, ap);
  va_end(ap);
  if (k > 0) *len += (size_t)k;
}

/* The emulated device's translation unit (tools/emu/README.md): the
 * headers of program_source, then each slot's kernel by lowered name. */
static size_t emu_main(char *b, size_t cap, const char *includes, const KernelChoice *ks,
                       const KernelImage *imgs, int n_k) {
  size_t len = 0;
  put(b, &len, cap, "%sDIT_EMU_KERNELS_BEGIN\n", includes);
  for (int j = 0; j < n_k; j++)
    put(b, &len, cap, "DIT_EMU_KERNEL(\"%s\", %s)\n", imgs[j].lowered_name, ks[j].expr);
  put(b, &len, cap, "DIT_EMU_KERNELS_END\n");
  return len;
}

/* The bytes of the image, NUL included: the magic, a `file` record per
 * embedded kernel header, the `main` record, `end`. */
static size_t emu_records(char *b, size_t cap, const char *tu, size_t tu_len) {
  size_t len = 0;
  put(b, &len, cap, "DITEMU1\n");
  for (int i = 0; i < KERNEL_SOURCE_COUNT; i++)
    put(b, &len, cap, "file %s %zu\n%s\n", KERNEL_SOURCES[i].name, strlen(KERNEL_SOURCES[i].text),
        KERNEL_SOURCES[i].text);
  put(b, &len, cap, "main kernels.cu %zu\n%s\nend\n", tu_len, tu);
  return len + 1; /* vsnprintf wrote the NUL */
}

/* The emulated device's module, one for all slots (like one arch's cubin),
 * in the arena. */
static DitcStatus emu_image(Arena *a, const char *includes, const KernelChoice *ks, const KernelImage *imgs,
                            int n_k, ModuleBytes *out) {
  size_t tu_len = emu_main(NULL, 0, includes, ks, imgs, n_k);
  char *tu = arena_alloc(a, tu_len + 1);
  if (!tu) return DITC_ERR_NOMEM;
  emu_main(tu, tu_len + 1, includes, ks, imgs, n_k);
  size_t bytes = emu_records(NULL, 0, tu, tu_len);
  char *b = arena_alloc(a, bytes);
  if (!b) return DITC_ERR_NOMEM;
  emu_records(b, bytes, tu, tu_len);
  *out = (ModuleBytes){b, bytes};
  return DITC_OK;
}

/* The plan's kernels: each op's default (op_slot[k], DIT_PLAN_NONE for a
 * cuBLASLt GEMM), then with tune > 1 up to tune - 1 more knob choices of the
 * op's family as candidate slots, (op, slot) in cands, by op and in the
 * family's order; ks[0..*n_k) the distinct kernels. */
static DitcStatus select_kernels(Arena *a, Diag *d, const Graph *g, Plan *p, const char *arch, bool gelu_kernel,
                                 int tune, KernelChoice *ks, int *n_k, uint32_t *op_slot, PlanCandidate **cands,
                                 size_t *n_cands) {
  size_t cap = tune > 1 ? p->n_ops * (size_t)(tune - 1) : 0, n_c = 0;
  PlanCandidate *cs = cap ? arena_array(a, cap, sizeof *cs) : NULL;
  if (cap && !cs) return DITC_ERR_NOMEM;
  for (size_t k = 0; k < p->n_ops; k++) {
    KernelChoice c;
    const char *miss = NULL;
    const KernelFamily *fam = NULL;
    const Node *n = &g->nodes[p->op_node[k]];
    PlanKernelFamily want = plan_op_info(p->ops[k].kind)->family; /* the op table's */
    op_slot[k] = DIT_PLAN_NONE;
    if (want == PLAN_KF_GEMM) { /* cuBLASLt; its GELU epilogue, or a BIAS GEMM and the GELU or SiLU kernel */
      if (n->attr.linear.act == ACT_SILU) want = PLAN_KF_SILU;
      else if (gelu_kernel && n->attr.linear.act == ACT_GELU_TANH) want = PLAN_KF_GELU;
      else continue;
    }
    if (want == PLAN_KF_NONE) {
      diag_error(d, span_none(), "op %zu (%s) has no GPU kernel yet; compile this plan with --arch none", k,
                 op_name(n->op));
      return DITC_ERR_LIMIT;
    }
    /* the family the op table gives it, or one that stands in for it (the tensor-core attention) */
    if (!choose(g, p->op_node[k], arch, p->dtype, &c, &miss, &fam) ||
        (c.family != want && dit_kernel_family_base[c.family] != want)) {
      diag_error(d, span_none(), "%sop %zu (%s) has no GPU kernel%s%s", miss ? "" : "internal error: ", k,
                 op_name(n->op), miss ? " yet: " : "", miss ? miss : " of its family");
      return miss ? DITC_ERR_LIMIT : DITC_ERR_INTERNAL;
    }
    int slot = add_kernel(ks, n_k, MAX_KERNELS, &c);
    op_slot[k] = (uint32_t)slot;
    KernelKnobs knobs[KFAM_MAX_CANDIDATES];
    int n_knobs = tune > 1 ? fam->candidates(g, n, knobs, tune) : 0;
    size_t first = n_c;
    for (int i = 1; slot >= 0 && i < n_knobs; i++) { /* knobs[0] is the default */
      fam->instantiate(g, n, &knobs[i], &c);
      int cand = add_kernel(ks, n_k, MAX_KERNELS, &c);
      bool seen = (uint32_t)cand == op_slot[k];
      for (size_t j = first; j < n_c; j++) seen |= cs[j].slot == (uint32_t)cand;
      if (cand >= 0 && !seen) cs[n_c++] = (PlanCandidate){.op = (uint32_t)k, .slot = (uint32_t)cand};
      slot = cand;
    }
    if (slot < 0) {
      diag_error(d, span_none(), "the plan needs more than %d distinct GPU kernels%s", MAX_KERNELS,
                 tune > 1 ? "; ask for fewer --tune-candidates" : "");
      return DITC_ERR_LIMIT;
    }
  }
  *cands = cs;
  *n_cands = n_c;
  return DITC_OK;
}

/* Checks every kernel's resources for each arch (imgs[arch][kernel]): a
 * default over the limits fails the build, a candidate over them is
 * dropped (noted) for every arch; the kept kernels are renumbered in
 * order, in ks, imgs, op_slot and cands. */
static DitcStatus drop_candidates(Arena *a, Diag *d, const Plan *p, const Arch *archs, int n_archs,
                                  KernelChoice *ks, int *n_k, KernelImage *imgs, uint32_t *op_slot,
                                  PlanCandidate *cands, size_t *n_cands) {
  int n = *n_k;
  int *keep = arena_array(a, (size_t)(n ? n : 1), sizeof *keep); /* -1: dropped; else the new index */
  bool *is_default = arena_array(a, (size_t)(n ? n : 1), sizeof *is_default);
  if (!keep || !is_default) return DITC_ERR_NOMEM;
  for (size_t k = 0; k < p->n_ops; k++)
    if (op_slot[k] != DIT_PLAN_NONE) is_default[op_slot[k]] = true;
  DitcStatus st = DITC_OK;
  for (int j = 0; j < n; j++) {
    keep[j] = 0;
    for (int i = 0; i < n_archs && keep[j] == 0; i++) {
      if (check_limits(d, &ks[j], &imgs[(size_t)i * MAX_KERNELS + j], archs[i].name, !is_default[j]) == DITC_OK)
        continue;
      keep[j] = -1;
      if (is_default[j]) st = DITC_ERR_LIMIT;
    }
  }
  if (st) return st;
  int m = 0;
  for (int j = 0; j < n; j++) {
    if (keep[j] < 0) continue;
    keep[j] = m;
    ks[m] = ks[j];
    for (int i = 0; i < (n_archs ? n_archs : 1); i++)
      imgs[(size_t)i * MAX_KERNELS + m] = imgs[(size_t)i * MAX_KERNELS + j];
    m++;
  }
  for (size_t k = 0; k < p->n_ops; k++)
    if (op_slot[k] != DIT_PLAN_NONE) op_slot[k] = (uint32_t)keep[op_slot[k]];
  size_t c = 0;
  for (size_t i = 0; i < *n_cands; i++)
    if (keep[cands[i].slot] >= 0) cands[c++] = (PlanCandidate){cands[i].op, (uint32_t)keep[cands[i].slot]};
  *n_k = m;
  *n_cands = c;
  return DITC_OK;
}

DitcStatus kernel_plan_build(Arena *a, Diag *d, const Graph *g, Plan *p, const KernelBuildOptions *o) {
  Arch archs[MAX_ARCHS];
  int n_archs = 0, n_k = 0; /* archs come sorted: archs[0] is the lowest, whose PTX the plan keeps */
  bool emu = false;
  Nvrtc *nv = NULL;
  NvrtcCache cache;
  KernelModule mods[MAX_ARCHS];
  memset(mods, 0, sizeof mods);
  PlanCandidate *cands = NULL;
  size_t n_cands = 0;
  KernelChoice *ks = arena_array(a, MAX_KERNELS, sizeof *ks);
  KernelImage *imgs = arena_array(a, (size_t)MAX_ARCHS * MAX_KERNELS, sizeof *imgs); /* [arch][kernel] */
  uint32_t *op_slot = arena_array(a, p->n_ops ? p->n_ops : 1, sizeof *op_slot);
  const char **exprs = arena_array(a, MAX_KERNELS, sizeof *exprs);
  DitcStatus st = DITC_ERR_NOMEM;
  if (!ks || !imgs || !op_slot || !exprs) goto done;
  if (p->train) {
    diag_error(d, span_none(), "--arch: training plans have no GPU kernels yet; compile them with --arch none");
    st = DITC_ERR_USAGE;
    goto done;
  }
  if (o->tune_candidates < 1 || o->tune_candidates > KFAM_MAX_CANDIDATES) {
    diag_error(d, span_none(), "--tune-candidates takes an integer from 1 to %d, got %d", KFAM_MAX_CANDIDATES,
               o->tune_candidates);
    st = DITC_ERR_USAGE;
    goto done;
  }
  st = parse_archs(d, o->arch_list, archs, &n_archs, &emu);
  if (st) goto done;
  /* emu alone: NVRTC compiles for a virtual arch (PTX only), for the lowered names */
  const char *first_arch = n_archs ? archs[0].name : "sm_80";
  st = select_kernels(a, d, g, p, first_arch, o->gelu_kernel, o->tune_candidates, ks, &n_k, op_slot, &cands,
                      &n_cands);
  if (st) goto done;
  nv = nvrtc_open(d);
  if (!nv) {
    st = DITC_ERR_IO;
    goto done;
  }
  nvrtc_cache_init(&cache, o->cache_dir, d);
  double t0 = now_s();
  /* one program per arch holds every kernel, candidates included */
  char src[512];
  program_source(ks, n_k, src, sizeof src);
  for (int j = 0; j < n_k; j++) exprs[j] = ks[j].expr;
  if (n_archs == 0) {
    st = nvrtc_cache_compile(&cache, nv, d, src, exprs, n_k, "compute_80", &mods[0], imgs);
    if (st) goto done;
  }
  for (int i = 0; i < n_archs; i++) {
    KernelImage *row = imgs + (size_t)i * MAX_KERNELS;
    st = nvrtc_cache_compile(&cache, nv, d, src, exprs, n_k, archs[i].name, &mods[i], row);
    for (int j = 0; !st && j < n_k; j++) {
      if (strcmp(row[j].lowered_name, imgs[j].lowered_name) != 0) {
        diag_error(d, span_none(), "internal error: %s has another lowered name for %s", ks[j].expr,
                   archs[i].name);
        st = DITC_ERR_INTERNAL;
      }
    }
    if (st) goto done;
  }
  int n_compiled = n_k;
  size_t n_cand_slots = 0;
  st = drop_candidates(a, d, p, archs, n_archs, ks, &n_k, imgs, op_slot, cands, &n_cands);
  if (st) goto done;
  for (int j = 0; j < n_k; j++) {
    bool dflt = false;
    for (size_t k = 0; k < p->n_ops && !dflt; k++) dflt = op_slot[k] == (uint32_t)j;
    n_cand_slots += !dflt;
  }
  p->candidates = cands;
  p->n_candidates = n_cands;
  /* the slots, with their names in the string table; per slot the emu image
   * (arch PLAN_ARCH_EMU, the lowest) comes first, then one per real arch */
  int per_slot = n_archs + emu;
  PlanKernelSlot *slots = arena_array(a, (size_t)n_k, sizeof *slots);
  PlanKernelImage *cubins = arena_array(a, (size_t)n_k * (size_t)per_slot, sizeof *cubins);
  PlanKernelImage *ptxs = arena_array(a, (size_t)n_k, sizeof *ptxs);
  int *cubin_module = arena_array(a, (size_t)n_k * (size_t)per_slot, sizeof(int));
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
    s->family = (uint32_t)ks[j].family;
    s->dtypes = ks[j].dtypes;
    memcpy(s->knobs, ks[j].knobs.v, sizeof s->knobs);
    PlanKernelImage *im = &cubins[j * per_slot];
    int *im_module = &cubin_module[j * per_slot];
    if (emu) {
      *im++ = (PlanKernelImage){.slot = (uint32_t)j, .arch = PLAN_ARCH_EMU};
      *im_module++ = n_archs; /* the module after the real archs' */
    }
    for (int i = 0; i < n_archs; i++) {
      im[i] = (PlanKernelImage){.slot = (uint32_t)j, .arch = archs[i].code};
      im[i].registers = (uint32_t)imgs[(size_t)i * MAX_KERNELS + j].registers;
      im_module[i] = i;
    }
    ptxs[j] = (PlanKernelImage){.slot = (uint32_t)j, .arch = n_archs ? archs[0].code : 0};
  }
  /* cubins: one module per arch (and the emu module); PTX: the lowest real arch's, a JIT
   * fallback for newer GPUs (none for emu alone). A module may hold the code of a dropped
   * candidate, which no slot names. */
  ModuleBytes cubin_mods[MAX_ARCHS + 1], ptx_mod = {mods[0].ptx, mods[0].ptx_bytes};
  for (int i = 0; i < n_archs; i++) cubin_mods[i] = (ModuleBytes){mods[i].cubin, mods[i].cubin_bytes};
  st = emu ? emu_image(a, src, ks, imgs, n_k, &cubin_mods[n_archs]) : DITC_OK;
  if (!st)
    st = assemble(a, p, op_slot, slots, (uint32_t)n_k, cubins, cubin_module, (uint32_t)(n_k * per_slot),
                  cubin_mods, per_slot, &p->cuda_cubin);
  if (!st && n_archs)
    st = assemble(a, p, op_slot, slots, (uint32_t)n_k, ptxs, ptx_module, (uint32_t)n_k, &ptx_mod, 1,
                  &p->cuda_ptx);
  if (!st && n_compiled) report_compile(d, n_k, (int)n_cand_slots, emu, archs, n_archs, now_s() - t0, &cache);
done:
  for (int i = 0; i < MAX_ARCHS; i++) kernel_module_free(&mods[i]);
  nvrtc_close(nv);
  return st;
}
