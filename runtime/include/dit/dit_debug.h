/* dit/dit_debug.h: test and debugging hooks of the runtime, on either
 * backend: the plan's ops and the bytes of any value as the last run left
 * them. Not part of the stable API (dit.h); the GPU-vs-CPU tests use it to
 * compare every op's output. Value ids and op kinds are plan.bin's
 * (dit/plan_format.h). */
#ifndef DIT_DIT_DEBUG_H
#define DIT_DIT_DEBUG_H

#include <stddef.h>
#include <stdint.h>

#include "dit/dit.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The plan's op count, and how many of them are the model's forward (the
 * rest are one sampler step). */
size_t dit_debug_num_ops(const DitRuntime *rt);
size_t dit_debug_num_forward_ops(const DitRuntime *rt);
/* Op i's kind (PlanOpKind), result value and second result (0xFFFFFFFF: none). */
DitStatus dit_debug_op(const DitRuntime *rt, size_t i, uint32_t *kind, uint32_t *out, uint32_t *out2);

/* The bytes dit_debug_read_value writes for a value: its size at the rows
 * of the last run (a forward's rows; a sampler op's images); 0 for a bad id
 * or before the first run. */
uint64_t dit_debug_value_bytes(const DitRuntime *rt, uint32_t value_id);
/* Copies a value (activation or weight) of the last run to the host: float32
 * data, or the raw int64 of t and y. Waits for the device. */
DitStatus dit_debug_read_value(DitRuntime *rt, uint32_t value_id, float *dst);
/* One op at a time, for comparing backends op by op: the inputs of a
 * forward of `rows` rows staged (x [rows, C, H, W], t, y [rows]); ops
 * [first, end) run on them (forward ops only); a value's bytes at those rows
 * overwritten from the host (the layout dit_debug_read_value gives); op i's
 * inputs (at most 8 value ids, *n_in of them). */
DitStatus dit_debug_stage_forward(DitRuntime *rt, int64_t rows, const float *x, const int64_t *t, const int64_t *y);
DitStatus dit_debug_run_ops(DitRuntime *rt, size_t first, size_t end);
DitStatus dit_debug_write_value(DitRuntime *rt, uint32_t value_id, const void *src);
DitStatus dit_debug_op_inputs(const DitRuntime *rt, size_t i, uint32_t ids[8], uint32_t *n_in);

/* Fills the activation arena with 0xFF bytes (float NaN), so that a value
 * an op fails to write shows up as NaN. */
DitStatus dit_debug_poison(DitRuntime *rt);

#ifdef __cplusplus
}
#endif

#endif
