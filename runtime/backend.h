/* backend.h: what the runtime asks of the device that runs a plan. The CPU
 * executor (backend_cpu.c) and the CUDA backend (cuda/) implement it; the
 * public calls (runtime.c, sample/sampler.c, debug.c, nonfinite.c) are
 * written once over it, so the forward, the guided forward, the sampler loop
 * and the search for a non-finite op exist once. Training plans run on the
 * CPU executor directly (runtime_train.c). Runtime-internal. */
#ifndef DIT_RUNTIME_BACKEND_H
#define DIT_RUNTIME_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "../kernels/kernel_abi.h"
#include "dit/dit.h"
#include "executor.h"

typedef struct Backend Backend;

/* Inputs written into their plan values (PlanIO) at rows [row0, row0 + rows);
 * a NULL field is left as it is. params: the sampler ops' parameters for the
 * runs that follow. */
typedef struct BackendStage {
  int64_t row0, rows;
  const float *x;              /* [rows, C, H, W] */
  const int64_t *t, *y;        /* [rows] */
  const float *noise;          /* [rows, C, H, W]: a sampler step's noise */
  const DitStepParams *params;
} BackendStage;

/* One reverse-diffusion step on the state in io.x (n images; rows = 2n
 * under guidance, whose rows [n, 2n) the step copies from [0, n)): the
 * forward at t and y, then the sampler ops with this noise and params, then
 * x = x_next. */
typedef struct BackendStep {
  int index;                   /* 0 for the first step of a run */
  int64_t n, rows;
  const int64_t *t, *y;        /* [rows]: the step's original timestep; the labels, then the null class */
  const float *noise;          /* [n, C, H, W] */
  const DitStepParams *params;
} BackendStep;

typedef struct BackendVt {
  const char *(*name)(const Backend *b); /* "cpu", "cuda:0 (NVIDIA H100 ..., sm_90)" */
  /* The host weight buffer (the plan's layout), after every change to it. */
  DitStatus (*upload_weights)(Backend *b, const void *weights, DitErr *err);
  DitStatus (*stage)(Backend *b, const BackendStage *s, DitErr *err);
  /* Ops [first, end): forward ops on n rows, sampler ops on n images. */
  DitStatus (*run)(Backend *b, size_t first, size_t end, int64_t n, DitErr *err);
  /* The bytes of a value at n rows, as the last run left them. */
  DitStatus (*fetch)(Backend *b, uint32_t value, int64_t n, void *dst, DitErr *err);
  /* Overwrites a value at n rows (dit_debug_write_value: one op fed another backend's inputs). */
  DitStatus (*put)(Backend *b, uint32_t value, int64_t n, const void *src, DitErr *err);
  /* One step; *finite: 1 the new state is finite, 0 it is not (io.x then
   * still holds the step's input), -1 not checked (checked at the end). */
  DitStatus (*step)(Backend *b, const BackendStep *s, int *finite, DitErr *err);
  /* After the last step of a run (or a failed one): frees what the steps kept. */
  void (*end_steps)(Backend *b);
  /* Fills the activations with 0xFF bytes (float NaN): dit_debug_poison. */
  DitStatus (*poison)(Backend *b, DitErr *err);
  void (*close)(Backend *b);

  /* Autotuning (tune/tune.c, tune/tune_apply.c). A tuning is keyed by the
   * device: key's backend, device, arch, sm_count and driver_version. */
  void (*device_key)(Backend *b, PlanTuning *key);
  /* Op i's choices of one PlanTuneKind at n rows, into out[0 .. *count)
   * (at most max): [0] is what the op runs by default, the rest what it may
   * run instead; *count 0 when the op has nothing of that kind to choose. */
  DitStatus (*choices)(Backend *b, size_t op, uint32_t kind, int64_t n, PlanTuneChoice *out, int max,
                       int *count, DitErr *err);
  /* Op c->op runs choice c from now on (a choice that choices() gave, or
   * one restored from the plan's tuning, which is checked here first: an
   * unknown slot, an algorithm cublasLtMatmulAlgoCheck refuses). */
  DitStatus (*apply)(Backend *b, const PlanTuneChoice *c, DitErr *err);
  /* Runs ops [first, end) once at n rows, as run does, and *ms: the time
   * they took (CUDA events on a device; the wall clock on the CPU). */
  DitStatus (*time_ops)(Backend *b, size_t first, size_t end, int64_t n, double *ms, DitErr *err);
} BackendVt;

struct Backend {
  const BackendVt *vt;
};

/* The CPU executor as a backend; ex (its buffers allocated) must outlive it. */
DitStatus backend_cpu_open(Executor *ex, Backend **out, DitErr *err);

/* The CUDA backend (cuda/cuda_backend.c, or cuda_stub.c without the toolkit). */
DitStatus backend_cuda_open(const PlanView *pv, const DitOptions *opts, Backend **out, DitErr *err);

#endif
