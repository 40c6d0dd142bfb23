/* bench_forward.c: times dit_forward of a compiled plan through the public
 * API: warm-up runs, then the median of K timed runs. Prints one line of
 * JSON per measurement so bench scripts can put it beside PyTorch's number.
 *   bench_forward PLAN (CKPT | --random-weights SEED) [--batch N[,N...]] [--iters K]
 *                 [--threads T] [--device cpu|cuda|auto]
 *                 [--sample N[,N...] [--steps S] [--cfg-scale G] [--max-ms T]]
 * --random-weights binds deterministic random weights of O(1) activations
 * (dit_random_weights: no checkpoint needed; dit_ref.py's scales).
 * A VAE plan (ditc specs/vae/...) times dit_vae_decode and dit_vae_encode of
 * each --batch instead (mode vae_decode, vae_encode).
 * --sample times dit_sample of N images (DDPM, respaced to S steps, default
 * 250; guidance G, default 4, doubles the rows), after the forwards when
 * --batch is given too; --max-ms respaces to fewer steps when S steps would
 * take longer than T ms (est_250_ms extrapolates: every step is one forward). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dit/dit.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}


/* A VAE plan (dit_vae_decode, dit_vae_encode): for each batch, the median of
 * iters runs of each part the plan holds, after one warm-up. */
static int bench_vae(DitRuntime *rt, const char *batches, long iters) {
  const DitVaeInfo *v = dit_vae_info(rt);
  int64_t nmax = v->max_batch, zs = v->latent_channels * v->latent_size * v->latent_size;
  int64_t xs = v->image_channels * v->image_size * v->image_size;
  float *z = malloc((size_t)(nmax * zs) * sizeof(float)), *x = malloc((size_t)(nmax * xs) * sizeof(float));
  float *zo = malloc((size_t)(nmax * zs) * sizeof(float));
  double *ms = malloc((size_t)iters * sizeof(double));
  int rc = !z || !x || !zo || !ms;
  dit_randn_stream(1, 0, z, nmax * zs);
  for (int64_t k = 0; k < nmax * zs; k++) z[k] *= 0.18215f;
  srand(2);
  for (int64_t k = 0; k < nmax * xs; k++) x[k] = (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
  for (const char *b = batches; !rc && *b;) {
    char *end;
    long n = strtol(b, &end, 10);
    if (end == b || n > nmax || n < 0) {
      fprintf(stderr, "bench_forward: --batch: '%s' is not a batch of 1 to %lld images\n", b, (long long)nmax);
      rc = 1;
      break;
    }
    b = *end == ',' ? end + 1 : end;
    if (n == 0) n = (long)nmax;
    for (int part = 0; part < 2 && !rc; part++) {
      if (!(part ? v->has_encoder : v->has_decoder)) continue;
      for (long k = -1; k < iters && !rc; k++) { /* k = -1: the warm-up */
        double t0 = now_ms();
        rc = part ? dit_vae_encode(rt, n, x, NULL, zo) : dit_vae_decode(rt, n, z, x);
        if (k >= 0) ms[k] = now_ms() - t0;
      }
      if (rc) {
        fprintf(stderr, "bench_forward: %s\n", dit_last_error(rt));
        break;
      }
      qsort(ms, (size_t)iters, sizeof(double), cmp_double);
      printf("{\"mode\": \"%s\", \"image_size\": %lld, \"batch\": %ld, \"median_ms\": %.3f, \"min_ms\": %.3f, "
             "\"iters\": %ld, \"device\": \"%s\", \"images_per_s\": %.3f}\n", part ? "vae_encode" : "vae_decode",
             (long long)v->image_size, n, ms[iters / 2], ms[0], iters, dit_device_name(rt),
             (double)n * 1e3 / ms[iters / 2]);
      fflush(stdout);
    }
  }
  free(z);
  free(x);
  free(zo);
  free(ms);
  return rc ? 1 : 0;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: bench_forward PLAN (CKPT | --random-weights SEED) [--batch N[,N...]] [--iters K]\n"
                    "                     [--threads T] [--device cpu|cuda|auto]\n"
                    "                     [--sample N[,N...] [--steps S] [--cfg-scale G] [--max-ms T]]\n");
    return 2;
  }
  long iters = 10, threads = 0, seed = -1;
  const char *batches = "0", *device = "cpu", *steps = "250", *ckpt = NULL, *samples = NULL;
  double cfg_scale = 4.0, max_ms = 0;
  int batch_given = 0;
  int i = 2;
  if (strncmp(argv[2], "--", 2)) ckpt = argv[i++];
  for (; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--batch")) batches = argv[i + 1], batch_given = 1;
    else if (!strcmp(argv[i], "--iters")) iters = strtol(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--threads")) threads = strtol(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--device")) device = argv[i + 1];
    else if (!strcmp(argv[i], "--random-weights")) seed = strtol(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--sample")) samples = argv[i + 1];
    else if (!strcmp(argv[i], "--max-ms")) max_ms = strtod(argv[i + 1], NULL);
    else if (!strcmp(argv[i], "--steps")) steps = argv[i + 1];
    else if (!strcmp(argv[i], "--cfg-scale")) cfg_scale = strtod(argv[i + 1], NULL);
    else {
      fprintf(stderr, "bench_forward: unknown option '%s'\n", argv[i]);
      return 2;
    }
  }
  if (i < argc || (!ckpt) == (seed < 0)) {
    fprintf(stderr, "bench_forward: give a checkpoint or --random-weights SEED (and a value to every option)\n");
    return 2;
  }
  if (iters < 1 || iters > 1000) iters = 10;
  DitRuntime *rt = NULL;
  DitError err;
  DitOptions opt = {.n_threads = (int)threads, .device = device};
  if (dit_open(argv[1], &opt, &rt, &err)) {
    fprintf(stderr, "bench_forward: %s\n", err.message);
    return 1;
  }
  double t_load = now_ms();
  if (ckpt ? dit_load_weights(rt, ckpt) != DIT_OK : dit_random_weights(rt, (uint64_t)seed) != DIT_OK) {
    fprintf(stderr, "bench_forward: %s\n", dit_last_error(rt));
    dit_close(rt);
    return 1;
  }
  fprintf(stderr, "bench_forward: weights bound in %.0f ms on %s\n", now_ms() - t_load, dit_device_name(rt));
  if (dit_vae_info(rt)) { /* a VAE plan: its decode and encode */
    int vrc = bench_vae(rt, batches, iters);
    dit_close(rt);
    return vrc;
  }
  const DitModelInfo *mi = dit_model_info(rt);
  int64_t nmax = mi->max_batch;
  int64_t xs = mi->in_channels * mi->latent_size * mi->latent_size;
  int64_t os = mi->out_channels * mi->latent_size * mi->latent_size;
  float *x = malloc((size_t)(nmax * xs) * sizeof(float)), *out = malloc((size_t)(nmax * os) * sizeof(float));
  int64_t *t = malloc((size_t)nmax * sizeof(int64_t)), *y = malloc((size_t)nmax * sizeof(int64_t));
  double *ms = malloc((size_t)iters * sizeof(double));
  if (!x || !out || !t || !y || !ms) return 1;
  srand(1);
  for (int64_t k = 0; k < nmax * xs; k++) x[k] = (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
  for (int64_t k = 0; k < nmax; k++) {
    t[k] = (k * 97) % 1000;
    y[k] = (k * 13) % mi->num_classes;
  }
  int rc = 0;
  for (const char *b = batches; (!samples || batch_given) && !rc && *b;) {
    char *end;
    long n = strtol(b, &end, 10);
    if (end == b || n > nmax || n < 0) {
      fprintf(stderr, "bench_forward: --batch: '%s' is not a batch of 1 to %lld rows\n", b, (long long)nmax);
      rc = 1;
      break;
    }
    b = *end == ',' ? end + 1 : end;
    if (n == 0) n = (long)nmax;
    for (int w = 0; w < 2 && !rc; w++) rc = dit_forward(rt, n, x, t, y, out);
    for (long k = 0; k < iters && !rc; k++) {
      double t0 = now_ms();
      rc = dit_forward(rt, n, x, t, y, out);
      ms[k] = now_ms() - t0;
    }
    if (rc) {
      fprintf(stderr, "bench_forward: %s\n", dit_last_error(rt));
      break;
    }
    /* a sanity figure of the output: mean |out| and the count of non-finite values */
    double asum = 0;
    long bad = 0;
    for (int64_t k = 0; k < n * os; k++) {
      if (isfinite(out[k])) asum += fabs(out[k]);
      else bad++;
    }
    qsort(ms, (size_t)iters, sizeof(double), cmp_double);
    printf("{\"model\": \"%s\", \"batch\": %ld, \"median_ms\": %.3f, \"min_ms\": %.3f, \"iters\": %ld, "
           "\"mode\": \"forward\", \"device\": \"%s\", \"images_per_s\": %.3f, \"out_absmean\": %.6g, "
           "\"nonfinite\": %ld}\n",
           mi->name, n, ms[iters / 2], ms[0], iters, dit_device_name(rt), (double)n * 1e3 / ms[iters / 2],
           asum / (double)(n * os), bad);
    fflush(stdout);
  }
  for (const char *sp = samples; sp && !rc && *sp;) {
    char *end;
    long n = strtol(sp, &end, 10);
    int empty = end == sp;
    sp = *end == ',' ? end + 1 : end;
    int64_t rows = cfg_scale > 1.0 ? 2 * n : n;
    if (empty || n < 1 || rows > nmax) {
      fprintf(stderr, "bench_forward: --sample: %ld images (%lld rows) do not fit the plan's %lld rows\n", n,
              (long long)rows, (long long)nmax);
      rc = 1;
      break;
    }
    /* warm-up: two guided forwards of the same rows; the second one's time sets the
     * step count under --max-ms (respaced: each step costs the same forward) */
    double fwd_ms = 0;
    for (int w = 0; w < 2 && !rc; w++) {
      double t0 = now_ms();
      rc = cfg_scale > 1.0 ? dit_forward_cfg(rt, n, x, t, y, (float)cfg_scale, out) : dit_forward(rt, n, x, t, y, out);
      fwd_ms = now_ms() - t0;
    }
    char auto_steps[16];
    const char *st = steps;
    int full = dit_sample_steps(rt, steps);
    if (!rc && max_ms > 0 && full > 0 && fwd_ms * full > max_ms) {
      int k = (int)(max_ms / (fwd_ms > 1e-3 ? fwd_ms : 1e-3));
      snprintf(auto_steps, sizeof auto_steps, "%d", k < 2 ? 2 : k);
      st = auto_steps;
    }
    int nsteps = rc ? 0 : dit_sample_steps(rt, st);
    if (!rc && nsteps < 1) rc = 1;
    DitSampleOptions so = {0};
    so.n = n;
    so.labels = y;
    so.sampler = DIT_DDPM;
    so.steps = st;
    so.cfg_scale = (float)cfg_scale;
    double t0 = now_ms();
    if (!rc) rc = dit_sample(rt, &so, out);
    double total = now_ms() - t0;
    if (rc) {
      fprintf(stderr, "bench_forward: %s\n", dit_last_error(rt));
      break;
    }
    printf("{\"mode\": \"sample\", \"model\": \"%s\", \"device\": \"%s\", \"images\": %ld, \"rows\": %lld, "
           "\"steps\": %d, \"cfg_scale\": %g, \"total_ms\": %.3f, \"ms_per_step\": %.3f, \"est_250_ms\": %.1f}\n",
           mi->name, dit_device_name(rt), n, (long long)rows, nsteps, cfg_scale, total, total / nsteps,
           total / nsteps * 250.0);
    fflush(stdout);
  }
  free(x);
  free(out);
  free(t);
  free(y);
  free(ms);
  dit_close(rt);
  return rc ? 1 : 0;
}
