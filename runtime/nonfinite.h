/* nonfinite.h: finding NaN and infinity in results, and the first op that
 * made them (nonfinite.c). Runtime-internal. */
#ifndef DIT_RUNTIME_NONFINITE_H
#define DIT_RUNTIME_NONFINITE_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

/* Index of the first NaN or infinity in p[0, n), or -1. */
int64_t rt_first_nonfinite(const float *p, int64_t n);

/* Ops [begin, end) to re-run one by one: forward ops on `rows` rows, sampler
 * ops on n_images with step (all of them when update, else cfg_mix only). */
typedef struct NonfiniteRun {
  size_t begin, end;
  int64_t rows, n_images;
  const DitStepParams *step;
  int update;
} NonfiniteRun;

/* Runs the ops on be one by one, checking each result: *bad is the index of
 * the first op whose result (out or out2) is not finite, or SIZE_MAX. The
 * inputs must be staged as for the run that failed; step, when set, is
 * staged first. */
DitStatus rt_run_checked(Backend *be, const PlanView *pv, const NonfiniteRun *r, size_t *bad, DitErr *err);

/* "WHAT is not finite: op K (linear, weight 'blocks.0.attn.qkv.weight') is
 * the first ...", DIT_ERR_NONFINITE. op_index SIZE_MAX: not reproduced. */
DitStatus rt_nonfinite_error(DitErr *err, const PlanView *pv, const char *what, size_t op_index);

/* Every bound weight finite, else DIT_ERR_WEIGHTS naming the tensor. */
DitStatus rt_check_weights_finite(const PlanView *pv, const unsigned char *weights, DitErr *err);

#endif
