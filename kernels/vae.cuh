// vae.cuh: the kernels of the convolutional models (the VAE, issue 13), in
// fp32 (VAE plans keep fp32 values, compiler/pass_bf16.c): GroupNorm with
// its fused SiLU, conv2d as an implicit GEMM, the token transposes around
// the mid-block attention, and the encoder's posterior sample. Their CPU
// references are runtime/cpu/cpu_norm.c and cpu_conv.c.
//   group_norm_kernel<THREADS, SILU>        one block per (group, image)
//   conv2d_kernel<KS, BM, BN, BK>           tiles of BM output channels x BN output pixels
//   to_tokens_kernel<C>, from_tokens_kernel<C>, latent_sample_kernel<C>: one thread per output element
#pragma once

#include "common.cuh"

namespace dit {

// x [N, C, H, W] -> out like x: torch.nn.GroupNorm (biased variance), then
// SiLU when SILU. Group g of image n is contiguous ([C/G, HW]); its block
// reads it three times: the mean, the variance about it (two exact passes,
// fp32 sums per thread, then block sums), and the normalisation.
// grid (G, N), block THREADS.
template <int THREADS, bool SILU>
__global__ void __launch_bounds__(THREADS) group_norm_kernel(const DitGroupNormArgs args) {
  static_assert(THREADS % 32 == 0 && THREADS >= 32 && THREADS <= 1024, "THREADS: whole warps, at most 1024");
  __shared__ float red[THREADS / 32];
  const long long hw = args.hw, cg = args.channels / args.groups, len = cg * hw;
  const long long base = ((long long)blockIdx.y * args.groups + blockIdx.x) * len;
  const float *__restrict__ v = args.x + base; // [cg, hw]
  float *__restrict__ o = args.out + base;
  float s = 0.0f;
  for (long long i = threadIdx.x; i < len; i += THREADS) s += v[i];
  const float mean = block_sum<THREADS>(s, red) / (float)len;
  float sq = 0.0f;
  for (long long i = threadIdx.x; i < len; i += THREADS) {
    const float d = v[i] - mean;
    sq += d * d;
  }
  const float var = block_sum<THREADS>(sq, red) / (float)len;
  const float rstd = 1.0f / sqrtf(var + args.eps);
  const long long c0 = (long long)blockIdx.x * cg;
  for (long long i = threadIdx.x; i < len; i += THREADS) {
    const long long ch = c0 + i / hw;
    float y = (v[i] - mean) * (rstd * args.gamma[ch]) + args.beta[ch];
    if (SILU) y = y / (1.0f + expf(-y));
    o[i] = y;
  }
}

// The sizes of one convolution (DitConv2dArgs) that its tiles need.
// conv2d as an implicit GEMM: out[co, p] = alpha * sum_k w[co, k] x'[k, p]
// + b[co], with k = (ci, ky, kx) (the weight's [Cout, Cin, KS, KS] order)
// and p = (n, oy, ox) running over every image's output pixels; x'[k, p] is
// gathered on the fly: x nearest-upsampled by `up`, zero-padded, read at
// (oy * stride + ky - pad_top, ox * stride + kx - pad_left). A block
// computes BM channels x BN pixels; K goes through shared memory in chunks
// of BK (w tile [BK][BM], x' tile [BK][BN]); each of the BM * BN / 16
// threads sums a 4 x 4 micro-tile in fp32 in k order, its rows and columns
// strided by BM / 4 and BN / 4 so that a warp reads and writes consecutive
// pixels. grid (ceil(N Ho Wo / BN), ceil(Cout / BM)).
template <int KS, int BM, int BN, int BK>
struct Conv2dTraits {
  static_assert(KS == 1 || KS == 3, "1x1 and 3x3 convolutions");
  static_assert(BM % 4 == 0 && BN % 4 == 0 && BK >= 1, "4 x 4 micro-tiles");
  static constexpr int THREADS = BM * BN / 16;
  static_assert(THREADS % 32 == 0 && THREADS <= 1024, "whole warps, at most 1024 threads");
  static_assert(THREADS % BN == 0 && (BK * BN) % THREADS == 0, "each thread gathers one pixel column of x'");
  static_assert(THREADS % BK == 0 && (BK * BM) % THREADS == 0, "each thread loads one k column of w");
  static_assert((BK * (BM + BN)) * 4 <= 48 * 1024, "the tiles fit 48 KiB of static shared memory");
};

template <int KS, int BM, int BN, int BK>
__global__ void __launch_bounds__(BM * BN / 16) conv2d_kernel(const DitConv2dArgs a) {
  using Tr = Conv2dTraits<KS, BM, BN, BK>;
  constexpr int THREADS = Tr::THREADS, KK = KS * KS;
  __shared__ float ws[BK][BM], xs[BK][BN];
  const int tid = threadIdx.x;
  const long long howo = (long long)a.Ho * a.Wo, P = a.n * howo;
  const int K = a.Cin * KK;
  const long long p0 = (long long)blockIdx.x * BN;
  const int m0 = blockIdx.y * BM;
  // this thread's gather column: pixel p0 + jx, its image, row and column
  const int jx = tid % BN, kx0 = tid / BN;
  const long long px = p0 + jx;
  const bool pvalid = px < P;
  const long long pn = pvalid ? px / howo : 0, pq = pvalid ? px % howo : 0;
  const int oy = (int)(pq / a.Wo), ox = (int)(pq % a.Wo);
  const int hu = a.H * a.up, wu = a.W * a.up, sh = a.up == 2 ? 1 : 0;
  const float *__restrict__ xn = a.x + pn * a.Cin * a.H * a.W; // [Cin, H, W]
  // this thread's weight column: k offset kw, rows mw0 + THREADS / BK * s
  const int kw = tid % BK, mw0 = tid / BK;
  const int tm = tid / (BN / 4), tn = tid % (BN / 4);
  float acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;
  for (int k0 = 0; k0 < K; k0 += BK) {
    __syncthreads(); // the previous chunk is consumed
#pragma unroll
    for (int s = 0; s < BK * BM / THREADS; s++) {
      const int m = mw0 + s * (THREADS / BK), co = m0 + m, k = k0 + kw;
      ws[kw][m] = co < a.Cout && k < K ? a.w[(long long)co * K + k] : 0.0f;
    }
#pragma unroll
    for (int s = 0; s < BK * BN / THREADS; s++) {
      const int kk = kx0 + s * (THREADS / BN), k = k0 + kk;
      float val = 0.0f;
      if (pvalid && k < K) {
        const int ci = k / KK, r = k % KK, ky = r / KS, kx = r % KS;
        const int iy = oy * a.stride + ky - a.pad_top, ix = ox * a.stride + kx - a.pad_left;
        if (iy >= 0 && iy < hu && ix >= 0 && ix < wu)
          val = xn[((long long)ci * a.H + (iy >> sh)) * a.W + (ix >> sh)];
      }
      xs[kk][jx] = val;
    }
    __syncthreads();
#pragma unroll 4
    for (int kk = 0; kk < BK; kk++) {
      float wr[4], xr[4];
#pragma unroll
      for (int i = 0; i < 4; i++) wr[i] = ws[kk][tm + i * (BM / 4)];
#pragma unroll
      for (int j = 0; j < 4; j++) xr[j] = xs[kk][tn + j * (BN / 4)];
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] += wr[i] * xr[j];
    }
  }
#pragma unroll
  for (int j = 0; j < 4; j++) {
    const long long p = p0 + tn + j * (BN / 4);
    if (p >= P) continue;
    const long long n = p / howo, q = p % howo;
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const int co = m0 + tm + i * (BM / 4);
      if (co < a.Cout) a.out[(n * a.Cout + co) * howo + q] = a.alpha * acc[i][j] + a.b[co];
    }
  }
}

// x [N, C, HW] -> out [N, HW, C]; one thread per output element.
template <int C>
__global__ void to_tokens_kernel(const DitTokensArgs args) {
  const long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (e >= args.count) return;
  const long long hw = args.hw, c = e % C, p = (e / C) % hw, n = e / (C * hw);
  args.out[e] = args.x[(n * C + c) * hw + p];
}

// o [N, HW, C], residual [N, C, HW] -> out [N, C, HW] = residual + o^T; one
// thread per output element.
template <int C>
__global__ void from_tokens_kernel(const DitTokensArgs args) {
  const long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (e >= args.count) return;
  const long long hw = args.hw, p = e % hw, c = (e / hw) % C, n = e / (C * hw);
  args.out[e] = args.residual[e] + args.x[(n * hw + p) * C + c];
}

// moments [N, 2C, HW] (mean, logvar), noise [N, C, HW] -> out [N, C, HW] =
// scale * (mean + exp(clamp(logvar, -30, 20) / 2) * noise), the exponential
// in double as the CPU backend takes it; one thread per output element.
template <int C>
__global__ void latent_sample_kernel(const DitLatentSampleArgs args) {
  const long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (e >= args.count) return;
  const long long hw = args.hw, p = e % hw, nc = e / hw, n = nc / C, c = nc % C;
  const float mean = args.moments[(n * 2 * C + c) * hw + p], lvf = args.moments[(n * 2 * C + C + c) * hw + p];
  const double lv = lvf < -30.0f ? -30.0 : lvf > 20.0f ? 20.0 : (double)lvf;
  const float sd = (float)exp(0.5 * lv);
  args.out[e] = (float)(args.scale * (double)(mean + sd * args.noise[e]));
}

}  // namespace dit
