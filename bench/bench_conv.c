/* bench_conv.c: one conv2d of the CPU backend (runtime/cpu/cpu_conv.c) on
 * random data, timed: the median of --iters runs after one warm-up, printed
 * as one JSON line with the multiply-accumulates per second. Driven by
 * bench/cpu_conv_vs_pytorch.sh.
 * Usage: bench_conv N CIN H W COUT K STRIDE UP PAD_T PAD_L PAD_B PAD_R [--threads T] [--iters I] */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpu/cpu_ops.h"

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
  int rc = 1;
  float *x = NULL, *w = NULL, *b = NULL, *out = NULL, *scratch = NULL;
  double *times = NULL;
  if (argc < 13) {
    fprintf(stderr, "usage: bench_conv N CIN H W COUT K STRIDE UP PAD_T PAD_L PAD_B PAD_R [--threads T] [--iters I]\n");
    return 2;
  }
  int64_t a[12];
  for (int i = 0; i < 12; i++) a[i] = strtoll(argv[i + 1], NULL, 10);
  int threads = 1, iters = 5;
  for (int i = 13; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--iters")) iters = atoi(argv[i + 1]);
  }
  CpuConvShape s = {.N = a[0], .Cin = a[1], .H = a[2], .W = a[3], .Cout = a[4], .k = a[5], .stride = a[6],
                    .up = a[7], .pad = {a[8], a[9], a[10], a[11]}};
  s.Ho = (s.H * s.up + s.pad[0] + s.pad[2] - s.k) / s.stride + 1;
  s.Wo = (s.W * s.up + s.pad[1] + s.pad[3] - s.k) / s.stride + 1;
  size_t nx = (size_t)(s.N * s.Cin * s.H * s.W), nw = (size_t)(s.Cout * s.Cin * s.k * s.k);
  size_t no = (size_t)(s.N * s.Cout * s.Ho * s.Wo);
  int64_t per = cpu_conv2d_scratch(&s) > 0 ? cpu_conv2d_scratch(&s) : 1;
  x = malloc(nx * sizeof *x), w = malloc(nw * sizeof *w), b = malloc((size_t)s.Cout * sizeof *b);
  out = malloc(no * sizeof *out), scratch = malloc((size_t)(per * threads) * sizeof *scratch);
  times = malloc((size_t)(iters > 0 ? iters : 1) * sizeof *times);
  if (!x || !w || !b || !out || !scratch || !times || iters < 1 || threads < 1) goto fail;
  uint32_t r = 12345u;
  for (size_t i = 0; i < nx; i++) x[i] = (float)((r = r * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
  for (size_t i = 0; i < nw; i++) w[i] = (float)((r = r * 1664525u + 1013904223u) >> 8) / 16777216.0f * 0.1f - 0.05f;
  for (int64_t i = 0; i < s.Cout; i++) b[i] = 0.01f * (float)i;
  openblas_set_num_threads(1); /* as the runtime does: its own OpenMP tiles */
  CpuCtx c = {.n_threads = threads, .scratch = scratch, .scratch_per_thread = per};
  cpu_conv2d(&c, x, &s, w, b, 1.0, out); /* warm-up */
  for (int i = 0; i < iters; i++) {
    double t0 = now_ms();
    cpu_conv2d(&c, x, &s, w, b, 1.0, out);
    times[i] = now_ms() - t0;
  }
  qsort(times, (size_t)iters, sizeof *times, cmp_double);
  double med = times[iters / 2], macs = (double)no * (double)(s.Cin * s.k * s.k);
  printf("{\"threads\": %d, \"median_ms\": %.3f, \"gmacs_per_s\": %.2f}\n", threads, med, macs / med / 1e6);
  rc = 0;
fail:
  if (rc) fprintf(stderr, "bench_conv: bad arguments or out of memory\n");
  free(x); free(w); free(b); free(out); free(scratch); free(times);
  return rc;
}
