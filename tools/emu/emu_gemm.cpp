// emu_gemm.cpp: the arithmetic of the emulated cuBLASLt (emu_gemm.h): fp32,
// TF32-rounded and bf16 operands packed into fp32 panels, micro-tiles summed
// in fp32 in the order of the algorithm (emu_gemm.h's GemmAlgo), the
// epilogue in fp32 and one rounding to a bf16 D.
#include "emu_gemm.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <vector>

#include "emu_internal.h"

namespace emu {
namespace {


// Rounds to TF32 (10 mantissa bits), to nearest even on the bit pattern.
float tf32(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) == 0x7f800000u) {
    if (u & 0x7fffffu) u = (u | 0x400000u) & 0xffffe000u;  // NaN stays a (quiet) NaN
  } else {
    u += 0xfffu + ((u >> 13) & 1u);
    u &= 0xffffe000u;
  }
  std::memcpy(&x, &u, 4);
  return x;
}

// The exact fp32 value of a bf16.
float bf16_value(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

// Rounds to bf16 (8 significant bits), to nearest even on the bit pattern
// (overflow gives inf); a NaN gives the canonical NaN 0x7fff, as
// __float2bfloat16_rn does.
uint16_t bf16_round(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fffu;
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// Element i of the fp32 or bf16 array at p.
template <bool BF16> float element(uintptr_t p, int64_t i) {
  if (BF16) return bf16_value(reinterpret_cast<const uint16_t *>(p)[i]);
  return reinterpret_cast<const float *>(p)[i];
}
float element(uintptr_t p, int64_t i, bool bf16) { return bf16 ? element<true>(p, i) : element<false>(p, i); }

// DIT_EMU_GELU=approx: the epilogue's tanh keeps 11 significant bits, as an
// approximate hardware tanh (tanh.approx.f32: about 2^-11 relative error)
// may; a plan whose tolerance depends on the epilogue's exact tanh shows it.
bool gelu_approx() {
  static const bool approx = [] {
    const char *v = std::getenv("DIT_EMU_GELU");
    return v && std::strcmp(v, "approx") == 0;
  }();
  return approx;
}

float gelu_tanh(float x) {
  const float s = 0.7978845608028654f;  // sqrt(2/pi)
  float t = std::tanh(s * (x + 0.044715f * x * x * x));
  if (gelu_approx()) {
    uint32_t u;
    std::memcpy(&u, &t, 4);
    u &= 0xfffff000u;  // 23 - 12 = 11 bits of mantissa kept
    std::memcpy(&t, &u, 4);
  }
  return 0.5f * x * (1.0f + t);
}

typedef float v4 __attribute__((vector_size(16)));
constexpr int64_t MR = 4, NR = 8, NB = 8;  // micro-tile MR x NR; NB column panels per block

// acc[r][c] = sum over kk, in k order, of ap[kk*MR + r] * bp[kk*NR + c]: each
// lane is one dot product accumulated sequentially in fp32.
void micro(const float *ap, const float *bp, int64_t k, float acc[MR][NR]) {
  v4 c0[MR], c1[MR];
  for (int r = 0; r < MR; r++) c0[r] = c1[r] = v4{0, 0, 0, 0};
  for (int64_t kk = 0; kk < k; kk++, ap += MR, bp += NR) {
    v4 b0, b1;
    std::memcpy(&b0, bp, 16);
    std::memcpy(&b1, bp + 4, 16);
    for (int r = 0; r < MR; r++) {
      v4 a = v4{ap[r], ap[r], ap[r], ap[r]};
      c0[r] = c0[r] + a * b0;
      c1[r] = c1[r] + a * b1;
    }
  }
  for (int r = 0; r < MR; r++) {
    std::memcpy(acc[r], &c0[r], 16);
    std::memcpy(acc[r] + 4, &c1[r], 16);
  }
}

// op(A) into panels of MR rows (k-major), op(B) into panels of NR columns, as
// fp32 (bf16 exactly so), TF32-rounded when asked; every transpose.
template <bool BF16> void pack(const Gemm &g, float *ap, float *bp) {
  const int64_t k = g.k;
  for (int64_t i = 0; i < g.m; i++) {
    float *dst = &ap[static_cast<size_t>((i / MR) * MR * k + i % MR)];
    for (int64_t kk = 0; kk < k; kk++) {
      float v = element<BF16>(g.a, g.ta ? kk + i * g.lda : i + kk * g.lda);
      dst[kk * MR] = g.tf32 ? tf32(v) : v;
    }
  }
  for (int64_t j = 0; j < g.n; j++) {
    float *dst = &bp[static_cast<size_t>((j / NR) * NR * k + j % NR)];
    for (int64_t kk = 0; kk < k; kk++) {
      float v = element<BF16>(g.b, g.tb ? j + kk * g.ldb : kk + j * g.ldb);
      dst[kk * NR] = g.tf32 ? tf32(v) : v;
    }
  }
}

}  // namespace

int gemm_split_k(int64_t k) { return k < 32 ? 0 : k < 64 ? 2 : 4; }

uint64_t gemm_workspace(uint32_t algo, int splits, int64_t m, int64_t n) {
  return algo == GEMM_SPLIT_K ? static_cast<uint64_t>(splits) * static_cast<uint64_t>(m) * static_cast<uint64_t>(n) * 4
                              : 0;
}

namespace {

void add_tile(float acc[MR][NR], const float t[MR][NR]) {
  for (int r = 0; r < MR; r++)
    for (int c = 0; c < NR; c++) acc[r][c] += t[r][c];
}

// The sums of one micro-tile (panels ap, bp of k each) in the order of a
// GemmAlgo other than GEMM_SPLIT_K.
void tile_sum(uint32_t algo, const float *ap, const float *bp, int64_t k, float acc[MR][NR]) {
  if (algo == GEMM_SEQUENTIAL || k == 0) {
    micro(ap, bp, k, acc);
    return;
  }
  const int64_t kc = algo == GEMM_K_CHUNKS ? 16 : 8, chunks = (k + kc - 1) / kc;
  float t[MR][NR];
  for (int64_t q = 0; q < chunks; q++) {
    const int64_t c = algo == GEMM_K_CHUNKS ? q : chunks - 1 - q, k0 = c * kc;
    const int64_t len = k - k0 < kc ? k - k0 : kc;
    micro(ap + k0 * MR, bp + k0 * NR, len, q ? t : acc);
    if (q) add_tile(acc, t);
  }
}

// GEMM_SPLIT_K for one micro-tile: each slice's sums into the workspace
// (fp32 [splits][n][m]), then acc = the slices' sums added in slice order.
void tile_split_k(const Gemm &g, const float *ap, const float *bp, int64_t i0, int64_t j0, float acc[MR][NR]) {
  float *ws = reinterpret_cast<float *>(g.workspace);
  const int64_t mn = g.m * g.n;
  float t[MR][NR];
  for (int s = 0; s < g.splits; s++) {
    const int64_t k0 = g.k * s / g.splits, k1 = g.k * (s + 1) / g.splits;
    micro(ap + k0 * MR, bp + k0 * NR, k1 - k0, t);
    for (int64_t r = 0; r < MR && i0 + r < g.m; r++)
      for (int64_t c = 0; c < NR && j0 + c < g.n; c++) ws[s * mn + (j0 + c) * g.m + i0 + r] = t[r][c];
  }
  for (int64_t r = 0; r < MR && i0 + r < g.m; r++)
    for (int64_t c = 0; c < NR && j0 + c < g.n; c++) {
      float v = ws[(j0 + c) * g.m + i0 + r];
      for (int s = 1; s < g.splits; s++) v += ws[s * mn + (j0 + c) * g.m + i0 + r];
      acc[r][c] = v;
    }
}

}  // namespace

// op(A) and op(B) are packed (pack), zero padded.
void run_gemm(const Gemm &g) {
  const int64_t m = g.m, n = g.n, k = g.k, mp = (m + MR - 1) / MR, np = (n + NR - 1) / NR;
  std::vector<float> ap, bp;
  try {
    ap.assign(static_cast<size_t>(mp * MR * k), 0.0f);
    bp.assign(static_cast<size_t>(np * NR * k), 0.0f);
  } catch (const std::exception &) {
    emu::report("cublasLtMatmul: out of host memory packing a %lld x %lld x %lld GEMM", (long long)m,
                (long long)n, (long long)k);
    std::abort();
  }
  if (g.ab_bf16) pack<true>(g, ap.data(), bp.data());
  else pack<false>(g, ap.data(), bp.data());
  float acc[MR][NR];
  for (int64_t jb = 0; jb < np; jb += NB) {
    const int64_t je = jb + NB < np ? jb + NB : np;
    for (int64_t ip = 0; ip < mp; ip++) {
      for (int64_t jp = jb; jp < je; jp++) {
        const float *a = &ap[static_cast<size_t>(ip * MR * k)], *b = &bp[static_cast<size_t>(jp * NR * k)];
        if (g.algo == GEMM_SPLIT_K) tile_split_k(g, a, b, ip * MR, jp * NR, acc);
        else tile_sum(g.algo, a, b, k, acc);
        for (int64_t r = 0; r < MR && ip * MR + r < m; r++) {
          const int64_t i = ip * MR + r;
          for (int64_t c = 0; c < NR && jp * NR + c < n; c++) {
            const int64_t j = jp * NR + c;
            float v = g.alpha * acc[r][c];
            if (g.beta != 0.0f) v += g.beta * element(g.c, i + j * g.ldc, g.cd_bf16);
            if (g.bias) v += element(g.bias, i, g.bias_bf16);
            if (g.gelu) v = gelu_tanh(v);
            if (g.cd_bf16) reinterpret_cast<uint16_t *>(g.d)[i + j * g.ldd] = bf16_round(v);
            else reinterpret_cast<float *>(g.d)[i + j * g.ldd] = v;
          }
        }
      }
    }
  }
}

}  // namespace emu
