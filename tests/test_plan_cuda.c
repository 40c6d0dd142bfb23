/* test_plan_cuda.c: the GPU kernel-image sections of plan.bin (ditc --arch)
 * from the compiler through the runtime's loader: a tiny plan compiled for
 * sm_80 and sm_90 loads, maps each op to a sensible kernel slot (linear to
 * none), holds an ELF cubin per slot and arch and the PTX of the lowest arch;
 * the CPU backend runs it bit-identically to the plan without kernels; and
 * each damaged field of a section is refused with its own message. Plans
 * for the emulated device (--arch emu, alone and with sm_80) hold its image
 * (PLAN_ARCH_EMU, first per slot) in the records of tools/emu/README.md and
 * load; a damaged one is refused. Skipped where libnvrtc is absent (no GPU
 * is needed).
 * With DIT_PLAN_SEEDS=DIR set, the damaged plans are also written to DIR in
 * miniature (stand-in images, under 32 KiB): the plan fuzz corpus seeds. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "compile_mem.h"
#include "executor.h"
#include "kernel_sources.h"
#include "nvrtc.h"
#include "plan/plan_view.h"

typedef struct Bytes {
  unsigned char *data;
  size_t len;
} Bytes;

typedef struct Fix {
  Bytes cpu, cuda; /* specs/tests/tiny.dit at batch 2 without and with --arch sm_80,sm_90 */
  Bytes mini;      /* cuda with stand-in images: small, for the fuzz seeds */
  Bytes emu, emu_sm; /* --arch emu, and --arch sm_80,emu */
} Fix;

static Bytes compile_plan(const char *arch, DitcStatus *st) {
  char *buf = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&buf, &len);
  FILE *err = fopen("/dev/null", "w");
  CompileOptions o = {.emit = EMIT_PLAN, .batch = 2, .arch = arch};
  o.spec.path = DIT_SOURCE_DIR "/specs/tests/tiny.dit";
  o.spec.allow_include = true;
  *st = compile_pipeline(&o, out, err);
  fclose(out);
  fclose(err);
  return (Bytes){(unsigned char *)buf, len};
}

static PlanSection *sections(const Bytes *b) {
  return (PlanSection *)(b->data + ((PlanHeader *)b->data)->section_table);
}

static PlanSection *find_section(const Bytes *b, uint32_t kind) {
  PlanHeader *h = (PlanHeader *)b->data;
  for (uint32_t i = 0; i < h->n_sections; i++)
    if (sections(b)[i].kind == kind) return &sections(b)[i];
  return NULL;
}

static void reseal(Bytes *b) {
  PlanHeader *h = (PlanHeader *)b->data;
  for (uint32_t i = 0; i < h->n_sections; i++) {
    PlanSection *s = &sections(b)[i];
    s->crc32 = dit_plan_crc32(0, b->data + s->offset, s->bytes);
  }
  h->header_crc32 = 0;
  h->header_crc32 = dit_plan_crc32(0, h, sizeof *h);
}

static Bytes copy_bytes(const Bytes *b) {
  Bytes c = {malloc(b->len), b->len};
  memcpy(c.data, b->data, b->len);
  return c;
}

static DitStatus load(const Bytes *b, PlanView *pv, DitErr *e) {
  Bytes c = copy_bytes(b); /* the loader owns its buffer */
  return plan_load_buffer(c.data, c.len, "test.plan", pv, e);
}

/* The section's header and tables. */
typedef struct Cuda {
  unsigned char *base;
  PlanCudaHeader *h;
  uint32_t *op_slot;
  PlanKernelSlot *slots;
  PlanKernelImage *images;
} Cuda;

static Cuda cuda_of(const Bytes *b, uint32_t kind) {
  PlanSection *s = find_section(b, kind);
  assert_non_null(s);
  Cuda c = {b->data + s->offset, (PlanCudaHeader *)(b->data + s->offset), NULL, NULL, NULL};
  c.op_slot = (uint32_t *)(c.base + c.h->op_slot_offset);
  c.slots = (PlanKernelSlot *)(c.base + c.h->slots_offset);
  c.images = (PlanKernelImage *)(c.base + c.h->images_offset);
  return c;
}

/* The plan with each kernel-image section cut to its tables plus one
 * stand-in module that holds every entry name, as a cubin ("\177ELF" and the
 * names) or as PTX (".entry name(" lines): what the loader checks of an
 * image, in a few hundred bytes. The two sections are the file's last. */
static Bytes miniature(const Bytes *b) {
  PlanSection *cub = find_section(b, PLAN_SEC_CUDA_CUBIN);
  Bytes m = {calloc(1, b->len), 0};
  memcpy(m.data, b->data, cub->offset);
  uint64_t at = cub->offset;
  PlanView pv;
  DitErr e = {0};
  assert_int_equal(load(b, &pv, &e), DIT_OK);
  for (int k = 0; k < 2; k++) {
    PlanSection *s = find_section(&m, k ? PLAN_SEC_CUDA_PTX : PLAN_SEC_CUDA_CUBIN);
    Cuda c = cuda_of(b, s->kind);
    uint64_t tables = c.h->images_offset + sizeof(PlanKernelImage) * c.h->n_images;
    uint64_t mod = (tables + 63) / 64 * 64, len = 0;
    unsigned char *dst = m.data + at;
    memcpy(dst, c.base, tables);
    char *text = (char *)dst + mod;
    if (!k) len = (uint64_t)sprintf(text, "\177ELF") + 1;
    for (uint32_t j = 0; j < c.h->n_slots; j++) {
      const char *entry = plan_string(&pv, c.slots[j].entry);
      len += (uint64_t)(k ? sprintf(text + len, ".entry %s(\n", entry) : sprintf(text + len, "%s", entry) + 1);
    }
    len += k; /* the PTX's NUL */
    PlanKernelImage *im = (PlanKernelImage *)(dst + c.h->images_offset);
    for (uint32_t i = 0; i < c.h->n_images; i++) {
      im[i].offset = mod;
      im[i].bytes = len;
    }
    s->offset = at;
    s->bytes = mod + len;
    at = (at + s->bytes + 63) / 64 * 64;
  }
  plan_view_free(&pv);
  m.len = find_section(&m, PLAN_SEC_CUDA_PTX)->offset + find_section(&m, PLAN_SEC_CUDA_PTX)->bytes;
  ((PlanHeader *)m.data)->file_bytes = m.len;
  reseal(&m);
  return m;
}

static int setup(void **state) {
  Fix *f = calloc(1, sizeof *f);
  *state = f;
  Arena *a = arena_new();
  SourceMgr sm;
  Diag d;
  FILE *null = fopen("/dev/null", "w");
  srcmgr_init(&sm, a);
  diag_init(&d, &sm, null);
  Nvrtc *nv = nvrtc_open(&d);
  nvrtc_close(nv);
  fclose(null);
  arena_free(a);
  if (!nv) return 0; /* every test skips */
  DitcStatus st;
  f->cpu = compile_plan(NULL, &st);
  assert_int_equal(st, DITC_OK);
  f->cuda = compile_plan("sm_90,sm_80", &st); /* either order: images are sorted by arch */
  assert_int_equal(st, DITC_OK);
  f->mini = miniature(&f->cuda);
  f->emu = compile_plan("emu", &st);
  assert_int_equal(st, DITC_OK);
  f->emu_sm = compile_plan("sm_80,emu", &st);
  assert_int_equal(st, DITC_OK);
  return 0;
}

static int teardown(void **state) {
  Fix *f = *state;
  free(f->cpu.data);
  free(f->cuda.data);
  free(f->mini.data);
  free(f->emu.data);
  free(f->emu_sm.data);
  free(f);
  return 0;
}


static void test_loads_and_maps_every_op(void **state) {
  Fix *f = *state;
  if (!f->cuda.data) skip();
  PlanView pv, cpu;
  DitErr e = {0};
  assert_int_equal(load(&f->cpu, &cpu, &e), DIT_OK);
  assert_null(cpu.cubin.h);
  assert_null(cpu.ptx.h);
  if (load(&f->cuda, &pv, &e) != DIT_OK) fail_msg("%s", e.msg);
  const PlanCudaView *c = &pv.cubin, *p = &pv.ptx;
  assert_non_null(c->h);
  assert_non_null(p->h);
  assert_int_equal(c->h->n_ops, pv.n_ops);
  assert_int_equal(c->h->n_slots, 13); /* tiny: the distinct instantiations of --kernel-report */
  assert_int_equal(c->h->n_images, 2 * c->h->n_slots);
  assert_int_equal(p->h->n_images, c->h->n_slots);
  bool used[64] = {false};
  for (size_t k = 0; k < pv.n_ops; k++) {
    uint32_t j = c->op_slot[k];
    assert_int_equal(j, p->op_slot[k]);
    /* fp32: a linear op with GELU runs its GELU kernel after a BIAS GEMM (--gelu-epilogue auto),
     * one with SiLU its SiLU kernel */
    int gelu = pv.ops[k].kind == PLAN_OP_LINEAR && plan_attrs_LINEAR(&pv.ops[k]).act == PLAN_ACT_GELU_TANH;
    int silu = pv.ops[k].kind == PLAN_OP_LINEAR && plan_attrs_LINEAR(&pv.ops[k]).act == PLAN_ACT_SILU;
    if (pv.ops[k].kind == PLAN_OP_LINEAR && !gelu && !silu) {
      assert_int_equal(j, DIT_PLAN_NONE);
      continue;
    }
    assert_true(j < c->h->n_slots);
    used[j] = true;
    /* the slot's family is the op table's (GELU's for such a linear), and its instantiation that family's template */
    PlanKernelFamily fam = gelu ? PLAN_KF_GELU : silu ? PLAN_KF_SILU : plan_op_info(pv.ops[k].kind)->family;
    const char *want = dit_kernel_family_entry[fam], *name = plan_string(&pv, c->slots[j].name);
    assert_int_equal(c->slots[j].family, fam);
    if (strncmp(name, want, strlen(want)) != 0) fail_msg("op %zu: %s runs %s", k, want, name);
    if (pv.ops[k].kind == PLAN_OP_ATTENTION) {
      assert_int_equal(c->slots[j].knobs[0], 16); /* head dim, WARPS, BLOCK_N */
      assert_int_equal(c->slots[j].block_threads, 32 * c->slots[j].knobs[1]);
    }
  }
  for (uint32_t j = 0; j < c->h->n_slots; j++) {
    assert_true(used[j]);
    const char *entry = plan_string(&pv, c->slots[j].entry);
    assert_memory_equal(entry, "_ZN3dit", 7);
    for (int a = 0; a < 2; a++) { /* sm_80, then sm_90 */
      const PlanKernelImage *im = &c->images[2 * j + (uint32_t)a];
      assert_int_equal(im->slot, j);
      assert_int_equal(im->arch, a ? 900 : 800);
      assert_true(im->registers > 0 && im->registers <= 255);
      assert_memory_equal(c->base + im->offset, "\177ELF", 4);
    }
    const PlanKernelImage *pt = &p->images[j];
    assert_int_equal(pt->arch, 800);
    const char *text = (const char *)p->base + pt->offset;
    assert_int_equal(text[pt->bytes - 1], '\0');
    assert_non_null(strstr(text, ".target sm_80"));
    char needle[600];
    snprintf(needle, sizeof needle, ".entry %s(", entry);
    assert_non_null(strstr(text, needle));
  }
  /* the kernels change nothing else: model, weights, values, ops and io are the CPU plan's bytes */
  static const uint32_t same[] = {PLAN_SEC_MODEL, PLAN_SEC_WEIGHTS, PLAN_SEC_VALUES, PLAN_SEC_OPS, PLAN_SEC_IO};
  for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
    PlanSection *a = find_section(&f->cpu, same[i]), *b = find_section(&f->cuda, same[i]);
    assert_int_equal(a->bytes, b->bytes);
    assert_memory_equal(f->cpu.data + a->offset, f->cuda.data + b->offset, a->bytes);
  }
  plan_view_free(&cpu);
  plan_view_free(&pv);
}

/* One forward of 2 rows on the CPU backend; returns the output (malloc'ed). */
static float *forward(const Bytes *b, size_t *n_out) {
  PlanView pv;
  DitErr e = {0};
  assert_int_equal(load(b, &pv, &e), DIT_OK);
  Executor ex = {.pv = &pv, .arena = calloc(1, exec_arena_bytes(&pv)), .weights = malloc(pv.weight_bytes),
                 .cpu = {1, NULL, 0}, .grad_scale = 1.0f};
  ex.cpu.scratch_per_thread = exec_scratch_per_thread(&pv);
  ex.cpu.scratch = calloc((size_t)ex.cpu.scratch_per_thread + 1, sizeof(float));
  uint32_t rng = 12345;
  float *w = (float *)ex.weights;
  for (size_t i = 0; i < pv.weight_bytes / 4; i++) {
    rng = rng * 1664525u + 1013904223u;
    w[i] = ((float)(rng >> 8) / 16777216.0f - 0.5f) * 0.2f;
  }
  float *x = exec_value(&ex, pv.io->x);
  for (int64_t i = 0; i < exec_numel(&ex, pv.io->x, 2); i++) x[i] = (float)((i * 37) % 17) / 8.0f - 1.0f;
  long long *t = exec_value(&ex, pv.io->t), *y = exec_value(&ex, pv.io->y);
  t[0] = 999, t[1] = 17, y[0] = 3, y[1] = 10; /* 10: the null class */
  exec_forward(&ex, 2);
  *n_out = (size_t)exec_numel(&ex, pv.io->out, 2);
  float *out = malloc(*n_out * sizeof(float));
  memcpy(out, exec_value(&ex, pv.io->out), *n_out * sizeof(float));
  free(ex.arena);
  free(ex.weights);
  free(ex.cpu.scratch);
  plan_view_free(&pv);
  return out;
}

static void test_cpu_forward_bit_identical(void **state) {
  Fix *f = *state;
  if (!f->cuda.data) skip();
  size_t n_cpu, n_cuda;
  float *a = forward(&f->cpu, &n_cpu), *b = forward(&f->cuda, &n_cuda);
  assert_int_equal(n_cpu, n_cuda);
  assert_int_equal(n_cpu, 2 * 8 * 8 * 8);
  assert_memory_equal(a, b, n_cpu * sizeof(float));
  bool nonzero = false;
  for (size_t i = 0; i < n_cpu; i++) nonzero |= a[i] != 0.0f;
  assert_true(nonzero);
  free(a);
  free(b);
}

typedef enum Field {
  N_OPS, N_SLOTS, OP_SLOT_OFFSET, SLOTS_OFFSET_HUGE, IMAGES_MISALIGNED, LINEAR_SLOT, SLOT_RANGE,
  WRONG_KERNEL, SLOT_NAME, SLOT_ENTRY, SLOT_THREADS, IMAGE_OUTSIDE, IMAGE_ARCH, IMAGE_ORDER,
  IMAGE_MISSING, NOT_ELF, ENTRY_ABSENT, PTX_NO_NUL, PTX_DISAGREES, SECTION_COUNT, SECTION_TRUNCATED,
  SLOT_FAMILY, SLOT_OTHER_FAMILY, SLOT_DTYPES, N_FIELDS
} Field;

static const char *const WANT[N_FIELDS] = {
    "the cuda-cubin section maps 30 ops, but the plan has 29",
    "the cuda-cubin section's counts are out of range (0 slots",
    "the cuda-cubin section's tables lie outside it or are misaligned",
    "the cuda-cubin section's tables lie outside it or are misaligned",
    "the cuda-cubin section's tables lie outside it or are misaligned",
    "has a GPU kernel, but that kind has none (linear runs on cuBLASLt)",
    "has kernel slot 13 of 13",
    "cannot run kernel slot 0 (dit::patchify_kernel<",
    "kernel slot 3 names no valid string",
    "kernel slot 0 names no valid string",
    "kernel slot 5 (dit::add_kernel<0LL>) launches 2048 threads",
    "image 1 lies outside the section (truncated?)",
    "image 0 has an impossible arch 123",
    "image 1 (slot 5) is out of order",
    "kernel slot 12 has no image",
    "image 0 is not a cubin (no ELF header)",
    "lacks the entry point",
    "the cuda-ptx section: image 0 is not NUL-terminated PTX",
    "the cuda-cubin and cuda-ptx sections disagree on the ops' kernels",
    "the cuda-cubin section must hold one record",
    "lies outside the section (truncated?)",
    "kernel slot 2 (dit::timestep_freq_kernel<128, false>) names no kernel family (99)",
    "cannot run kernel slot 0 (dit::patchify_kernel<",
    "kernel slot 0 (dit::patchify_kernel<4, 8, 8, 2, false>): its family has no template for operand dtypes 2",
};

static size_t first_op(const Bytes *b, uint32_t kind) {
  PlanSection *s = find_section(b, PLAN_SEC_OPS);
  const PlanOp *ops = (const PlanOp *)(b->data + s->offset);
  for (size_t k = 0; k < s->count; k++)
    if (ops[k].kind == kind) return k;
  fail_msg("no op of kind %u", kind);
  return 0;
}

/* Damages one field of b's kernel-image sections. */
static void damage(Bytes *b, Field f) {
  Cuda c = cuda_of(b, PLAN_SEC_CUDA_CUBIN), p = cuda_of(b, PLAN_SEC_CUDA_PTX);
  PlanSection *cs = find_section(b, PLAN_SEC_CUDA_CUBIN);
  PlanSection *ms = find_section(b, PLAN_SEC_MODEL);
  switch (f) {
  case N_OPS: c.h->n_ops++; break;
  case N_SLOTS: c.h->n_slots = 0; break;
  case OP_SLOT_OFFSET: c.h->op_slot_offset = cs->bytes - 8; break;
  case SLOTS_OFFSET_HUGE: c.h->slots_offset = UINT64_MAX - 7; break; /* offset + size overflows */
  case IMAGES_MISALIGNED: c.h->images_offset += 4; break;
  case LINEAR_SLOT: c.op_slot[first_op(b, PLAN_OP_LINEAR)] = 0; break;
  case SLOT_RANGE: c.op_slot[first_op(b, PLAN_OP_PATCHIFY)] = c.h->n_slots; break;
  case WRONG_KERNEL: c.op_slot[first_op(b, PLAN_OP_ATTENTION)] = 0; break;
  case SLOT_NAME: c.slots[3].name = 0x7FFFFFF0u; break;
  case SLOT_ENTRY: c.slots[0].entry = ((PlanModel *)(b->data + ms->offset))->name + 4; break; /* "tiny"'s NUL: "" */
  case SLOT_THREADS: c.slots[5].block_threads = 2048; break;
  case IMAGE_OUTSIDE: c.images[1].offset = (cs->bytes - 16) / 8 * 8; c.images[1].bytes = 64; break;
  case IMAGE_ARCH: c.images[0].arch = 123; break;
  case IMAGE_ORDER: c.images[1].slot = 5; break;
  case IMAGE_MISSING: c.h->n_images -= 2; break;
  case NOT_ELF: c.base[c.images[0].offset] = 'X'; break;
  case ENTRY_ABSENT: c.slots[0].entry = 0; break; /* the model name, "tiny": no kernel's symbol */
  case PTX_NO_NUL: p.base[p.images[0].offset + p.images[0].bytes - 1] = '\n'; break;
  case PTX_DISAGREES: p.slots[2].block_threads = 128; break;
  case SECTION_COUNT: cs->count = 2; break;
  case SECTION_TRUNCATED: cs->bytes -= 24; break;
  case SLOT_FAMILY: c.slots[2].family = 99; break;
  case SLOT_OTHER_FAMILY: c.slots[0].family = PLAN_KF_ADD; break; /* patchify's slot, called an add */
  case SLOT_DTYPES: c.slots[0].dtypes = PLAN_SLOT_IN_BF16; break;  /* patchify reads fp32 images only */
  case N_FIELDS: break;
  }
  reseal(b);
}

static void test_damaged_sections_refused(void **state) {
  Fix *f = *state;
  if (!f->cuda.data) skip();
  const char *seeds = getenv("DIT_PLAN_SEEDS");
  for (int full = 0; full < 2; full++) { /* the miniature, then the real images */
    for (int k = 0; k < N_FIELDS; k++) {
      Bytes b = copy_bytes(full ? &f->cuda : &f->mini);
      damage(&b, (Field)k);
      PlanView pv;
      DitErr e = {0};
      DitStatus st = load(&b, &pv, &e);
      if (st != DIT_ERR_FORMAT || !strstr(e.msg, WANT[k]) || strncmp(e.msg, "test.plan: ", 11) != 0)
        fail_msg("field %d (%s): status %d, message '%s' (want '%s')", k, full ? "real" : "mini", st, e.msg,
                 WANT[k]);
      if (seeds && !full) {
        char path[512];
        snprintf(path, sizeof path, "%s/cuda_damaged_%02d", seeds, k);
        FILE *out = fopen(path, "wb");
        assert_non_null(out);
        assert_int_equal(fwrite(b.data, 1, b.len, out), b.len);
        fclose(out);
      }
      free(b.data);
    }
  }
  if (seeds) {
    char path[512];
    snprintf(path, sizeof path, "%s/cuda_mini", seeds);
    FILE *out = fopen(path, "wb");
    assert_non_null(out);
    assert_int_equal(fwrite(f->mini.data, 1, f->mini.len, out), f->mini.len);
    fclose(out);
  }
}

static void test_miniature_loads_and_is_small(void **state) {
  Fix *f = *state;
  if (!f->cuda.data) skip();
  PlanView pv;
  DitErr e = {0};
  if (load(&f->mini, &pv, &e) != DIT_OK) fail_msg("%s", e.msg);
  assert_non_null(pv.cubin.h);
  assert_true(f->mini.len < 32 * 1024);
  plan_view_free(&pv);
  /* truncated anywhere: refused, never read past the end */
  for (size_t len = 0; len < f->mini.len; len += 97) {
    Bytes b = {f->mini.data, len};
    DitStatus st = load(&b, &pv, &e);
    assert_int_not_equal(st, DIT_OK);
  }
}

/* The record "<kind> <name> <bytes>\n<bytes>\n" at *p of the emu image, or
 * false; name and body are set. */
static bool emu_record(const char **p, const char *end, const char *kind, char *name, size_t cap,
                       const char **body, size_t *bytes) {
  size_t k = strlen(kind);
  const char *nl = memchr(*p, '\n', (size_t)(end - *p));
  if (!nl || (size_t)(nl - *p) <= k + 1 || strncmp(*p, kind, k) != 0 || (*p)[k] != ' ') return false;
  const char *sp = memchr(*p + k + 1, ' ', (size_t)(nl - *p - (ptrdiff_t)k - 1));
  if (!sp || (size_t)(sp - *p - (ptrdiff_t)k - 1) >= cap) return false;
  snprintf(name, cap, "%.*s", (int)(sp - *p - (ptrdiff_t)k - 1), *p + k + 1);
  char *num_end;
  *bytes = strtoul(sp + 1, &num_end, 10);
  if (num_end != nl || (size_t)(end - nl - 1) < *bytes + 1 || nl[1 + *bytes] != '\n') return false;
  *body = nl + 1;
  *p = nl + 2 + *bytes;
  return true;
}

/* The emu image of a plan: the magic, a file record per embedded kernel
 * header, its bytes, the main translation unit with every slot's kernel by
 * its lowered name, end, NUL. */
static void check_emu_image(const PlanView *pv, const PlanCudaView *c, const PlanKernelImage *im) {
  const char *b = (const char *)c->base + im->offset, *end = b + im->bytes - 1, *p = b + 8;
  assert_memory_equal(b, "DITEMU1\n", 8);
  assert_int_equal(b[im->bytes - 1], '\0');
  assert_int_equal(strlen(b), im->bytes - 1); /* text: no NUL before the last */
  char name[64];
  const char *body;
  size_t bytes;
  for (int i = 0; i < KERNEL_SOURCE_COUNT; i++) {
    if (!emu_record(&p, end, "file", name, sizeof name, &body, &bytes)) fail_msg("file record %d", i);
    assert_string_equal(name, KERNEL_SOURCES[i].name);
    assert_int_equal(bytes, strlen(KERNEL_SOURCES[i].text));
    assert_memory_equal(body, KERNEL_SOURCES[i].text, bytes);
  }
  if (!emu_record(&p, end, "main", name, sizeof name, &body, &bytes)) fail_msg("no main record");
  assert_string_equal(name, "kernels.cu");
  assert_string_equal(p, "end\n");
  char *tu = malloc(bytes + 1);
  memcpy(tu, body, bytes);
  tu[bytes] = '\0';
  assert_non_null(strstr(tu, "#include \"adaln_norm.cuh\"\n"));
  const char *begin = strstr(tu, "DIT_EMU_KERNELS_BEGIN\n"), *fin = strstr(tu, "DIT_EMU_KERNELS_END\n");
  assert_true(begin && fin && begin < fin);
  for (uint32_t j = 0; j < c->h->n_slots; j++) {
    char line[1024];
    snprintf(line, sizeof line, "\nDIT_EMU_KERNEL(\"%s\", %s)\n", plan_string(pv, c->slots[j].entry),
             plan_string(pv, c->slots[j].name));
    const char *at = strstr(tu, line);
    if (!at || at < begin || at > fin) fail_msg("slot %u: no line %s", j, line);
  }
  free(tu);
}

static void test_emu_plans_hold_the_emu_image(void **state) {
  Fix *f = *state;
  if (!f->cuda.data) skip();
  PlanView pv, sm, gpu;
  DitErr e = {0};
  if (load(&f->emu, &pv, &e) != DIT_OK) fail_msg("emu: %s", e.msg);
  if (load(&f->emu_sm, &sm, &e) != DIT_OK) fail_msg("sm_80,emu: %s", e.msg);
  assert_int_equal(load(&f->cuda, &gpu, &e), DIT_OK);
  /* emu alone: one image per slot, all one module; no PTX (no real arch) */
  const PlanCudaView *c = &pv.cubin;
  assert_non_null(c->h);
  assert_null(pv.ptx.h);
  assert_null(find_section(&f->emu, PLAN_SEC_CUDA_PTX));
  assert_int_equal(c->h->n_slots, gpu.cubin.h->n_slots);
  assert_int_equal(c->h->n_images, c->h->n_slots);
  for (uint32_t j = 0; j < c->h->n_slots; j++) {
    const PlanKernelImage *im = &c->images[j];
    assert_int_equal(im->slot, j);
    assert_int_equal(im->arch, PLAN_ARCH_EMU);
    assert_int_equal(im->registers, 0);
    assert_int_equal(im->offset, c->images[0].offset);
    assert_int_equal(im->bytes, c->images[0].bytes);
    /* the slots are the GPU plan's: the same kernels and lowered names */
    assert_string_equal(plan_string(&pv, c->slots[j].entry), plan_string(&gpu, gpu.cubin.slots[j].entry));
    assert_string_equal(plan_string(&pv, c->slots[j].name), plan_string(&gpu, gpu.cubin.slots[j].name));
  }
  assert_memory_equal(c->op_slot, gpu.cubin.op_slot, sizeof(uint32_t) * pv.n_ops);
  check_emu_image(&pv, c, &c->images[0]);
  /* with sm_80: per slot the emu image, then sm_80's cubin; sm_80's PTX; the same emu bytes */
  const PlanCudaView *s = &sm.cubin;
  assert_int_equal(s->h->n_images, 2 * s->h->n_slots);
  assert_non_null(sm.ptx.h);
  for (uint32_t j = 0; j < s->h->n_slots; j++) {
    assert_int_equal(s->images[2 * j].arch, PLAN_ARCH_EMU);
    assert_int_equal(s->images[2 * j + 1].arch, 800);
    assert_memory_equal(s->base + s->images[2 * j + 1].offset, "\177ELF", 4);
    assert_int_equal(sm.ptx.images[j].arch, 800);
  }
  assert_int_equal(s->images[0].bytes, c->images[0].bytes);
  assert_memory_equal(s->base + s->images[0].offset, c->base + c->images[0].offset, c->images[0].bytes);
  check_emu_image(&sm, s, &s->images[0]);
  plan_view_free(&gpu);
  plan_view_free(&sm);
  plan_view_free(&pv);
  /* from a file too */
  char path[] = "/tmp/dit_emu_plan_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *out = fdopen(fd, "wb");
  assert_int_equal(fwrite(f->emu.data, 1, f->emu.len, out), f->emu.len);
  fclose(out);
  if (plan_load(path, &pv, &e) != DIT_OK) fail_msg("%s", e.msg);
  assert_int_equal(pv.cubin.images[0].arch, PLAN_ARCH_EMU);
  plan_view_free(&pv);
  unlink(path);
  /* the CPU runs them as the plan without kernels */
  size_t n_cpu, n_emu;
  float *a = forward(&f->cpu, &n_cpu), *b = forward(&f->emu, &n_emu);
  assert_int_equal(n_cpu, n_emu);
  assert_memory_equal(a, b, n_cpu * sizeof(float));
  free(a);
  free(b);
}

typedef enum EmuDamage { EMU_MAGIC, EMU_NO_NUL, EMU_ENTRY, EMU_IN_PTX, EMU_AFTER_SM, EMU_ARCH_2, N_EMU } EmuDamage;

static const char *const EMU_WANT[N_EMU] = {
    "the cuda-cubin section: image 0 is not an emu image (no DITEMU1 magic; recompile with ditc --arch emu)",
    "the cuda-cubin section: image 0 (emu) is not NUL-terminated",
    "the cuda-cubin section: image 0 (emu) lacks the entry point tiny of slot 0",
    "the cuda-ptx section: image 0 is an emu image, which belongs in the cuda-cubin section only",
    "the cuda-cubin section: image 1 (slot 0) is out of order",
    "the cuda-cubin section: image 0 has an impossible arch 2",
};

static void test_damaged_emu_images_refused(void **state) {
  Fix *f = *state;
  if (!f->cuda.data) skip();
  for (int k = 0; k < N_EMU; k++) {
    Bytes b = copy_bytes(&f->emu_sm); /* per slot: emu, sm_80 */
    Cuda c = cuda_of(&b, PLAN_SEC_CUDA_CUBIN), p = cuda_of(&b, PLAN_SEC_CUDA_PTX);
    unsigned char *img = c.base + c.images[0].offset;
    switch ((EmuDamage)k) {
    case EMU_MAGIC: img[3] = 'X'; break; /* "DITXMU1" */
    case EMU_NO_NUL: img[c.images[0].bytes - 1] = '\n'; break;
    case EMU_ENTRY: c.slots[0].entry = 0; p.slots[0].entry = 0; break; /* "tiny": quoted nowhere */
    case EMU_IN_PTX: p.images[0].arch = PLAN_ARCH_EMU; break;
    case EMU_AFTER_SM: { /* sm_80's image, then the emu one */
      PlanKernelImage t = c.images[0];
      c.images[0] = c.images[1];
      c.images[1] = t;
      break;
    }
    case EMU_ARCH_2: c.images[0].arch = 2; break;
    case N_EMU: break;
    }
    reseal(&b);
    PlanView pv;
    DitErr e = {0};
    DitStatus st = load(&b, &pv, &e);
    if (st != DIT_ERR_FORMAT || !strstr(e.msg, EMU_WANT[k]) || strncmp(e.msg, "test.plan: ", 11) != 0)
      fail_msg("damage %d: status %d, message '%s' (want '%s')", k, st, e.msg, EMU_WANT[k]);
    free(b.data);
  }
}

/* ditc's --arch lists with emu: emu once, anywhere in the list; the kernel
 * report leaves it out (and refuses it alone). */
static void test_emu_arch_lists(void **state) {
  Fix *f = *state;
  if (!f->cuda.data) skip();
  static const struct {
    const char *arch;
    EmitKind emit;
    DitcStatus st;
    const char *want; /* in stderr, or (for DITC_OK) stdout */
  } cases[] = {
      {"emu,emu", EMIT_PLAN, DITC_ERR_USAGE, "--arch names emu twice"},
      {"emx", EMIT_PLAN, DITC_ERR_USAGE, "'emx' is not a GPU architecture like sm_80, sm_90 or sm_90a, nor emu"},
      {"sm_80,emu,sm_80", EMIT_PLAN, DITC_ERR_USAGE, "--arch names sm_80 twice"},
      {"emu", EMIT_KERNEL_REPORT, DITC_ERR_USAGE, "--kernel-report: emu has no registers or shared memory"},
      {"emu,sm_80", EMIT_KERNEL_REPORT, DITC_OK, "\nsm_80    dit::"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    CompileOptions o = {.emit = cases[i].emit, .batch = 2, .arch = cases[i].arch};
    o.spec.path = DIT_SOURCE_DIR "/specs/tests/tiny.dit";
    o.spec.allow_include = true;
    char *buf = NULL, *msg = NULL;
    size_t len = 0, mlen = 0;
    FILE *out = open_memstream(&buf, &len), *err = open_memstream(&msg, &mlen);
    DitcStatus st = compile_pipeline(&o, out, err);
    fclose(out);
    fclose(err);
    const char *text = cases[i].st == DITC_OK ? buf : msg;
    if (st != cases[i].st || !strstr(text, cases[i].want))
      fail_msg("--arch %s: status %d, output '%s' (want '%s')", cases[i].arch, st, text, cases[i].want);
    if (st == DITC_OK) assert_null(strstr(buf, "emu")); /* the report has no emu row */
    free(buf);
    free(msg);
  }
}

static void test_training_plans_refused(void **state) {
  Fix *f = *state;
  if (!f->cuda.data) skip();
  CompileOptions o = {.emit = EMIT_PLAN, .batch = 2, .arch = "sm_80", .train = true};
  o.spec.path = DIT_SOURCE_DIR "/specs/tests/tiny.dit";
  o.spec.allow_include = true;
  char *buf = NULL, *msg = NULL;
  size_t len = 0, mlen = 0;
  FILE *out = open_memstream(&buf, &len), *err = open_memstream(&msg, &mlen);
  assert_int_equal(compile_pipeline(&o, out, err), DITC_ERR_USAGE);
  fclose(out);
  fclose(err);
  assert_non_null(strstr(msg, "training plans have no GPU kernels yet; compile them with --arch none"));
  free(buf);
  free(msg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_loads_and_maps_every_op),
      cmocka_unit_test(test_cpu_forward_bit_identical),
      cmocka_unit_test(test_damaged_sections_refused),
      cmocka_unit_test(test_miniature_loads_and_is_small),
      cmocka_unit_test(test_emu_plans_hold_the_emu_image),
      cmocka_unit_test(test_damaged_emu_images_refused),
      cmocka_unit_test(test_emu_arch_lists),
      cmocka_unit_test(test_training_plans_refused),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
