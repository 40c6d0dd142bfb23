// test_emu_cublaslt.cpp: the emulated cuBLASLt (tools/emu/emu_cublaslt.cpp)
// alone, on the stub driver (emu_stub_driver.h): GEMMs of fresh random data
// against a float64 reference (the backend's exact calls, every transpose,
// padded leading dimensions, alpha/beta, the BIAS and GELU_BIAS epilogues,
// fp32 and TF32), the loud failures (unsupported attributes, misaligned or
// foreign pointers, inconsistent shapes, fault injection), closures that own
// their descriptors' values, and bitwise repeatability.
// Set EMU_TEST_SEED=N to repeat a run.
#include <cublasLt.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
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

#define CHECK_ST(call, want)                                                                         \
  do {                                                                                               \
    cublasStatus_t st_ = (call);                                                                     \
    if (st_ != (want)) {                                                                             \
      std::fprintf(stderr, "%s:%d: %s returned %d, want %s\n", __FILE__, __LINE__, #call, (int)st_,  \
                   #want);                                                                           \
      g_failures++;                                                                                  \
    }                                                                                                \
  } while (0)

std::mt19937_64 g_rng;
cublasLtHandle_t g_lt;
const cudaStream_t kStream = reinterpret_cast<cudaStream_t>(0x5000);  // the stub only passes it on

const float kNaN = std::numeric_limits<float>::quiet_NaN();

// A block of "device" memory: registered with the stub for exactly `count`
// floats, 256-byte aligned, NaN until filled.
struct Dev {
  float *p;
  size_t n;
  explicit Dev(size_t count) : n(count) {
    p = static_cast<float *>(std::aligned_alloc(256, (count * 4 + 255) / 256 * 256));
    for (size_t i = 0; i < n; i++) p[i] = kNaN;
    stub::add_device(p, count * 4);
  }
  ~Dev() {
    stub::remove_device(p);
    std::free(p);
  }
  Dev(const Dev &) = delete;
  Dev &operator=(const Dev &) = delete;
};

// Uniform in +-[0.05, 1): never zero.
float rnd() {
  std::uniform_real_distribution<float> u(0.05f, 1.0f);
  float v = u(g_rng);
  return (g_rng() & 1) ? v : -v;
}

// Fills the rows x cols matrix at ld; the padding stays NaN.
void fill(float *p, int64_t rows, int64_t cols, int64_t ld) {
  for (int64_t j = 0; j < cols; j++)
    for (int64_t i = 0; i < rows; i++) p[i + j * ld] = rnd();
}

struct Case {
  const char *name;
  int64_t m, n, k;
  bool ta, tb;
  int64_t pad_a, pad_b, pad_c, pad_d;  // ld - rows
  float alpha, beta;
  uint32_t epilogue;
  bool inplace;  // C == D (the backend's call)
};

struct Problem {
  Case c;
  int64_t ar, ac, lda, br, bc, ldb, ldc, ldd;
  std::unique_ptr<Dev> A, B, C, D, bias;
  float *cptr() const { return c.inplace ? D->p : C->p; }
  explicit Problem(const Case &cs) : c(cs) {
    ar = c.ta ? c.k : c.m, ac = c.ta ? c.m : c.k, lda = ar + c.pad_a;
    br = c.tb ? c.n : c.k, bc = c.tb ? c.k : c.n, ldb = br + c.pad_b;
    ldd = c.m + c.pad_d, ldc = c.inplace ? ldd : c.m + c.pad_c;
    A.reset(new Dev(static_cast<size_t>(lda * (ac - 1) + ar)));
    B.reset(new Dev(static_cast<size_t>(ldb * (bc - 1) + br)));
    D.reset(new Dev(static_cast<size_t>(ldd * (c.n - 1) + c.m)));
    if (!c.inplace) C.reset(new Dev(static_cast<size_t>(ldc * (c.n - 1) + c.m)));
    bias.reset(new Dev(static_cast<size_t>(c.m)));
    fill(A->p, ar, ac, lda);
    fill(B->p, br, bc, ldb);
    fill(bias->p, c.m, 1, c.m);
    if (c.beta != 0.0f) fill(cptr(), c.m, c.n, ldc);  // else C (or D) stays NaN: it must not be read
  }
};

struct Lt {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr, d = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  cublasLtMatmulAlgo_t algo{};
};

void lt_free(Lt *lt) {
  CHECK_ST(cublasLtMatmulPreferenceDestroy(lt->pref), CUBLAS_STATUS_SUCCESS);
  if (lt->c != lt->d) CHECK_ST(cublasLtMatrixLayoutDestroy(lt->c), CUBLAS_STATUS_SUCCESS);
  CHECK_ST(cublasLtMatrixLayoutDestroy(lt->d), CUBLAS_STATUS_SUCCESS);
  CHECK_ST(cublasLtMatrixLayoutDestroy(lt->b), CUBLAS_STATUS_SUCCESS);
  CHECK_ST(cublasLtMatrixLayoutDestroy(lt->a), CUBLAS_STATUS_SUCCESS);
  CHECK_ST(cublasLtMatmulDescDestroy(lt->desc), CUBLAS_STATUS_SUCCESS);
  *lt = Lt{};
}

// The descriptors of the problem, in the order cublaslt.c makes them, and the
// heuristic's algorithm. align: the promised A, B, C, D alignments.
cublasStatus_t lt_setup(const Problem &P, bool tf32, Lt *lt, const uint32_t align[4] = nullptr) {
  static const uint32_t al256[4] = {256, 256, 256, 256};
  if (!align) align = al256;
  cublasStatus_t st;
#define TRY(call)                                                                                    \
  if ((st = (call)) != CUBLAS_STATUS_SUCCESS) return st
  TRY(cublasLtMatmulDescCreate(&lt->desc, tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F, CUDA_R_32F));
  cublasOperation_t ta = P.c.ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb = P.c.tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  TRY(cublasLtMatmulDescSetAttribute(lt->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
  TRY(cublasLtMatmulDescSetAttribute(lt->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
  cublasLtEpilogue_t epi = static_cast<cublasLtEpilogue_t>(P.c.epilogue);
  TRY(cublasLtMatmulDescSetAttribute(lt->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
  const void *bias = P.bias->p;
  TRY(cublasLtMatmulDescSetAttribute(lt->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
  TRY(cublasLtMatrixLayoutCreate(&lt->a, CUDA_R_32F, P.ar, P.ac, P.lda));
  TRY(cublasLtMatrixLayoutCreate(&lt->b, CUDA_R_32F, P.br, P.bc, P.ldb));
  TRY(cublasLtMatrixLayoutCreate(&lt->d, CUDA_R_32F, P.c.m, P.c.n, P.ldd));
  if (P.c.inplace)
    lt->c = lt->d;
  else
    TRY(cublasLtMatrixLayoutCreate(&lt->c, CUDA_R_32F, P.c.m, P.c.n, P.ldc));
  TRY(cublasLtMatmulPreferenceCreate(&lt->pref));
  uint64_t ws = 1 << 20;
  TRY(cublasLtMatmulPreferenceSetAttribute(lt->pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
  const cublasLtMatmulPreferenceAttributes_t which[4] = {
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
  for (int i = 0; i < 4; i++)
    TRY(cublasLtMatmulPreferenceSetAttribute(lt->pref, which[i], &align[i], sizeof align[i]));
  cublasLtMatmulHeuristicResult_t res;
  std::memset(&res, 0, sizeof res);
  int found = 0;
  TRY(cublasLtMatmulAlgoGetHeuristic(g_lt, lt->desc, lt->a, lt->b, lt->c, lt->d, lt->pref, 1, &res, &found));
  if (found != 1 || res.state != CUBLAS_STATUS_SUCCESS) return CUBLAS_STATUS_INTERNAL_ERROR;
  lt->algo = res.algo;
  return CUBLAS_STATUS_SUCCESS;
#undef TRY
}

// The operands of one call; defaults from the problem.
struct Ptrs {
  const void *a, *b, *c;
  void *d, *ws;
  size_t ws_bytes;
};
Ptrs ptrs(const Problem &P) { return Ptrs{P.A->p, P.B->p, P.cptr(), P.D->p, nullptr, 0}; }

cublasStatus_t lt_matmul(const Problem &P, const Lt &lt, const Ptrs &q) {
  return cublasLtMatmul(g_lt, lt.desc, &P.c.alpha, q.a, lt.a, q.b, lt.b, &P.c.beta, q.c, lt.c, q.d, lt.d, &lt.algo,
                        q.ws, q.ws_bytes, kStream);
}

double tf32_ref(double x) {  // TF32 rounding by arithmetic (not by bits): 11 significant bits, ties to even
  if (x == 0 || !std::isfinite(x)) return x;
  int e;
  double f = std::frexp(x, &e);  // |f| in [0.5, 1)
  return std::ldexp(std::nearbyint(std::ldexp(f, 11)), e - 11);
}

// ||D - ref|| / ||ref|| over the problem's M x N, with C0 the C before the call.
double rel_err(const Problem &P, const std::vector<float> &c0, bool tf32) {
  const Case &c = P.c;
  double num = 0, den = 0;
  auto in = [tf32](float v) { return tf32 ? tf32_ref(v) : static_cast<double>(v); };
  for (int64_t j = 0; j < c.n; j++)
    for (int64_t i = 0; i < c.m; i++) {
      double s = 0;
      for (int64_t kk = 0; kk < c.k; kk++) {
        double a = in(c.ta ? P.A->p[kk + i * P.lda] : P.A->p[i + kk * P.lda]);
        double b = in(c.tb ? P.B->p[j + kk * P.ldb] : P.B->p[kk + j * P.ldb]);
        s += a * b;
      }
      double r = c.alpha * s;
      if (c.beta != 0.0f) r += c.beta * static_cast<double>(c0[static_cast<size_t>(i + j * P.ldc)]);
      if (c.epilogue != CUBLASLT_EPILOGUE_DEFAULT) r += P.bias->p[i];
      if (c.epilogue == CUBLASLT_EPILOGUE_GELU_BIAS)
        r = 0.5 * r * (1 + std::tanh(std::sqrt(2 / 3.14159265358979323846) * (r + 0.044715 * r * r * r)));
      double o = P.D->p[i + j * P.ldd];
      if (std::isnan(o)) return INFINITY;
      num += (o - r) * (o - r);
      den += r * r;
    }
  return std::sqrt(num / den);
}

std::vector<float> c_copy(const Problem &P) {
  const float *c = P.cptr();
  return std::vector<float>(c, c + (P.c.inplace ? P.D->n : P.C->n));
}

// Runs the case (fp32 or TF32) and checks it against the reference; returns D.
std::vector<float> run_checked(const Problem &P, bool tf32, double *err_out = nullptr) {
  std::vector<float> c0 = c_copy(P);
  Lt lt;
  CHECK_ST(lt_setup(P, tf32, &lt), CUBLAS_STATUS_SUCCESS);
  auto t0 = std::chrono::steady_clock::now();
  CHECK_ST(lt_matmul(P, lt, ptrs(P)), CUBLAS_STATUS_SUCCESS);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  lt_free(&lt);
  std::vector<float> out(P.D->p, P.D->p + P.D->n);
  double err = rel_err(P, c0, tf32);
  if (err_out) *err_out = err;
  std::printf("  %-28s %s M %4lld N %4lld K %4lld: rel err %.2e (%.2f GFLOP/s)\n", P.c.name, tf32 ? "tf32" : "fp32",
              (long long)P.c.m, (long long)P.c.n, (long long)P.c.k, err,
              2e-9 * P.c.m * P.c.n * P.c.k / (secs > 0 ? secs : 1e-9));
  CHECK(err <= 1e-6);
  // restore C for the next run (in place, D was C)
  std::memcpy(P.cptr(), c0.data(), c0.size() * 4);
  return out;
}

const uint32_t BIAS = CUBLASLT_EPILOGUE_BIAS, GELU = CUBLASLT_EPILOGUE_GELU_BIAS, NONE = CUBLASLT_EPILOGUE_DEFAULT;

// The backend's linear op: y[rows, M] = x[rows, K] W[M, K]^T + b as cuda_gemm_shape lays it out.
Case backend(const char *name, int64_t rows, int64_t K, int64_t M, uint32_t epi) {
  return Case{name, M, rows, K, true, false, 0, 0, 0, 0, 1.0f, 0.0f, epi, true};
}

void test_backend_shapes() {
  std::printf("backend shapes (TRANSA=T, C == D, beta 0)\n");
  const Case cases[] = {backend("DiT-S qkv, BIAS", 256, 384, 1152, BIAS),
                        backend("DiT-S fc1, GELU_BIAS", 256, 384, 1536, GELU),
                        backend("DiT-S fc2, BIAS", 256, 1536, 384, BIAS),
                        backend("odd sizes, GELU_BIAS", 37, 45, 13, GELU),
                        backend("one row, BIAS", 1, 70, 9, BIAS)};
  for (const Case &c : cases) {
    Problem P(c);
    run_checked(P, false);
  }
  // fewer rows: the backend changes the B and D columns and asks again
  Problem P(backend("rows 64 -> 17", 64, 96, 40, GELU));
  Lt lt;
  CHECK_ST(lt_setup(P, false, &lt), CUBLAS_STATUS_SUCCESS);
  CHECK_ST(lt_matmul(P, lt, ptrs(P)), CUBLAS_STATUS_SUCCESS);
  uint64_t cols = 17;
  CHECK_ST(cublasLtMatrixLayoutSetAttribute(lt.b, CUBLASLT_MATRIX_LAYOUT_COLS, &cols, sizeof cols),
           CUBLAS_STATUS_SUCCESS);
  CHECK_ST(cublasLtMatrixLayoutSetAttribute(lt.d, CUBLASLT_MATRIX_LAYOUT_COLS, &cols, sizeof cols),
           CUBLAS_STATUS_SUCCESS);
  // the heuristic again, for the new shape
  cublasLtMatmulHeuristicResult_t res;
  int found = 0;
  CHECK_ST(cublasLtMatmulAlgoGetHeuristic(g_lt, lt.desc, lt.a, lt.b, lt.d, lt.d, lt.pref, 1, &res, &found),
           CUBLAS_STATUS_SUCCESS);
  CHECK(found == 1 && res.state == CUBLAS_STATUS_SUCCESS);
  lt.algo = res.algo;
  for (size_t i = 0; i < P.D->n; i++) P.D->p[i] = kNaN;
  CHECK_ST(lt_matmul(P, lt, ptrs(P)), CUBLAS_STATUS_SUCCESS);
  P.c.n = 17;
  double err = rel_err(P, {}, false);
  std::printf("  %-28s fp32: rel err %.2e\n", P.c.name, err);
  CHECK(err <= 1e-6);
  CHECK(std::isnan(P.D->p[17 * P.ldd]));  // column 17 is not written
  lt_free(&lt);
}

void test_transposes() {
  std::printf("every transpose, padded ld, alpha/beta, epilogues\n");
  const uint32_t epis[3] = {NONE, BIAS, GELU};
  int e = 0;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++)
      for (int inplace = 0; inplace < 2; inplace++) {
        char name[64];
        std::snprintf(name, sizeof name, "op %c%c %s %s", ta ? 'T' : 'N', tb ? 'T' : 'N',
                      inplace ? "C==D" : "C!=D", epis[e % 3] == NONE ? "none" : epis[e % 3] == BIAS ? "bias" : "gelu");
        Case c{name, 29, 19 + ta, 23 + tb, ta != 0, tb != 0, 3, 1, 2, 5, 0.75f, -0.5f, epis[e++ % 3], inplace != 0};
        Problem P(c);
        run_checked(P, false);
      }
  Case c{"K 1, beta 0, C not read", 7, 5, 1, false, true, 0, 2, 0, 1, 2.0f, 0.0f, BIAS, false};
  Problem P(c);  // C is NaN: beta 0 must not read it
  run_checked(P, false);
  // beta 0 with C NULL
  Lt lt;
  CHECK_ST(lt_setup(P, false, &lt), CUBLAS_STATUS_SUCCESS);
  Ptrs q = ptrs(P);
  q.c = nullptr;
  CHECK_ST(lt_matmul(P, lt, q), CUBLAS_STATUS_SUCCESS);
  P.c.beta = 1.0f;  // now C NULL is refused
  CHECK_ST(lt_matmul(P, lt, q), CUBLAS_STATUS_INVALID_VALUE);
  lt_free(&lt);
}

void test_tf32() {
  std::printf("TF32\n");
  const Case cases[] = {backend("DiT-S fc1, GELU_BIAS", 256, 384, 1536, GELU),
                        Case{"op NT C!=D bias", 33, 21, 300, false, true, 1, 2, 3, 4, 1.25f, 0.5f, BIAS, false}};
  for (const Case &c : cases) {
    Problem P(c);
    std::vector<float> f32 = run_checked(P, false);
    std::vector<float> t32 = run_checked(P, true);  // against the TF32-input reference
    double num = 0, den = 0;
    for (int64_t j = 0; j < c.n; j++)
      for (int64_t i = 0; i < c.m; i++) {
        double a = f32[static_cast<size_t>(i + j * P.ldd)], b = t32[static_cast<size_t>(i + j * P.ldd)];
        num += (a - b) * (a - b), den += a * a;
      }
    double diff = std::sqrt(num / den);
    std::printf("  %-28s ||tf32 - fp32|| / ||fp32|| = %.2e\n", c.name, diff);
    CHECK(diff > 1e-5 && diff < 1e-2);
  }
  // the rounding itself: D = op(A) * 1, one TF32 value per row
  const double u = std::ldexp(1.0, -10);  // TF32's ulp at 1
  const double in[] = {1 + u / 2, 1 + 1.5 * u, 1 + u / 2 + std::ldexp(1.0, -20), -(1 + u / 4), 2 - std::ldexp(1.0, -23),
                       std::ldexp(1.0, -130) * 3.0};
  const double want[] = {1, 1 + 2 * u, 1 + u, -1, 2, std::ldexp(1.0, -130) * 3.0};
  const int64_t n_in = sizeof in / sizeof in[0];
  Problem P(Case{"tf32 rounding", n_in, 1, 1, false, false, 0, 0, 0, 0, 1.0f, 0.0f, NONE, true});
  for (int64_t i = 0; i < n_in; i++) P.A->p[i] = static_cast<float>(in[i]);
  P.B->p[0] = 1.0f;
  Lt lt;
  CHECK_ST(lt_setup(P, true, &lt), CUBLAS_STATUS_SUCCESS);
  CHECK_ST(lt_matmul(P, lt, ptrs(P)), CUBLAS_STATUS_SUCCESS);
  lt_free(&lt);
  for (int64_t i = 0; i < n_in; i++) {
    if (P.D->p[i] != static_cast<float>(want[i]))
      std::fprintf(stderr, "tf32(%.9g) = %.9g, want %.9g\n", in[i], P.D->p[i], want[i]);
    CHECK(P.D->p[i] == static_cast<float>(want[i]));
  }
}

void test_repeatable() {
  std::printf("bitwise repeatability\n");
  Problem P(Case{"op TN C!=D gelu", 61, 47, 333, true, false, 0, 0, 0, 0, 0.5f, 0.25f, GELU, false});
  for (int tf32 = 0; tf32 < 2; tf32++) {
    std::vector<float> first = run_checked(P, tf32 != 0);
    for (int rep = 0; rep < 3; rep++) {
      std::vector<float> again = run_checked(P, tf32 != 0);
      CHECK(std::memcmp(first.data(), again.data(), first.size() * 4) == 0);
    }
  }
}

// A matmul is submitted with its values; what happens to the descriptors later does not matter.
void test_closure_owns_values() {
  std::printf("the stored closure owns its values\n");
  Problem P(Case{"stored", 24, 18, 40, true, false, 0, 0, 0, 0, 1.5f, 0.0f, GELU, true});
  Lt lt;
  CHECK_ST(lt_setup(P, false, &lt), CUBLAS_STATUS_SUCCESS);
  stub::set_store(true);
  float alpha = P.c.alpha, beta = 0.0f;
  CHECK_ST(cublasLtMatmul(g_lt, lt.desc, &alpha, P.A->p, lt.a, P.B->p, lt.b, &beta, P.D->p, lt.d, P.D->p, lt.d,
                          &lt.algo, nullptr, 0, kStream),
           CUBLAS_STATUS_SUCCESS);
  stub::set_store(false);
  CHECK(stub::stored().size() == 1);
  CHECK(stub::last_stream() == kStream);
  CHECK(std::isnan(P.D->p[0]));  // not run yet
  // change everything the call read
  alpha = 100.0f;
  uint64_t one = 1;
  int64_t ld = 100;
  cublasOperation_t n = CUBLAS_OP_N;
  cublasLtEpilogue_t none = CUBLASLT_EPILOGUE_DEFAULT;
  const void *nobias = nullptr;
  CHECK_ST(cublasLtMatrixLayoutSetAttribute(lt.b, CUBLASLT_MATRIX_LAYOUT_COLS, &one, sizeof one), CUBLAS_STATUS_SUCCESS);
  CHECK_ST(cublasLtMatrixLayoutSetAttribute(lt.d, CUBLASLT_MATRIX_LAYOUT_LD, &ld, sizeof ld), CUBLAS_STATUS_SUCCESS);
  CHECK_ST(cublasLtMatmulDescSetAttribute(lt.desc, CUBLASLT_MATMUL_DESC_TRANSA, &n, sizeof n), CUBLAS_STATUS_SUCCESS);
  CHECK_ST(cublasLtMatmulDescSetAttribute(lt.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &none, sizeof none),
           CUBLAS_STATUS_SUCCESS);
  CHECK_ST(cublasLtMatmulDescSetAttribute(lt.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &nobias, sizeof nobias),
           CUBLAS_STATUS_SUCCESS);
  lt_free(&lt);  // and destroy them all
  for (auto &w : stub::stored()) w();
  stub::stored().clear();
  double err = rel_err(P, {}, false);
  std::printf("  after the descriptors changed and died: rel err %.2e\n", err);
  CHECK(err <= 1e-6);
}

size_t reports_mentioning(size_t from, const char *what) {
  size_t n = 0;
  for (size_t i = from; i < stub::reports().size(); i++) n += stub::reports()[i].find(what) != std::string::npos;
  return n;
}

// `call` must return `want` and report a message containing `what`.
#define CHECK_LOUD(call, want, what)                                                                 \
  do {                                                                                               \
    size_t r0_ = stub::reports().size();                                                             \
    CHECK_ST(call, want);                                                                            \
    CHECK(reports_mentioning(r0_, what) > 0);                                                        \
  } while (0)

void test_unsupported() {
  std::printf("unsupported attributes and values fail loudly\n");
  const cublasStatus_t NS = CUBLAS_STATUS_NOT_SUPPORTED, IV = CUBLAS_STATUS_INVALID_VALUE;
  cublasLtMatmulDesc_t desc = nullptr;
  CHECK_LOUD(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_16F, CUDA_R_32F), NS, "compute type");
  CHECK_LOUD(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_16F), NS, "scale type");
  CHECK_ST(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), CUBLAS_STATUS_SUCCESS);
  void *ptr = nullptr;
  CHECK_LOUD(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_AMAX_D_POINTER, &ptr, sizeof ptr), NS,
             "CUBLASLT_MATMUL_DESC_AMAX_D_POINTER");
  int32_t fill = 0;
  CHECK_LOUD(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_FILL_MODE, &fill, sizeof fill), NS,
             "CUBLASLT_MATMUL_DESC_FILL_MODE");
  cublasLtEpilogue_t relu = CUBLASLT_EPILOGUE_RELU_BIAS, gelu_aux = CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
  CHECK_LOUD(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &relu, sizeof relu), NS,
             "CUBLASLT_MATMUL_DESC_EPILOGUE");
  CHECK_LOUD(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &gelu_aux, sizeof gelu_aux), NS,
             "CUBLASLT_MATMUL_DESC_EPILOGUE");
  cublasOperation_t opc = CUBLAS_OP_C, opt = CUBLAS_OP_T;
  CHECK_LOUD(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &opc, sizeof opc), NS,
             "CUBLASLT_MATMUL_DESC_TRANSA");
  CHECK_LOUD(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSC, &opt, sizeof opt), NS,
             "CUBLASLT_MATMUL_DESC_TRANSC");
  int32_t devmode = CUBLASLT_POINTER_MODE_DEVICE;
  CHECK_LOUD(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_POINTER_MODE, &devmode, sizeof devmode), NS,
             "CUBLASLT_MATMUL_DESC_POINTER_MODE");
  int32_t half = CUDA_R_16F;
  CHECK_LOUD(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &half, sizeof half), NS,
             "CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE");
  int64_t wide = CUBLAS_OP_T;  // wrong size
  CHECK_LOUD(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &wide, sizeof wide), IV,
             "CUBLASLT_MATMUL_DESC_TRANSA");
  CHECK_LOUD(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, nullptr, 4), IV, "TRANSA");
  int32_t tf = CUBLAS_COMPUTE_32F_FAST_TF32;
  CHECK_ST(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_COMPUTE_TYPE, &tf, sizeof tf),
           CUBLAS_STATUS_SUCCESS);
  CHECK_ST(cublasLtMatmulDescDestroy(desc), CUBLAS_STATUS_SUCCESS);
  CHECK_LOUD(cublasLtMatmulDescDestroy(desc), IV, "not a live");  // twice
  CHECK_LOUD(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &opt, sizeof opt), IV, "not a live");

  cublasLtMatrixLayout_t l = nullptr;
  CHECK_LOUD(cublasLtMatrixLayoutCreate(&l, CUDA_R_16F, 4, 4, 4), NS, "data type");
  CHECK_ST(cublasLtMatrixLayoutCreate(&l, CUDA_R_32F, 4, 4, 4), CUBLAS_STATUS_SUCCESS);
  int32_t row = CUBLASLT_ORDER_ROW, two = 2;
  CHECK_LOUD(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_ORDER, &row, sizeof row), NS,
             "CUBLASLT_MATRIX_LAYOUT_ORDER");
  CHECK_LOUD(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &two, sizeof two), NS,
             "CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT");
  int64_t off = 16;
  CHECK_LOUD(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &off, sizeof off), NS,
             "CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET");
  uint32_t t16 = CUDA_R_16F;
  CHECK_LOUD(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_TYPE, &t16, sizeof t16), NS,
             "CUBLASLT_MATRIX_LAYOUT_TYPE");
  uint32_t rows32 = 4;  // ROWS is uint64_t
  CHECK_LOUD(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_ROWS, &rows32, sizeof rows32), IV,
             "CUBLASLT_MATRIX_LAYOUT_ROWS");
  int32_t one = 1, col = CUBLASLT_ORDER_COL;
  CHECK_ST(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &one, sizeof one),
           CUBLAS_STATUS_SUCCESS);
  CHECK_ST(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_ORDER, &col, sizeof col), CUBLAS_STATUS_SUCCESS);
  CHECK_ST(cublasLtMatrixLayoutDestroy(l), CUBLAS_STATUS_SUCCESS);

  cublasLtMatmulPreference_t p = nullptr;
  CHECK_ST(cublasLtMatmulPreferenceCreate(&p), CUBLAS_STATUS_SUCCESS);
  uint32_t search = 0;
  CHECK_LOUD(cublasLtMatmulPreferenceSetAttribute(p, CUBLASLT_MATMUL_PREF_SEARCH_MODE, &search, sizeof search), NS,
             "CUBLASLT_MATMUL_PREF_SEARCH_MODE");
  float waves = 1.0f;
  CHECK_LOUD(cublasLtMatmulPreferenceSetAttribute(p, CUBLASLT_MATMUL_PREF_MAX_WAVES_COUNT, &waves, sizeof waves), NS,
             "CUBLASLT_MATMUL_PREF_MAX_WAVES_COUNT");
  uint64_t impl = ~0ull;
  CHECK_LOUD(cublasLtMatmulPreferenceSetAttribute(p, CUBLASLT_MATMUL_PREF_IMPL_MASK, &impl, sizeof impl), NS,
             "CUBLASLT_MATMUL_PREF_IMPL_MASK");
  uint32_t three = 3, mask = CUBLASLT_REDUCTION_SCHEME_NONE | CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
  CHECK_LOUD(cublasLtMatmulPreferenceSetAttribute(p, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &three, sizeof three),
             IV, "power of two");
  CHECK_ST(cublasLtMatmulPreferenceSetAttribute(p, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &mask, sizeof mask),
           CUBLAS_STATUS_SUCCESS);
  uint32_t ws32 = 0;  // MAX_WORKSPACE_BYTES is uint64_t
  CHECK_LOUD(cublasLtMatmulPreferenceSetAttribute(p, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws32, sizeof ws32), IV,
             "CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES");
  CHECK_ST(cublasLtMatmulPreferenceDestroy(p), CUBLAS_STATUS_SUCCESS);
}

void test_heuristic_shapes() {
  std::printf("the heuristic refuses inconsistent problems\n");
  Problem P(backend("shape", 8, 16, 12, BIAS));
  Lt lt;
  CHECK_ST(lt_setup(P, false, &lt), CUBLAS_STATUS_SUCCESS);
  cublasLtMatmulHeuristicResult_t res;
  int found = 7;
  auto ask = [&] {
    found = 7;
    return cublasLtMatmulAlgoGetHeuristic(g_lt, lt.desc, lt.a, lt.b, lt.c, lt.d, lt.pref, 1, &res, &found);
  };
  uint64_t k15 = 15, k16 = 16;
  CHECK_ST(cublasLtMatrixLayoutSetAttribute(lt.b, CUBLASLT_MATRIX_LAYOUT_ROWS, &k15, sizeof k15), CUBLAS_STATUS_SUCCESS);
  CHECK_LOUD(ask(), CUBLAS_STATUS_NOT_SUPPORTED, "inconsistent");
  CHECK(found == 0);
  // and cublasLtMatmul refuses it too, with the old algorithm
  CHECK_LOUD(lt_matmul(P, lt, ptrs(P)), CUBLAS_STATUS_INVALID_VALUE, "inconsistent");
  CHECK_ST(cublasLtMatrixLayoutSetAttribute(lt.b, CUBLASLT_MATRIX_LAYOUT_ROWS, &k16, sizeof k16), CUBLAS_STATUS_SUCCESS);
  int64_t ld_small = 15;  // < rows (16)
  CHECK_ST(cublasLtMatrixLayoutSetAttribute(lt.a, CUBLASLT_MATRIX_LAYOUT_LD, &ld_small, sizeof ld_small),
           CUBLAS_STATUS_SUCCESS);
  CHECK_LOUD(ask(), CUBLAS_STATUS_NOT_SUPPORTED, "ld 15: ld < rows");
  CHECK(found == 0);
  int64_t ld16 = 16;
  CHECK_ST(cublasLtMatrixLayoutSetAttribute(lt.a, CUBLASLT_MATRIX_LAYOUT_LD, &ld16, sizeof ld16), CUBLAS_STATUS_SUCCESS);
  cublasOperation_t n = CUBLAS_OP_N;  // op(A) becomes 16 x 12
  CHECK_ST(cublasLtMatmulDescSetAttribute(lt.desc, CUBLASLT_MATMUL_DESC_TRANSA, &n, sizeof n), CUBLAS_STATUS_SUCCESS);
  CHECK_LOUD(ask(), CUBLAS_STATUS_NOT_SUPPORTED, "TRANSA=N");
  cublasOperation_t t = CUBLAS_OP_T;
  CHECK_ST(cublasLtMatmulDescSetAttribute(lt.desc, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof t), CUBLAS_STATUS_SUCCESS);
  CHECK_ST(ask(), CUBLAS_STATUS_SUCCESS);
  CHECK(found == 1 && res.state == CUBLAS_STATUS_SUCCESS && res.workspaceSize == 0);
  CHECK_LOUD(cublasLtMatmulAlgoGetHeuristic(g_lt, lt.desc, lt.a, lt.b, lt.c, lt.d, lt.pref, 0, &res, &found),
             CUBLAS_STATUS_INVALID_VALUE, "results");
  lt_free(&lt);
}

void test_matmul_checks() {
  std::printf("cublasLtMatmul checks its operands\n");
  const cublasStatus_t IV = CUBLAS_STATUS_INVALID_VALUE, OK = CUBLAS_STATUS_SUCCESS;
  Problem P(backend("checks", 8, 16, 12, GELU));
  Lt lt;
  const uint32_t align16[4] = {16, 16, 16, 16};
  CHECK_ST(lt_setup(P, false, &lt, align16), OK);
  CHECK_ST(lt_matmul(P, lt, ptrs(P)), OK);
  Ptrs q = ptrs(P);
  // misaligned against the promise (16), aligned for a float
  q.b = P.B->p + 1;
  CHECK_LOUD(lt_matmul(P, lt, q), IV, "not aligned to 16");
  q = ptrs(P);
  q.a = P.A->p + 2;
  CHECK_LOUD(lt_matmul(P, lt, q), IV, "A = ");
  q = ptrs(P);
  q.c = q.d = P.D->p + 1;
  CHECK_LOUD(lt_matmul(P, lt, q), IV, "not aligned");
  // with a promise of 4 bytes, pointers 4 bytes past a block's start are fine (blocks one float larger)
  Problem R(backend("checks 4", 8, 16, 12, GELU));
  Dev bigA(R.A->n + 1), bigB(R.B->n + 1), bigD(R.D->n + 1);
  fill(bigA.p, 1, static_cast<int64_t>(bigA.n), 1);
  fill(bigB.p, 1, static_cast<int64_t>(bigB.n), 1);
  Lt lt4;
  const uint32_t align4[4] = {4, 4, 4, 4};
  CHECK_ST(lt_setup(R, false, &lt4, align4), OK);
  CHECK_ST(lt_matmul(R, lt4, Ptrs{bigA.p + 1, bigB.p + 1, bigD.p + 1, bigD.p + 1, nullptr, 0}), OK);
  CHECK_ST(lt_matmul(R, lt4, Ptrs{bigA.p + 2, bigB.p + 2, bigD.p + 2, bigD.p + 2, nullptr, 0}), IV);  // past the end
  char *bytes = reinterpret_cast<char *>(bigA.p);
  CHECK_LOUD(lt_matmul(R, lt4, Ptrs{bytes + 2, bigB.p, bigD.p, bigD.p, nullptr, 0}), IV, "or to a float");
  lt_free(&lt4);

  // outside device memory
  std::vector<float> host(P.A->n, 1.0f);
  q = ptrs(P);
  q.a = host.data();
  CHECK_LOUD(lt_matmul(P, lt, q), IV, "not inside one live device allocation");
  Dev shortB(P.B->n - 1);  // one float short
  q = ptrs(P);
  q.b = shortB.p;
  CHECK_LOUD(lt_matmul(P, lt, q), IV, "B [");
  std::vector<float> hbias(12, 0.5f);
  const void *hb = hbias.data(), *db = P.bias->p;
  CHECK_ST(cublasLtMatmulDescSetAttribute(lt.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &hb, sizeof hb), OK);
  CHECK_LOUD(lt_matmul(P, lt, ptrs(P)), IV, "bias");
  const void *nb = nullptr;
  CHECK_ST(cublasLtMatmulDescSetAttribute(lt.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &nb, sizeof nb), OK);
  CHECK_LOUD(lt_matmul(P, lt, ptrs(P)), IV, "bias");
  Dev shortbias(11);
  const void *sb = shortbias.p;
  CHECK_ST(cublasLtMatmulDescSetAttribute(lt.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &sb, sizeof sb), OK);
  CHECK_LOUD(lt_matmul(P, lt, ptrs(P)), IV, "bias");
  CHECK_ST(cublasLtMatmulDescSetAttribute(lt.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &db, sizeof db), OK);
  std::vector<float> hws(64);
  Dev ws(64);
  q = ptrs(P);
  q.ws = hws.data(), q.ws_bytes = 256;
  CHECK_LOUD(lt_matmul(P, lt, q), IV, "workspace");
  q.ws = ws.p, q.ws_bytes = 260;
  CHECK_LOUD(lt_matmul(P, lt, q), IV, "workspace");
  q.ws_bytes = 256;
  CHECK_ST(lt_matmul(P, lt, q), OK);
  q.ws = nullptr, q.ws_bytes = 16;
  CHECK_LOUD(lt_matmul(P, lt, q), IV, "workspace");
  q.ws_bytes = 0;
  CHECK_ST(lt_matmul(P, lt, q), OK);

  // C == D pointer with a different C layout
  cublasLtMatrixLayout_t c2;
  CHECK_ST(cublasLtMatrixLayoutCreate(&c2, CUDA_R_32F, 12, 8, 13), OK);
  CHECK_LOUD(cublasLtMatmul(g_lt, lt.desc, &P.c.alpha, P.A->p, lt.a, P.B->p, lt.b, &P.c.beta, P.D->p, c2, P.D->p,
                            lt.d, &lt.algo, nullptr, 0, kStream),
             IV, "in place");
  CHECK_ST(cublasLtMatrixLayoutDestroy(c2), OK);
  // D overlapping an input
  Dev both(P.A->n + P.D->n);
  std::memcpy(both.p, P.A->p, P.A->n * 4);
  q = ptrs(P);
  q.a = both.p, q.c = q.d = both.p + P.A->n - 4;
  CHECK_LOUD(lt_matmul(P, lt, q), IV, "D overlaps A");
  q.c = q.d = both.p;  // D == A exactly
  CHECK_LOUD(lt_matmul(P, lt, q), IV, "D overlaps A");
  Dev dbias(P.D->n);  // a bias inside D
  const void *inside = dbias.p + 16;
  CHECK_ST(cublasLtMatmulDescSetAttribute(lt.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &inside, sizeof inside), OK);
  q = ptrs(P);
  q.c = q.d = dbias.p;
  CHECK_LOUD(lt_matmul(P, lt, q), IV, "D overlaps the bias");
  CHECK_ST(cublasLtMatmulDescSetAttribute(lt.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &db, sizeof db), OK);
  // an algo that is not the heuristic's
  Lt bad = lt;
  std::memset(&bad.algo, 0, sizeof bad.algo);
  CHECK_LOUD(lt_matmul(P, bad, ptrs(P)), IV, "algo");
  bad.algo = lt.algo;
  bad.algo.data[1] = 4;  // a forged alignment promise
  CHECK_LOUD(lt_matmul(P, bad, ptrs(P)), IV, "algo");
  // dead objects
  cublasLtMatrixLayout_t dead;
  CHECK_ST(cublasLtMatrixLayoutCreate(&dead, CUDA_R_32F, 16, 12, 16), OK);
  CHECK_ST(cublasLtMatrixLayoutDestroy(dead), OK);
  bad = lt;
  bad.a = dead;
  CHECK_LOUD(lt_matmul(P, bad, ptrs(P)), IV, "layout");
  cublasLtHandle_t h;
  CHECK_ST(cublasLtCreate(&h), OK);
  CHECK_ST(cublasLtDestroy(h), OK);
  CHECK_LOUD(cublasLtMatmul(h, lt.desc, &P.c.alpha, P.A->p, lt.a, P.B->p, lt.b, &P.c.beta, P.D->p, lt.d, P.D->p,
                            lt.d, &lt.algo, nullptr, 0, kStream),
             CUBLAS_STATUS_NOT_INITIALIZED, "handle");
  CHECK_LOUD(cublasLtDestroy(h), CUBLAS_STATUS_NOT_INITIALIZED, "handle");
  lt_free(&lt);
}

// Every exported function asks the fault injector first, under its own name.
void test_fault_injection() {
  std::printf("fault injection\n");
  Problem P(backend("faults", 4, 8, 4, BIAS));
  Lt lt;
  CHECK_ST(lt_setup(P, false, &lt), CUBLAS_STATUS_SUCCESS);
  const cublasStatus_t EF = CUBLAS_STATUS_EXECUTION_FAILED, AF = CUBLAS_STATUS_ALLOC_FAILED;
  cublasLtHandle_t h = nullptr;
  cublasLtMatmulDesc_t d = nullptr;
  cublasLtMatrixLayout_t l = nullptr;
  cublasLtMatmulPreference_t p = nullptr;
  uint64_t u64 = 8;
  int32_t op = CUBLAS_OP_T;
  cublasLtMatmulHeuristicResult_t res;
  int found = 0;
#define FAIL(fn, want, call)                                                                         \
  do {                                                                                               \
    int n0_ = stub::calls(#fn);                                                                      \
    stub::fail_next(#fn);                                                                            \
    CHECK_ST(call, want);                                                                            \
    CHECK(stub::calls(#fn) == n0_ + 1);                                                              \
  } while (0)
  FAIL(cublasLtCreate, AF, cublasLtCreate(&h));
  FAIL(cublasLtMatmulDescCreate, AF, cublasLtMatmulDescCreate(&d, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  FAIL(cublasLtMatrixLayoutCreate, AF, cublasLtMatrixLayoutCreate(&l, CUDA_R_32F, 1, 1, 1));
  FAIL(cublasLtMatmulPreferenceCreate, AF, cublasLtMatmulPreferenceCreate(&p));
  FAIL(cublasLtDestroy, EF, cublasLtDestroy(g_lt));
  FAIL(cublasLtMatmulDescDestroy, EF, cublasLtMatmulDescDestroy(lt.desc));
  FAIL(cublasLtMatrixLayoutDestroy, EF, cublasLtMatrixLayoutDestroy(lt.a));
  FAIL(cublasLtMatmulPreferenceDestroy, EF, cublasLtMatmulPreferenceDestroy(lt.pref));
  FAIL(cublasLtMatmulDescSetAttribute, EF,
       cublasLtMatmulDescSetAttribute(lt.desc, CUBLASLT_MATMUL_DESC_TRANSA, &op, sizeof op));
  FAIL(cublasLtMatrixLayoutSetAttribute, EF,
       cublasLtMatrixLayoutSetAttribute(lt.b, CUBLASLT_MATRIX_LAYOUT_COLS, &u64, sizeof u64));
  FAIL(cublasLtMatmulPreferenceSetAttribute, EF,
       cublasLtMatmulPreferenceSetAttribute(lt.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &u64, sizeof u64));
  FAIL(cublasLtMatmulAlgoGetHeuristic, EF,
       cublasLtMatmulAlgoGetHeuristic(g_lt, lt.desc, lt.a, lt.b, lt.c, lt.d, lt.pref, 1, &res, &found));
  FAIL(cublasLtMatmul, EF, lt_matmul(P, lt, ptrs(P)));
  CHECK(std::isnan(P.D->p[0]));  // nothing ran
  int n0 = stub::calls("cublasLtGetVersion");
  stub::fail_next("cublasLtGetVersion");
  CHECK(cublasLtGetVersion() == 0);
  CHECK(cublasLtGetVersion() == CUBLAS_VERSION && stub::calls("cublasLtGetVersion") == n0 + 2);
  stub::fail_next("cublasLtGetStatusName");
  CHECK(cublasLtGetStatusName(CUBLAS_STATUS_SUCCESS) == nullptr);
  stub::fail_next("cublasLtGetStatusString");
  CHECK(cublasLtGetStatusString(CUBLAS_STATUS_SUCCESS) == nullptr);
  stub::fail_next("");
  CHECK(std::strcmp(cublasLtGetStatusName(CUBLAS_STATUS_NOT_SUPPORTED), "CUBLAS_STATUS_NOT_SUPPORTED") == 0);
  CHECK(cublasLtGetStatusString(CUBLAS_STATUS_INVALID_VALUE) != nullptr);
  CHECK(cublasLtGetStatusName(static_cast<cublasStatus_t>(12345)) != nullptr);
  CHECK_ST(lt_matmul(P, lt, ptrs(P)), CUBLAS_STATUS_SUCCESS);  // and everything still works
  CHECK(!std::isnan(P.D->p[0]));
  lt_free(&lt);
}

}  // namespace

int main() {
  const char *s = std::getenv("EMU_TEST_SEED");
  unsigned long long seed = s ? std::strtoull(s, nullptr, 10) : std::random_device{}();
  std::printf("test_emu_cublaslt: EMU_TEST_SEED=%llu\n", seed);
  g_rng.seed(seed);
  if (cublasLtCreate(&g_lt) != CUBLAS_STATUS_SUCCESS) return 1;
  test_backend_shapes();
  test_transposes();
  test_tf32();
  test_repeatable();
  test_closure_owns_values();
  test_unsupported();
  test_heuristic_shapes();
  test_matmul_checks();
  test_fault_injection();
  CHECK_ST(cublasLtDestroy(g_lt), CUBLAS_STATUS_SUCCESS);
  std::printf("test_emu_cublaslt: %s (%d failed checks, %zu dit-emu reports expected on stderr)\n",
              g_failures ? "FAIL" : "ok", g_failures, stub::reports().size());
  return g_failures ? 1 : 0;
}
