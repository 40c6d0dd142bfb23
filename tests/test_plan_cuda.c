/* test_plan_cuda.c: the GPU kernel-image sections of plan.bin (ditc --arch)
 * from the compiler through the runtime's loader: a tiny plan compiled for
 * sm_80 and sm_90 loads, maps each op to a sensible kernel slot (linear to
 * none), holds an ELF cubin per slot and arch and the PTX of the lowest arch;
 * the CPU backend runs it bit-identically to the plan without kernels; and
 * each damaged field of a section is refused with its own message. Skipped
 * where libnvrtc is absent (no GPU is needed).
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

#include <cmocka.h>

#include "compile_mem.h"
#include "executor.h"
#include "nvrtc.h"
#include "plan/plan_view.h"

typedef struct Bytes {
  unsigned char *data;
  size_t len;
} Bytes;

typedef struct Fix {
  Bytes cpu, cuda; /* specs/tests/tiny.dit at batch 2 without and with --arch sm_80,sm_90 */
  Bytes mini;      /* cuda with stand-in images: small, for the fuzz seeds */
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
  return 0;
}

static int teardown(void **state) {
  Fix *f = *state;
  free(f->cpu.data);
  free(f->cuda.data);
  free(f->mini.data);
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
  assert_int_equal(c->h->n_slots, 12); /* tiny: the distinct instantiations of --kernel-report */
  assert_int_equal(c->h->n_images, 2 * c->h->n_slots);
  assert_int_equal(p->h->n_images, c->h->n_slots);
  bool used[64] = {false};
  for (size_t k = 0; k < pv.n_ops; k++) {
    uint32_t j = c->op_slot[k];
    assert_int_equal(j, p->op_slot[k]);
    if (pv.ops[k].kind == PLAN_OP_LINEAR) {
      assert_int_equal(j, DIT_PLAN_NONE);
      continue;
    }
    assert_true(j < c->h->n_slots);
    used[j] = true;
    /* the slot's family is the op table's, and its instantiation that family's template */
    PlanKernelFamily fam = plan_op_info(pv.ops[k].kind)->family;
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
  Executor ex = {.pv = &pv, .arena = calloc(1, pv.arena_bytes), .weights = malloc(pv.weight_bytes),
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
  SLOT_FAMILY, SLOT_OTHER_FAMILY, N_FIELDS
} Field;

static const char *const WANT[N_FIELDS] = {
    "the cuda-cubin section maps 30 ops, but the plan has 29",
    "the cuda-cubin section's counts are out of range (0 slots",
    "the cuda-cubin section's tables lie outside it or are misaligned",
    "the cuda-cubin section's tables lie outside it or are misaligned",
    "the cuda-cubin section's tables lie outside it or are misaligned",
    "has a GPU kernel, but that kind has none (linear runs on cuBLASLt)",
    "has kernel slot 12 of 12",
    "cannot run kernel slot 0 (dit::patchify_kernel<",
    "kernel slot 3 names no valid string",
    "kernel slot 0 names no valid string",
    "kernel slot 5 (dit::silu_kernel) launches 2048 threads",
    "image 1 lies outside the section (truncated?)",
    "image 0 has an impossible arch 123",
    "image 1 (slot 5) is out of order",
    "kernel slot 11 has no image",
    "image 0 is not a cubin (no ELF header)",
    "lacks the entry point",
    "the cuda-ptx section: image 0 is not NUL-terminated PTX",
    "the cuda-cubin and cuda-ptx sections disagree on the ops' kernels",
    "the cuda-cubin section must hold one record",
    "lies outside the section (truncated?)",
    "kernel slot 2 (dit::timestep_freq_kernel<128>) names no kernel family (99)",
    "cannot run kernel slot 0 (dit::patchify_kernel<",
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
      cmocka_unit_test(test_training_plans_refused),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
