/* sample_dit.c: sampling from a compiled DiT plan through the runtime's
 * public header alone, for programs that embed ditc.
 *
 *   ditc specs/tests/tiny.dit -o tiny.plan --batch 8
 *   sample_dit tiny.plan CHECKPOINT [SEED]
 *
 * Samples four images of classes 0..3 with 25 DDPM steps and guidance 4, and
 * prints each image's mean and standard deviation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <dit/dit.h>

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s PLAN CHECKPOINT [SEED]\n", argv[0]);
    return 2;
  }
  DitRuntime *rt = NULL;
  DitError err;
  if (dit_open(argv[1], NULL, &rt, &err) != DIT_OK) {
    fprintf(stderr, "%s\n", err.message);
    return 1;
  }
  if (dit_load_weights(rt, argv[2]) != DIT_OK) {
    fprintf(stderr, "%s\n", dit_last_error(rt));
    dit_close(rt);
    return 1;
  }
  const DitModelInfo *info = dit_model_info(rt);
  enum { N = 4 };
  int64_t labels[N];
  for (int i = 0; i < N; i++) labels[i] = i % info->num_classes;
  int64_t per_image = info->in_channels * info->latent_size * info->latent_size;
  float *latents = malloc(sizeof(float) * (size_t)(N * per_image));
  DitSampleOptions opts = {
      .n = N,
      .labels = labels,
      .sampler = DIT_DDPM,
      .steps = "25",
      .cfg_scale = 4.0f,
      .seed = argc > 3 ? strtoull(argv[3], NULL, 10) : 0,
  };
  int rc = 0;
  if (!latents || dit_sample(rt, &opts, latents) != DIT_OK) {
    fprintf(stderr, "%s\n", latents ? dit_last_error(rt) : "out of memory");
    rc = 1;
  } else {
    printf("%s: %d samples of %lldx%lldx%lld\n", info->name, N, (long long)info->in_channels,
           (long long)info->latent_size, (long long)info->latent_size);
    for (int i = 0; i < N; i++) {
      double sum = 0, sq = 0;
      for (int64_t k = 0; k < per_image; k++) {
        double v = latents[i * per_image + k];
        sum += v;
        sq += v * v;
      }
      double mean = sum / (double)per_image;
      printf("  class %lld: mean %.4f std %.4f\n", (long long)labels[i], mean,
             sqrt(sq / (double)per_image - mean * mean));
    }
  }
  free(latents);
  dit_close(rt);
  return rc;
}
