/* cmd_sample.c: `dit sample`: load a plan and weights, run the sampler, and
 * write the final latents (.npy), a PNG grid (pixel-space models) or an
 * evaluation set (.npz, resumable). Exits through main.c's return codes:
 * 0 success, 1 bad input or failure, 2 usage. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "dit/dit.h"
#include "image.h"
#include "npy.h"
#include "sample_args.h"

/* sample.py's class labels for ImageNet models */
static const int64_t OFFICIAL_LABELS[8] = {207, 360, 387, 974, 88, 979, 417, 279};

static int parse_labels(const char *s, SampleArgs *a) {
  a->n_labels = 0;
  for (const char *p = s; *p;) {
    char *end;
    errno = 0;
    long long v = strtoll(p, &end, 10);
    if (errno || end == p || (*end && *end != ',') || a->n_labels == SAMPLE_MAX_LABELS) return -1;
    a->labels[a->n_labels++] = v;
    p = *end ? end + 1 : end;
  }
  return a->n_labels > 0 ? 0 : -1;
}

int sample_parse_args(int argc, char **argv, SampleArgs *a) {
  memset(a, 0, sizeof *a);
  a->steps = "250";
  a->cfg_scale = 4.0f;
  a->device = "cpu";
  for (int i = 2; i < argc; i++) {
    const char *s = argv[i];
    if (s[0] != '-') {
      if (a->plan) {
        fprintf(stderr, "dit: error: more than one plan given\n");
        return -1;
      }
      a->plan = s;
      continue;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "dit: error: %s needs a value\n", s);
      return -1;
    }
    const char *v = argv[++i];
    char *end = NULL;
    errno = 0;
    if (!strcmp(s, "--weights")) a->weights = v;
    else if (!strcmp(s, "-o")) a->out = v;
    else if (!strcmp(s, "--png")) a->png = v;
    else if (!strcmp(s, "--npz")) a->npz = v;
    else if (!strcmp(s, "--noise")) a->noise = v;
    else if (!strcmp(s, "--step-noise")) a->step_noise = v;
    else if (!strcmp(s, "--steps")) a->steps = v;
    else if (!strcmp(s, "--device")) a->device = v;
    else if (!strcmp(s, "--sampler")) {
      if (!strcmp(v, "ddpm")) a->sampler = DIT_DDPM;
      else if (!strcmp(v, "ddim")) a->sampler = DIT_DDIM;
      else {
        fprintf(stderr, "dit: error: --sampler takes ddpm or ddim, got '%s'\n", v);
        return -1;
      }
    } else if (!strcmp(s, "--labels")) {
      if (parse_labels(v, a)) {
        fprintf(stderr, "dit: error: --labels takes comma-separated integers (at most %d), got '%s'\n",
                SAMPLE_MAX_LABELS, v);
        return -1;
      }
    } else if (!strcmp(s, "-n") || !strcmp(s, "--num-samples") || !strcmp(s, "--threads") ||
               !strcmp(s, "--seed")) {
      long long x = strtoll(v, &end, 10);
      long long lo = !strcmp(s, "--seed") ? 0 : 1;
      if (errno || end == v || *end || x < lo || x > (1LL << 40)) {
        fprintf(stderr, "dit: error: %s takes an integer >= %lld, got '%s'\n", s, lo, v);
        return -1;
      }
      if (!strcmp(s, "-n")) a->n = x;
      else if (!strcmp(s, "--num-samples")) a->num_samples = x;
      else if (!strcmp(s, "--threads")) a->threads = (int)(x > 1024 ? 1024 : x);
      else a->seed = (uint64_t)x;
    } else if (!strcmp(s, "--eta") || !strcmp(s, "--cfg-scale")) {
      double x = strtod(v, &end);
      if (errno || end == v || *end || !(x == x) || x < 0 || x > 1e6) {
        fprintf(stderr, "dit: error: %s takes a number >= 0, got '%s'\n", s, v);
        return -1;
      }
      if (!strcmp(s, "--eta")) a->eta = x;
      else a->cfg_scale = (float)x;
    } else {
      fprintf(stderr, "dit: error: unknown option '%s'\n", s);
      return -1;
    }
  }
  if (!a->plan || !a->weights) {
    fprintf(stderr, "dit: error: sample needs %s\n", !a->plan ? "PLAN" : "--weights");
    return -1;
  }
  if ((a->npz != NULL) != (a->num_samples > 0)) {
    fprintf(stderr, "dit: error: --num-samples and --npz go together\n");
    return -1;
  }
  if (a->npz && (a->noise || a->step_noise || a->png || a->out)) {
    fprintf(stderr, "dit: error: --npz runs take no --noise, --step-noise, --png or -o\n");
    return -1;
  }
  return 0;
}

/* Progress on a terminal: steps, images per second, time left. */
void sample_progress(void *vctx, int step, int steps) {
  SampleProgress *p = vctx;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  double now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
  if (step == 1 && p->t0 == 0) p->t0 = now;
  double done = (double)p->images_done + (double)p->images_now * step / steps;
  double elapsed = now - p->t0, rate = elapsed > 0 ? done / elapsed : 0;
  double left = rate > 0 ? ((double)p->images_total - done) / rate : 0;
  int width = 30, fill = (int)(width * done / (double)p->images_total);
  fprintf(stderr, "\r[%.*s%*s] step %d/%d  %lld/%lld images  %.2f img/s  ETA %02d:%02d:%02d ", fill,
          "##############################", width - fill, "", step, steps,
          (long long)(p->images_done + (step == steps ? p->images_now : 0)), (long long)p->images_total,
          rate, (int)(left / 3600), (int)(left / 60) % 60, (int)left % 60);
  if (step == steps && p->images_done + p->images_now >= p->images_total) fputc('\n', stderr);
  fflush(stderr);
}

/* Labels for n images: given, sample.py's for ImageNet, or drawn from the seed. */
void sample_labels(const SampleArgs *a, const DitModelInfo *mi, uint64_t seed, int64_t first,
                   int64_t n, int64_t *out) {
  for (int64_t i = 0; i < n; i++) {
    if (a->n_labels) out[i] = a->labels[(first + i) % a->n_labels];
    else if (mi->num_classes == 1000 && !a->npz) out[i] = OFFICIAL_LABELS[(first + i) % 8];
    else {
      float r[4];
      dit_randn_stream(seed ^ 0x6C6162656C73ull, (uint64_t)(first + i), r, 4); /* "labels" */
      uint64_t bits;
      memcpy(&bits, r, sizeof bits);
      out[i] = (int64_t)(bits % (uint64_t)mi->num_classes);
    }
  }
}

int cmd_sample(int argc, char **argv) {
  SampleArgs a;
  if (sample_parse_args(argc, argv, &a)) return 2;
  int rc = 1;
  DitRuntime *rt = NULL;
  DitError oe;
  NpyArray z = {0}, sn = {0};
  DitErr e = {0};
  float *out = NULL;
  uint8_t *rgb = NULL;
  DitOptions opt = {a.threads, a.device};
  if (dit_open(a.plan, &opt, &rt, &oe)) {
    fprintf(stderr, "dit: error: %s\n", oe.message);
    goto done;
  }
  if (!strcmp(a.device, "auto")) fprintf(stderr, "dit: note: no GPU backend in this build; running on the CPU\n");
  if (dit_load_weights(rt, a.weights)) {
    fprintf(stderr, "dit: error: %s\n", dit_last_error(rt));
    goto done;
  }
  const DitModelInfo *mi = dit_model_info(rt);
  int steps = dit_sample_steps(rt, a.steps);
  if (steps < 0) {
    fprintf(stderr, "dit: error: %s\n", dit_last_error(rt));
    goto done;
  }
  if (a.npz) {
    rc = cmd_sample_set(a.plan, &(SampleSetCtx){&a, rt, steps});
    goto done;
  }
  int64_t L = mi->latent_size, C = mi->in_channels, per = C * L * L;
  int64_t rows_per_image = a.cfg_scale > 1.0f ? 2 : 1;
  if (a.noise) {
    if (npy_read(a.noise, &z, &e)) goto npy_fail;
    if (z.type != NPY_F32 || z.rank != 4 || z.shape[1] != C || z.shape[2] != L || z.shape[3] != L) {
      fprintf(stderr, "dit: error: %s: expected float32 [N,%lld,%lld,%lld]\n", a.noise, (long long)C,
              (long long)L, (long long)L);
      goto done;
    }
    if (a.n && a.n != z.shape[0]) {
      fprintf(stderr, "dit: error: -n %lld, but --noise holds %lld rows\n", (long long)a.n, (long long)z.shape[0]);
      goto done;
    }
    a.n = z.shape[0];
  }
  if (!a.n) a.n = a.n_labels ? a.n_labels : 8;
  if (a.n * rows_per_image > mi->max_batch && !a.noise && !a.n_labels && !a.step_noise) {
    a.n = mi->max_batch / rows_per_image; /* the default count: as many as fit */
  }
  if (a.n < 1 || a.n * rows_per_image > mi->max_batch) {
    fprintf(stderr, "dit: error: %lld images%s need %lld rows, but the plan runs at most %lld; "
                    "compile it with a larger --batch\n",
            (long long)a.n, rows_per_image > 1 ? " with guidance" : "", (long long)(a.n * rows_per_image),
            (long long)mi->max_batch);
    goto done;
  }
  if (a.step_noise) {
    if (npy_read(a.step_noise, &sn, &e)) goto npy_fail;
    if (sn.type != NPY_F32 || sn.rank != 5 || sn.shape[0] != steps || sn.shape[1] != a.n ||
        sn.shape[2] != C || sn.shape[3] != L || sn.shape[4] != L) {
      fprintf(stderr, "dit: error: %s: expected float32 [%d,%lld,%lld,%lld,%lld] (steps, N, C, H, W)\n",
              a.step_noise, steps, (long long)a.n, (long long)C, (long long)L, (long long)L);
      goto done;
    }
  }
  if (a.png && mi->image_size != L) {
    fprintf(stderr, "dit: error: --png needs a pixel-space model (latent_scale 1); latent models need the VAE "
                    "decoder, which this version does not have\n");
    goto done;
  }
  int64_t labels[SAMPLE_MAX_LABELS];
  if (a.n > SAMPLE_MAX_LABELS) {
    fprintf(stderr, "dit: error: at most %d images per run\n", SAMPLE_MAX_LABELS);
    goto done;
  }
  sample_labels(&a, mi, a.seed, 0, a.n, labels);
  out = malloc((size_t)(a.n * per) * sizeof(float));
  if (!out) goto done;
  SampleProgress prog = {0, 0, a.n, a.n};
  DitSampleOptions so = {a.n, labels, a.sampler, a.steps, a.eta, a.cfg_scale, a.seed,
                         a.noise ? z.data : NULL, a.step_noise ? sn.data : NULL,
                         isatty(2) ? sample_progress : NULL, &prog};
  if (dit_sample(rt, &so, out)) {
    fprintf(stderr, "dit: error: %s\n", dit_last_error(rt));
    goto done;
  }
  int64_t shape[4] = {a.n, C, L, L};
  if ((a.out || !a.png) && npy_write_f32(a.out ? a.out : "samples.npy", out, 4, shape, &e)) goto npy_fail;
  if (a.png) {
    rgb = malloc((size_t)(a.n * L * L * 3));
    if (!rgb) goto done;
    images_to_rgb8(out, a.n, C, L, L, rgb);
    if (png_write_grid(a.png, rgb, a.n, L, L, 0, &e)) goto npy_fail;
  }
  rc = 0;
  goto done;
npy_fail:
  fprintf(stderr, "dit: error: %s\n", e.msg);
done:
  free(out);
  free(rgb);
  npy_free(&z);
  npy_free(&sn);
  dit_close(rt);
  return rc;
}
