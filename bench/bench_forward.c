/* bench_forward.c: times dit_forward of a compiled plan through the public
 * API: warm-up runs, then the median of K timed runs. Prints one line of
 * JSON so bench scripts can put it beside PyTorch's number.
 *   bench_forward PLAN CKPT [--batch N] [--iters K] [--threads T] */
#define _POSIX_C_SOURCE 200809L
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

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: bench_forward PLAN CKPT [--batch N] [--iters K] [--threads T]\n");
    return 2;
  }
  long batch = 0, iters = 10, threads = 0;
  for (int i = 3; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--batch")) batch = strtol(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--iters")) iters = strtol(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--threads")) threads = strtol(argv[i + 1], NULL, 10);
  }
  if (iters < 1 || iters > 1000) iters = 10;
  DitRuntime *rt = NULL;
  DitError err;
  DitOptions opt = {(int)threads, "cpu"};
  if (dit_open(argv[1], &opt, &rt, &err)) {
    fprintf(stderr, "bench_forward: %s\n", err.message);
    return 1;
  }
  if (dit_load_weights(rt, argv[2])) {
    fprintf(stderr, "bench_forward: %s\n", dit_last_error(rt));
    dit_close(rt);
    return 1;
  }
  const DitModelInfo *mi = dit_model_info(rt);
  int64_t n = batch > 0 ? batch : mi->max_batch;
  int64_t xs = mi->in_channels * mi->latent_size * mi->latent_size;
  int64_t os = mi->out_channels * mi->latent_size * mi->latent_size;
  float *x = malloc((size_t)(n * xs) * sizeof(float)), *out = malloc((size_t)(n * os) * sizeof(float));
  int64_t *t = malloc((size_t)n * sizeof(int64_t)), *y = malloc((size_t)n * sizeof(int64_t));
  double *ms = malloc((size_t)iters * sizeof(double));
  if (!x || !out || !t || !y || !ms) return 1;
  srand(1);
  for (int64_t i = 0; i < n * xs; i++) x[i] = (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
  for (int64_t i = 0; i < n; i++) {
    t[i] = (i * 97) % 1000;
    y[i] = (i * 13) % mi->num_classes;
  }
  int rc = 0;
  for (int w = 0; w < 2 && !rc; w++) rc = dit_forward(rt, n, x, t, y, out);
  for (long k = 0; k < iters && !rc; k++) {
    double t0 = now_ms();
    rc = dit_forward(rt, n, x, t, y, out);
    ms[k] = now_ms() - t0;
  }
  if (rc) {
    fprintf(stderr, "bench_forward: %s\n", dit_last_error(rt));
  } else {
    qsort(ms, (size_t)iters, sizeof(double), cmp_double);
    printf("{\"model\": \"%s\", \"batch\": %lld, \"median_ms\": %.3f, \"min_ms\": %.3f, \"iters\": %ld}\n",
           mi->name, (long long)n, ms[iters / 2], ms[0], iters);
  }
  free(x);
  free(out);
  free(t);
  free(y);
  free(ms);
  dit_close(rt);
  return rc ? 1 : 0;
}
