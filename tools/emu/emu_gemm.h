// emu_gemm.h: the arithmetic of the emulated cuBLASLt (emu_cublaslt.cpp owns
// the API and its checks): one column-major GEMM with its epilogue, computed
// by one of a few algorithms that sum the products in different, fixed
// orders (all deterministic, all within fp32 rounding of each other), as a
// real cuBLASLt's algorithms do. Nothing outside tools/emu includes it.
#pragma once

#include <cstdint>

namespace emu {

// The algorithms, in the order the emulated heuristic offers them.
enum GemmAlgo : uint32_t {
  GEMM_SEQUENTIAL = 0,        // one sequential sum per element, in k order (what the emulator always computed)
  GEMM_K_CHUNKS = 1,          // k in chunks of 16, each summed alone, then the chunk sums in order
  GEMM_K_CHUNKS_REVERSED = 2, // k in chunks of 8, the chunk sums added from the last chunk to the first
  GEMM_SPLIT_K = 3,           // split-K: S slices of k, each slice's sums stored in the workspace in fp32
                              // (CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE), then reduced in slice order
  GEMM_ALGOS = 4
};

// The slices GEMM_SPLIT_K cuts k into: 2 to 4, or 0 when k is too short (< 32) to split.
int gemm_split_k(int64_t k);
// The workspace bytes an algorithm needs for an m x n result.
uint64_t gemm_workspace(uint32_t algo, int splits, int64_t m, int64_t n);

// Everything the computation reads, by value.
struct Gemm {
  int64_t m, n, k;
  bool ta, tb, tf32, gelu;
  bool ab_bf16, cd_bf16, bias_bf16;  // A and B, C and D, the bias in bf16 (else fp32)
  int64_t lda, ldb, ldc, ldd;
  float alpha, beta;
  uintptr_t a, b, c, d, bias;  // bias 0: none; c 0: not read (beta 0)
  uint32_t algo;               // GemmAlgo
  int splits;                  // GEMM_SPLIT_K: the slices
  uintptr_t workspace;         // GEMM_SPLIT_K: gemm_workspace bytes of device memory
};

// D = epilogue(alpha * op(A) op(B) + beta * C), in fp32, rounded once to
// bf16 for a bf16 D.
void run_gemm(const Gemm &g);

}  // namespace emu
