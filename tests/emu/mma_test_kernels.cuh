// mma_test_kernels.cuh: kernels over kernels/mma.cuh for test_emu_mma.c (on
// the emulated device, which appends the kernel table) and test_mma_nvrtc.c
// (NVRTC for sm_80 and sm_90). Matrices are row-major; 16-bit elements travel
// as unsigned short bit patterns (bf16 or f16, by the kernel's name).
#include "mma.cuh"

namespace mmat {

typedef unsigned short u16;

__device__ __forceinline__ uint32_t pack(u16 lo, u16 hi) { return (uint32_t)lo | (uint32_t)hi << 16; }

template <bool F16>
__device__ __forceinline__ void mma(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
  if (F16) dit::mma_m16n8k16_f16(d, a, b, c);
  else dit::mma_m16n8k16_bf16(d, a, b, c);
}

// C and D fragments of the 16x8 tile at (row0, col0) of a matrix with ld columns.
__device__ __forceinline__ void load_c(float c[4], const float *C, int ld, int row0, int col0) {
  const int g = threadIdx.x % 32 / 4, t = threadIdx.x % 4;
  for (int i = 0; i < 4; i++) c[i] = C[(row0 + g + i / 2 * 8) * ld + col0 + 2 * t + i % 2];
}
__device__ __forceinline__ void store_d(const float d[4], float *D, int ld, int row0, int col0) {
  const int g = threadIdx.x % 32 / 4, t = threadIdx.x % 4;
  for (int i = 0; i < 4; i++) D[(row0 + g + i / 2 * 8) * ld + col0 + 2 * t + i % 2] = d[i];
}

// (a) One warp: A 16x16, B 16x8 (K x N) and C 16x8 from global memory into
// fragments by the layout of mma.cuh's comment, element by element.
template <bool F16>
__device__ __forceinline__ void frag_global(const u16 *A, const u16 *B, const float *C, float *D) {
  const int g = threadIdx.x / 4, t = threadIdx.x % 4;
  uint32_t a[4], b[2];
  for (int r = 0; r < 4; r++) {
    const u16 *p = A + (g + r % 2 * 8) * 16 + 2 * t + r / 2 * 8;
    a[r] = pack(p[0], p[1]);
  }
  for (int r = 0; r < 2; r++) b[r] = pack(B[(2 * t + r * 8) * 8 + g], B[(2 * t + r * 8 + 1) * 8 + g]);
  float c[4], d[4];
  load_c(c, C, 8, 0, 0);
  mma<F16>(d, a, b, c);
  store_d(d, D, 8, 0, 0);
}

struct alignas(16) TileSmem {
  u16 a[16 * 16];
  u16 b[16 * 8]; // K x N, or N x K when BT
};

// (b) One warp: A and B staged in shared memory by cp.async, read back by
// ldmatrix. B is K x N (BT false: ldmatrix_x2_trans) or N x K (BT true:
// ldmatrix_x2). WAIT false: no wait before the first ldmatrix (d1 then holds
// what the zero-filled shared memory gives), then a wait and the right d2.
template <bool F16, bool BT, bool WAIT>
__device__ __forceinline__ void tile_smem(const u16 *A, const u16 *B, const float *C, float *D1, float *D2) {
  __shared__ TileSmem s;
  const int l = threadIdx.x;
  if (!WAIT) {
    for (int i = l; i < 16 * 16; i += 32) s.a[i] = 0;
    for (int i = l; i < 16 * 8; i += 32) s.b[i] = 0;
    __syncwarp(0xffffffffu);
  }
  dit::cp_async_16(&s.a[l * 8], &A[l * 8]); // 32 chunks of 8 elements
  if (l < 16) dit::cp_async_16(&s.b[l * 8], &B[l * 8]);
  dit::cp_async_commit();
  if (WAIT) dit::cp_async_wait<0>();
  __syncwarp(0xffffffffu);
  float c[4], d[4];
  load_c(c, C, 8, 0, 0);
  for (int pass = WAIT ? 1 : 0; pass < 2; pass++) {
    if (pass == 1 && !WAIT) {
      dit::cp_async_wait_all();
      __syncwarp(0xffffffffu);
    }
    uint32_t a[4], b[2];
    dit::ldmatrix_x4(a, &s.a[l % 16 * 16 + l / 16 * 8]);
    if (BT) dit::ldmatrix_x2(b, &s.b[l % 8 * 16 + l / 8 % 2 * 8]);
    else dit::ldmatrix_x2_trans(b, &s.b[l % 16 * 8]);
    mma<F16>(d, a, b, c);
    store_d(d, pass == 0 ? D1 : D2, 8, 0, 0);
  }
}

// (b) D = A B + C, 64x64x64, one block of 4 warps, each warp a 32x32 quarter
// (2 x 4 mma tiles); k tiles of 16 double-buffered through cp.async groups.
// Rows of the shared tiles are padded (by 16 bytes) and stay 16-byte aligned.
template <bool F16>
__device__ __forceinline__ void gemm64(const u16 *A, const u16 *B, const float *C, float *D) {
  struct alignas(16) Smem {
    u16 a[2][64][24]; // [stage][m][k]
    u16 b[2][16][72]; // [stage][k][n]
  };
  __shared__ Smem s;
  const int tid = threadIdx.x, l = tid % 32, w = tid / 32, wm = w / 2 * 32, wn = w % 2 * 32;
  float acc[2][4][4];
  for (int mi = 0; mi < 2; mi++)
    for (int nj = 0; nj < 4; nj++) load_c(acc[mi][nj], C, 64, wm + mi * 16, wn + nj * 8);
  // tile kt into stage st: 128 chunks of A (64 rows x 2) and of B (16 rows x 8), one each per thread
  auto load = [&](int kt, int st) {
    dit::cp_async_16(&s.a[st][tid / 2][tid % 2 * 8], &A[tid / 2 * 64 + kt * 16 + tid % 2 * 8]);
    dit::cp_async_16(&s.b[st][tid / 8][tid % 8 * 8], &B[(kt * 16 + tid / 8) * 64 + tid % 8 * 8]);
  };
  load(0, 0);
  dit::cp_async_commit();
  for (int kt = 0; kt < 4; kt++) {
    if (kt + 1 < 4) load(kt + 1, (kt + 1) % 2);
    dit::cp_async_commit(); // empty in the last round: the counting stays uniform
    dit::cp_async_wait<1>(); // everything but the tile just issued
    __syncthreads();
    const int st = kt % 2;
    uint32_t a[2][4], b[4][2];
    for (int mi = 0; mi < 2; mi++) dit::ldmatrix_x4(a[mi], &s.a[st][wm + mi * 16 + l % 16][l / 16 * 8]);
    for (int p = 0; p < 2; p++) { // two n tiles of 8 at once: matrices (k 0-7, k 8-15) x (n 0-7, n 8-15)
      uint32_t r[4];
      dit::ldmatrix_x4_trans(r, &s.b[st][l % 16][wn + p * 16 + l / 16 * 8]);
      b[2 * p][0] = r[0], b[2 * p][1] = r[1], b[2 * p + 1][0] = r[2], b[2 * p + 1][1] = r[3];
    }
    for (int mi = 0; mi < 2; mi++)
      for (int nj = 0; nj < 4; nj++) mma<F16>(acc[mi][nj], a[mi], b[nj], acc[mi][nj]);
    __syncthreads();
  }
  dit::cp_async_wait_all();
  for (int mi = 0; mi < 2; mi++)
    for (int nj = 0; nj < 4; nj++) store_d(acc[mi][nj], D, 64, wm + mi * 16, wn + nj * 8);
}

}  // namespace mmat

extern "C" __global__ void k_frag_bf16(const mmat::u16 *A, const mmat::u16 *B, const float *C, float *D) {
  mmat::frag_global<false>(A, B, C, D);
}
extern "C" __global__ void k_frag_f16(const mmat::u16 *A, const mmat::u16 *B, const float *C, float *D) {
  mmat::frag_global<true>(A, B, C, D);
}
extern "C" __global__ void k_tile_bf16(const mmat::u16 *A, const mmat::u16 *B, const float *C, float *D) {
  mmat::tile_smem<false, false, true>(A, B, C, D, D);
}
extern "C" __global__ void k_tile_f16(const mmat::u16 *A, const mmat::u16 *B, const float *C, float *D) {
  mmat::tile_smem<true, false, true>(A, B, C, D, D);
}
extern "C" __global__ void k_tile_bt_bf16(const mmat::u16 *A, const mmat::u16 *Bt, const float *C, float *D) {
  mmat::tile_smem<false, true, true>(A, Bt, C, D, D);
}
extern "C" __global__ void k_tile_bt_f16(const mmat::u16 *A, const mmat::u16 *Bt, const float *C, float *D) {
  mmat::tile_smem<true, true, true>(A, Bt, C, D, D);
}
extern "C" __global__ void k_gemm64_bf16(const mmat::u16 *A, const mmat::u16 *B, const float *C, float *D) {
  mmat::gemm64<false>(A, B, C, D);
}
extern "C" __global__ void k_gemm64_f16(const mmat::u16 *A, const mmat::u16 *B, const float *C, float *D) {
  mmat::gemm64<true>(A, B, C, D);
}
// (d) reads shared memory before its cp.async wait (D1), then after it (D2)
extern "C" __global__ void k_nowait_bf16(const mmat::u16 *A, const mmat::u16 *B, const float *C, float *D1,
                                         float *D2) {
  mmat::tile_smem<false, false, false>(A, B, C, D1, D2);
}

// (d) one thread's groups: out[lane] gets a bit for each expectation met. x
// and y in two groups, z never committed: wait<1> lands x only (1: x
// arrived, 2: y not yet); wait<0> lands y (4) but not z (8); wait_all lands z (16).
extern "C" __global__ void k_groups(const mmat::u16 *src, int *out) {
  struct alignas(16) Smem {
    mmat::u16 x[32][8], y[32][8], z[32][8];
  };
  __shared__ Smem s;
  const int l = threadIdx.x;
  const mmat::u16 *gx = src + l * 8, *gy = src + 256 + l * 8, *gz = src + 512 + l * 8;
  for (int i = 0; i < 8; i++) s.x[l][i] = s.y[l][i] = s.z[l][i] = 0xdead;
  auto same = [](const mmat::u16 *p, const mmat::u16 *q) {
    bool eq = true;
    for (int i = 0; i < 8; i++) eq = eq && p[i] == q[i];
    return eq;
  };
  auto untouched = [](const mmat::u16 *p) {
    bool eq = true;
    for (int i = 0; i < 8; i++) eq = eq && p[i] == 0xdead;
    return eq;
  };
  dit::cp_async_16(s.x[l], gx);
  dit::cp_async_commit();
  dit::cp_async_16(s.y[l], gy);
  dit::cp_async_commit();
  dit::cp_async_16(s.z[l], gz);
  dit::cp_async_wait<1>();
  int bits = (same(s.x[l], gx) ? 1 : 0) | (untouched(s.y[l]) ? 2 : 0);
  dit::cp_async_wait<0>();
  bits |= (same(s.y[l], gy) ? 4 : 0) | (untouched(s.z[l]) ? 8 : 0);
  dit::cp_async_wait_all();
  bits |= same(s.z[l], gz) ? 16 : 0;
  out[l] = bits;
}

// Errors the emulator reports (each run alone, in a child process).
extern "C" __global__ void k_err_sites(const mmat::u16 *A, const mmat::u16 *B, const float *C, float *D) {
  uint32_t a[4] = {A[0], A[1], A[2], A[3]}, b[2] = {B[0], B[1]};
  float c[4] = {C[0], C[1], C[2], C[3]}, d[4];
  if (threadIdx.x < 16) dit::mma_m16n8k16_bf16(d, a, b, c);
  else dit::mma_m16n8k16_bf16(d, a, b, c);
  D[threadIdx.x] = d[0];
}
extern "C" __global__ void k_err_ldm_align(const mmat::u16 *A, const mmat::u16 *B, const float *C, float *D) {
  __shared__ mmat::TileSmem s;
  s.a[threadIdx.x] = A[threadIdx.x] + B[0];
  __syncwarp(0xffffffffu);
  uint32_t r[4];
  dit::ldmatrix_x4(r, &s.a[threadIdx.x == 3 ? 1 : threadIdx.x % 16 * 16]);
  D[threadIdx.x] = C[0] + (float)r[0];
}
extern "C" __global__ void k_err_cp_align(const mmat::u16 *A, const mmat::u16 *B, const float *C, float *D) {
  __shared__ mmat::TileSmem s;
  dit::cp_async_16(&s.a[threadIdx.x * 8], &A[threadIdx.x * 8 + (threadIdx.x == 7 ? 4 : 0)]);
  dit::cp_async_wait_all();
  D[threadIdx.x] = C[0] + B[0] + s.a[threadIdx.x];
}
