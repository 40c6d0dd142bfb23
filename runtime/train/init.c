/* init.c: see init.h. Random draws come from the counter-based Philox of
 * sample/rng.h, one stream per weight tensor, so an initialisation depends
 * only on the seed and the plan. */
#include "init.h"

#include <math.h>
#include <string.h>

#include "sample/rng.h"

enum { INIT_STREAM = 0x494e4954 }; /* "INIT": weight i draws from stream INIT_STREAM << 16 | i */

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* One axis of the MAE sin-cos table: [sin(v w_k), cos(v w_k)], k < quarter. */
static void sincos_axis(double v, int64_t quarter, float *out) {
  for (int64_t k = 0; k < quarter; k++) {
    double omega = 1.0 / pow(10000.0, (double)k / (double)quarter);
    out[k] = (float)sin(v * omega);
    out[quarter + k] = (float)cos(v * omega);
  }
}

/* pos_embed [1, g*g, D]: first D/2 channels the column, then the row. */
static void pos_embed(float *dst, int64_t g, int64_t D) {
  for (int64_t row = 0; row < g; row++)
    for (int64_t col = 0; col < g; col++) {
      float *tok = dst + (row * g + col) * D;
      sincos_axis((double)col, D / 4, tok);
      sincos_axis((double)row, D / 4, tok + D / 2);
    }
}

static void uniform(uint64_t seed, uint64_t stream, float *dst, int64_t n, double bound) {
  for (int64_t i = 0; i < n; i += 4) {
    uint32_t r[4];
    dit_philox(seed, stream, (uint64_t)i / 4, r);
    for (int64_t k = 0; k < 4 && i + k < n; k++) {
      double u = (r[k] + 0.5) / 4294967296.0; /* (0, 1) */
      dst[i + k] = (float)((2.0 * u - 1.0) * bound);
    }
  }
}

DitStatus train_official_init(DitRuntime *rt, uint64_t seed) {
  const DitModelInfo *mi = dit_model_info(rt);
  float *w = dit_weights_flat(rt, NULL);
  int64_t D = mi->hidden_size, g = mi->latent_size / mi->patch_size;
  for (size_t i = 0; i < dit_num_weights(rt); i++) {
    DitWeightView v;
    dit_weight_view(rt, i, &v);
    float *dst = w + v.offset;
    uint64_t stream = ((uint64_t)INIT_STREAM << 16) | i;
    const char *name = v.name;
    memset(dst, 0, (size_t)v.numel * sizeof(float));
    if (!strcmp(name, "pos_embed")) {
      pos_embed(dst, g, D);
    } else if (strstr(name, "adaLN_modulation") || !strncmp(name, "final_layer.linear", 18)) {
      continue; /* adaLN-Zero: zero weights and biases */
    } else if (ends_with(name, ".bias")) {
      continue;
    } else if (!strcmp(name, "y_embedder.embedding_table.weight") ||
               !strncmp(name, "t_embedder.mlp.", 15)) {
      dit_randn(seed, stream, dst, v.numel, 1);
      for (int64_t k = 0; k < v.numel; k++) dst[k] *= 0.02f;
    } else if (v.rank >= 2) {
      /* Xavier-uniform over the [out, in] view (the patch conv as [D, C*p*p]) */
      int64_t fan_out = v.dims[0], fan_in = v.numel / v.dims[0];
      uniform(seed, stream, dst, v.numel, sqrt(6.0 / (double)(fan_in + fan_out)));
    }
  }
  dit_weights_set(rt);
  return DIT_OK;
}
