/* memplan.h: where every value of the final graph lives at run time.
 *   weights: PARAM and PARAM_PACK values, laid out in one weight buffer (a
 *            pack's parts adjacent, so stacked weights are one matrix);
 *   arena:   every activation, placed by a liveness-based best-fit planner
 *            in one arena, so values whose lifetimes do not overlap share bytes;
 *   grads:   a training plan's parameter gradients, in a gradient buffer laid
 *            out exactly as the weight buffer;
 *   alias:   views (reshape, output) and in-place results (the residual of
 *            res_gate_ln_modulate when its input dies there) reuse their
 *            source's bytes.
 * Offsets are in bytes; sizes are for the graph's batch (the plan's maximum). */
#ifndef DIT_COMPILER_MEMPLAN_H
#define DIT_COMPILER_MEMPLAN_H

#include "ir.h"

#define MEMPLAN_ALIGN 256 /* bytes: every arena buffer starts on this boundary */

typedef enum { MEM_NONE = 0, MEM_ARENA = 1, MEM_WEIGHTS = 2, MEM_GRADS = 3 } MemKind;

typedef struct MemSlot {
  MemKind kind;
  int64_t offset;  /* bytes from the start of the arena or weight buffer */
  int64_t bytes;
  ValueId root;    /* the value that owns the bytes (itself unless an alias) */
  int32_t def, last_use; /* live interval over node indices (of the root) */
} MemSlot;

typedef struct MemPlan {
  MemSlot *slots;          /* one per value */
  int64_t arena_bytes;     /* peak: the arena's size */
  int64_t unplanned_bytes; /* sum of all activation buffers, as if none were reused */
  int64_t weight_bytes;
  int64_t grad_bytes;      /* training plans: the gradient buffer (laid out as the weights), else 0 */
} MemPlan;

DitcStatus memplan_run(const Graph *g, MemPlan *out);

/* Checks that no two arena values that are live at the same time overlap
 * (aliases excepted). Returns DITC_OK or DITC_ERR_INTERNAL with a message. */
DitcStatus memplan_check(const Graph *g, const MemPlan *mp, char *err, size_t err_bytes);

#endif
