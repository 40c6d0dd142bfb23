/* options.h: everything that steers one compilation, passed explicitly. */
#ifndef DIT_COMPILER_OPTIONS_H
#define DIT_COMPILER_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "../runtime/include/dit/plan_format.h"
#include "autodiff.h"
#include "sema.h"

#define DITC_MAX_BATCH 65536

typedef enum {
  EMIT_REPORT, /* --info: readable model report */
  EMIT_JSON,   /* --info --json */
  EMIT_IR,     /* --dump-ir: the graph after the last pass */
  EMIT_PLAN,   /* -o PLAN: plan.bin */
  EMIT_KERNEL_REPORT, /* --kernel-report: compile the GPU kernels, print their resources */
  EMIT_CUDA          /* --emit-cuda: the CUDA source of the kernels (generated/) */
} EmitKind;

typedef struct CompileOptions {
  SpecSource spec;
  EmitKind emit;
  const char *out_path; /* -o FILE: written atomically; NULL for the output stream */
  int64_t batch;        /* --batch N: rows of one forward */
  PlanDType dtype;      /* --dtype */
  const char *arch;     /* --arch LIST: "sm_80,sm_90"; NULL = none */
  const char *dump_after; /* --dump-after STAGE: "lower" or a pass name; NULL = the final graph */
  bool train;             /* --mode train: the training graph (loss and backward) */
  RecomputeMode recompute; /* --recompute none|block (training) */
} CompileOptions;

#endif
