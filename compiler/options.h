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

/* --gelu-epilogue: where a linear op's GELU runs on the GPU */
typedef enum GeluEpilogue { GELU_EPILOGUE_AUTO = 0, GELU_EPILOGUE_CUBLASLT, GELU_EPILOGUE_KERNEL } GeluEpilogue;

typedef struct CompileOptions {
  SpecSource spec;
  SpecOverrides overrides; /* --image-size S (with a spec), --part P */
  EmitKind emit;
  const char *out_path; /* -o FILE: written atomically; NULL for the output stream */
  int64_t batch;        /* --batch N: rows of one forward */
  PlanDType dtype;      /* --dtype */
  const char *arch;     /* --arch LIST: "sm_80,sm_90"; NULL = none */
  const char *dump_after; /* --dump-after STAGE: "lower" or a pass name; NULL = the final graph */
  bool train;             /* --mode train: the training graph (loss and backward) */
  RecomputeMode recompute; /* --recompute none|block (training) */
  GeluEpilogue gelu;       /* --gelu-epilogue */
  int tune_candidates;     /* --tune-candidates K (with --arch): knob choices per op; 0 or 1 = the defaults only */
  const char *cache_dir;   /* the NVRTC cache (--cache-dir; main() picks the default); NULL = none */
} CompileOptions;

/* Whether the plan's linear ops with GELU run a BIAS GEMM and the project's
 * GELU kernel (else cuBLASLt's GELU_BIAS epilogue): auto means for fp32
 * plans, whose tolerance an approximate tanh in the epilogue would break. */
static inline bool compile_gelu_kernel(const CompileOptions *o) {
  return o->gelu == GELU_EPILOGUE_KERNEL || (o->gelu == GELU_EPILOGUE_AUTO && o->dtype == PLAN_DT_F32);
}

#endif
