/* rng.h: counter-based normal noise: Philox4x32-10 keyed by the seed, with
 * the counter (stream, element / 4), and the Box-Muller transform. Element i
 * of stream s depends only on (seed, s, i), so the noise is the same whatever
 * the thread count, and a GPU kernel can draw the same stream. */
#ifndef DIT_RUNTIME_RNG_H
#define DIT_RUNTIME_RNG_H

#include <stdint.h>

/* out[0, n) = standard normal samples of stream `stream` for `seed`. */
void dit_randn(uint64_t seed, uint64_t stream, float *out, int64_t n, int n_threads);

/* 4 x 32 random bits for a counter (tests and label draws). */
void dit_philox(uint64_t seed, uint64_t stream, uint64_t counter, uint32_t out[4]);

#endif
