/* plan_write.c: Plan -> plan.bin. Layout: header, section table, then the
 * sections, each aligned to DIT_PLAN_ALIGN and covered by a CRC-32. */
#include <string.h>

#include "atomic_file.h"
#include "plan.h"

#define DITC_VERSION_STRING "ditc 0.1.0"

enum { N_SECTIONS = 6 };

typedef struct Blob {
  uint32_t kind, count;
  const void *data;
  uint64_t bytes;
} Blob;

typedef struct WriteCtx {
  const Plan *p;
  Blob blobs[N_SECTIONS];
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
  PlanSection sec[N_SECTIONS];
  memset(&h, 0, sizeof h);
  memset(sec, 0, sizeof sec);
  uint64_t pos = align_up(sizeof h) + align_up(sizeof sec);
  for (int i = 0; i < N_SECTIONS; i++) {
    const Blob *b = &c->blobs[i];
    sec[i].kind = b->kind;
    sec[i].count = b->count;
    sec[i].offset = pos;
    sec[i].bytes = b->bytes;
    sec[i].crc32 = dit_plan_crc32(0, b->data, b->bytes);
    pos = align_up(pos + b->bytes);
  }
  memcpy(h.magic, DIT_PLAN_MAGIC, sizeof h.magic);
  h.version = DIT_PLAN_VERSION;
  h.header_bytes = sizeof h;
  strncpy(h.compiler, DITC_VERSION_STRING, sizeof h.compiler - 1);
  h.file_bytes = sec[N_SECTIONS - 1].offset + sec[N_SECTIONS - 1].bytes;
  h.section_table = align_up(sizeof h);
  h.n_sections = N_SECTIONS;
  h.dtype = c->p->dtype;
  h.max_batch = c->p->max_batch;
  h.flags = c->p->train ? PLAN_FLAG_TRAIN : 0;
  h.header_crc32 = dit_plan_crc32(0, &h, sizeof h);

  uint64_t at = 0;
  if (fwrite(&h, sizeof h, 1, f) != 1) return -1;
  at += sizeof h;
  if (pad_to(f, &at, h.section_table) || fwrite(sec, sizeof sec, 1, f) != 1) return -1;
  at += sizeof sec;
  for (int i = 0; i < N_SECTIONS; i++) {
    if (pad_to(f, &at, sec[i].offset)) return -1;
    if (c->blobs[i].bytes && fwrite(c->blobs[i].data, 1, c->blobs[i].bytes, f) != c->blobs[i].bytes)
      return -1;
    at += c->blobs[i].bytes;
  }
  return 0;
}

static void make_blobs(WriteCtx *c, const Plan *p) {
  c->p = p;
  c->blobs[0] = (Blob){PLAN_SEC_MODEL, 1, &p->model, sizeof p->model};
  c->blobs[1] = (Blob){PLAN_SEC_STRINGS, 0, p->strings, p->strings_bytes};
  c->blobs[2] = (Blob){PLAN_SEC_WEIGHTS, (uint32_t)p->n_weights, p->weights, p->n_weights * sizeof(PlanWeight)};
  c->blobs[3] = (Blob){PLAN_SEC_VALUES, (uint32_t)p->n_values, p->values, p->n_values * sizeof(PlanValue)};
  c->blobs[4] = (Blob){PLAN_SEC_OPS, (uint32_t)p->n_ops, p->ops, p->n_ops * sizeof(PlanOp)};
  if (p->train) c->blobs[5] = (Blob){PLAN_SEC_TRAIN, 1, &p->train_io, sizeof p->train_io};
  else c->blobs[5] = (Blob){PLAN_SEC_IO, 1, &p->io, sizeof p->io};
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
