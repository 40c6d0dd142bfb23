// attention_mma.cuh: multi-head attention of bf16 plans on tensor cores, in
// the structure of FlashAttention-2. A block holds BLOCK_M = 16 * WARPS
// queries of one (head, image), each warp 16 of them; keys and values stream
// through shared memory in tiles of BLOCK_N, copied by cp.async in a
// STAGES-deep pipeline. S = Q K^T and O += P V are mma.sync m16n8k16 (bf16 in,
// f32 accumulators) on ldmatrix fragments; the softmax is online, in f32, per
// row; P goes from the S accumulators to bf16 A fragments in registers (no
// shared-memory round trip); O / l is rounded to bf16 at the end. The T x T
// scores never exist in memory. fp32 plans keep attention_simt.cuh.
//   HD       head dim, a multiple of 8 (16-byte copies), at most 128; padded
//            to HDP = HD rounded up to 16 in shared memory (72 -> 80), the pad
//            columns zero
//   WARPS    warps per block: 16 * WARPS queries                (tile knob)
//   BLOCK_N  keys per shared tile, a multiple of 16             (tile knob)
//   STAGES   K/V tiles in flight: 1 (no overlap), 2 (double buffered), 3
//                                                               (tile knob)
// Defaults (AttnMmaDefault): WARPS 4, BLOCK_N 64, STAGES 2 for head dims up
// to 80 (shared memory: 36 KiB at HD 64, 44 KiB at HD 72, of the 48 KiB of
// static shared memory), BLOCK_N 32 above. Only kernels/mma.cuh's wrappers
// touch the tensor cores, so the emulated device (tools/emu) runs this code.
#pragma once

#include "common.cuh"
#include "mma.cuh"

namespace dit {

template <int HD, int WARPS, int BLOCK_N, int STAGES>
struct AttnMmaTraits {
  static_assert(HD % 8 == 0 && HD >= 16 && HD <= 128, "head dim: a multiple of 8 (16-byte cp.async), 16 to 128");
  static_assert(WARPS >= 1 && WARPS <= 8, "1 to 8 warps");
  static_assert(BLOCK_N % 16 == 0 && BLOCK_N >= 16 && BLOCK_N <= 128, "BLOCK_N: a multiple of 16, up to 128");
  static_assert(STAGES >= 1 && STAGES <= 3, "1 to 3 stages");
  static constexpr int HDP = (HD + 15) / 16 * 16;  // the mma's k (for S) and n (for O) extent
  static constexpr int LDS = HDP + 8;              // row stride in elements: 16 bytes of pad, so that
                                                   // the 8 rows of an ldmatrix hit distinct banks
  static constexpr int BLOCK_M = 16 * WARPS;
  static constexpr int THREADS = 32 * WARPS;
  static constexpr int CHUNKS = HD / 8;            // 16-byte copies per row
  static constexpr int STAGE_ELEMS = 2 * BLOCK_N * LDS;  // K tile, then V tile
  static constexpr int KV_ELEMS = STAGES * STAGE_ELEMS;
  // The Q tile is read into registers once, before the last stage is first
  // filled: with 2 or more stages it lives in that stage's space.
  static constexpr bool Q_IN_LAST_STAGE = STAGES >= 2 && BLOCK_M * LDS <= STAGE_ELEMS;
  static constexpr int Q_OFFSET = Q_IN_LAST_STAGE ? (STAGES - 1) * STAGE_ELEMS : KV_ELEMS;
  static constexpr int SMEM_ELEMS = Q_OFFSET + (Q_IN_LAST_STAGE ? STAGE_ELEMS : BLOCK_M * LDS);
  static constexpr int SMEM_BYTES = SMEM_ELEMS * 2;
  static_assert(SMEM_BYTES <= 48 * 1024, "Q and the K/V stages must fit 48 KiB of static shared memory");
  static_assert(SMEM_ELEMS % LDS == 0, "shared memory is whole rows");
};

// The knobs a plan uses unless it chooses others (kernels/README.md).
template <int HD>
struct AttnMmaDefault {
  static constexpr int WARPS = 4, BLOCK_N = HD <= 80 ? 64 : 32, STAGES = 2;
};

template <int ELEMS>
struct alignas(16) AttnMmaSmem {
  uint16_t e[ELEMS];
};

// 8 bf16 zeros at p (16-byte aligned): a row's chunk that no copy fills.
__device__ __forceinline__ void attn_zero8(uint16_t *p) {
  uint32_t *w = reinterpret_cast<uint32_t *>(p);
  w[0] = 0u, w[1] = 0u, w[2] = 0u, w[3] = 0u;
}

__device__ __forceinline__ float attn_bf16_lo(uint32_t v) { return __uint_as_float(v << 16); }
__device__ __forceinline__ float attn_bf16_hi(uint32_t v) { return __uint_as_float(v & 0xffff0000u); }

// qkv [N, T, 3*H*HD] -> out [N, T, H*HD], bf16; grid (ceil(T / (16 * WARPS)), H, N), block 32 * WARPS
template <int HD, int WARPS, int BLOCK_N, int STAGES>
__global__ void __launch_bounds__(32 * WARPS) attention_mma_kernel(const DitAttentionArgs args) {
  using Tr = AttnMmaTraits<HD, WARPS, BLOCK_N, STAGES>;
  constexpr int HDP = Tr::HDP, LDS = Tr::LDS, BM = Tr::BLOCK_M, BN = BLOCK_N, NT = Tr::THREADS;
  constexpr int CH = Tr::CHUNKS, KK = HDP / 16, SN = BN / 8, ON = HDP / 8;
  __shared__ AttnMmaSmem<Tr::SMEM_ELEMS> sm;
  uint16_t *const kv = sm.e;                // [STAGES][2][BN][LDS]: stage s's K tile, then its V tile
  uint16_t *const qs = sm.e + Tr::Q_OFFSET;  // [BM][LDS]
  const int T = args.T, D = args.H * HD;
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32, g = lane / 4, t = lane % 4;
  const int h = blockIdx.y, q0 = blockIdx.x * BM;
  const long long n = blockIdx.z, ld = 3LL * D;  // ld: elements per token of qkv
  const uint16_t *const base = static_cast<const uint16_t *>(args.qkv) + n * T * ld + h * HD;  // [T, 3D] of image n, at head h's q column
  const int ntiles = (T + BN - 1) / BN;

  // The pad columns [HD, HDP) of every row, zero for good: no copy writes them.
  if (HDP > HD)
    for (int r = tid; r < Tr::SMEM_ELEMS / LDS; r += NT) attn_zero8(sm.e + r * LDS + HD);
  // Q rows of the block (zeros past T), then K/V tiles; a tile's keys past T are zeros
  for (int c = tid; c < BM * CH; c += NT) {
    const int r = c / CH, col = c % CH * 8;
    if (q0 + r < T) cp_async_16(qs + r * LDS + col, base + (q0 + r) * ld + col);
    else attn_zero8(qs + r * LDS + col);
  }
  auto load_kv = [&](int tile, int stage) {
    uint16_t *const ks = kv + stage * Tr::STAGE_ELEMS, *const vs = ks + BN * LDS;  // [BN][LDS] each
    for (int c = tid; c < BN * CH; c += NT) {
      const int r = c / CH, col = c % CH * 8, key = tile * BN + r;
      if (key < T) {
        const uint16_t *src = base + key * ld + D + col;
        cp_async_16(ks + r * LDS + col, src);
        cp_async_16(vs + r * LDS + col, src + D);
      } else {
        attn_zero8(ks + r * LDS + col);
        attn_zero8(vs + r * LDS + col);
      }
    }
  };
  // Prologue: Q joins tile 0's group (one stage: its own group); tiles 0 .. STAGES-2
  if (STAGES == 1) cp_async_commit();
  for (int s = 0; s < STAGES - 1; s++) {
    if (s < ntiles) load_kv(s, s);
    cp_async_commit();
  }
  cp_async_wait<STAGES >= 2 ? STAGES - 2 : 0>();  // Q (and tile 0) landed
  __syncthreads();
  uint32_t qf[KK][4];  // the warp's 16 x HDP of Q as A fragments
#pragma unroll
  for (int kk = 0; kk < KK; kk++) ldmatrix_x4(qf[kk], qs + (warp * 16 + lane % 16) * LDS + kk * 16 + lane / 16 * 8);

  const float NEG_INF = __int_as_float(0xff800000);
  const float sl2 = args.scale * 1.4426950408889634f;  // scores in log2 units: exp2 of them
  float o[ON][4];  // O, 16 x HDP: rows g (o[.][0..1]) and g + 8 (o[.][2..3])
#pragma unroll
  for (int i = 0; i < ON; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
  float m0 = NEG_INF, m1 = NEG_INF;  // running max (log2 units) of rows g and g + 8
  float l0 = 0.0f, l1 = 0.0f;        // this lane's share of the running sums

  for (int j = 0; j < ntiles; j++) {
    __syncthreads();  // the stage refilled below was consumed (and, at j = 0, Q was read)
    if (j + STAGES - 1 < ntiles) load_kv(j + STAGES - 1, (j + STAGES - 1) % STAGES);
    cp_async_commit();  // empty near the end: the counting stays uniform
    cp_async_wait<STAGES - 1>();  // tile j landed
    __syncthreads();
    const uint16_t *const ks = kv + j % STAGES * Tr::STAGE_ELEMS, *const vs = ks + BN * LDS;

    // S = Q K^T, 16 x BN: K [BN][HDP] is the N x K B operand; one ldmatrix_x4 gives two n tiles
    float s[SN][4];
#pragma unroll
    for (int i = 0; i < SN; i++) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < KK; kk++) {
#pragma unroll
      for (int np = 0; np < SN / 2; np++) {
        uint32_t b[4];
        ldmatrix_x4(b, ks + (np * 16 + lane / 16 * 8 + lane % 8) * LDS + kk * 16 + lane / 8 % 2 * 8);
        mma_m16n8k16_bf16(s[2 * np], qf[kk], b, s[2 * np]);
        mma_m16n8k16_bf16(s[2 * np + 1], qf[kk], b + 2, s[2 * np + 1]);
      }
    }
    if ((j + 1) * BN > T) {  // the ragged last tile: keys >= T get no weight
#pragma unroll
      for (int i = 0; i < SN; i++)
#pragma unroll
        for (int e = 0; e < 4; e++)
          if (j * BN + i * 8 + 2 * t + e % 2 >= T) s[i][e] = NEG_INF;
    }

    // Online softmax: the rows' max over the quad's 4 lanes, then rescale O and l
    float x0 = NEG_INF, x1 = NEG_INF;
#pragma unroll
    for (int i = 0; i < SN; i++) {
      x0 = fmaxf(x0, fmaxf(s[i][0], s[i][1]));
      x1 = fmaxf(x1, fmaxf(s[i][2], s[i][3]));
    }
#pragma unroll
    for (int w = 1; w < 4; w <<= 1) {
      x0 = fmaxf(x0, __shfl_xor_sync(0xffffffffu, x0, w));
      x1 = fmaxf(x1, __shfl_xor_sync(0xffffffffu, x1, w));
    }
    // every tile has a key < T, so the new max is finite; exp2(-inf) = 0 on the first tile
    const float n0 = fmaxf(m0, x0 * sl2), n1 = fmaxf(m1, x1 * sl2);
    const float c0 = exp2f(m0 - n0), c1 = exp2f(m1 - n1);
    m0 = n0, m1 = n1;
    l0 *= c0, l1 *= c1;
#pragma unroll
    for (int i = 0; i < ON; i++) o[i][0] *= c0, o[i][1] *= c0, o[i][2] *= c1, o[i][3] *= c1;

    // O += P V: P's 16 x 16 chunk kc is the A fragment of S's n tiles 2kc and 2kc+1, rounded to
    // bf16 (l sums the rounded values: the weights O gets sum to l); V [BN][HDP] is the K x N
    // B operand, read transposed; one ldmatrix_x4_trans gives two n tiles of O
#pragma unroll
    for (int kc = 0; kc < BN / 16; kc++) {
      uint32_t a[4];
#pragma unroll
      for (int r = 0; r < 4; r++) {  // a[r]: row g (r even) or g + 8, keys 2t, 2t+1 (+8 for r >= 2)
        const float *sv = s[2 * kc + r / 2] + r % 2 * 2;
        const float mr = r % 2 ? m1 : m0;
        a[r] = cvt_bf16x2_rn(exp2f(sv[0] * sl2 - mr), exp2f(sv[1] * sl2 - mr));
        const float ps = attn_bf16_lo(a[r]) + attn_bf16_hi(a[r]);
        if (r % 2) l1 += ps;
        else l0 += ps;
      }
#pragma unroll
      for (int dp = 0; dp < ON / 2; dp++) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, vs + (kc * 16 + lane / 8 % 2 * 8 + lane % 8) * LDS + dp * 16 + lane / 16 * 8);
        mma_m16n8k16_bf16(o[2 * dp], a, b, o[2 * dp]);
        mma_m16n8k16_bf16(o[2 * dp + 1], a, b + 2, o[2 * dp + 1]);
      }
    }
  }

  // out [N, T, D]: rows g and g + 8 of the warp, each lane two adjacent columns per n tile
#pragma unroll
  for (int w = 1; w < 4; w <<= 1) {
    l0 += __shfl_xor_sync(0xffffffffu, l0, w);
    l1 += __shfl_xor_sync(0xffffffffu, l1, w);
  }
  const float r0 = 1.0f / l0, r1 = 1.0f / l1;
  const int row0 = q0 + warp * 16 + g, row1 = row0 + 8;
  uint16_t *const ob = static_cast<uint16_t *>(args.out) + n * T * D + h * HD;
#pragma unroll
  for (int i = 0; i < ON; i++) {
    const int col = i * 8 + 2 * t;
    if (i * 8 >= HD) break;  // the pad columns are not written
    if (row0 < T)
      *reinterpret_cast<uint32_t *>(ob + (long long)row0 * D + col) = cvt_bf16x2_rn(o[i][0] * r0, o[i][1] * r0);
    if (row1 < T)
      *reinterpret_cast<uint32_t *>(ob + (long long)row1 * D + col) = cvt_bf16x2_rn(o[i][2] * r1, o[i][3] * r1);
  }
}

}  // namespace dit
