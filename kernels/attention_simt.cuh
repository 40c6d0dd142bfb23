// attention_simt.cuh: multi-head attention in fp32 on CUDA cores, flash
// style: keys and values stream through shared memory in tiles of BLOCK_N,
// each query keeps a running max, sum and output (online softmax), and the
// T x T scores never exist in memory. One warp per query; the lanes split the
// head dim. This is the fp32 path (fp32 plans allow no TF32 or bf16) and the
// GPU reference for the tensor-core kernel (attention_mma.cuh). BF16: qkv
// and out in bf16 (a bf16 plan whose head dim the tensor-core kernel does
// not take), the arithmetic in fp32.
//   HD       head dim (64, 72, ...), at most 512: each lane holds HD / 32 of
//            its query's q and output (the VAE's one head of 512 channels:
//            16 each), the K and V tiles take BLOCK_N keys of HD (8 at 512)
//   WARPS    queries per block        (tile knob)
//   BLOCK_N  keys per shared tile     (tile knob)
//   BF16     qkv and out in bf16
#pragma once

#include "bf16.cuh"
#include "common.cuh"

namespace dit {

template <int HD, int WARPS, int BLOCK_N>
struct AttnSimtTraits {
  static_assert(HD >= 1 && HD <= 512, "head dim up to 512");
  static constexpr int PER_LANE = (HD + 31) / 32;
  static constexpr int SMEM_BYTES = 2 * BLOCK_N * HD * (int)sizeof(float);
  static_assert(SMEM_BYTES <= 48 * 1024, "K and V tiles must fit 48 KiB of static shared memory");
};

// qkv [N, T, 3*H*HD] -> out [N, T, H*HD]; grid (ceil(T / WARPS), H, N), block 32 * WARPS
template <int HD, int WARPS, int BLOCK_N, bool BF16>
__global__ void __launch_bounds__(32 * WARPS)
attention_simt_kernel(const DitAttentionArgs args) {
  const void *__restrict__ qkv = args.qkv;
  void *__restrict__ out = args.out;
  const int T = args.T, H = args.H;
  const float scale = args.scale;
  using Traits = AttnSimtTraits<HD, WARPS, BLOCK_N>;
  constexpr int P = Traits::PER_LANE;
  __shared__ float ks[BLOCK_N][HD], vs[BLOCK_N][HD];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int h = blockIdx.y;
  const long long n = blockIdx.z;
  const int D = H * HD;
  const int query = blockIdx.x * WARPS + warp;
  const long long base = n * (long long)T * 3 * D; // [T, 3D] of image n
  float q[P], acc[P];
#pragma unroll
  for (int i = 0; i < P; i++) {
    const int e = lane + 32 * i;
    q[i] = (query < T && e < HD) ? load_elem<BF16>(qkv, base + (long long)query * 3 * D + h * HD + e) : 0.0f;
    acc[i] = 0.0f;
  }
  float m = __int_as_float(0xff800000), l = 0.0f; // -inf: the first key sets the running max
  for (int k0 = 0; k0 < T; k0 += BLOCK_N) {
    __syncthreads();  // the previous tile is consumed
    for (int idx = threadIdx.x; idx < BLOCK_N * HD; idx += 32 * WARPS) {
      const int j = idx / HD, e = idx % HD, key = k0 + j;
      ks[j][e] = key < T ? load_elem<BF16>(qkv, base + (long long)key * 3 * D + D + h * HD + e) : 0.0f;
      vs[j][e] = key < T ? load_elem<BF16>(qkv, base + (long long)key * 3 * D + 2 * D + h * HD + e) : 0.0f;
    }
    __syncthreads();
    const int keys = T - k0 < BLOCK_N ? T - k0 : BLOCK_N;
    for (int j = 0; j < keys; j++) {
      float s = 0.0f;
#pragma unroll
      for (int i = 0; i < P; i++) {
        const int e = lane + 32 * i;
        if (e < HD) s += q[i] * ks[j][e];
      }
      for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
      s *= scale;
      const float m_new = fmaxf(m, s);
      const float corr = expf(m - m_new), p = expf(s - m_new);
      l = l * corr + p;
#pragma unroll
      for (int i = 0; i < P; i++) {
        const int e = lane + 32 * i;
        if (e < HD) acc[i] = acc[i] * corr + p * vs[j][e];
      }
      m = m_new;
    }
  }
  if (query >= T) return;
  const long long o = (n * T + query) * (long long)D + h * HD; // out [N, T, D]
#pragma unroll
  for (int i = 0; i < P; i++) {
    const int e = lane + 32 * i;
    if (e < HD) store_elem<BF16>(out, o + e, acc[i] / l);
  }
}

}  // namespace dit
