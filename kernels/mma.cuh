// mma.cuh: the tensor-core instructions of the bf16 kernels (issues #8, #9),
// as small wrappers: mma.sync m16n8k16 (bf16 or f16 inputs, f32 accumulators),
// ldmatrix m8n8 .x2/.x4 (and .trans) from shared memory, and 16-byte cp.async
// copies with their commit/wait groups, and the rounding of two floats to a
// packed bf16 pair (cvt.rn.bf16x2.f32). Under NVRTC each wrapper is one inline
// PTX instruction (sm_80 and newer). Under the emulated device (tools/emu,
// DIT_EMU) mma and ldmatrix are warp-collective operations of all 32 lanes
// that follow the PTX ISA's fragment layouts exactly, and cp.async copies land
// only at the wait that covers them, so a kernel that reads too early sees the
// old shared memory.
//
// Fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16" and
// "ldmatrix"), with g = lane / 4 (the group) and t = lane % 4 (the thread in
// the group). A register of two 16-bit elements holds the element of the lower
// index in its low half.
//   A, 16x16 (M x K, .row), a[4]: a[0] holds row g, columns 2t and 2t+1;
//     a[1] row g+8, the same columns; a[2] row g, columns 2t+8 and 2t+9;
//     a[3] row g+8, columns 2t+8 and 2t+9.
//   B, 16x8 (K x N, .col), b[2]: column (n) g; b[0] holds rows (k) 2t and
//     2t+1, b[1] rows 2t+8 and 2t+9.
//   C and D, 16x8 f32, c[4]: c[0], c[1] row g, columns 2t and 2t+1; c[2],
//     c[3] row g+8, the same columns.
//   ldmatrix: matrix q (q < 1, 2 or 4 for .x1/.x2/.x4) is 8 rows of 8 16-bit
//     elements; lane 8q+i gives the address of its row i (16 contiguous,
//     16-byte aligned bytes); the other lanes' addresses are not read.
//     Register r[q] of lane l holds row l/4, columns 2(l%4) and 2(l%4)+1 of
//     matrix q; with .trans, column l/4, rows 2(l%4) and 2(l%4)+1.
//   So a row-major 16x16 A tile is one ldmatrix_x4 with lane l pointing at
//   row l%16, column 8(l/16); a row-major K x N B tile (16 rows of 8) is one
//   ldmatrix_x2_trans with lane l < 16 pointing at row l; an N x K one (B
//   transposed, 8 rows of 16) is one ldmatrix_x2 with lane l < 16 pointing at
//   row l%8, column 8(l/8).
#pragma once

#if defined(DIT_EMU)

#include <map>
#include <mutex>
#include <utility>
#include <vector>

namespace dit {
namespace mma_emu {

// The emulation: the wrappers below take the caller's file and line (default
// arguments) so that an error names the kernel's line.
struct Site {
  const char *file;
  int line;
};

inline const char *base_name(const char *f) {
  const char *s = strrchr(f, '/');
  return s ? s + 1 : f;
}

// The thread's index in its block (threadIdx and blockDim are cuda_emu.h's macros).
inline unsigned thread_index() { return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z); }
inline unsigned lane_id() { return thread_index() % 32u; }

// An error message for __trap: a worker runs one block's fibers and its
// collective functions on one thread, and the executor copies the text at
// once, so the worker's own buffer suffices.
inline char *message() {
  static thread_local char buf[320];
  return buf;
}

[[noreturn]] inline void trap(Site at, const char *what) {
  ::dit_emu::api->trap(at.file, at.line, what);
  __builtin_unreachable();
}

// The PTX requires every lane of the warp to execute the same instruction; the
// executor checks that all 32 lanes reached the same operation, this checks
// that they reached it at the same line. Returns NULL or the message.
template <class In>
inline const char *check_sites(const char *op, const void *const in[32]) {
  const Site s0 = static_cast<const In *>(in[0])->at;
  for (int j = 1; j < 32; j++) {
    const Site s = static_cast<const In *>(in[j])->at;
    if (s.line != s0.line || (s.file != s0.file && strcmp(s.file, s0.file) != 0)) {
      snprintf(message(), 320, "%s: lane %d is at %s:%d, lane 0 at %s:%d; every lane of a warp must execute "
               "the same instruction", op, j, base_name(s.file), s.line, base_name(s0.file), s0.line);
      return message();
    }
  }
  return nullptr;
}

inline float bf16_value(uint32_t h) { return __uint_as_float((h & 0xffffu) << 16); }

inline float f16_value(uint32_t h) {
  const uint32_t e = h >> 10 & 31u, m = h & 1023u;
  float v = e == 0 ? ldexpf((float)m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexpf((float)(m | 1024u), (int)e - 25);
  return h & 0x8000u ? -v : v;
}

// f32 -> bf16 bits, round to nearest even (overflow to inf, subnormals kept).
inline uint32_t bf16_rn(float f) {
  const uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16 | 0x40u) & 0xffffu;
  return (u + 0x7fffu + (u >> 16 & 1u)) >> 16;
}

struct MmaIn {
  uint32_t a[4], b[2];
  float c[4];
  Site at;
};
struct MmaOut {
  float d[4];
  const char *error;
};

// D = A B + C for the warp. The inputs are exact bf16 or f16 values and their
// products exact in f32 (up to overflow and underflow of f32 itself); each
// element of D is C's element plus the 16 products added one at a time, k
// from 0 to 15, each sum rounded to f32. The hardware's order of summation is
// not specified: a kernel must not depend on it. (The module is compiled with
// -ffp-contract=off: nothing here fuses.)
template <bool F16>
inline void mma_fn(const void *const in[32], void *const out[32], unsigned) {
  float A[16][16], B[16][8], C[16][8];
  for (int l = 0; l < 32; l++) {
    const MmaIn &x = *static_cast<const MmaIn *>(in[l]);
    const int g = l >> 2, t = l & 3;
    for (int r = 0; r < 4; r++) {
      const int row = g + (r & 1) * 8, col = 2 * t + (r >> 1) * 8;
      A[row][col] = F16 ? f16_value(x.a[r]) : bf16_value(x.a[r]);
      A[row][col + 1] = F16 ? f16_value(x.a[r] >> 16) : bf16_value(x.a[r] >> 16);
    }
    for (int r = 0; r < 2; r++) {
      const int k = 2 * t + r * 8;
      B[k][g] = F16 ? f16_value(x.b[r]) : bf16_value(x.b[r]);
      B[k + 1][g] = F16 ? f16_value(x.b[r] >> 16) : bf16_value(x.b[r] >> 16);
    }
    for (int i = 0; i < 4; i++) C[g + (i >> 1) * 8][2 * t + (i & 1)] = x.c[i];
  }
  const char *error = check_sites<MmaIn>(F16 ? "mma_m16n8k16_f16" : "mma_m16n8k16_bf16", in);
  for (int l = 0; l < 32; l++) {
    MmaOut &y = *static_cast<MmaOut *>(out[l]);
    const int g = l >> 2, t = l & 3;
    for (int i = 0; i < 4; i++) {
      const int row = g + (i >> 1) * 8, col = 2 * t + (i & 1);
      float acc = C[row][col];
      for (int k = 0; k < 16; k++) acc += A[row][k] * B[k][col];
      y.d[i] = acc;
    }
    y.error = error;
  }
}

template <bool F16>
inline void mma(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4], Site at) {
  MmaIn x;
  for (int i = 0; i < 4; i++) x.a[i] = a[i], x.c[i] = c[i];
  x.b[0] = b[0], x.b[1] = b[1];
  x.at = at;
  MmaOut y;
  ::dit_emu::api->collective(0xffffffffu, &mma_fn<F16>, &x, &y, at.file, at.line);
  if (y.error) trap(at, y.error);
  for (int i = 0; i < 4; i++) d[i] = y.d[i]; // d may be c: written only now
}

struct LdmIn {
  const unsigned char *row;
  Site at;
};
struct LdmOut {
  uint32_t r[4];
  const char *error;
};

inline const char *ldm_name(int num, bool trans) {
  return num == 4 ? (trans ? "ldmatrix_x4_trans" : "ldmatrix_x4") : (trans ? "ldmatrix_x2_trans" : "ldmatrix_x2");
}

// Reads the NUM matrices from the rows the lanes name, at the moment the last
// lane arrives, and hands each lane its registers (layout above).
template <int NUM, bool TRANS>
inline void ldmatrix_fn(const void *const in[32], void *const out[32], unsigned) {
  uint16_t m[NUM][8][8];
  for (int q = 0; q < NUM; q++)
    for (int i = 0; i < 8; i++) memcpy(m[q][i], static_cast<const LdmIn *>(in[8 * q + i])->row, 16);
  const char *error = check_sites<LdmIn>(ldm_name(NUM, TRANS), in);
  for (int l = 0; l < 32; l++) {
    LdmOut &y = *static_cast<LdmOut *>(out[l]);
    const int i = l / 4, j = 2 * (l % 4);
    for (int q = 0; q < NUM; q++) {
      const uint32_t lo = TRANS ? m[q][j][i] : m[q][i][j], hi = TRANS ? m[q][j + 1][i] : m[q][i][j + 1];
      y.r[q] = lo | hi << 16;
    }
    y.error = error;
  }
}

template <int NUM, bool TRANS>
inline void ldmatrix(uint32_t *r, const void *row, Site at) {
  const unsigned lane = lane_id();
  if (lane < 8u * NUM && ((uintptr_t)row & 15u) != 0) {
    snprintf(message(), 320, "%s: lane %u's row address %p is not 16-byte aligned", ldm_name(NUM, TRANS), lane, row);
    trap(at, message());
  }
  LdmIn x{static_cast<const unsigned char *>(row), at};
  LdmOut y;
  ::dit_emu::api->collective(0xffffffffu, &ldmatrix_fn<NUM, TRANS>, &x, &y, at.file, at.line);
  if (y.error) trap(at, y.error);
  for (int q = 0; q < NUM; q++) r[q] = y.r[q];
}

// cp.async: each thread's copies wait in its queue, in issue order, the
// committed ones in groups; a wait copies what it covers into shared memory.
// The 16 source bytes are read when the copy is issued. The queues live in
// this module's heap, keyed by the worker (the address of a thread_local of
// the module: a worker runs one block at a time) and the thread's index in
// the block; not in thread_local storage, which DIT_EMU_POISON overwrites at
// each block's start, nor by the fiber's address, which moves when a worker's
// fiber table grows. A queue left by a thread of another block (its blockIdx,
// blockDim, gridDim or dynamic shared memory differs) is dropped: a thread
// that exits with copies pending loses them, as its block's shared memory is
// gone. Not told apart: the same block coordinates and shape, on the same
// worker, in a later launch; the copies a thread of that kind never waited for
// land at that later thread's first wait, so a kernel should end with
// cp_async_wait_all() when it has copies in flight.
struct CpCopy {
  void *dst;
  unsigned char bytes[16];
};
struct CpQueue {
  DitEmuU3 block{}, block_dim{}, grid_dim{};
  void *dynamic = nullptr;
  std::vector<CpCopy> copies;    // oldest first
  std::vector<size_t> groups;    // committed groups, oldest first: how many copies each holds
  size_t committed = 0;          // the copies in groups; the rest are not committed yet
};
struct CpTable {
  std::mutex mu;
  std::map<std::pair<const void *, unsigned>, CpQueue> queues;
};
inline CpTable cp_table;
inline thread_local char cp_worker;

inline bool same3(DitEmuU3 a, DitEmuU3 b) { return a.x == b.x && a.y == b.y && a.z == b.z; }

// The calling thread's queue (cp_table.mu held).
inline CpQueue &cp_queue() {
  CpQueue &q = cp_table.queues[std::make_pair(static_cast<const void *>(&cp_worker), thread_index())];
  void *dynamic = ::dit_emu::api->dynamic_shared();
  if (!same3(q.block, blockIdx) || !same3(q.block_dim, blockDim) || !same3(q.grid_dim, gridDim) ||
      q.dynamic != dynamic) {
    q.block = blockIdx, q.block_dim = blockDim, q.grid_dim = gridDim, q.dynamic = dynamic;
    q.copies.clear();
    q.groups.clear();
    q.committed = 0;
  }
  return q;
}

inline void cp_async(void *smem, const void *gmem, Site at) {
  if (((uintptr_t)smem & 15u) != 0 || ((uintptr_t)gmem & 15u) != 0) {
    snprintf(message(), 320, "cp_async_16: %s address %p is not 16-byte aligned", ((uintptr_t)smem & 15u) ? "the shared"
             : "the global", ((uintptr_t)smem & 15u) ? smem : gmem);
    trap(at, message());
  }
  CpCopy c;
  c.dst = smem;
  memcpy(c.bytes, gmem, 16);
  std::lock_guard<std::mutex> g(cp_table.mu);
  cp_queue().copies.push_back(c);
}

inline void cp_commit() {
  std::lock_guard<std::mutex> g(cp_table.mu);
  CpQueue &q = cp_queue();
  q.groups.push_back(q.copies.size() - q.committed);
  q.committed = q.copies.size();
}

// Lands every committed group but the `keep` most recent ones; all < 0: every
// copy, committed or not (cp.async.wait_all).
inline void cp_wait(int keep, bool all) {
  std::lock_guard<std::mutex> g(cp_table.mu);
  CpQueue &q = cp_queue();
  size_t groups = 0, n = 0;
  if (all) {
    groups = q.groups.size(), n = q.copies.size();
  } else if (q.groups.size() > (size_t)keep) {
    groups = q.groups.size() - (size_t)keep;
    for (size_t i = 0; i < groups; i++) n += q.groups[i];
  }
  for (size_t i = 0; i < n; i++) memcpy(q.copies[i].dst, q.copies[i].bytes, 16);
  q.copies.erase(q.copies.begin(), q.copies.begin() + (ptrdiff_t)n);
  q.groups.erase(q.groups.begin(), q.groups.begin() + (ptrdiff_t)groups);
  q.committed = all ? 0 : q.committed - n;
}

}  // namespace mma_emu

#define DIT_MMA_SITE const char *dit_file_ = __builtin_FILE(), int dit_line_ = __builtin_LINE()
#define DIT_MMA_AT ::dit::mma_emu::Site{dit_file_, dit_line_}

__device__ __forceinline__ void mma_m16n8k16_bf16(float d[4], const uint32_t a[4], const uint32_t b[2],
                                                  const float c[4], DIT_MMA_SITE) {
  mma_emu::mma<false>(d, a, b, c, DIT_MMA_AT);
}
__device__ __forceinline__ void mma_m16n8k16_f16(float d[4], const uint32_t a[4], const uint32_t b[2],
                                                 const float c[4], DIT_MMA_SITE) {
  mma_emu::mma<true>(d, a, b, c, DIT_MMA_AT);
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void *smem_row_ptr, DIT_MMA_SITE) {
  mma_emu::ldmatrix<4, false>(r, smem_row_ptr, DIT_MMA_AT);
}
__device__ __forceinline__ void ldmatrix_x2(uint32_t r[2], const void *smem_row_ptr, DIT_MMA_SITE) {
  mma_emu::ldmatrix<2, false>(r, smem_row_ptr, DIT_MMA_AT);
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const void *smem_row_ptr, DIT_MMA_SITE) {
  mma_emu::ldmatrix<4, true>(r, smem_row_ptr, DIT_MMA_AT);
}
__device__ __forceinline__ void ldmatrix_x2_trans(uint32_t r[2], const void *smem_row_ptr, DIT_MMA_SITE) {
  mma_emu::ldmatrix<2, true>(r, smem_row_ptr, DIT_MMA_AT);
}
__device__ __forceinline__ void cp_async_16(void *smem, const void *gmem, DIT_MMA_SITE) {
  mma_emu::cp_async(smem, gmem, DIT_MMA_AT);
}
__device__ __forceinline__ void cp_async_commit() { mma_emu::cp_commit(); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  static_assert(N >= 0, "cp.async.wait_group takes a count of groups");
  mma_emu::cp_wait(N, false);
}
__device__ __forceinline__ void cp_async_wait_all() { mma_emu::cp_wait(0, true); }
// Per thread, not warp-collective: round to nearest even; a NaN stays a quiet
// NaN of its sign (the hardware gives the canonical 0x7fff: both are NaN).
__device__ __forceinline__ uint32_t cvt_bf16x2_rn(float lo, float hi) {
  return mma_emu::bf16_rn(lo) | mma_emu::bf16_rn(hi) << 16;
}

#undef DIT_MMA_SITE
#undef DIT_MMA_AT

}  // namespace dit

#elif defined(__CUDACC_RTC__) || defined(__CUDACC__)

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#error "mma.cuh: mma.sync m16n8k16 with bf16, ldmatrix and cp.async need sm_80 or newer"
#endif
#if defined(__CUDACC_RTC__)
typedef unsigned int uint32_t; /* NVRTC has no libc headers */
#else
#include <stdint.h>
#endif

namespace dit {
namespace mma_ptx {
// The .shared state space's address of a generic pointer into shared memory.
__device__ __forceinline__ uint32_t smem(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }
}  // namespace mma_ptx

__device__ __forceinline__ void mma_m16n8k16_bf16(float d[4], const uint32_t a[4], const uint32_t b[2],
                                                  const float c[4]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%10, %11, %12, %13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
        "f"(c[3]));
}
__device__ __forceinline__ void mma_m16n8k16_f16(float d[4], const uint32_t a[4], const uint32_t b[2],
                                                 const float c[4]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%10, %11, %12, %13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
        "f"(c[3]));
}

// ldmatrix and cp.async read or write shared memory behind the compiler's
// back: "memory" keeps ordinary loads and stores on their side of them.
__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void *smem_row_ptr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(mma_ptx::smem(smem_row_ptr))
               : "memory");
}
__device__ __forceinline__ void ldmatrix_x2(uint32_t r[2], const void *smem_row_ptr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(mma_ptx::smem(smem_row_ptr))
               : "memory");
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const void *smem_row_ptr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(mma_ptx::smem(smem_row_ptr))
               : "memory");
}
__device__ __forceinline__ void ldmatrix_x2_trans(uint32_t r[2], const void *smem_row_ptr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(mma_ptx::smem(smem_row_ptr))
               : "memory");
}

// 16 bytes from global to shared memory, both 16-byte aligned, bypassing L1.
__device__ __forceinline__ void cp_async_16(void *smem, const void *gmem) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(mma_ptx::smem(smem)), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
// Waits until at most N of this thread's most recent committed groups are pending.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  static_assert(N >= 0, "cp.async.wait_group takes a count of groups");
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}
// Waits for every cp.async of this thread, committed or not.
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }

// lo and hi rounded to bf16 (nearest even, NaN stays NaN), packed: lo in the low half.
__device__ __forceinline__ uint32_t cvt_bf16x2_rn(float lo, float hi) {
  uint32_t r;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}

}  // namespace dit

#else
#error "mma.cuh is for NVRTC (kernels/) or the emulated device (tools/emu/cuda_emu.h)"
#endif
