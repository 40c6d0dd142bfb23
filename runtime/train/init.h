/* init.h: the official DiT initialisation (dit-reference.md 1.14) of a
 * plan's flat weight buffer, for training from scratch: Xavier-uniform
 * linears with zero biases, N(0, 0.02) label table and timestep MLP, zero
 * adaLN and final layers, and the fixed 2-D sin-cos pos_embed (1.4). */
#ifndef DIT_RUNTIME_TRAIN_INIT_H
#define DIT_RUNTIME_TRAIN_INIT_H

#include <stdint.h>

#include "dit/dit.h"

/* Fills every weight of rt (a plan with weights not yet bound) from seed and
 * marks the weights as set. */
DitStatus train_official_init(DitRuntime *rt, uint64_t seed);

#endif
