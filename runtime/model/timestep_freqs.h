/* timestep_freqs.h: frequencies of the sinusoidal timestep embedding. */
#ifndef DIT_RUNTIME_TIMESTEP_FREQS_H
#define DIT_RUNTIME_TIMESTEP_FREQS_H

#include <stdint.h>

/* out[k] = exp(-ln(max_period) * k / half) for k < half, as the official model computes it. */
void dit_timestep_freqs(int64_t half, double max_period, float *out);

#endif
