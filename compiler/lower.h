/* lower.h: a validated spec -> the graph IR of the whole DiT forward pass. */
#ifndef DIT_COMPILER_LOWER_H
#define DIT_COMPILER_LOWER_H

#include "ir.h"
#include "sema.h"

/* Builds the forward graph for `batch` rows. Reports a model too large for
 * ditc's limits at the model's location. */
DitcStatus lower_forward(Arena *a, Diag *d, const Spec *spec, int64_t batch, Graph **out);

#endif
