/* plan_write.c: Plan -> plan.bin. Layout: header, section table, then the
 * sections in a fixed order (model, strings, weights, values, ops, io or
 * train, then the GPU kernel images when the plan has them, then the kernel
 * candidates when it has them), each aligned to DIT_PLAN_ALIGN and covered
 * by a CRC-32. */
#include <string.h>

#include "atomic_file.h"
#include "plan.h"

#define DITC_VERSION_STRING "ditc 0.1.0"

enum { MAX_SECTIONS = 10 }; /* the seven of every plan, the two GPU kernel-image sections, the candidates */

typedef struct Blob {
  uint32_t kind, count;
  const void *data;
  uint64_t bytes;
} Blob;

typedef struct WriteCtx {
  const Plan *p;
  Blob blobs[MAX_SECTIONS];
  uint32_t flags[MAX_SECTIONS]; /* PLAN_SECTION_OPTIONAL */
  uint32_t n_blobs;
} WriteCtx;

static uint64_t align_up(uint64_t x) { return (x + DIT_PLAN_ALIGN - 1) / DIT_PLAN_ALIGN * DIT_PLAN_ALIGN; }

static int pad_to(FILE *f, uint64_t *pos, uint64_t target) {
  static const char zeros[DIT_PLAN_ALIGN];
  while (*pos < target) {
    uint64_t n = target - *pos > sizeof zeros ? sizeof zeros : target - *pos;
    if (fwrite(zeros, 1, n, f) != n) return -1;
    *pos += n;
  }
  return 0;
}

static int write_plan(FILE *f, void *vctx) {
  WriteCtx *c = vctx;
  PlanHeader h;
  PlanSection sec[MAX_SECTIONS];
  const uint32_t n = c->n_blobs;
  const size_t table_bytes = n * sizeof sec[0];
  memset(&h, 0, sizeof h);
  memset(sec, 0, sizeof sec);
  uint64_t pos = align_up(sizeof h) + align_up(table_bytes);
  for (uint32_t i = 0; i < n; i++) {
    const Blob *b = &c->blobs[i];
    sec[i].kind = b->kind;
    sec[i].count = b->count;
    sec[i].offset = pos;
    sec[i].bytes = b->bytes;
    sec[i].crc32 = dit_plan_crc32(0, b->data, b->bytes);
    sec[i].flags = c->flags[i];
    pos = align_up(pos + b->bytes);
  }
  memcpy(h.magic, DIT_PLAN_MAGIC, sizeof h.magic);
  h.version = DIT_PLAN_VERSION;
  h.header_bytes = sizeof h;
  strncpy(h.compiler, DITC_VERSION_STRING, sizeof h.compiler - 1);
  h.file_bytes = sec[n - 1].offset + sec[n - 1].bytes;
  h.section_table = align_up(sizeof h);
  h.n_sections = n;
  h.dtype = c->p->dtype;
  h.max_batch = c->p->max_batch;
  h.flags = c->p->train ? PLAN_FLAG_TRAIN : 0;
  h.header_crc32 = dit_plan_crc32(0, &h, sizeof h);

  uint64_t at = 0;
  if (fwrite(&h, sizeof h, 1, f) != 1) return -1;
  at += sizeof h;
  if (pad_to(f, &at, h.section_table) || fwrite(sec, table_bytes, 1, f) != 1) return -1;
  at += table_bytes;
  for (uint32_t i = 0; i < n; i++) {
    if (pad_to(f, &at, sec[i].offset)) return -1;
    if (c->blobs[i].bytes && fwrite(c->blobs[i].data, 1, c->blobs[i].bytes, f) != c->blobs[i].bytes)
      return -1;
    at += c->blobs[i].bytes;
  }
  return 0;
}

static void add_blob(WriteCtx *c, Blob b) {
  c->flags[c->n_blobs] = 0;
  c->blobs[c->n_blobs++] = b;
}

/* The sections in file order. A GPU kernel-image section has count 1: it is
 * one structure headed by its PlanCudaHeader. */
static void make_blobs(WriteCtx *c, const Plan *p) {
  c->p = p;
  c->n_blobs = 0;
  add_blob(c, (Blob){PLAN_SEC_MODEL, 1, &p->model, sizeof p->model});
  add_blob(c, (Blob){PLAN_SEC_STRINGS, 0, p->strings, p->strings_bytes});
  add_blob(c, (Blob){PLAN_SEC_WEIGHTS, (uint32_t)p->n_weights, p->weights, p->n_weights * sizeof(PlanWeight)});
  add_blob(c, (Blob){PLAN_SEC_VALUES, (uint32_t)p->n_values, p->values, p->n_values * sizeof(PlanValue)});
  add_blob(c, (Blob){PLAN_SEC_OPS, (uint32_t)p->n_ops, p->ops, p->n_ops * sizeof(PlanOp)});
  if (p->train) add_blob(c, (Blob){PLAN_SEC_TRAIN, 1, &p->train_io, sizeof p->train_io});
  else add_blob(c, (Blob){PLAN_SEC_IO, 1, &p->io, sizeof p->io});
  add_blob(c, (Blob){PLAN_SEC_IO_NAMES, p->n_io_names, p->io_names, p->n_io_names * sizeof(PlanIoName)});
  if (p->cuda_cubin.bytes) add_blob(c, (Blob){PLAN_SEC_CUDA_CUBIN, 1, p->cuda_cubin.data, p->cuda_cubin.bytes});
  if (p->cuda_ptx.bytes) add_blob(c, (Blob){PLAN_SEC_CUDA_PTX, 1, p->cuda_ptx.data, p->cuda_ptx.bytes});
  if (p->n_candidates) /* a reader that predates autotuning runs the defaults */
  {
    add_blob(c, (Blob){PLAN_SEC_CANDIDATES, (uint32_t)p->n_candidates, p->candidates,
                       p->n_candidates * sizeof(PlanCandidate)});
    c->flags[c->n_blobs - 1] = PLAN_SECTION_OPTIONAL;
  }
}

DitcStatus plan_write(Diag *d, const Plan *p, const char *path) {
  WriteCtx c;
  make_blobs(&c, p);
  return atomic_write(d, path, write_plan, &c);
}

int plan_write_stream(const Plan *p, FILE *f) {
  WriteCtx c;
  make_blobs(&c, p);
  return write_plan(f, &c);
}
