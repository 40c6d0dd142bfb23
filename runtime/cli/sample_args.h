/* sample_args.h: the parsed arguments of `dit sample`, shared by
 * cmd_sample.c (one batch) and sample_set.c (resumable evaluation sets). */
#ifndef DIT_RUNTIME_SAMPLE_ARGS_H
#define DIT_RUNTIME_SAMPLE_ARGS_H

#include <stdint.h>

#include "dit/dit.h"

#define SAMPLE_MAX_LABELS 4096

typedef struct SampleArgs {
  const char *plan, *weights, *out, *png, *npz, *noise, *step_noise, *steps, *device;
  const char *vae, *vae_weights; /* --vae VAE_PLAN --vae-weights W: decode the latents (latent models) */
  int64_t random_weights, vae_random_weights; /* --random-weights S, --vae-random-weights S: seed + 1, else 0 */
  const char *sample_dir;  /* --sample-dir: the set also as DIR/000000.png ... (sample_ddp.py's) */
  char npz_default[4200];  /* DIR.npz, sample_ddp.py's name, when --sample-dir comes without --npz */
  int64_t n;             /* images per batch (0: default) */
  int64_t num_samples;   /* --num-samples: images in the .npz */
  int64_t labels[SAMPLE_MAX_LABELS];
  int n_labels;
  int64_t per_class;       /* --per-class K: K images of each class in order (0: off) */
  const char *label_names; /* --label-names: names by class id, for the PNG's rows */
  int64_t grid_cols;       /* --grid-cols: PNG cells per row (0: ceil(sqrt(n)), or K) */
  int64_t png_scale;       /* --png-scale: nearest-neighbour upscale of each image */
  DitSampler sampler;
  int dpm_order;           /* --order (dpm++; 2) */
  int karras;              /* --karras (dpm++) */
  double eta;
  float cfg_scale;
  uint64_t seed;
  int threads;
  int n_given;             /* -n was given: a count that does not fit is refused, not clamped */
} SampleArgs;

typedef struct SampleProgress {
  double t0;
  int64_t images_done;  /* before this batch */
  int64_t images_now;   /* in this batch */
  int64_t images_total;
} SampleProgress;

struct Dist;

typedef struct SampleSetCtx {
  SampleArgs *args;
  DitRuntime *rt;
  DitRuntime *vae;   /* --vae: the decoder of a latent model's samples, weights bound; else NULL */
  int steps;
  struct Dist *dist; /* the ranks of mpirun (train/dist.h): each samples its share of the batches */
} SampleSetCtx;

int sample_parse_args(int argc, char **argv, SampleArgs *a);
void sample_progress(void *ctx, int step, int steps);
void sample_labels(const SampleArgs *a, const DitModelInfo *mi, uint64_t seed, int64_t first,
                   int64_t n, int64_t *out);

#endif
