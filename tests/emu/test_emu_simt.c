/* test_emu_simt.c: the emulated device's SIMT executor (tools/emu/), through
 * the driver API, on purpose-built kernels: the shuffles' lane, width and
 * mask rules against their definitions, a block reduction (kernels/
 * common.cuh) against the host, dynamic shared memory, parameter unpacking,
 * graph capture and replay; and that what a GPU leaves undefined is reported
 * with the block, the thread and the line, never a hang: a divergent
 * __syncthreads, lanes that disagree on a shuffle's mask, a shuffle with a
 * lane that has exited, a deadlock, __trap. A failing kernel makes the context's error sticky, so each
 * such case runs in a child process. */
#define _GNU_SOURCE
#include <cuda.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "emu_test.h"

static int failures;

static const char KERNELS[] =
    "#include \"common.cuh\"\n"
    "extern \"C\" __global__ void k_shfl(int *out, int width) {\n"
    "  int t = threadIdx.x, lane = t % 32;\n"
    "  out[t * 4 + 0] = __shfl_xor_sync(0xffffffffu, lane * 10, 3, width);\n"
    "  out[t * 4 + 1] = __shfl_up_sync(0xffffffffu, lane * 10, 2, width);\n"
    "  out[t * 4 + 2] = __shfl_down_sync(0xffffffffu, lane * 10, 2, width);\n"
    "  out[t * 4 + 3] = __shfl_sync(0xffffffffu, lane * 10, 7, width);\n"
    "}\n"
    "extern \"C\" __global__ void k_half_mask(int *out) {\n" /* two half-warps, each its own mask: legal */
    "  int lane = threadIdx.x % 32; unsigned m = lane < 16 ? 0x0000ffffu : 0xffff0000u;\n"
    "  out[threadIdx.x] = __shfl_xor_sync(m, lane, 1) + (int)__ballot_sync(m, lane % 3 == 0);\n"
    "}\n"
    "extern \"C\" __global__ void k_reduce(const float *x, float *out) {\n"
    "  __shared__ float red[4];\n"
    "  float s = dit::block_sum<128>(x[blockIdx.x * 128 + threadIdx.x], red);\n"
    "  if (threadIdx.x == 0) out[blockIdx.x] = s;\n"
    "}\n"
    "struct Pair { long long a; float b; };\n"
    "extern \"C\" __global__ void k_params(const Pair p, float *out, char c) {\n"
    "  DIT_DYNAMIC_SHARED(float, dyn);\n"
    "  dyn[threadIdx.x] = (float)p.a + p.b + c;\n"
    "  __syncthreads();\n"
    "  out[threadIdx.x] = dyn[(threadIdx.x + 1) % blockDim.x] + blockIdx.y * 1000;\n"
    "}\n"
    "extern \"C\" __global__ void k_divergent(int *out) {\n"
    "  if (threadIdx.x < 16) __syncthreads();\n"
    "  out[threadIdx.x] = 1;\n"
    "}\n"
    "extern \"C\" __global__ void k_disagree(int *out) {\n"
    "  int lane = threadIdx.x % 32;\n"
    "  unsigned m = lane < 16 ? 0xffffffffu : 0xffff0000u;\n"
    "  out[threadIdx.x] = __shfl_xor_sync(m, lane, 1);\n"
    "}\n"
    "extern \"C\" __global__ void k_exited(int *out) {\n"
    "  if (threadIdx.x == 5) return;\n"
    "  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1, 1);\n"
    "}\n"
    "extern \"C\" __global__ void k_deadlock(int *out) {\n"
    "  if (threadIdx.x == 0) out[0] = __shfl_xor_sync(0xffffffffu, 1, 1);\n"
    "  else __syncthreads();\n"
    "}\n"
    "extern \"C\" __global__ void k_trap(int *out) { if (blockIdx.x == 2 && threadIdx.x == 7) __trap(); out[0] = 0; }\n"
    "DIT_EMU_KERNELS_BEGIN\n"
    "DIT_EMU_KERNEL(\"k_shfl\", k_shfl)\n"
    "DIT_EMU_KERNEL(\"k_half_mask\", k_half_mask)\n"
    "DIT_EMU_KERNEL(\"k_reduce\", k_reduce)\n"
    "DIT_EMU_KERNEL(\"k_params\", k_params)\n"
    "DIT_EMU_KERNEL(\"k_divergent\", k_divergent)\n"
    "DIT_EMU_KERNEL(\"k_disagree\", k_disagree)\n"
    "DIT_EMU_KERNEL(\"k_exited\", k_exited)\n"
    "DIT_EMU_KERNEL(\"k_deadlock\", k_deadlock)\n"
    "DIT_EMU_KERNEL(\"k_trap\", k_trap)\n"
    "DIT_EMU_KERNELS_END\n";

static CUmodule mod;
static CUstream stream;

static int setup(void) {
  static const char *const headers[] = {"common.cuh", "kernel_abi.h"};
  char *img = emu_test_image(headers, 2, KERNELS);
  if (!img) {
    printf("FAIL: cannot read kernels/ under %s\n", DIT_SOURCE_DIR);
    return -1;
  }
  int rc = emu_test_open(img, &stream, &mod);
  free(img);
  return rc;
}

static int launch(const char *name, unsigned gx, unsigned gy, unsigned block, unsigned smem, void **args) {
  CUfunction f;
  CU(cuModuleGetFunction(&f, mod, name));
  CU(cuLaunchKernel(f, gx, gy, 1, block, 1, 1, smem, stream, args, NULL));
  return 0;
}

static int test_shfl(void) {
  enum { T = 64 };
  CUdeviceptr d;
  int out[T * 4];
  CU(cuMemAlloc(&d, sizeof out));
  static const int widths[] = {32, 16, 8, 4};
  for (int wi = 0; wi < 4; wi++) {
    int w = widths[wi];
    void *args[] = {&d, &w};
    if (launch("k_shfl", 1, 1, T, 0, args)) return -1;
    CU(cuMemcpyDtoHAsync(out, d, sizeof out, stream));
    CU(cuStreamSynchronize(stream));
    int bad = 0;
    for (int t = 0; t < T; t++) {
      int lane = t % 32, seg = lane / w * w;
      int x = (lane ^ 3) < seg + w ? lane ^ 3 : lane;
      int up = lane - 2 >= seg ? lane - 2 : lane, down = lane + 2 < seg + w ? lane + 2 : lane;
      int idx = seg + 7 % w;
      bad += out[t * 4] != x * 10 || out[t * 4 + 1] != up * 10 || out[t * 4 + 2] != down * 10 || out[t * 4 + 3] != idx * 10;
    }
    CHECK(bad == 0, "shuffles at width %d: %d threads wrong", w, bad);
  }
  int half[64];
  void *args[] = {&d};
  if (launch("k_half_mask", 1, 1, 64, 0, args)) return -1;
  CU(cuMemcpyDtoHAsync(half, d, sizeof half, stream));
  CU(cuStreamSynchronize(stream));
  int bad = 0;
  for (int t = 0; t < 64; t++) {
    int lane = t % 32;
    unsigned m = lane < 16 ? 0x0000ffffu : 0xffff0000u, ballot = 0;
    for (int j = 0; j < 32; j++)
      if ((m >> j & 1u) && j % 3 == 0) ballot |= 1u << j;
    bad += half[t] != (lane ^ 1) + (int)ballot;
  }
  CHECK(bad == 0, "two half-warp masks: %d threads wrong", bad);
  CU(cuMemFree(d));
  return 0;
}

static int test_reduce_params_graph(void) {
  enum { BLOCKS = 6, N = BLOCKS * 128 };
  float x[N], sums[BLOCKS];
  for (int i = 0; i < N; i++) x[i] = (float)((i * 7919) % 1000) / 997.0f - 0.5f;
  CUdeviceptr dx, ds;
  CU(cuMemAlloc(&dx, sizeof x));
  CU(cuMemAlloc(&ds, sizeof sums));
  CU(cuMemcpyHtoDAsync(dx, x, sizeof x, stream));
  void *args[] = {&dx, &ds};
  if (launch("k_reduce", BLOCKS, 1, 128, 0, args)) return -1;
  CU(cuMemcpyDtoHAsync(sums, ds, sizeof sums, stream));
  CU(cuStreamSynchronize(stream));
  double worst = 0;
  for (int b = 0; b < BLOCKS; b++) {
    double ref = 0;
    for (int i = 0; i < 128; i++) ref += x[b * 128 + i];
    worst = fmax(worst, fabs(sums[b] - ref));
  }
  CHECK(worst < 1e-5, "block_sum<128>: max error %g", worst);

  /* a struct, a pointer and a char by value; dynamic shared memory; blockIdx.y */
  struct Pair {
    long long a;
    float b;
  } p = {40, 1.5f};
  char c = 2;
  float out[2 * 32];
  CUdeviceptr dout;
  CU(cuMemAlloc(&dout, sizeof out));
  CUdeviceptr dout1 = dout + 32 * sizeof(float);
  void *pa[] = {&p, &dout, &c};
  if (launch("k_params", 1, 1, 32, 32 * sizeof(float), pa)) return -1;
  /* captured with other parameters, replayed twice: the graph keeps its own copy */
  CUgraph g;
  CUgraphExec ge;
  CU(cuStreamBeginCapture(stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL));
  p.a = 100;
  void *pb[] = {&p, &dout1, &c};
  if (launch("k_params", 1, 1, 32, 32 * sizeof(float), pb)) return -1;
  CU(cuStreamEndCapture(stream, &g));
  p.a = -7; /* after capture: must not reach the graph */
  CU(cuGraphInstantiate(&ge, g, 0));
  CU(cuGraphLaunch(ge, stream));
  CU(cuMemcpyDtoHAsync(out, dout, sizeof out, stream));
  CU(cuStreamSynchronize(stream));
  CHECK(out[0] == 43.5f && out[31] == 43.5f, "parameters by value: got %g, %g", out[0], out[31]);
  CHECK(out[32] == 103.5f && out[63] == 103.5f, "graph replay: got %g, %g", out[32], out[63]);
  CU(cuGraphExecDestroy(ge));
  CU(cuGraphDestroy(g));
  CU(cuMemFree(dout));
  CU(cuMemFree(dx));
  CU(cuMemFree(ds));
  return 0;
}

/* A kernel that must fail: in a child process, its stderr to a file; the
 * synchronisation must return CUDA_ERROR_LAUNCH_FAILED and stderr hold want. */
static void expect_kernel_error(const char *kernel, unsigned grid, unsigned block, const char *want) {
  char logf[] = "/tmp/test_emu_simt_XXXXXX";
  int fd = mkstemp(logf);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fd, 2);
    if (setup()) _exit(10);
    CUdeviceptr d;
    if (cuMemAlloc(&d, 4096)) _exit(11);
    void *one[] = {&d};
    if (launch(kernel, grid, 1, block, 0, one)) _exit(12);
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
  if (ok) printf("ok   %-13s %s", kernel, log);
  free(log);
}

int main(void) {
  expect_kernel_error("k_divergent", 2, 64, "divergent __syncthreads: 16 threads wait at kernels.cu:26, but 48 have exited");
  expect_kernel_error("k_disagree", 1, 32, "the lanes of a warp disagree");
  expect_kernel_error("k_exited", 1, 32, "thread (5,0,0) exits while lane 0 (thread (0,0,0)) waits for it at __shfl_xor_sync");
  expect_kernel_error("k_deadlock", 1, 32, "deadlock; thread (0,0,0) waits at __shfl_xor_sync");
  expect_kernel_error("k_trap", 4, 32, "block (2,0,0): thread (7,0,0): __trap() at kernels.cu:");
  if (setup()) return 1;
  test_shfl();
  test_reduce_params_graph();
  CHECK(cuModuleUnload(mod) == CUDA_SUCCESS && cuStreamDestroy(stream) == CUDA_SUCCESS, "cleanup");
  printf("%d failures\n", failures);
  return failures ? 1 : 0;
}
