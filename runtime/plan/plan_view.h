/* plan_view.h: a validated, read-only view of a loaded plan.bin. After
 * plan_load succeeds, every count, offset, size, value id and op shape in it
 * has been checked, so the executor can trust it. */
#ifndef DIT_RUNTIME_PLAN_VIEW_H
#define DIT_RUNTIME_PLAN_VIEW_H

#include <stddef.h>

#include "dit/plan_format.h"
#include "err.h"

/* One GPU kernel-image section (plan_format.h), validated; h is NULL when
 * the plan has no such section (a CPU-only plan). */
typedef struct PlanCudaView {
  const PlanCudaHeader *h;
  const uint32_t *op_slot;        /* [n_ops] */
  const PlanKernelSlot *slots;    /* [n_slots] */
  const PlanKernelImage *images;  /* [n_images] */
  const unsigned char *base;      /* the section's first byte: image offsets are relative to it */
  uint64_t bytes;
} PlanCudaView;

typedef struct PlanView {
  unsigned char *file; /* the whole file, owned */
  size_t file_bytes;
  const PlanHeader *header;
  const PlanModel *model;
  const char *strings;
  size_t strings_bytes;
  const PlanWeight *weights;
  size_t n_weights;
  const PlanValue *values;
  size_t n_values;
  const PlanOp *ops;
  size_t n_ops;
  const PlanIO *io;       /* inference plans, else NULL */
  const PlanTrain *train; /* training plans (PLAN_FLAG_TRAIN), else NULL */
  const PlanIoName *io_names; /* [n_io_names]: the inputs and outputs by name */
  size_t n_io_names;
  /* the buffers, from whichever of io and train the plan has */
  uint64_t arena_bytes, weight_bytes, grad_bytes;
  PlanCudaView cubin, ptx; /* GPU kernels (ditc --arch), else h == NULL */
  /* autotuning (plan_tune.c), each NULL/0 when the plan has none */
  const PlanCandidate *candidates; /* [n_candidates]: sorted by op */
  size_t n_candidates;
  const PlanTuning *tunings;       /* [n_tunings] */
  size_t n_tunings;
  const PlanTuneChoice *tune_choices; /* [n_tune_choices] */
  size_t n_tune_choices;
  uint32_t tuning_section;         /* index of the tuning section in the section table, or DIT_PLAN_NONE */
} PlanView;

/* Reads and validates plan.bin. Messages name the file and what is wrong. */
DitStatus plan_load(const char *path, PlanView *out, DitErr *err);
/* The same over a buffer that the view takes ownership of (malloc'ed). */
DitStatus plan_load_buffer(unsigned char *data, size_t bytes, const char *name, PlanView *out,
                           DitErr *err);
void plan_view_free(PlanView *pv);

/* Op i's candidate slots other than its default: candidates[*first ..
 * *first + *count). */
void plan_op_candidates(const PlanView *pv, size_t op, size_t *first, size_t *count);

/* A string of the string table (validated offsets only). */
const char *plan_string(const PlanView *pv, uint32_t offset);

/* The plan's input or output of that name (plan_load.c), or NULL. */
const PlanIoName *plan_io_named(const PlanView *pv, const char *io_name);

/* A VAE plan's model section and io names (plan_vae.c), in place of a DiT
 * plan's checks; and, after the value records, its io section and shapes. */
DitStatus plan_check_vae_model(const PlanView *pv, const char *name, DitErr *err);
DitStatus plan_check_vae_io(const PlanView *pv, const char *name, DitErr *err);

/* The op's name ("linear", "attention_grad", ...), or "?" for an unknown kind. */
const char *plan_op_name(uint32_t kind);

/* Per-op checks of shapes and attributes (plan_check.c); called by plan_load. */
DitStatus plan_check_ops(const PlanView *pv, DitErr *err);

/* The GPU kernel-image sections that check_sections located (base, bytes):
 * validated, they get h and their tables set (plan_cuda.c); called by
 * plan_load after plan_check_ops. */
DitStatus plan_check_cuda(PlanView *pv, const char *name, DitErr *err);
/* The candidates and tuning sections (plan_tune.c), after plan_check_cuda. */
DitStatus plan_check_tune(PlanView *pv, const char *name, DitErr *err);

#endif
