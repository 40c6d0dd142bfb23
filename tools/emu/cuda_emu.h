// cuda_emu.h: what the kernel templates of kernels/ need of CUDA, for the
// host C++ compiler (the emulated device, README.md). The emulated driver
// force-includes it (-include) when it compiles a plan's emu image, so the
// templates stay unchanged. Every CUDA thread runs as a fiber of the SIMT
// executor (emu_simt.cpp); the ids, barriers and warp-collective operations
// below call into it through the DitEmuApi table the driver hands the module
// at load time. The module is a separate shared object: it shares no symbol
// with the emulator, only that table.
//   __shared__         static thread_local: a worker thread runs one block at
//                      a time, so each block has its own copy
//   __syncthreads()    the block's barrier; divergence and deadlock are errors
//   __shfl_*_sync ...  warp barriers over the mask's lanes, with CUDA's width
//                      and mask rules; lanes that disagree are errors
#pragma once

#define DIT_KERNEL_SIDE 1 /* kernel_abi.h: device pointers are typed pointers */
#define DIT_EMU 1

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <type_traits>
#include <utility>

struct DitEmuU3 {
  unsigned int x, y, z;
};

// What the executor knows of the running thread.
struct DitEmuThread {
  DitEmuU3 threadIdx, blockIdx, blockDim, gridDim;
};

enum DitEmuWarpKind {
  DIT_EMU_SHFL_IDX, DIT_EMU_SHFL_UP, DIT_EMU_SHFL_DOWN, DIT_EMU_SHFL_XOR,
  DIT_EMU_VOTE_BALLOT, DIT_EMU_VOTE_ANY, DIT_EMU_VOTE_ALL, DIT_EMU_SYNCWARP, DIT_EMU_COLLECTIVE
};

// A warp-collective computation over the lanes of `mask`: in[lane] and
// out[lane] for each lane of the mask (tensor-core fragments, kernels/mma.cuh).
typedef void (*DitEmuCollectiveFn)(const void *const in[32], void *const out[32], unsigned mask);

// The executor's entry points, handed to the module by dit_emu_module_init.
struct DitEmuApi {
  int version; /* DIT_EMU_API_VERSION */
  const DitEmuThread *(*self)(void);
  void (*syncthreads)(const char *file, int line);
  // kind: DitEmuWarpKind; value: 8 bytes of the lane's operand; arg: lane,
  // delta or lane mask; returns 8 bytes of the result
  uint64_t (*warp)(int kind, unsigned mask, uint64_t value, int arg, int width, const char *file, int line);
  void (*collective)(unsigned mask, DitEmuCollectiveFn fn, const void *in, void *out, const char *file, int line);
  void *(*dynamic_shared)(void);
  void (*trap)(const char *file, int line, const char *what);
};
#define DIT_EMU_API_VERSION 1

namespace dit_emu {
inline const DitEmuApi *api;

template <class T>
inline uint64_t bits_of(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "a shuffle moves at most 8 bytes");
  uint64_t u = 0;
  memcpy(&u, &v, sizeof v);
  return u;
}
template <class T>
inline T of_bits(uint64_t u) {
  T v;
  memcpy(&v, &u, sizeof v);
  return v;
}
template <class T>
inline T shfl(const char *f, int l, int kind, unsigned mask, T v, int arg, int width) {
  return of_bits<T>(api->warp(kind, mask, bits_of(v), arg, width, f, l));
}
template <class T>
inline T shfl_idx(const char *f, int l, unsigned m, T v, int src, int w = 32) { return shfl(f, l, DIT_EMU_SHFL_IDX, m, v, src, w); }
template <class T>
inline T shfl_up(const char *f, int l, unsigned m, T v, unsigned d, int w = 32) { return shfl(f, l, DIT_EMU_SHFL_UP, m, v, (int)d, w); }
template <class T>
inline T shfl_down(const char *f, int l, unsigned m, T v, unsigned d, int w = 32) { return shfl(f, l, DIT_EMU_SHFL_DOWN, m, v, (int)d, w); }
template <class T>
inline T shfl_xor(const char *f, int l, unsigned m, T v, int x, int w = 32) { return shfl(f, l, DIT_EMU_SHFL_XOR, m, v, x, w); }
inline unsigned vote(const char *f, int l, int kind, unsigned m, int pred) {
  return (unsigned)api->warp(kind, m, pred ? 1u : 0u, 0, 32, f, l);
}
inline void syncwarp(const char *f, int l, unsigned m = 0xffffffffu) { api->warp(DIT_EMU_SYNCWARP, m, 0, 0, 32, f, l); }

// The kernel table of a module: its NVRTC lowered name, the function, and a
// trampoline that unpacks cuLaunchKernel's void **kernelParams by the
// kernel's own parameter types.
struct Kernel {
  const char *name;
  const void *fn;
  void (*run)(void *const *params);
  int n_params;
  const unsigned *param_sizes;
};
template <auto F, class... A, size_t... I>
void run_idx(void *const *p, std::index_sequence<I...>) {
  F(*static_cast<std::remove_cv_t<A> *>(p[I])...);
}
template <auto F, class... A>
void run_sig(void *const *p, void (*)(A...)) {
  run_idx<F, A...>(p, std::index_sequence_for<A...>{});
}
template <auto F>
void run(void *const *p) {
  run_sig<F>(p, F);
}
template <class... A>
struct Sizes {
  static constexpr unsigned v[sizeof...(A) + 1] = {(unsigned)sizeof(A)..., 0u};
};
template <auto F, class... A>
Kernel entry_sig(const char *name, void (*)(A...)) {
  return Kernel{name, reinterpret_cast<const void *>(F), &run<F>, (int)sizeof...(A), Sizes<std::remove_cv_t<A>...>::v};
}
template <auto F>
Kernel entry(const char *name) {
  return entry_sig<F>(name, F);
}
}  // namespace dit_emu

#ifndef DIT_EMU_TYPES_ONLY /* the emulator itself takes only the types above */

#define DIT_EMU_HERE __FILE__, __LINE__

typedef DitEmuU3 uint3;
typedef DitEmuU3 dim3;

// the language
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __shared__ static thread_local
#define __constant__ static const

#define threadIdx (::dit_emu::api->self()->threadIdx)
#define blockIdx (::dit_emu::api->self()->blockIdx)
#define blockDim (::dit_emu::api->self()->blockDim)
#define gridDim (::dit_emu::api->self()->gridDim)
static constexpr int warpSize = 32;

// dynamic shared memory (cuLaunchKernel's sharedMemBytes): kernels declare it
// with DIT_DYNAMIC_SHARED (kernels/common.cuh), extern __shared__ under NVRTC
#define DIT_DYNAMIC_SHARED(type, name) type *name = static_cast<type *>(::dit_emu::api->dynamic_shared())

// barriers and warp-collective operations
#define __syncthreads() ::dit_emu::api->syncthreads(DIT_EMU_HERE)
#define __syncwarp(...) ::dit_emu::syncwarp(DIT_EMU_HERE __VA_OPT__(, ) __VA_ARGS__)
#define __shfl_sync(...) ::dit_emu::shfl_idx(DIT_EMU_HERE, __VA_ARGS__)
#define __shfl_up_sync(...) ::dit_emu::shfl_up(DIT_EMU_HERE, __VA_ARGS__)
#define __shfl_down_sync(...) ::dit_emu::shfl_down(DIT_EMU_HERE, __VA_ARGS__)
#define __shfl_xor_sync(...) ::dit_emu::shfl_xor(DIT_EMU_HERE, __VA_ARGS__)
#define __ballot_sync(mask, pred) ::dit_emu::vote(DIT_EMU_HERE, DIT_EMU_VOTE_BALLOT, mask, pred)
#define __any_sync(mask, pred) (::dit_emu::vote(DIT_EMU_HERE, DIT_EMU_VOTE_ANY, mask, pred) != 0)
#define __all_sync(mask, pred) (::dit_emu::vote(DIT_EMU_HERE, DIT_EMU_VOTE_ALL, mask, pred) != 0)
#define __trap() ::dit_emu::api->trap(DIT_EMU_HERE, "__trap()")
#define __threadfence() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define __threadfence_block() __atomic_thread_fence(__ATOMIC_SEQ_CST)

// bit casts
inline float __int_as_float(int v) { return ::dit_emu::of_bits<float>((uint32_t)v); }
inline int __float_as_int(float v) { return (int)(uint32_t)::dit_emu::bits_of(v); }
inline float __uint_as_float(unsigned v) { return ::dit_emu::of_bits<float>(v); }
inline unsigned __float_as_uint(float v) { return (unsigned)::dit_emu::bits_of(v); }
inline double __longlong_as_double(long long v) { return ::dit_emu::of_bits<double>((uint64_t)v); }
inline long long __double_as_longlong(double v) { return (long long)::dit_emu::bits_of(v); }

// float intrinsics: IEEE operations, exactly rounded (the module is compiled
// with -ffp-contract=off, so nothing fuses)
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __frcp_rn(float a) { return 1.0f / a; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __saturatef(float a) { return a < 0.0f ? 0.0f : (a > 1.0f ? 1.0f : (a == a ? a : 0.0f)); }
// the GPU's rsqrtf is within 2 ulp; the emulation rounds 1/sqrt exactly
inline float rsqrtf(float a) { return 1.0f / sqrtf(a); }
// fast-math intrinsics: their GPU results differ by more than an ulp; the
// emulation gives the exact function (a kernel that depends on the difference
// is not checked here)
inline float __expf(float a) { return expf(a); }
inline float __logf(float a) { return logf(a); }
inline float __sinf(float a) { return sinf(a); }
inline float __cosf(float a) { return cosf(a); }
inline float __tanhf(float a) { return tanhf(a); }
template <class T>
inline T __ldg(const T *p) { return *p; }

// integer helpers of the CUDA math library
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }

// atomics: blocks run on several threads
inline float atomicAdd(float *p, float v) {
  uint32_t old = __atomic_load_n(reinterpret_cast<uint32_t *>(p), __ATOMIC_RELAXED), want;
  do {
    want = ::dit_emu::bits_of(::dit_emu::of_bits<float>(old) + v) & 0xffffffffu;
  } while (!__atomic_compare_exchange_n(reinterpret_cast<uint32_t *>(p), &old, want, true, __ATOMIC_SEQ_CST,
                                        __ATOMIC_RELAXED));
  return ::dit_emu::of_bits<float>(old);
}
inline int atomicAdd(int *p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
inline unsigned atomicAdd(unsigned *p, unsigned v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
inline int atomicMax(int *p, int v) {
  int old = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (old < v && !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
  }
  return old;
}

// the module's table and its link to the executor
#define DIT_EMU_KERNELS_BEGIN                                                                     \
  extern "C" __attribute__((visibility("default"))) void dit_emu_module_init(const DitEmuApi *a) { \
    ::dit_emu::api = a;                                                                           \
  }                                                                                               \
  static thread_local char dit_emu_tls_anchor;                                                    \
  extern "C" __attribute__((visibility("default"))) void *dit_emu_tls_touch(void) {              \
    return &dit_emu_tls_anchor;                                                                   \
  }                                                                                               \
  extern "C" __attribute__((visibility("default"))) const ::dit_emu::Kernel dit_emu_kernels[];    \
  const ::dit_emu::Kernel dit_emu_kernels[] = {
#define DIT_EMU_KERNEL(name, ...) ::dit_emu::entry<&__VA_ARGS__>(name),
#define DIT_EMU_KERNELS_END \
  ::dit_emu::Kernel{nullptr, nullptr, nullptr, 0, nullptr} \
  }                         \
  ;

#endif /* DIT_EMU_TYPES_ONLY */
