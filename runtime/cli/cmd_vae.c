/* cmd_vae.c: `dit decode` and `dit encode`, the compiled VAE's commands
 * (docs/vae.md), and the VAE helpers `dit sample --vae` and
 * `dit data images --vae` share (cli.h).
 *   dit decode VAE_PLAN --weights W --z Z.npy -o X.npy [--png GRID.png] [--grid-cols N]
 *   dit encode VAE_PLAN --weights W --x X.npy -o Z.npy [--mean | --noise E.npy | --seed S]
 * both [--device cpu|cuda|emu|auto] [--threads N]. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "atomic_write.h"
#include "cli_paths.h"
#include "image.h"
#include "npy.h"

static void vae_usage(FILE *f, bool decode) {
  if (decode)
    fprintf(f,
            "usage: dit decode VAE_PLAN --weights W --z Z.npy -o X.npy [--png GRID.png] [--grid-cols N]\n"
            "                  [--device cpu|cuda|emu|auto] [--threads N]\n"
            "\n"
            "Images from DiT-space latents with a compiled VAE decoder (ditc specs/vae/sd-vae-ft-mse.dit\n"
            "-o VAE_PLAN): Z float32 [N,4,h,w], as dit sample writes them; the decoder sees\n"
            "Z / scaling_factor (0.18215), as sample.py's vae.decode(samples / 0.18215). X float32\n"
            "[N,3,H,W] in the decoder's range (about [-1, 1]). --png: a grid as sample.py's save_image\n"
            "(clamp((x + 1) / 2, 0, 1) * 255, rounded; --grid-cols per row, default 4 as sample.py).\n"
            "W: diffusers' diffusion_pytorch_model.safetensors or .bin (current or legacy attention\n"
            "names), or an LDM/CompVis VAE (.ckpt, .safetensors; also under first_stage_model.);\n"
            "--random-weights S instead: deterministic random weights (demos, benchmarks).\n");
  else
    fprintf(f,
            "usage: dit encode VAE_PLAN --weights W --x X.npy -o Z.npy [--mean | --noise E.npy | --seed S]\n"
            "                  [--device cpu|cuda|emu|auto] [--threads N]\n"
            "\n"
            "DiT-space latents of images with a compiled VAE encoder (ditc ... --part encoder or both):\n"
            "X float32 [N,3,H,W] in [-1, 1]; Z = scaling_factor * (mean + exp(logvar / 2) * e), logvar\n"
            "clamped to [-30, 20], e from --noise E.npy [N,4,h,w] or drawn from --seed (default 0),\n"
            "as train.py's vae.encode(x).latent_dist.sample().mul_(0.18215); --mean: scaling_factor * mean.\n");
}

DitStatus cli_vae_open(const char *plan, const char *weights, const char *device, int threads, bool need_decoder,
                       bool need_encoder, DitRuntime **out) {
  DitOptions opt = {.n_threads = threads, .device = device ? device : "cpu"};
  DitError oe;
  *out = NULL;
  if (cli_env_options(&opt)) return DIT_ERR_ARG;
  if (dit_open(plan, &opt, out, &oe)) {
    fprintf(stderr, "dit: error: %s\n", oe.message);
    return oe.status;
  }
  const DitVaeInfo *v = dit_vae_info(*out);
  const char *missing = !v ? NULL : need_decoder && !v->has_decoder ? "decoder" : need_encoder && !v->has_encoder
                                                                                   ? "encoder" : NULL;
  if (!v || missing) {
    if (!v) fprintf(stderr, "dit: error: %s is a DiT plan, not a VAE plan (ditc specs/vae/sd-vae-ft-mse.dit -o "
                            "VAE_PLAN)\n", plan);
    else fprintf(stderr, "dit: error: %s has no %s: compile it with --part %s or --part both\n", plan, missing,
                 missing);
    dit_close(*out);
    *out = NULL;
    return DIT_ERR_ARG;
  }
  if (weights && dit_load_weights(*out, weights)) {
    fprintf(stderr, "dit: error: %s\n", dit_last_error(*out));
    dit_close(*out);
    *out = NULL;
    return DIT_ERR_WEIGHTS;
  }
  return DIT_OK;
}

/* On a terminal: images done, images per second, time left. */
static void vae_progress(const char *what, double t0, int64_t done, int64_t total) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  double el = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 - t0, rate = el > 0 ? (double)done / el : 0;
  double left = rate > 0 ? (double)(total - done) / rate : 0;
  int width = 30, fill = (int)(width * (double)done / (double)total);
  fprintf(stderr, "\r%s [%.*s%*s] %lld/%lld images  %.2f img/s  ETA %02d:%02d:%02d ", what, fill,
          "##############################", width - fill, "", (long long)done, (long long)total, rate,
          (int)(left / 3600), (int)(left / 60) % 60, (int)left % 60);
  if (done == total) fputc('\n', stderr);
  fflush(stderr);
}

DitStatus cli_vae_run(DitRuntime *vae, bool decode, int64_t n, const float *in, const float *noise, float *out,
                      bool progress) {
  const DitVaeInfo *v = dit_vae_info(vae);
  int64_t zs = v->latent_channels * v->latent_size * v->latent_size;
  int64_t xs = v->image_channels * v->image_size * v->image_size;
  int64_t in_per = decode ? zs : xs, out_per = decode ? xs : zs, step = v->max_batch;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  double t0 = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
  progress = progress && isatty(2);
  for (int64_t i = 0; i < n; i += step) {
    int64_t k = n - i < step ? n - i : step;
    DitStatus st = decode ? dit_vae_decode(vae, k, in + i * in_per, out + i * out_per)
                          : dit_vae_encode(vae, k, in + i * in_per, noise ? noise + i * zs : NULL, out + i * out_per);
    if (st) {
      if (progress) fputc('\n', stderr);
      fprintf(stderr, "dit: error: %s\n", dit_last_error(vae));
      return st;
    }
    if (progress) vae_progress(decode ? "decode" : "encode", t0, i + k, n);
  }
  return DIT_OK;
}

int cli_vae_check_latents(const DitVaeInfo *v, int64_t C, int64_t H, int64_t W, const char *what) {
  if (C == v->latent_channels && H == v->latent_size && W == v->latent_size) return 0;
  fprintf(stderr, "dit: error: %s: latents [N,%lld,%lld,%lld], but the VAE plan decodes [N,%lld,%lld,%lld] "
                  "(%lld px images; compile the VAE for this resolution: ditc ... --image-size %lld)\n",
          what, (long long)C, (long long)H, (long long)W, (long long)v->latent_channels, (long long)v->latent_size,
          (long long)v->latent_size, (long long)v->image_size, (long long)(H * (v->image_size / v->latent_size)));
  return -1;
}

typedef struct VaeArgs {
  const char *plan, *weights, *in, *out, *png, *noise, *device;
  long threads, grid_cols;
  unsigned long long seed, random_weights; /* --random-weights S: S + 1 */
  bool mean, seed_given;
} VaeArgs;

static int parse_vae(int argc, char **argv, bool decode, VaeArgs *a) {
  memset(a, 0, sizeof *a);
  a->device = "cpu";
  for (int i = 2; i < argc; i++) {
    const char *s = argv[i];
    if (!decode && !strcmp(s, "--mean")) {
      a->mean = true;
      continue;
    }
    const char **slot = !strcmp(s, "--weights") ? &a->weights : !strcmp(s, decode ? "--z" : "--x") ? &a->in
                        : !strcmp(s, "-o") ? &a->out : !strcmp(s, "--device") ? &a->device
                        : decode && !strcmp(s, "--png") ? &a->png : !decode && !strcmp(s, "--noise") ? &a->noise : NULL;
    bool num = !strcmp(s, "--threads") || (decode && !strcmp(s, "--grid-cols")) || (!decode && !strcmp(s, "--seed")) ||
               !strcmp(s, "--random-weights");
    if (slot || num) {
      if (i + 1 >= argc || !strncmp(argv[i + 1], "--", 2)) {
        fprintf(stderr, "dit: error: %s needs a value\n", s);
        return -1;
      }
      const char *v = argv[++i];
      if (slot) {
        *slot = v;
        continue;
      }
      char *end;
      errno = 0;
      long long x = strtoll(v, &end, 10);
      bool seedlike = !strcmp(s, "--seed") || !strcmp(s, "--random-weights");
      long long lo = seedlike ? 0 : 1, hi = seedlike ? (1LL << 40) : 4096;
      if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "dit: error: %s takes an integer from %lld to %lld, got '%s'\n", s, lo, hi, v);
        return -1;
      }
      if (!strcmp(s, "--threads")) a->threads = (long)x;
      else if (!strcmp(s, "--grid-cols")) a->grid_cols = (long)x;
      else if (!strcmp(s, "--random-weights")) a->random_weights = (unsigned long long)x + 1;
      else a->seed = (unsigned long long)x, a->seed_given = true;
    } else if (s[0] == '-') {
      fprintf(stderr, "dit: error: unknown option '%s' (dit %s --help)\n", s, decode ? "decode" : "encode");
      return -1;
    } else if (a->plan) {
      fprintf(stderr, "dit: error: more than one plan given\n");
      return -1;
    } else {
      a->plan = s;
    }
  }
  if (a->weights && a->random_weights) {
    fprintf(stderr, "dit: error: give --weights W or --random-weights SEED, not both\n");
    return -1;
  }
  const char *missing = !a->plan ? "VAE_PLAN" : !a->weights && !a->random_weights ? "--weights" : !a->in ? (decode ? "--z" : "--x")
                        : !a->out ? "-o" : NULL;
  if (missing) {
    fprintf(stderr, "dit: error: %s needs %s\n", decode ? "decode" : "encode", missing);
    return -1;
  }
  if ((int)a->mean + (a->noise != NULL) + (int)a->seed_given > 1) {
    fprintf(stderr, "dit: error: --mean, --noise and --seed each choose the posterior's noise: give one\n");
    return -1;
  }
  return 0;
}

static int cmd_vae(int argc, char **argv, bool decode) {
  if (argc >= 3 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
    vae_usage(stdout, decode);
    return 0;
  }
  VaeArgs a;
  if (parse_vae(argc, argv, decode, &a)) {
    vae_usage(stderr, decode);
    return 2;
  }
  const char *outs[] = {a.out, a.png}, *ins[] = {a.plan, a.weights, a.in, a.noise};
  if (cli_check_outputs(outs, 2, ins, 4)) return 1;
  DitRuntime *vae = NULL;
  NpyArray x = {0}, e = {0};
  float *out = NULL, *noise = NULL;
  uint8_t *rgb = NULL;
  DitErr err = {0};
  char staged[4200];
  bool staged_ok = false;
  int rc = 1;
  if (cli_vae_open(a.plan, NULL, a.device, (int)a.threads, decode, !decode, &vae)) goto done;
  const DitVaeInfo *v = dit_vae_info(vae);
  int64_t L = v->latent_size, S = v->image_size;
  if (npy_read(a.in, &x, &err)) goto fail;
  int64_t C = x.rank == 4 ? x.shape[1] : 0;
  if (x.type != NPY_F32 || x.rank != 4 || x.shape[0] < 1) {
    fprintf(stderr, "dit: error: %s: expected float32 [N,%lld,%lld,%lld]\n", a.in,
            (long long)(decode ? v->latent_channels : v->image_channels), (long long)(decode ? L : S),
            (long long)(decode ? L : S));
    goto done;
  }
  if (decode && cli_vae_check_latents(v, C, x.shape[2], x.shape[3], a.in)) goto done;
  if (!decode && (C != v->image_channels || x.shape[2] != S || x.shape[3] != S)) {
    fprintf(stderr, "dit: error: %s: images [N,%lld,%lld,%lld], but the VAE plan encodes [N,%lld,%lld,%lld] "
                    "(ditc ... --image-size %lld)\n", a.in, (long long)C, (long long)x.shape[2], (long long)x.shape[3],
            (long long)v->image_channels, (long long)S, (long long)S, (long long)x.shape[2]);
    goto done;
  }
  int64_t n = x.shape[0];
  int64_t zs = v->latent_channels * L * L, xs = v->image_channels * S * S;
  if (!decode && a.noise) {
    if (npy_read(a.noise, &e, &err)) goto fail;
    if (e.type != NPY_F32 || e.rank != 4 || e.shape[0] != n || e.shape[1] != v->latent_channels ||
        e.shape[2] != L || e.shape[3] != L) {
      fprintf(stderr, "dit: error: %s: expected float32 [%lld,%lld,%lld,%lld], the latents' shape\n", a.noise,
              (long long)n, (long long)v->latent_channels, (long long)L, (long long)L);
      goto done;
    }
    noise = e.data;
  } else if (!decode && !a.mean) {
    if (!(noise = malloc((size_t)(n * zs) * sizeof *noise))) goto nomem;
    dit_randn_stream(a.seed, 0, noise, n * zs);
  }
  if (a.random_weights ? dit_random_weights(vae, a.random_weights - 1) : dit_load_weights(vae, a.weights)) {
    /* every argument checked: now the checkpoint */
    fprintf(stderr, "dit: error: %s\n", dit_last_error(vae));
    goto done;
  }
  if (!(out = malloc((size_t)(n * (decode ? xs : zs)) * sizeof *out))) goto nomem;
  if (cli_vae_run(vae, decode, n, x.data, noise, out, true)) goto done;
  int64_t shape[4] = {n, decode ? v->image_channels : v->latent_channels, decode ? S : L, decode ? S : L};
  if (!a.png) {
    if (npy_write_f32(a.out, out, 4, shape, &err)) goto fail;
  } else { /* the .npy staged until the PNG is written: both or neither */
    if (!(rgb = malloc((size_t)(n * S * S * 3)))) goto nomem;
    images_to_rgb8_save_image(out, n, v->image_channels, S, S, rgb);
    if (atomic_stage(a.out, staged, sizeof staged, &err)) goto fail;
    staged_ok = true;
    if (npy_write_f32(staged, out, 4, shape, &err) ||
        png_write_grid(a.png, rgb, n, S, S, a.grid_cols ? a.grid_cols : 4, &err) ||
        atomic_commit(staged, a.out, &err))
      goto fail;
    staged_ok = false;
  }
  rc = 0;
  goto done;
nomem:
  fprintf(stderr, "dit: error: out of memory\n");
  goto done;
fail:
  fprintf(stderr, "dit: error: %s\n", err.msg);
done:
  if (staged_ok) atomic_unstage(staged, a.out);
  if (noise != e.data) free(noise);
  npy_free(&x);
  npy_free(&e);
  free(out);
  free(rgb);
  dit_close(vae);
  return rc;
}

int cmd_decode(int argc, char **argv) { return cmd_vae(argc, argv, true); }
int cmd_encode(int argc, char **argv) { return cmd_vae(argc, argv, false); }
