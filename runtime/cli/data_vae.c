/* data_vae.c: `dit data images ... --vae VAE_PLAN --vae-weights W`: the
 * images of an ImageFolder tree (already center-cropped into a pixel
 * DITDATA file by import_image_folder) encoded by a compiled VAE into a
 * latent set that `dit train` reads, as fast-DiT's extract_features.py
 * pre-extracts them: 0.18215 * vae.encode(x).latent_dist.sample(), x in
 * [-1, 1]. With --flips each sample also holds its mirrored image's latent
 * (DATASET_FLAG_FLIP_VARIANTS: a training flip picks it). Image i's noise is
 * stream 1 + 2i (its mirror's 2 + 2i) of the seed, whatever the batch;
 * --mean keeps the posterior's mean instead. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "data/dataset.h"

typedef struct EncodeRun {
  const DitDataset *px;
  DitRuntime *vae;
  const DitVaeInfo *v;
  int64_t variants, block_first, block_count, block_cap;
  float *images, *noise, *latents; /* the block's [block_cap * variants, ...] */
  int64_t *labels;
  uint64_t seed;
  bool mean;          /* the posterior's mean, no noise */
  double t0;
  bool progress;
} EncodeRun;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Encodes the block of images from `first`: each image (and its mirror) in
 * turn, so that variant v of image i sits at row i * variants + v. */
static DitStatus encode_block(EncodeRun *r, int64_t first, DitErr *err) {
  const DitVaeInfo *v = r->v;
  int64_t xs = v->image_channels * v->image_size * v->image_size;
  int64_t zs = v->latent_channels * v->latent_size * v->latent_size;
  int64_t n = dataset_count(r->px) - first < r->block_cap ? dataset_count(r->px) - first : r->block_cap;
  for (int64_t i = 0; i < n; i++)
    for (int64_t k = 0; k < r->variants; k++) {
      int64_t row = i * r->variants + k;
      DitStatus st = dataset_get(r->px, first + i, (int)k, r->images + row * xs, &r->labels[i]);
      if (st) return dit_err(err, st, "%s: image %lld cannot be read", dataset_path(r->px), (long long)(first + i));
      if (!r->mean) dit_randn_stream(r->seed, (uint64_t)(1 + 2 * (first + i) + k), r->noise + row * zs, zs);
    }
  if (cli_vae_run(r->vae, false, n * r->variants, r->images, r->mean ? NULL : r->noise, r->latents, false))
    return dit_err(err, DIT_ERR_DEVICE, "encoding images %lld..%lld failed (said above)", (long long)first,
                   (long long)(first + n - 1));
  r->block_first = first;
  r->block_count = n;
  if (r->progress) {
    int64_t done = first + n, total = dataset_count(r->px);
    double el = now_s() - r->t0, rate = el > 0 ? (double)done / el : 0, left = rate > 0 ? (double)(total - done) / rate : 0;
    int fill = (int)(30.0 * (double)done / (double)total);
    fprintf(stderr, "\rencode [%.*s%*s] %lld/%lld images  %.2f img/s  ETA %02d:%02d:%02d ", fill,
            "##############################", 30 - fill, "", (long long)done, (long long)total, rate,
            (int)(left / 3600), (int)(left / 60) % 60, (int)left % 60);
    if (done == total) fputc('\n', stderr);
    fflush(stderr);
  }
  return DIT_OK;
}

static DitStatus fill(void *ctx, int64_t index, void *sample, int64_t *label, DitErr *err) {
  EncodeRun *r = ctx;
  if (index < r->block_first || index >= r->block_first + r->block_count) {
    DitStatus st = encode_block(r, index, err);
    if (st) return st;
  }
  const DitVaeInfo *v = r->v;
  int64_t zs = v->latent_channels * v->latent_size * v->latent_size, i = index - r->block_first;
  memcpy(sample, r->latents + i * r->variants * zs, (size_t)(r->variants * zs) * sizeof(float));
  *label = r->labels[i];
  return DIT_OK;
}

int cli_data_encode(const char *pixels, const char *vae_plan, const char *vae_weights, const char *device,
                    int threads, bool flips, bool mean, uint64_t seed, const char *out) {
  DitErr e = {0};
  DitDataset *px = NULL;
  DitRuntime *vae = NULL;
  EncodeRun r = {0};
  int rc = 1;
  if (dataset_open(pixels, &px, &e)) goto fail;
  if (cli_vae_open(vae_plan, vae_weights, device, threads, false, true, &vae)) goto done;
  const DitVaeInfo *v = dit_vae_info(vae);
  if (dataset_channels(px) != v->image_channels || dataset_height(px) != v->image_size ||
      dataset_width(px) != v->image_size) {
    fprintf(stderr, "dit: error: the images are %lldx%lld, but the VAE plan encodes %lldx%lld: give --image-size "
                    "%lld, or compile the VAE with --image-size %lld\n", (long long)dataset_height(px),
            (long long)dataset_width(px), (long long)v->image_size, (long long)v->image_size,
            (long long)v->image_size, (long long)dataset_height(px));
    goto done;
  }
  r = (EncodeRun){.px = px, .vae = vae, .v = v, .variants = flips ? 2 : 1, .block_first = -1, .seed = seed, .mean = mean,
                  .t0 = now_s(), .progress = isatty(2) != 0};
  r.block_cap = v->max_batch / r.variants > 0 ? v->max_batch / r.variants : 1;
  int64_t xs = v->image_channels * v->image_size * v->image_size;
  int64_t zs = v->latent_channels * v->latent_size * v->latent_size, rows = r.block_cap * r.variants;
  r.images = malloc((size_t)(rows * xs) * sizeof(float));
  r.noise = malloc((size_t)(rows * zs) * sizeof(float));
  r.latents = malloc((size_t)(rows * zs) * sizeof(float));
  r.labels = malloc((size_t)r.block_cap * sizeof(int64_t));
  if (!r.images || !r.noise || !r.latents || !r.labels) {
    fprintf(stderr, "dit: error: out of memory\n");
    goto done;
  }
  DatasetSpec spec = {.count = dataset_count(px), .channels = v->latent_channels, .height = v->latent_size,
                      .width = v->latent_size, .dtype = DATASET_F32, .num_classes = dataset_num_classes(px),
                      .flags = flips ? DATASET_FLAG_FLIP_VARIANTS : 0};
  if (dataset_write(out, &spec, fill, &r, 1, &e)) goto fail; /* in order: each block encoded once */
  rc = 0;
  goto done;
fail:
  fprintf(stderr, "dit: error: %s\n", e.msg);
done:
  free(r.images);
  free(r.noise);
  free(r.latents);
  free(r.labels);
  dit_close(vae);
  dataset_close(px);
  return rc;
}
