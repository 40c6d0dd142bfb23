// common.cuh: helpers shared by the kernel templates: block reductions and
// the float math the CPU backend also uses, so GPU and CPU agree closely.
// Included by NVRTC from the copy embedded in ditc (cmake/EmbedKernels.cmake).
#pragma once

#include "kernel_abi.h"

namespace dit {

// Sum over a block of THREADS threads (a multiple of 32); every thread gets the result.
template <int THREADS>
__device__ __forceinline__ float block_sum(float v, float *smem /* [THREADS / 32] */) {
  static_assert(THREADS % 32 == 0 && THREADS <= 1024, "THREADS must be a multiple of 32");
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  v = lane < THREADS / 32 ? smem[lane] : 0.0f;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  __syncthreads();
  return v;
}

}  // namespace dit
