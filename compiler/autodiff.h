/* autodiff.h: derives the backward graph of a training graph by reverse-mode
 * differentiation. Input: the fused forward graph that lower_train built
 * (inputs x0, t, y, noise; output: the per-sample loss). The backward nodes
 * are appended to the same graph: the loss gradient, then one rule per
 * forward op in reverse order (fused ops have fused backward ops: linear
 * data and weight gradients, LayerNorm+modulate, residual gate, flash-style
 * attention), and a param_grad marker per trainable parameter, whose
 * gradient the memory planner places in the gradient buffer at the
 * parameter's offset in the weight buffer. */
#ifndef DIT_COMPILER_AUTODIFF_H
#define DIT_COMPILER_AUTODIFF_H

#include "ir.h"

typedef enum RecomputeMode {
  RECOMPUTE_NONE = 0,  /* keep every activation the backward reads */
  RECOMPUTE_BLOCK = 1, /* keep block inputs only; rerun each block's forward before its backward */
} RecomputeMode;

/* Appends the backward graph to g. On failure (a bug in ditc) returns an
 * error status and a message in err. */
DitcStatus autodiff(Graph *g, RecomputeMode recompute, char *err, size_t err_bytes);

#endif
