// test_emu_lt_algos.cpp: the emulated cuBLASLt's algorithms (tools/emu/
// emu_gemm.h) and cublasLtMatmulAlgoCheck, alone on the stub driver
// (emu_stub_driver.h), on the CUDA backend's GEMM shape (TRANSA=T, C == D,
// the BIAS epilogue): the heuristic returns up to four distinct algorithms
// (split-K only under a reduction-scheme mask with COMPUTE_TYPE and a
// workspace that fits), each within fp32 rounding of a float64 reference,
// each bitwise repeatable, at least one bitwise different from the first;
// cublasLtMatmul refuses a split-K algo without its workspace; AlgoCheck
// accepts the heuristic's algos (with their workspace sizes) and refuses
// corrupted, foreign and mismatched ones with the library's codes.
// (test_emu_cublaslt.cpp covers the rest of the emulated cuBLASLt.)
#include <cublasLt.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "emu_stub_driver.h"

namespace {

int g_failures = 0;
#define CHECK(cond)                                                                                  \
  do {                                                                                               \
    if (!(cond)) {                                                                                   \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                  \
      g_failures++;                                                                                  \
    }                                                                                                \
  } while (0)
#define CHECK_ST(call, want) CHECK((call) == (want))

const cublasStatus_t OK = CUBLAS_STATUS_SUCCESS, IV = CUBLAS_STATUS_INVALID_VALUE;
const cudaStream_t kStream = reinterpret_cast<cudaStream_t>(0x5000);

// "device" memory registered with the stub
struct Dev {
  float *p;
  size_t n;
  explicit Dev(size_t count) : n(count) {
    p = static_cast<float *>(std::aligned_alloc(256, (count * 4 + 255) / 256 * 256));
    stub::add_device(p, count * 4);
  }
  ~Dev() {
    stub::remove_device(p);
    std::free(p);
  }
  Dev(const Dev &) = delete;
  Dev &operator=(const Dev &) = delete;
};

// y[N, M] = x[N, K] W[M, K]^T + b, as the backend lays it out (cublaslt.h)
struct Gemm {
  int64_t M, N, K;
  Dev W, x, y, bias;
  cublasLtHandle_t h = nullptr;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  Gemm(int64_t m, int64_t n, int64_t k, uint32_t mask, uint64_t ws, bool tf32 = false)
      : M(m), N(n), K(k), W(size_t(m * k)), x(size_t(n * k)), y(size_t(m * n)), bias(size_t(m)) {
    std::mt19937_64 rng(42);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (size_t i = 0; i < W.n; i++) W.p[i] = u(rng);
    for (size_t i = 0; i < x.n; i++) x.p[i] = u(rng);
    for (size_t i = 0; i < bias.n; i++) bias.p[i] = u(rng);
    CHECK_ST(cublasLtCreate(&h), OK);
    CHECK_ST(cublasLtMatmulDescCreate(&desc, tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F, CUDA_R_32F), OK);
    cublasOperation_t t = CUBLAS_OP_T;
    CHECK_ST(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof t), OK);
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    CHECK_ST(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi), OK);
    const void *bp = bias.p;
    CHECK_ST(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof bp), OK);
    CHECK_ST(cublasLtMatrixLayoutCreate(&a, CUDA_R_32F, uint64_t(K), uint64_t(M), K), OK);
    CHECK_ST(cublasLtMatrixLayoutCreate(&b, CUDA_R_32F, uint64_t(K), uint64_t(N), K), OK);
    CHECK_ST(cublasLtMatrixLayoutCreate(&d, CUDA_R_32F, uint64_t(M), uint64_t(N), M), OK);
    CHECK_ST(cublasLtMatmulPreferenceCreate(&pref), OK);
    CHECK_ST(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws), OK);
    CHECK_ST(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &mask, sizeof mask),
             OK);
  }
  ~Gemm() {
    cublasLtMatmulPreferenceDestroy(pref);
    cublasLtMatrixLayoutDestroy(d);
    cublasLtMatrixLayoutDestroy(b);
    cublasLtMatrixLayoutDestroy(a);
    cublasLtMatmulDescDestroy(desc);
    cublasLtDestroy(h);
  }
  int heuristic(cublasLtMatmulHeuristicResult_t *res, int want) {
    int found = -1;
    CHECK_ST(cublasLtMatmulAlgoGetHeuristic(h, desc, a, b, d, d, pref, want, res, &found), OK);
    return found;
  }
  cublasStatus_t run(const cublasLtMatmulAlgo_t *algo, void *ws, size_t ws_bytes) {
    const float one = 1.0f, zero = 0.0f;
    return cublasLtMatmul(h, desc, &one, W.p, a, x.p, b, &zero, y.p, d, y.p, d, algo, ws, ws_bytes, kStream);
  }
  cublasStatus_t check(const cublasLtMatmulAlgo_t *algo, cublasLtMatmulHeuristicResult_t *r) {
    return cublasLtMatmulAlgoCheck(h, desc, a, b, d, d, algo, r);
  }
  double rel_err() const {
    double num = 0, den = 0;
    for (int64_t j = 0; j < N; j++)
      for (int64_t i = 0; i < M; i++) {
        double s = bias.p[i];
        for (int64_t k = 0; k < K; k++) s += double(W.p[i * K + k]) * x.p[j * K + k];
        double e = y.p[j * M + i] - s;
        num += e * e, den += s * s;
      }
    return std::sqrt(num / den);
  }
};

const uint32_t kDeterministic = CUBLASLT_REDUCTION_SCHEME_NONE | CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE |
                                CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE;  // the backend's fp32 mask

void test_algos() {
  std::printf("the heuristic's algorithms\n");
  Gemm g(40, 24, 96, kDeterministic, 1 << 20);
  cublasLtMatmulHeuristicResult_t res[8];
  int found = g.heuristic(res, 8);
  CHECK(found == 4);
  CHECK(g.heuristic(res, 2) == 2);
  found = g.heuristic(res, 8);
  Dev ws(1 << 18);
  std::vector<std::vector<float>> outs;
  for (int i = 0; i < found; i++) {
    CHECK(res[i].state == OK);
    for (int j = 0; j < i; j++) CHECK(std::memcmp(&res[i].algo, &res[j].algo, sizeof res[i].algo) != 0);
    for (size_t e = 0; e < g.y.n; e++) g.y.p[e] = NAN;
    CHECK_ST(g.run(&res[i].algo, ws.p, ws.n * 4), OK);
    double err = g.rel_err();
    std::printf("  algo %d: workspace %zu bytes, rel err %.2e\n", i, res[i].workspaceSize, err);
    CHECK(err <= 1e-6);
    std::vector<float> y(g.y.p, g.y.p + g.y.n);
    CHECK_ST(g.run(&res[i].algo, ws.p, ws.n * 4), OK);  // repeatable, bit for bit
    CHECK(std::memcmp(y.data(), g.y.p, y.size() * 4) == 0);
    outs.push_back(y);
  }
  CHECK(res[0].workspaceSize == 0);
  CHECK(res[3].workspaceSize == 4u * 40 * 24 * 4);  // split-K: 4 fp32 slices of D
  int differ = 0;
  for (int i = 1; i < found; i++) differ += std::memcmp(outs[0].data(), outs[i].data(), outs[0].size() * 4) != 0;
  std::printf("  %d of %d algorithms differ bitwise from the first\n", differ, found - 1);
  CHECK(differ >= 1);
  // split-K without (enough) workspace
  CHECK_ST(g.run(&res[3].algo, nullptr, 0), IV);
  CHECK_ST(g.run(&res[3].algo, ws.p, res[3].workspaceSize - 4), IV);
  CHECK_ST(g.run(&res[3].algo, g.y.p, res[3].workspaceSize), IV);  // overlapping D
  // no split-K where the mask leaves out COMPUTE_TYPE, or the workspace does not fit it
  Gemm none(40, 24, 96, CUBLASLT_REDUCTION_SCHEME_NONE | CUBLASLT_REDUCTION_SCHEME_INPLACE, 1 << 20);
  CHECK(none.heuristic(res, 8) == 3);
  Gemm small(40, 24, 96, kDeterministic, 0);
  CHECK(small.heuristic(res, 8) == 3);
  for (int i = 0; i < 3; i++) CHECK(res[i].workspaceSize == 0);
  Gemm shortk(40, 24, 16, kDeterministic, 1 << 20);  // K too short to split
  CHECK(shortk.heuristic(res, 8) == 3);
}

void test_algo_check() {
  std::printf("cublasLtMatmulAlgoCheck\n");
  Gemm g(40, 24, 96, kDeterministic, 1 << 20);
  cublasLtMatmulHeuristicResult_t res[4], r;
  int found = g.heuristic(res, 4);
  for (int i = 0; i < found; i++) {
    std::memset(&r, 0x5a, sizeof r);
    CHECK_ST(g.check(&res[i].algo, &r), OK);
    CHECK(r.state == OK && r.workspaceSize == res[i].workspaceSize);
    CHECK(std::memcmp(&r.algo, &res[i].algo, sizeof r.algo) == 0);
  }
  r = res[1];
  CHECK_ST(g.check(&r.algo, &r), OK);  // algo may point to result->algo
  CHECK(std::memcmp(&r.algo, &res[1].algo, sizeof r.algo) == 0);
  cublasLtMatmulAlgo_t bad = res[2].algo;
  bad.data[5] ^= 1;  // corrupted: the checksum no longer matches
  CHECK_ST(g.check(&bad, &r), IV);
  CHECK_ST(g.run(&bad, nullptr, 0), IV);
  std::memset(&bad, 0, sizeof bad);  // foreign
  CHECK_ST(g.check(&bad, &r), IV);
  CHECK_ST(g.check(nullptr, &r), IV);
  CHECK_ST(g.check(&res[0].algo, nullptr), IV);
  Gemm tf(40, 24, 96, kDeterministic, 1 << 20, true);  // chosen for fp32, checked for TF32
  CHECK_ST(tf.check(&res[0].algo, &r), IV);
  Gemm shortk(40, 24, 16, kDeterministic, 1 << 20);  // a split of 4 on K 16 still fits; of K 2 not
  CHECK_ST(shortk.check(&res[3].algo, &r), OK);
  Gemm tiny(40, 24, 2, kDeterministic, 1 << 20);
  CHECK_ST(tiny.check(&res[3].algo, &r), IV);
  CHECK_ST(tiny.check(&res[0].algo, &r), OK);
  stub::fail_next("cublasLtMatmulAlgoCheck");
  CHECK_ST(g.check(&res[0].algo, &r), CUBLAS_STATUS_EXECUTION_FAILED);
}

}  // namespace

int main() {
  test_algos();
  test_algo_check();
  std::printf("test_emu_lt_algos: %s (%d failed checks; dit-emu reports on stderr are expected)\n",
              g_failures ? "FAIL" : "ok", g_failures);
  return g_failures ? 1 : 0;
}
