/* plan.h: the in-memory plan, section by section as plan.bin stores them
 * (runtime/include/dit/plan_format.h). plan_build.c is its only producer and
 * plan_write.c its only serialiser. */
#ifndef DIT_COMPILER_PLAN_H
#define DIT_COMPILER_PLAN_H

#include <stdio.h>

#include "../runtime/include/dit/plan_format.h"
#include "diag.h"
#include "ir.h"
#include "memplan.h"

/* The bytes of one section that the compiler assembles whole (the GPU
 * kernel images); bytes == 0: the plan has no such section. */
typedef struct PlanBlob {
  unsigned char *data;
  size_t bytes;
} PlanBlob;

typedef struct Plan {
  PlanDType dtype;
  uint32_t max_batch;
  PlanModel model;
  char *strings;
  size_t strings_bytes, strings_cap;
  PlanWeight *weights;
  size_t n_weights;
  PlanValue *values;
  size_t n_values;
  PlanOp *ops;
  size_t n_ops;
  uint32_t *op_node; /* [n_ops]: the graph node each op runs (kernel selection maps it to a slot) */
  PlanIO io;       /* inference plans */
  bool train;      /* a training plan: train instead of io */
  PlanTrain train_io;
  PlanBlob cuda_cubin, cuda_ptx; /* sections PLAN_SEC_CUDA_CUBIN/PTX (ditc --arch; kernel_plan.c) */
  PlanCandidate *candidates;     /* section PLAN_SEC_CANDIDATES (--tune-candidates; kernel_plan.c) */
  size_t n_candidates;           /* 0: no such section */
  PlanIoName io_names[8];        /* section PLAN_SEC_IO_NAMES */
  uint32_t n_io_names;
} Plan;

/* Builds the plan of a fused graph and its memory plan. Fails with an
 * internal error naming the op when the graph holds an op the runtime cannot
 * execute (a pass did not fuse it). */
DitcStatus plan_build(Arena *a, Diag *d, const Graph *g, const MemPlan *mp, PlanDType dtype,
                      Plan **out);
/* The same for a training graph (lower_train + passes + autodiff). */
DitcStatus plan_build_train(Arena *a, Diag *d, const Graph *g, const MemPlan *mp, PlanDType dtype,
                            PlanRecompute recompute, Plan **out);

/* Appends a string to the string table; its offset, or UINT32_MAX when out
 * of memory. Every string must be added before the plan is written. */
uint32_t plan_add_string(Arena *a, Plan *p, const char *s);

/* Adds a named input or output (section PLAN_SEC_IO_NAMES). */
DitcStatus plan_add_io_name(Arena *a, Plan *p, const char *name, uint32_t value, PlanIoRole role);

/* Writes plan.bin (all sections, checksums) atomically. */
DitcStatus plan_write(Diag *d, const Plan *p, const char *path);
/* The same bytes to an open stream (tests, fuzzing); returns 0 on success. */
int plan_write_stream(const Plan *p, FILE *f);

#endif
