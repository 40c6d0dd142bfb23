/* lower.h: a validated spec -> the graph IR of the whole DiT forward pass. */
#ifndef DIT_COMPILER_LOWER_H
#define DIT_COMPILER_LOWER_H

#include "ir.h"
#include "sema.h"

/* Builds the forward graph for `batch` rows. Reports a model too large for
 * ditc's limits at the model's location. */
DitcStatus lower_forward(Arena *a, Diag *d, const Spec *spec, int64_t batch, Graph **out);

/* The diffusion steps training samples t from (train.py: create_diffusion("")). */
#define DIT_TRAIN_TIMESTEPS 1000

/* The training graph: inputs x0, t, y, noise; x_t = q_sample(x0, noise, t);
 * the model on x_t; output: the official loss per sample [N]. The backward
 * graph is added later (autodiff.h), after the forward passes. */
DitcStatus lower_train(Arena *a, Diag *d, const Spec *spec, int64_t batch, Graph **out);

#endif
