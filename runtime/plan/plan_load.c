/* plan_load.c: reading plan.bin and validating its structure: header,
 * section table, checksums, record counts, the string table, and every
 * weight and value record against the buffers they live in. Op shapes are
 * checked in plan_check.c, the GPU kernel images in plan_cuda.c. Nothing in
 * the file is trusted before it is checked. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plan_view.h"

#define PLAN_MAX_FILE_BYTES ((size_t)1 << 31)
#define PLAN_MAX_SECTIONS 64u
#define PLAN_MAX_DIM ((int64_t)1 << 40)

static const char *section_name(uint32_t kind) {
  switch (kind) {
  case PLAN_SEC_MODEL: return "model";
  case PLAN_SEC_STRINGS: return "strings";
  case PLAN_SEC_WEIGHTS: return "weights";
  case PLAN_SEC_VALUES: return "values";
  case PLAN_SEC_OPS: return "ops";
  case PLAN_SEC_IO: return "io";
  case PLAN_SEC_IO_NAMES: return "io-names";
  case PLAN_SEC_TRAIN: return "train";
  case PLAN_SEC_CUDA_CUBIN: return "cuda-cubin";
  case PLAN_SEC_CUDA_PTX: return "cuda-ptx";
  case PLAN_SEC_CANDIDATES: return "candidates";
  case PLAN_SEC_TUNING: return "tuning";
  default: return "unknown";
  }
}

const char *plan_string(const PlanView *pv, uint32_t offset) {
  return offset < pv->strings_bytes ? pv->strings + offset : "?";
}

void plan_view_free(PlanView *pv) {
  if (!pv) return;
  free(pv->file);
  memset(pv, 0, sizeof *pv);
}

/* Element count of dims[0..rank), or -1 when a dim is out of range or it overflows. */
static int64_t checked_numel(uint32_t rank, const int64_t *dims) {
  int64_t n = 1;
  if (rank < 1 || rank > DIT_PLAN_MAX_RANK) return -1;
  for (uint32_t i = 0; i < rank; i++) {
    if (dims[i] < 1 || dims[i] > PLAN_MAX_DIM) return -1;
    if (__builtin_mul_overflow(n, dims[i], &n)) return -1;
  }
  return n;
}

static bool range_ok(uint64_t offset, uint64_t bytes, uint64_t limit) {
  return offset <= limit && bytes <= limit - offset;
}

static DitStatus check_sections(PlanView *pv, const char *name, DitErr *err) {
  const PlanHeader *h = pv->header;
  if (!range_ok(h->section_table, (uint64_t)h->n_sections * sizeof(PlanSection), pv->file_bytes))
    return dit_err(err, DIT_ERR_FORMAT, "%s: section table lies outside the file", name);
  const PlanSection *sec = (const PlanSection *)(pv->file + h->section_table);
  enum { SLOT_TRAIN = 8, SLOT_CUBIN = 9, SLOT_PTX = 10, N_SLOTS = 11 }; /* kinds 1..7 use their own slot */
  const void *found[N_SLOTS] = {0};
  uint32_t counts[N_SLOTS] = {0};
  uint64_t bytes[N_SLOTS] = {0};
  bool train = (h->flags & PLAN_FLAG_TRAIN) != 0;
  for (uint32_t i = 0; i < h->n_sections; i++) {
    const PlanSection *s = &sec[i];
    if (s->offset % DIT_PLAN_ALIGN || !range_ok(s->offset, s->bytes, pv->file_bytes))
      return dit_err(err, DIT_ERR_FORMAT, "%s: section %u (%s) lies outside the file (truncated?)",
                     name, i, section_name(s->kind));
    if (dit_plan_crc32(0, pv->file + s->offset, s->bytes) != s->crc32)
      return dit_err(err, DIT_ERR_FORMAT, "%s: section %u (%s) is corrupt: checksum mismatch", name,
                     i, section_name(s->kind));
    int slot = s->kind >= PLAN_SEC_MODEL && s->kind <= PLAN_SEC_IO_NAMES ? (int)s->kind
               : s->kind == PLAN_SEC_TRAIN ? SLOT_TRAIN
               : s->kind == PLAN_SEC_CUDA_CUBIN ? SLOT_CUBIN
               : s->kind == PLAN_SEC_CUDA_PTX ? SLOT_PTX : -1;
    if (slot >= 0) {
      if (found[slot])
        return dit_err(err, DIT_ERR_FORMAT, "%s: section %s appears twice", name,
                       section_name(s->kind));
      found[slot] = pv->file + s->offset;
      counts[slot] = s->count;
      bytes[slot] = s->bytes;
    } else if (!(s->flags & PLAN_SECTION_OPTIONAL) && s->kind != PLAN_SEC_CANDIDATES &&
               s->kind != PLAN_SEC_TUNING) { /* those two: plan_tune.c */
      return dit_err(err, DIT_ERR_VERSION,
                     "%s: section kind %u is unknown to this runtime; the plan needs a newer dit",
                     name, s->kind);
    }
  }
  static const struct { uint32_t kind; int slot; size_t record; } need[] = {
      {PLAN_SEC_MODEL, PLAN_SEC_MODEL, sizeof(PlanModel)}, {PLAN_SEC_STRINGS, PLAN_SEC_STRINGS, 1},
      {PLAN_SEC_WEIGHTS, PLAN_SEC_WEIGHTS, sizeof(PlanWeight)},
      {PLAN_SEC_VALUES, PLAN_SEC_VALUES, sizeof(PlanValue)}, {PLAN_SEC_OPS, PLAN_SEC_OPS, sizeof(PlanOp)},
      {PLAN_SEC_IO, PLAN_SEC_IO, sizeof(PlanIO)}, {PLAN_SEC_TRAIN, SLOT_TRAIN, sizeof(PlanTrain)},
      {PLAN_SEC_IO_NAMES, PLAN_SEC_IO_NAMES, sizeof(PlanIoName)}};
  for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
    uint32_t k = need[i].kind;
    int slot = need[i].slot;
    bool wanted = k == PLAN_SEC_IO ? !train : k == PLAN_SEC_TRAIN ? train : true;
    if (!wanted) {
      if (found[slot])
        return dit_err(err, DIT_ERR_FORMAT, "%s: a%s plan with a %s section", name,
                       train ? " training" : "n inference", section_name(k));
      continue;
    }
    if (!found[slot])
      return dit_err(err, DIT_ERR_FORMAT, "%s: the %s section is missing", name, section_name(k));
    if (k != PLAN_SEC_STRINGS && (uint64_t)counts[slot] * need[i].record != bytes[slot])
      return dit_err(err, DIT_ERR_FORMAT, "%s: the %s section holds %llu bytes, not %u records",
                     name, section_name(k), (unsigned long long)bytes[slot], counts[slot]);
    if ((k == PLAN_SEC_MODEL || k == PLAN_SEC_IO || k == PLAN_SEC_TRAIN) && counts[slot] != 1)
      return dit_err(err, DIT_ERR_FORMAT, "%s: the %s section must hold one record", name,
                     section_name(k));
  }
  /* the GPU kernel images, optional: one structure each, checked in plan_cuda.c */
  for (int slot = SLOT_CUBIN; slot <= SLOT_PTX; slot++) {
    if (found[slot] && counts[slot] != 1)
      return dit_err(err, DIT_ERR_FORMAT, "%s: the %s section must hold one record", name,
                     section_name(slot == SLOT_CUBIN ? PLAN_SEC_CUDA_CUBIN : PLAN_SEC_CUDA_PTX));
  }
  pv->cubin.base = found[SLOT_CUBIN];
  pv->cubin.bytes = bytes[SLOT_CUBIN];
  pv->ptx.base = found[SLOT_PTX];
  pv->ptx.bytes = bytes[SLOT_PTX];
  pv->train = found[SLOT_TRAIN];
  pv->model = found[PLAN_SEC_MODEL];
  pv->strings = found[PLAN_SEC_STRINGS];
  pv->strings_bytes = bytes[PLAN_SEC_STRINGS];
  pv->weights = found[PLAN_SEC_WEIGHTS];
  pv->n_weights = counts[PLAN_SEC_WEIGHTS];
  pv->values = found[PLAN_SEC_VALUES];
  pv->n_values = counts[PLAN_SEC_VALUES];
  pv->ops = found[PLAN_SEC_OPS];
  pv->n_ops = counts[PLAN_SEC_OPS];
  pv->io = found[PLAN_SEC_IO];
  pv->io_names = found[PLAN_SEC_IO_NAMES];
  pv->n_io_names = counts[PLAN_SEC_IO_NAMES];
  pv->arena_bytes = train ? pv->train->arena_bytes : pv->io->arena_bytes;
  pv->weight_bytes = train ? pv->train->weight_bytes : pv->io->weight_bytes;
  pv->grad_bytes = train ? pv->train->grad_bytes : 0;
  if (pv->strings_bytes == 0 || pv->strings[pv->strings_bytes - 1] != '\0')
    return dit_err(err, DIT_ERR_FORMAT, "%s: the string table is not NUL-terminated", name);
  return DIT_OK;
}

/* The named inputs and outputs: valid names, each once, of values the
 * plan has, in a role; for a DiT plan, the ids its io or train section
 * gives them. */
static DitStatus check_io_names(const PlanView *pv, const char *name, DitErr *err) {
  static const char *const dit_inf[] = {"x", "t", "y", "out", "noise", "x_next"};
  static const char *const dit_train[] = {"x0", "t", "y", "noise", "loss"};
  const PlanIO *io = pv->io;
  const PlanTrain *tr = pv->train;
  uint32_t inf_ids[6] = {0}, train_ids[5] = {0};
  if (io) memcpy(inf_ids, (uint32_t[]){io->x, io->t, io->y, io->out, io->noise, io->x_next}, sizeof inf_ids);
  if (tr) memcpy(train_ids, (uint32_t[]){tr->x0, tr->t, tr->y, tr->noise, tr->loss}, sizeof train_ids);
  const char *const *want = tr ? dit_train : dit_inf;
  const uint32_t *ids = tr ? train_ids : inf_ids;
  size_t n_want = tr ? 5 : 6;
  if (pv->n_io_names > 64)
    return dit_err(err, DIT_ERR_FORMAT, "%s: the io-names section holds %zu names", name, pv->n_io_names);
  for (size_t i = 0; i < pv->n_io_names; i++) {
    const PlanIoName *e = &pv->io_names[i];
    if (e->name >= pv->strings_bytes || !pv->strings[e->name] || e->value >= pv->n_values || e->role < PLAN_IO_INPUT ||
        e->role > PLAN_IO_STEP_OUTPUT || e->reserved)
      return dit_err(err, DIT_ERR_FORMAT, "%s: io name %zu is invalid", name, i);
    for (size_t j = 0; j < i; j++)
      if (!strcmp(plan_string(pv, pv->io_names[j].name), plan_string(pv, e->name)))
        return dit_err(err, DIT_ERR_FORMAT, "%s: the io name '%s' appears twice", name, plan_string(pv, e->name));
  }
  for (size_t k = 0; k < n_want; k++) { /* a DiT plan names each of its inputs and outputs */
    const PlanIoName *e = plan_io_named(pv, want[k]);
    if (!e || e->value != ids[k])
      return dit_err(err, DIT_ERR_FORMAT, "%s: the io-names section %s '%s'", name,
                     e ? "gives another value for" : "lacks", want[k]);
  }
  return DIT_OK;
}

const PlanIoName *plan_io_named(const PlanView *pv, const char *io_name) {
  for (size_t i = 0; i < pv->n_io_names; i++)
    if (!strcmp(plan_string(pv, pv->io_names[i].name), io_name)) return &pv->io_names[i];
  return NULL;
}

/* A training plan's inputs and outputs. */
static DitStatus check_train(const PlanView *pv, const char *name, DitErr *err) {
  const PlanModel *m = pv->model;
  const PlanTrain *tr = pv->train;
  uint32_t ids[7] = {tr->x0, tr->t, tr->y, tr->noise, tr->x_t, tr->out, tr->loss};
  if (tr->n_loss_ops > pv->n_ops || tr->recompute > PLAN_RECOMPUTE_BLOCK || tr->timesteps < 1 ||
      tr->timesteps > 100000 || (tr->grad_bytes != 0 && tr->grad_bytes != tr->weight_bytes))
    return dit_err(err, DIT_ERR_FORMAT, "%s: the train section is invalid", name);
  for (int k = 0; k < 7; k++)
    if (ids[k] >= pv->n_values || pv->values[ids[k]].storage != PLAN_STORE_ARENA ||
        !pv->values[ids[k]].batch_major)
      return dit_err(err, DIT_ERR_FORMAT, "%s: the train section names an invalid value", name);
  const PlanValue *x0 = &pv->values[tr->x0], *t = &pv->values[tr->t], *y = &pv->values[tr->y];
  const PlanValue *z = &pv->values[tr->noise], *xt = &pv->values[tr->x_t], *o = &pv->values[tr->out];
  const PlanValue *l = &pv->values[tr->loss];
  int64_t L = m->latent_size;
  bool ok = x0->rank == 4 && x0->dtype == PLAN_VDT_F32 && x0->dims[1] == m->in_channels &&
            x0->dims[2] == L && x0->dims[3] == L && t->rank == 1 && t->dtype == PLAN_VDT_I64 &&
            y->rank == 1 && y->dtype == PLAN_VDT_I64 && o->rank == 4 && o->dtype == PLAN_VDT_F32 &&
            o->dims[1] == m->out_channels && o->dims[2] == L && o->dims[3] == L && l->rank == 1 &&
            l->dtype == PLAN_VDT_F32;
  for (int k = 0; k < 4 && ok; k++)
    ok = z->rank == 4 && xt->rank == 4 && z->dims[k] == x0->dims[k] && xt->dims[k] == x0->dims[k] &&
         z->dtype == PLAN_VDT_F32 && xt->dtype == PLAN_VDT_F32;
  if (!ok) return dit_err(err, DIT_ERR_FORMAT, "%s: input or output shapes disagree with the model", name);
  return DIT_OK;
}

static DitStatus check_records(const PlanView *pv, const char *name, DitErr *err) {
  const PlanModel *m = pv->model;
  const PlanIO *io = pv->io;
  if (m->name >= pv->strings_bytes || m->family >= pv->strings_bytes)
    return dit_err(err, DIT_ERR_FORMAT, "%s: model name is outside the string table", name);
  bool vae = strcmp(plan_string(pv, m->family), "vae") == 0;
  if (!vae && strcmp(plan_string(pv, m->family), "dit") != 0)
    return dit_err(err, DIT_ERR_UNSUPPORTED,
                   "%s: a plan of the model family '%s'; this runtime runs 'dit' and 'vae' plans", name,
                   plan_string(pv, m->family));
  DitStatus ns = vae ? plan_check_vae_model(pv, name, err) : check_io_names(pv, name, err);
  if (ns) return ns;
  const int64_t sizes[] = {m->image_size, m->latent_size, m->in_channels, m->out_channels,
                           m->patch_size, m->tokens, m->hidden_size, m->depth,
                           m->num_heads, m->num_classes, m->label_rows};
  for (size_t i = 0; !vae && i < sizeof sizes / sizeof sizes[0]; i++)
    if (sizes[i] < 1 || sizes[i] > PLAN_MAX_DIM)
      return dit_err(err, DIT_ERR_FORMAT, "%s: the model section holds an impossible size", name);
  if (!vae && (m->guided_channels < 0 || m->guided_channels > m->out_channels ||
               m->label_rows < m->num_classes || m->label_rows > m->num_classes + 1 ||
               !(m->class_dropout >= 0 && m->class_dropout < 1)))
    return dit_err(err, DIT_ERR_FORMAT, "%s: the model section is inconsistent", name);
  if (pv->header->max_batch < 1 || pv->header->max_batch > (1u << 20))
    return dit_err(err, DIT_ERR_FORMAT, "%s: max batch %u is out of range", name,
                   pv->header->max_batch);
  if (pv->arena_bytes > ((uint64_t)1 << 44) || pv->weight_bytes > ((uint64_t)1 << 44) ||
      pv->grad_bytes > ((uint64_t)1 << 44))
    return dit_err(err, DIT_ERR_FORMAT, "%s: buffer sizes are out of range", name);
  for (size_t i = 0; i < pv->n_weights; i++) {
    const PlanWeight *w = &pv->weights[i];
    int64_t numel = checked_numel(w->rank, w->dims);
    if (w->name >= pv->strings_bytes || numel < 0 || w->dtype != PLAN_VDT_F32 ||
        (uint64_t)numel * 4 != w->bytes || w->offset % 4 ||
        !range_ok(w->offset, w->bytes, pv->weight_bytes))
      return dit_err(err, DIT_ERR_FORMAT, "%s: weight record %zu is invalid", name, i);
  }
  for (size_t i = 0; i < pv->n_values; i++) {
    const PlanValue *v = &pv->values[i];
    int64_t numel = checked_numel(v->rank, v->dims);
    uint64_t limit = v->storage == PLAN_STORE_ARENA     ? pv->arena_bytes
                     : v->storage == PLAN_STORE_WEIGHTS ? pv->weight_bytes
                                                        : pv->grad_bytes;
    /* bf16 values: 2 bytes each in the arena, the host's float32 as weights */
    uint64_t elem = v->dtype == PLAN_VDT_I64                                          ? 8
                    : v->dtype == PLAN_VDT_BF16 && v->storage == PLAN_STORE_ARENA ? 2
                                                                                  : 4;
    bool storage_ok = v->storage == PLAN_STORE_ARENA || v->storage == PLAN_STORE_WEIGHTS ||
                      (v->storage == PLAN_STORE_GRADS && pv->train);
    bool dtype_ok = v->dtype <= PLAN_VDT_I64 ||
                    (v->dtype == PLAN_VDT_BF16 && pv->header->dtype == PLAN_DT_BF16 && !pv->train);
    bool ok = numel >= 0 && storage_ok && dtype_ok &&
              (uint64_t)numel * elem == v->bytes && v->offset % elem == 0 &&
              range_ok(v->offset, v->bytes, limit) && v->batch_major <= 1 &&
              (!v->batch_major || v->dims[0] == (int64_t)pv->header->max_batch);
    if (!ok) return dit_err(err, DIT_ERR_FORMAT, "%s: value record %zu is invalid", name, i);
  }
  if (vae && pv->train)
    return dit_err(err, DIT_ERR_FORMAT, "%s: a VAE plan with a train section (VAE plans are for inference)", name);
  if (pv->train) return check_train(pv, name, err);
  if (vae) return plan_check_vae_io(pv, name, err);
  uint32_t ids[6] = {io->x, io->t, io->y, io->out, io->noise, io->x_next};
  if (io->n_forward_ops > pv->n_ops)
    return dit_err(err, DIT_ERR_FORMAT, "%s: the io section's forward op count is out of range", name);
  for (int k = 0; k < 6; k++)
    if (ids[k] >= pv->n_values || pv->values[ids[k]].storage != PLAN_STORE_ARENA)
      return dit_err(err, DIT_ERR_FORMAT, "%s: the io section names an invalid value", name);
  const PlanValue *x = &pv->values[io->x], *t = &pv->values[io->t], *y = &pv->values[io->y];
  const PlanValue *o = &pv->values[io->out];
  const PlanValue *z = &pv->values[io->noise], *xn = &pv->values[io->x_next];
  int64_t L = m->latent_size;
  for (int k = 0; k < 4; k++)
    if (z->dims[k] != x->dims[k] || xn->dims[k] != x->dims[k] || z->rank != 4 || xn->rank != 4 ||
        z->dtype != PLAN_VDT_F32 || xn->dtype != PLAN_VDT_F32)
      return dit_err(err, DIT_ERR_FORMAT, "%s: the sampler's values disagree with the input's shape", name);
  if (x->rank != 4 || x->dtype != PLAN_VDT_F32 || x->dims[1] != m->in_channels || x->dims[2] != L ||
      x->dims[3] != L || t->rank != 1 || t->dtype != PLAN_VDT_I64 || y->rank != 1 ||
      y->dtype != PLAN_VDT_I64 || o->rank != 4 || o->dtype != PLAN_VDT_F32 ||
      o->dims[1] != m->out_channels || o->dims[2] != L || o->dims[3] != L || !x->batch_major ||
      !t->batch_major || !y->batch_major || !o->batch_major)
    return dit_err(err, DIT_ERR_FORMAT, "%s: input or output shapes disagree with the model", name);
  return DIT_OK;
}

DitStatus plan_load_buffer(unsigned char *data, size_t bytes, const char *name, PlanView *pv,
                           DitErr *err) {
  DitStatus st;
  memset(pv, 0, sizeof *pv);
  pv->file = data;
  pv->file_bytes = bytes;
  if (bytes < sizeof(PlanHeader) || memcmp(data, DIT_PLAN_MAGIC, 8) != 0) {
    st = dit_err(err, DIT_ERR_FORMAT, "%s: not a ditc plan (bad magic); compile one with ditc SPEC -o PLAN",
                 name);
    goto fail;
  }
  /* the header may be unaligned in a caller's buffer: copy it out */
  PlanHeader h;
  memcpy(&h, data, sizeof h);
  if (h.version != DIT_PLAN_VERSION) {
    st = dit_err(err, DIT_ERR_VERSION,
                 "%s: plan format version %u, but this runtime reads version %u; recompile it with "
                 "this ditc",
                 name, h.version, DIT_PLAN_VERSION);
    goto fail;
  }
  uint32_t crc = h.header_crc32;
  h.header_crc32 = 0;
  if (h.header_bytes != sizeof h || dit_plan_crc32(0, &h, sizeof h) != crc) {
    st = dit_err(err, DIT_ERR_FORMAT, "%s: the plan header is corrupt (checksum mismatch)", name);
    goto fail;
  }
  if (h.file_bytes != bytes) {
    st = dit_err(err, DIT_ERR_FORMAT, "%s: truncated or padded: the header says %llu bytes, the file has %zu",
                 name, (unsigned long long)h.file_bytes, bytes);
    goto fail;
  }
  if (h.n_sections > PLAN_MAX_SECTIONS || h.section_table % 8 || h.dtype > PLAN_DT_BF16 ||
      (h.flags & ~PLAN_FLAG_TRAIN)) {
    st = dit_err(err, DIT_ERR_FORMAT, "%s: the plan header is invalid", name);
    goto fail;
  }
  /* from here on the buffer is malloc'ed and 8-aligned, so records can be read in place */
  pv->header = (const PlanHeader *)data;
  st = check_sections(pv, name, err);
  if (st) goto fail;
  st = check_records(pv, name, err);
  if (st) goto fail;
  st = plan_check_ops(pv, err);
  if (st) {
    dit_err_context(err, "%s", name);
    goto fail;
  }
  st = plan_check_cuda(pv, name, err);
  if (st) goto fail;
  st = plan_check_tune(pv, name, err);
  if (st) goto fail;
  return DIT_OK;
fail:
  plan_view_free(pv);
  return st;
}

DitStatus plan_load(const char *path, PlanView *pv, DitErr *err) {
  DitStatus st = DIT_ERR_IO;
  unsigned char *buf = NULL;
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  struct stat sb;
  memset(pv, 0, sizeof *pv);
  if (fd < 0) {
    st = dit_err(err, DIT_ERR_IO, "%s: cannot open plan: %s", path, strerror(errno));
    goto fail;
  }
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    st = dit_err(err, DIT_ERR_IO, "%s: not a regular file", path);
    goto fail;
  }
  if ((uint64_t)sb.st_size > PLAN_MAX_FILE_BYTES) {
    st = dit_err(err, DIT_ERR_FORMAT, "%s: too large to be a plan (%lld bytes)", path,
                 (long long)sb.st_size);
    goto fail;
  }
  size_t n = (size_t)sb.st_size, got = 0;
  buf = malloc(n ? n : 1);
  if (!buf) {
    st = dit_err(err, DIT_ERR_NOMEM, "%s: out of memory", path);
    goto fail;
  }
  while (got < n) {
    ssize_t r = read(fd, buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      st = dit_err(err, DIT_ERR_IO, "%s: cannot read plan: %s", path, r < 0 ? strerror(errno) : "unexpected end");
      goto fail;
    }
    got += (size_t)r;
  }
  close(fd);
  return plan_load_buffer(buf, n, path, pv, err);
fail:
  free(buf);
  if (fd >= 0) close(fd);
  return st;
}
