/* test_emu_mma.c: the tensor-core wrappers of kernels/mma.cuh on the emulated
 * device (tools/emu/), on the kernels of mma_test_kernels.cuh, with fresh
 * pseudo-random bf16 and f16 inputs: (a) mma on fragments loaded from global
 * memory by the documented layout, (b) tiles staged in shared memory by
 * cp.async and read by ldmatrix (x4, x2, x2.trans; x4.trans in a 64x64x64
 * product over four double-buffered k tiles), (c) the f16 variants, each
 * against a float64 reference (1e-6 of the sum of the terms' magnitudes) and
 * bit for bit against the emulation's documented order (c, then k = 0..15 in
 * f32); (d) that shared memory read before the cp.async wait holds the old
 * bytes, and the groups' rules of one thread. Errors (a partial warp at mma,
 * lanes at different mma lines, misaligned ldmatrix and cp.async addresses)
 * are reported with the thread and the line, each in a child process. */
#define _GNU_SOURCE
#include <cuda.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "emu_test.h"

static int failures;

static const char TABLE[] =
    "DIT_EMU_KERNELS_BEGIN\n"
    "DIT_EMU_KERNEL(\"k_frag_bf16\", k_frag_bf16)\n"
    "DIT_EMU_KERNEL(\"k_frag_f16\", k_frag_f16)\n"
    "DIT_EMU_KERNEL(\"k_tile_bf16\", k_tile_bf16)\n"
    "DIT_EMU_KERNEL(\"k_tile_f16\", k_tile_f16)\n"
    "DIT_EMU_KERNEL(\"k_tile_bt_bf16\", k_tile_bt_bf16)\n"
    "DIT_EMU_KERNEL(\"k_tile_bt_f16\", k_tile_bt_f16)\n"
    "DIT_EMU_KERNEL(\"k_gemm64_bf16\", k_gemm64_bf16)\n"
    "DIT_EMU_KERNEL(\"k_gemm64_f16\", k_gemm64_f16)\n"
    "DIT_EMU_KERNEL(\"k_nowait_bf16\", k_nowait_bf16)\n"
    "DIT_EMU_KERNEL(\"k_groups\", k_groups)\n"
    "DIT_EMU_KERNEL(\"k_err_sites\", k_err_sites)\n"
    "DIT_EMU_KERNEL(\"k_err_ldm_align\", k_err_ldm_align)\n"
    "DIT_EMU_KERNEL(\"k_err_cp_align\", k_err_cp_align)\n"
    "DIT_EMU_KERNELS_END\n";

static CUmodule mod;
static CUstream stream;

/* The emu image (tools/emu/README.md): kernels/mma.cuh, and the test kernels
 * with their table as the translation unit. */
static int setup(void) {
  char path[512];
  snprintf(path, sizeof path, "%s/tests/emu/mma_test_kernels.cuh", DIT_SOURCE_DIR);
  char *src = emu_test_read(path), *tu = src ? malloc(strlen(src) + sizeof TABLE) : NULL;
  static const char *const headers[] = {"mma.cuh"};
  char *img = NULL;
  if (tu) {
    strcpy(tu, src);
    strcat(tu, TABLE);
    img = emu_test_image(headers, 1, tu);
  }
  free(src);
  free(tu);
  if (!img) {
    printf("FAIL: cannot read kernels/mma.cuh or tests/emu/mma_test_kernels.cuh under %s\n", DIT_SOURCE_DIR);
    return -1;
  }
  int rc = emu_test_open(img, &stream, &mod);
  free(img);
  return rc;
}

static int launch(const char *name, unsigned threads, void **args) {
  CUfunction f;
  CU(cuModuleGetFunction(&f, mod, name));
  CU(cuLaunchKernel(f, 1, 1, 1, threads, 1, 1, 0, stream, args, NULL));
  return 0;
}

/* --- inputs and references --- */

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint32_t rnd(void) {
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return (uint32_t)((rng * 0x2545f4914f6cdd1dull) >> 32);
}

/* A random normal bf16 or f16 of magnitude in [1/8, 8), either sign: never zero. */
static uint16_t rand_16(int f16) {
  uint32_t sign = rnd() & 1u, e = rnd() % 6u;
  return f16 ? (uint16_t)(sign << 15 | (12u + e) << 10 | (rnd() & 1023u))
             : (uint16_t)(sign << 15 | (124u + e) << 7 | (rnd() & 127u));
}

static float value_16(uint16_t h, int f16) {
  if (f16) {
    int e = h >> 10 & 31, m = h & 1023; /* normal only: rand_16 makes no others */
    float v = ldexpf((float)(m | 1024), e - 25);
    return h & 0x8000u ? -v : v;
  }
  uint32_t bits = (uint32_t)h << 16;
  float v;
  memcpy(&v, &bits, sizeof v);
  return v;
}

static float rand_c(void) {
  float v = 0.5f + (float)(rnd() % 100000u) / 40000.0f;
  return rnd() & 1u ? -v : v;
}

typedef struct Case {
  const char *kernel;
  int m, n, k, f16, bt; /* bt: B is stored N x K */
  unsigned threads;
} Case;

/* D (m x n) against the float64 reference and the emulation's order, for A
 * (m x k), B (k x n, or n x k when bt) and C of the case. */
static void check_product(const Case *c, const uint16_t *A, const uint16_t *B, const float *C, const float *D,
                          const char *what) {
  double worst = 0;
  int inexact = 0;
  for (int i = 0; i < c->m; i++)
    for (int j = 0; j < c->n; j++) {
      double ref = C[i * c->n + j], scale = fabs(ref);
      float ordered = C[i * c->n + j];
      for (int kk = 0; kk < c->k; kk++) {
        float a = value_16(A[i * c->k + kk], c->f16);
        float b = value_16(c->bt ? B[j * c->k + kk] : B[kk * c->n + j], c->f16);
        float p = a * b; /* exact: 8 (or 11) bit significands */
        ref += (double)a * b;
        scale += fabs((double)a * b);
        ordered = ordered + p;
      }
      float d = D[i * c->n + j];
      worst = fmax(worst, fabs(d - ref) / scale);
      inexact += d != ordered;
    }
  CHECK(worst <= 1e-6, "%s %s: error %.3g of the terms' magnitude (want <= 1e-6)", c->kernel, what, worst);
  CHECK(inexact == 0, "%s %s: %d of %d elements differ from c + sum over k in order, in f32", c->kernel, what,
        inexact, c->m * c->n);
  if (worst <= 1e-6 && inexact == 0)
    printf("ok   %-15s %2dx%2dx%2d %s: max error %.2g of the terms' magnitude, bitwise the f32 order %s\n", c->kernel,
           c->m, c->n, c->k, c->f16 ? "f16 " : "bf16", worst, what);
}

static int run_case(const Case *c) {
  size_t na = (size_t)c->m * c->k, nb = (size_t)c->k * c->n, nc = (size_t)c->m * c->n;
  uint16_t *A = malloc(na * 2), *B = malloc(nb * 2);
  float *C = malloc(nc * 4), *D = malloc(nc * 4);
  for (size_t i = 0; i < na; i++) A[i] = rand_16(c->f16);
  for (size_t i = 0; i < nb; i++) B[i] = rand_16(c->f16);
  for (size_t i = 0; i < nc; i++) C[i] = rand_c(), D[i] = NAN;
  CUdeviceptr dA, dB, dC, dD;
  CU(cuMemAlloc(&dA, na * 2));
  CU(cuMemAlloc(&dB, nb * 2));
  CU(cuMemAlloc(&dC, nc * 4));
  CU(cuMemAlloc(&dD, nc * 4));
  CU(cuMemcpyHtoDAsync(dA, A, na * 2, stream));
  CU(cuMemcpyHtoDAsync(dB, B, nb * 2, stream));
  CU(cuMemcpyHtoDAsync(dC, C, nc * 4, stream));
  CU(cuMemcpyHtoDAsync(dD, D, nc * 4, stream));
  void *args[] = {&dA, &dB, &dC, &dD};
  if (launch(c->kernel, c->threads, args)) return -1;
  CU(cuMemcpyDtoHAsync(D, dD, nc * 4, stream));
  CU(cuStreamSynchronize(stream));
  check_product(c, A, B, C, D, c->bt ? "(B as N x K)" : "");
  CU(cuMemFree(dA));
  CU(cuMemFree(dB));
  CU(cuMemFree(dC));
  CU(cuMemFree(dD));
  free(A);
  free(B);
  free(C);
  free(D);
  return 0;
}

/* (d) the tile read before its cp.async wait: D1 is what zeroed shared memory
 * gives (C itself), D2, after the wait, the product. */
static int test_missing_wait(void) {
  const Case c = {"k_nowait_bf16", 16, 8, 16, 0, 0, 32};
  uint16_t A[256], B[128];
  float C[128], D1[128], D2[128];
  for (int i = 0; i < 256; i++) A[i] = rand_16(0);
  for (int i = 0; i < 128; i++) B[i] = rand_16(0), C[i] = rand_c();
  CUdeviceptr dA, dB, dC, dD1, dD2;
  CU(cuMemAlloc(&dA, sizeof A));
  CU(cuMemAlloc(&dB, sizeof B));
  CU(cuMemAlloc(&dC, sizeof C));
  CU(cuMemAlloc(&dD1, sizeof D1));
  CU(cuMemAlloc(&dD2, sizeof D2));
  CU(cuMemcpyHtoDAsync(dA, A, sizeof A, stream));
  CU(cuMemcpyHtoDAsync(dB, B, sizeof B, stream));
  CU(cuMemcpyHtoDAsync(dC, C, sizeof C, stream));
  void *args[] = {&dA, &dB, &dC, &dD1, &dD2};
  if (launch(c.kernel, 32, args)) return -1;
  CU(cuMemcpyDtoHAsync(D1, dD1, sizeof D1, stream));
  CU(cuMemcpyDtoHAsync(D2, dD2, sizeof D2, stream));
  CU(cuStreamSynchronize(stream));
  int stale = 0;
  for (int i = 0; i < 128; i++) stale += D1[i] == C[i];
  CHECK(stale == 128, "k_nowait_bf16: before the wait, %d of 128 elements are C (the zeroed tiles' product)", stale);
  if (stale == 128) printf("ok   %-15s without cp_async_wait: D == C, the old (zero) shared memory\n", c.kernel);
  check_product(&c, A, B, C, D2, "after cp_async_wait_all");
  CU(cuMemFree(dA));
  CU(cuMemFree(dB));
  CU(cuMemFree(dC));
  CU(cuMemFree(dD1));
  CU(cuMemFree(dD2));
  return 0;
}

/* (d) one thread's groups: wait<1> keeps the newest group, wait<0> leaves the
 * uncommitted copy, wait_all lands it (k_groups' bits). */
static int test_groups(void) {
  uint16_t src[768];
  int out[32];
  for (int i = 0; i < 768; i++) src[i] = rand_16(0);
  CUdeviceptr dsrc, dout;
  CU(cuMemAlloc(&dsrc, sizeof src));
  CU(cuMemAlloc(&dout, sizeof out));
  CU(cuMemcpyHtoDAsync(dsrc, src, sizeof src, stream));
  void *args[] = {&dsrc, &dout};
  if (launch("k_groups", 32, args)) return -1;
  CU(cuMemcpyDtoHAsync(out, dout, sizeof out, stream));
  CU(cuStreamSynchronize(stream));
  int bad = 0;
  for (int l = 0; l < 32; l++) bad += out[l] != 31;
  CHECK(bad == 0, "k_groups: %d lanes wrong (lane 0: bits 0x%x of 0x1f)", bad, (unsigned)out[0]);
  if (!bad) printf("ok   %-15s wait<1> keeps the newest group, wait<0> the uncommitted copy, wait_all lands all\n",
                   "k_groups");
  CU(cuMemFree(dsrc));
  CU(cuMemFree(dout));
  return 0;
}

/* A kernel that must fail, in a child process with its stderr to a file: the
 * synchronisation returns CUDA_ERROR_LAUNCH_FAILED and stderr holds want. */
static void expect_kernel_error(const char *kernel, unsigned threads, const char *want) {
  char logf[] = "/tmp/test_emu_mma_XXXXXX";
  int fd = mkstemp(logf);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fd, 2);
    if (setup()) _exit(10);
    CUdeviceptr d[4];
    for (int i = 0; i < 4; i++)
      if (cuMemAlloc(&d[i], 4096) || cuMemsetD8Async(d[i], 0x3c, 4096, stream)) _exit(11);
    void *args[] = {&d[0], &d[1], &d[2], &d[3]};
    if (launch(kernel, threads, args)) _exit(12);
    CUresult rc = cuStreamSynchronize(stream);
    _exit(rc == CUDA_ERROR_LAUNCH_FAILED ? 0 : 14);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  char *log = emu_test_read(logf);
  unlink(logf);
  close(fd);
  int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && log && strstr(log, want);
  CHECK(ok, "%s: want '%s' and CUDA_ERROR_LAUNCH_FAILED; exit %d, stderr:\n%s", kernel, want,
        WIFEXITED(status) ? WEXITSTATUS(status) : -1, log ? log : "");
  if (ok) printf("ok   %-15s %s", kernel, log);
  free(log);
}

int main(void) {
  expect_kernel_error("k_frag_bf16", 16, "naming lanes beyond the block's last thread");
  expect_kernel_error("k_err_sites", 32, "mma_m16n8k16_bf16: lane 16 is at kernels.cu:");
  expect_kernel_error("k_err_ldm_align", 32, "thread (3,0,0): ldmatrix_x4: lane 3's row address");
  expect_kernel_error("k_err_cp_align", 32, "thread (7,0,0): cp_async_16: the global address");
  if (setup()) return 1;
  static const Case cases[] = {
      {"k_frag_bf16", 16, 8, 16, 0, 0, 32},     {"k_frag_f16", 16, 8, 16, 1, 0, 32},
      {"k_tile_bf16", 16, 8, 16, 0, 0, 32},     {"k_tile_f16", 16, 8, 16, 1, 0, 32},
      {"k_tile_bt_bf16", 16, 8, 16, 0, 1, 32},  {"k_tile_bt_f16", 16, 8, 16, 1, 1, 32},
      {"k_gemm64_bf16", 64, 64, 64, 0, 0, 128}, {"k_gemm64_f16", 64, 64, 64, 1, 0, 128},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i]);
  test_missing_wait();
  test_groups();
  CHECK(cuModuleUnload(mod) == CUDA_SUCCESS && cuStreamDestroy(stream) == CUDA_SUCCESS, "cleanup");
  printf("%d failures\n", failures);
  return failures ? 1 : 0;
}
