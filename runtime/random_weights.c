/* random_weights.c: dit_random_weights (dit/dit.h): deterministic random
 * weights for benchmarks and demos without a checkpoint, every tensor set,
 * with the scales of tests/ref/dit_ref.py's random state dict so that
 * activations stay O(1): uniform with standard deviation 1/sqrt(fan_in) for
 * linear and conv weights, 0.3/sqrt(D) and 0.1 for DiT's adaLN linears, 1
 * for the label table and pos_embed's bound 1, 1 +- 0.2 for GroupNorm
 * gains, bound 0.2 for other vectors. Each value is a function of (seed,
 * tensor index, element index) alone. */
#include <math.h>
#include <string.h>

#include "runtime_internal.h"

/* uniform in [-1, 1) from a counter (splitmix64) */
static float unit_rand(uint64_t seed, uint64_t i) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ull + i + 1;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (float)((double)(z >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
}

static int ends_with(const char *s, const char *suf) {
  size_t n = strlen(s), m = strlen(suf);
  return n >= m && !strcmp(s + n - m, suf);
}

DitStatus dit_random_weights(DitRuntime *rt, uint64_t seed) {
  float *w = dit_weights_flat(rt, NULL);
  const double sqrt3 = sqrt(3.0), d = (double)rt->pv.model->hidden_size;
  size_t nw = dit_num_weights(rt);
  for (size_t i = 0; i < nw; i++) {
    DitWeightView v;
    DitStatus st = dit_weight_view(rt, i, &v);
    if (st) return rt_fail(rt, st);
    double bound, center = 0;
    if (strstr(v.name, "adaLN_modulation"))
      bound = sqrt3 * (ends_with(v.name, "weight") ? 0.3 / sqrt(d) : 0.1);
    else if (strstr(v.name, "embedding_table")) bound = sqrt3;
    else if (!strcmp(v.name, "pos_embed")) bound = 1.0;
    else if (ends_with(v.name, "weight") && v.rank >= 2 && v.dims[0] > 0)
      bound = sqrt(3.0 * (double)v.dims[0] / (double)v.numel);
    else if (v.rank == 1 && ends_with(v.name, "weight") && strstr(v.name, "norm")) bound = 0.2, center = 1;
    else bound = 0.2;
    float *dst = w + v.offset;
    for (int64_t k = 0; k < v.numel; k++)
      dst[k] = (float)(center + bound * unit_rand(seed, ((uint64_t)i << 40) + (uint64_t)k));
  }
  dit_weights_set(rt);
  rt->has_weights = 1;
  return DIT_OK;
}
