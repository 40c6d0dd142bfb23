// embed.cuh: the small ops around the transformer: patchify, unpatchify,
// the broadcast add (bias, pos_embed), SiLU, the timestep features and the
// label gather (plan ops 1, 10, 3, 6, 4, 5), and a linear op's GELU after a
// BIAS GEMM. A template's OUT_BF16 stores its result in bf16 (bf16 plans:
// the result feeds a GEMM). One thread per output element;
// the index arithmetic uses the compile-time sizes, like the CPU backend
// (runtime/cpu/cpu_misc.c) whose results they must reproduce.
#pragma once

#include "bf16.cuh"
#include "common.cuh"

namespace dit {

// x [N,C,H,W] -> out [N, (H/P)(W/P), C*P*P], patch vector order (c, i, j)
template <int C, int H, int W, int P, bool OUT_BF16>
__global__ void patchify_kernel(const DitPatchArgs args) {
  const float *__restrict__ x = args.x;
  void *__restrict__ out = args.out;
  const long long n = args.n;
  static_assert(H % P == 0 && W % P == 0, "the patch must tile the image");
  constexpr int GW = W / P, T = (H / P) * GW, PD = C * P * P;
  const long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (e >= n * T * PD) return;
  const long long img = e / (T * PD);
  const int tok = (int)(e / PD % T), v = (int)(e % PD);
  const int ch = v / (P * P), i = v / P % P, j = v % P, row = tok / GW, col = tok % GW;
  store_elem<OUT_BF16>(out, e, x[((img * C + ch) * H + row * P + i) * W + col * P + j]);
}

// x [N, G*G, P*P*C] -> out [N, C, G*P, G*P], token vector order (i, j, c)
template <int C, int G, int P>
__global__ void unpatchify_kernel(const DitPatchArgs args) {
  const float *__restrict__ x = args.x;
  float *__restrict__ out = (float *)args.out;
  const long long n = args.n;
  constexpr int S = G * P;
  const long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (e >= n * C * S * S) return;
  const long long img = e / ((long long)C * S * S);
  const int ch = (int)(e / (S * S) % C), y = (int)(e / S % S), xx = (int)(e % S);
  const int row = y / P, i = y % P, col = xx / P, j = xx % P;
  out[e] = x[(img * G * G + row * G + col) * (P * P * C) + (i * P + j) * C + ch];
}

// out[e] = a[e] + b[e % NB]: b broadcast over a's leading dims; NB = 0: b
// has a's shape (at any batch)
template <long long NB>
__global__ void add_kernel(const DitAddArgs args) {
  const float *__restrict__ a = args.a, *__restrict__ b = args.b;
  float *__restrict__ out = args.out;
  const long long count = args.count;
  const long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (e < count) out[e] = a[e] + (NB ? b[e % (NB ? NB : 1)] : b[e]);
}

// in place after a GEMM (out == x, fp32): no __restrict__
template <bool OUT_BF16>
__global__ void silu_kernel(const DitSiluArgs args) {
  const float *x = args.x;
  void *out = args.out;
  const long long count = args.count;
  const long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (e < count) store_elem<OUT_BF16>(out, e, x[e] / (1.0f + expf(-x[e])));
}

// in place after a BIAS GEMM (out == x): GELU with the tanh approximation,
// tanhf itself (never tanh.approx), so that fp32 plans keep their tolerance
// whatever cuBLASLt's GELU epilogue does (ditc --gelu-epilogue)
template <bool OUT_BF16>
__global__ void gelu_tanh_kernel(const DitGeluArgs args) {
  const float *x = args.x;
  void *out = args.out;
  const long long count = args.count;
  const long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (e >= count) return;
  const float v = x[e];
  const float inner = 0.7978845608028654f * (v + 0.044715f * v * v * v); // sqrt(2/pi)
  store_elem<OUT_BF16>(out, e, 0.5f * v * (1.0f + tanhf(inner)));
}

// t [N] -> out [N, 2*HALF] = [cos(t f), sin(t f)]; freqs [HALF] comes from the host
// (the official float32 table, runtime/model/timestep_freqs.c), never __sinf/__cosf.
template <int HALF, bool OUT_BF16>
__global__ void timestep_freq_kernel(const DitTimestepArgs args) {
  const long long *__restrict__ t = args.t;
  const float *__restrict__ freqs = args.freqs;
  void *__restrict__ out = args.out;
  const long long n = args.n;
  const long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (e >= n * 2 * HALF) return;
  const long long row = e / (2 * HALF);
  const int k = (int)(e % (2 * HALF));
  const float arg = __fmul_rn((float)t[row], freqs[k % HALF]);
  store_elem<OUT_BF16>(out, e, k < HALF ? cosf(arg) : sinf(arg));
}

// out [N, D] = table[ids[n], :] (ids validated by the runtime)
template <int D>
__global__ void embedding_kernel(const DitEmbeddingArgs args) {
  const float *__restrict__ table = args.table;
  const long long *__restrict__ ids = args.ids;
  float *__restrict__ out = args.out;
  const long long n = args.n;
  const long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (e < n * D) out[e] = table[ids[e / D] * D + e % D];
}

}  // namespace dit
