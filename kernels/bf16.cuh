// bf16.cuh: bf16 values in the kernels of bf16 plans, as 16-bit patterns
// (the top half of a float32): loads widen exactly, stores round to nearest,
// ties to even, NaN kept NaN, as runtime/cpu/cpu_math.h's dit_round_bf16
// rounds the CPU backend's copy. No cuda_bf16.h: the same code runs on the
// emulated device (tools/emu), compiled by the host's C++ compiler.
#pragma once

namespace dit {

__device__ __forceinline__ float bf16_to_float(unsigned short h) { return __uint_as_float((unsigned)h << 16); }

__device__ __forceinline__ unsigned short float_to_bf16(float f) {
  unsigned u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u | 0x00400000u) >> 16); // NaN: quiet
  return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// Element i of a float array, or of a bf16 one when BF16.
template <bool BF16>
__device__ __forceinline__ float load_elem(const void *p, long long i) {
  return BF16 ? bf16_to_float(((const unsigned short *)p)[i]) : ((const float *)p)[i];
}
template <bool BF16>
__device__ __forceinline__ void store_elem(void *p, long long i, float v) {
  if (BF16) ((unsigned short *)p)[i] = float_to_bf16(v);
  else ((float *)p)[i] = v;
}

}  // namespace dit
