// adaln_norm.cuh: LayerNorm + adaLN modulate, alone or after the gated
// residual (plan ops ln_modulate and res_gate_ln_modulate). One block per
// token row of D channels; the row stays in registers (ceil(D / THREADS)
// values per thread), so the activations are read once and written once.
//   D        hidden size (compile-time: the loops unroll, no local memory)
//   THREADS  threads per block, a multiple of 32: a tile knob for the autotuner
//   OUT_BF16 out in bf16 (bf16 plans: it feeds a GEMM); r, x, h, mod stay fp32
#pragma once

#include "bf16.cuh"
#include "common.cuh"

namespace dit {

template <int D, int THREADS>
struct AdaLnTraits {
  static_assert(THREADS % 32 == 0 && THREADS <= 1024, "THREADS must be a multiple of 32");
  static constexpr int PER_THREAD = (D + THREADS - 1) / THREADS;
  static constexpr bool EXACT = D % THREADS == 0; // no bounds checks needed
};

// r = x + gmod[n, gate_col..] * h (when RESIDUAL); out = LN(r) * (1 + mod[scale]) + mod[shift].
// r may be x itself (the residual stream updated in place), so neither is __restrict__.
template <int D, int THREADS, bool RESIDUAL, bool OUT_BF16>
__global__ void __launch_bounds__(THREADS)
adaln_norm_kernel(const DitAdaLnArgs args) {
  const float *x = args.x;
  float *r = args.r;
  const float *__restrict__ h = args.h, *__restrict__ gmod = args.gmod, *__restrict__ mod = args.mod;
  void *__restrict__ out = args.out;
  const long long gmod_cols = args.gmod_cols, gate_col = args.gate_col, mod_cols = args.mod_cols;
  const long long shift_col = args.shift_col, scale_col = args.scale_col, tokens = args.tokens;
  const float eps = args.eps;
  using Traits = AdaLnTraits<D, THREADS>;
  constexpr int P = Traits::PER_THREAD;
  __shared__ float red[THREADS / 32];
  const long long row = blockIdx.x;
  const long long n = row / tokens;
  const float *xr = x + row * D;
  float v[P];
#pragma unroll
  for (int i = 0; i < P; i++) {
    const int d = threadIdx.x + i * THREADS;
    v[i] = 0.0f;
    if (!Traits::EXACT && d >= D) continue;
    v[i] = xr[d];
    if (RESIDUAL) {
      v[i] = v[i] + gmod[n * gmod_cols + gate_col + d] * h[row * D + d];
      r[row * D + d] = v[i];  // may be x itself: each element is read before it is written
    }
  }
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < P; i++) s += v[i];
  const float mean = block_sum<THREADS>(s, red) / D;
  float q = 0.0f;
#pragma unroll
  for (int i = 0; i < P; i++) {
    const int d = threadIdx.x + i * THREADS;
    if (Traits::EXACT || d < D) q += (v[i] - mean) * (v[i] - mean);
  }
  const float rstd = rsqrtf(block_sum<THREADS>(q, red) / D + eps);
  const float *m = mod + n * mod_cols;
#pragma unroll
  for (int i = 0; i < P; i++) {
    const int d = threadIdx.x + i * THREADS;
    if (!Traits::EXACT && d >= D) continue;
    store_elem<OUT_BF16>(out, row * D + d, (v[i] - mean) * rstd * (1.0f + m[scale_col + d]) + m[shift_col + d]);
  }
}

}  // namespace dit
