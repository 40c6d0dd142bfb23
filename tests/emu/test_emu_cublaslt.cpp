// test_emu_cublaslt.cpp: the emulated cuBLASLt (tools/emu/emu_cublaslt.cpp)
// alone, on the stub driver (emu_stub_driver.h): GEMMs of fresh random data
// against a float64 reference (the backend's exact calls, every transpose,
// padded leading dimensions, alpha/beta, the BIAS and GELU_BIAS epilogues,
// fp32 and TF32; bf16 A and B with a bf16 or an fp32 D, against the float64
// reference and a derived bound, a bf16 D bit for bit the fp32 one rounded to
// nearest even), the loud failures (unsupported attributes and data types,
// misaligned or foreign pointers, inconsistent shapes, fault injection),
// closures that own their descriptors' values, and bitwise repeatability.
// Set EMU_TEST_SEED=N to repeat a run (the bf16 section has a fixed seed else).
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


// ---- bf16 A and B (the CUDA backend's bf16 plans) ----

// The bf16 section draws from its own generator, of a fixed seed (EMU_TEST_SEED overrides it).
std::mt19937_64 g_rng16;
const double kU = std::ldexp(1.0, -24);  // fp32's unit roundoff
const double kBf16Max = (2 - std::ldexp(1.0, -7)) * std::ldexp(1.0, 127);

// x rounded to bf16 by arithmetic (not by bits): 8 significant bits, ties to even, inf past
// the largest bf16 and its half ulp; NaN the canonical 0x7fff. (Normal range only: no
// value here is subnormal.)
uint16_t bf16_bits(double x) {
  if (std::isnan(x)) return 0x7fff;
  double r = x;
  if (x != 0 && std::isfinite(x)) {
    int e;
    double f = std::frexp(x, &e);  // |f| in [0.5, 1)
    r = std::ldexp(std::nearbyint(std::ldexp(f, 8)), e - 8);
    if (std::fabs(r) > kBf16Max) r = std::copysign(INFINITY, x);
  }
  float v = static_cast<float>(r);  // exact: 8 significant bits
  uint32_t u;
  std::memcpy(&u, &v, 4);
  return static_cast<uint16_t>(u >> 16);
}
float bf16_float(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float v;
  std::memcpy(&v, &u, 4);
  return v;
}

// A random bf16 in +-[0.05, 1): never zero.
uint16_t rnd_bf16() {
  std::uniform_real_distribution<float> u(0.05f, 1.0f);
  float v = u(g_rng16);
  return bf16_bits((g_rng16() & 1) ? v : -v);
}

// A block of bf16 "device" memory: registered for exactly `count` bf16, NaN (0xffff) until filled.
struct Dev16 {
  uint16_t *p;
  size_t n;
  explicit Dev16(size_t count) : n(count) {
    p = static_cast<uint16_t *>(std::aligned_alloc(256, (count * 2 + 255) / 256 * 256));
    for (size_t i = 0; i < n; i++) p[i] = 0xffffu;
    stub::add_device(p, count * 2);
  }
  ~Dev16() {
    stub::remove_device(p);
    std::free(p);
  }
  Dev16(const Dev16 &) = delete;
  Dev16 &operator=(const Dev16 &) = delete;
};

// C, D and the bias of one D type: bf16 (Dev16) or fp32 (Dev), holding the same bf16 values.
struct Out {
  bool bf16;
  std::unique_ptr<Dev16> c16, d16, b16;
  std::unique_ptr<Dev> c32, d32, b32;
  void *d() const { return bf16 ? static_cast<void *>(d16->p) : static_cast<void *>(d32->p); }
  void *bias() const { return bf16 ? static_cast<void *>(b16->p) : static_cast<void *>(b32->p); }
  void *c(bool inplace) const {
    if (inplace) return d();
    return bf16 ? static_cast<void *>(c16->p) : static_cast<void *>(c32->p);
  }
  float dval(size_t i) const { return bf16 ? bf16_float(d16->p[i]) : d32->p[i]; }
};

struct BfProblem {
  Case c;
  int64_t ar, ac, lda, br, bc, ldb, ldc, ldd;
  size_t nc, nd;
  std::unique_ptr<Dev16> A, B;
  std::vector<uint16_t> cval, bval;  // C at ldc (NaN when beta is 0: it must not be read) and the bias
  std::vector<double> ref;           // the float64 reference at ldd
  double norm_ref = 0, bound32 = 0;  // ||ref||; the bound on ||D - ref|| / ||ref|| for an fp32 D
  explicit BfProblem(const Case &cs) : c(cs) {
    ar = c.ta ? c.k : c.m, ac = c.ta ? c.m : c.k, lda = ar + c.pad_a;
    br = c.tb ? c.n : c.k, bc = c.tb ? c.k : c.n, ldb = br + c.pad_b;
    ldd = c.m + c.pad_d, ldc = c.inplace ? ldd : c.m + c.pad_c;
    nd = static_cast<size_t>(ldd * (c.n - 1) + c.m), nc = static_cast<size_t>(ldc * (c.n - 1) + c.m);
    A.reset(new Dev16(static_cast<size_t>(lda * (ac - 1) + ar)));
    B.reset(new Dev16(static_cast<size_t>(ldb * (bc - 1) + br)));
    for (int64_t j = 0; j < ac; j++)
      for (int64_t i = 0; i < ar; i++) A->p[i + j * lda] = rnd_bf16();
    for (int64_t j = 0; j < bc; j++)
      for (int64_t i = 0; i < br; i++) B->p[i + j * ldb] = rnd_bf16();
    cval.assign(nc, 0xffffu);
    if (c.beta != 0.0f)
      for (int64_t j = 0; j < c.n; j++)
        for (int64_t i = 0; i < c.m; i++) cval[static_cast<size_t>(i + j * ldc)] = rnd_bf16();
    bval.resize(static_cast<size_t>(c.m));
    for (uint16_t &b : bval) b = rnd_bf16();
    reference();
  }

  // ref = epilogue(alpha op(A) op(B) + beta C + bias) in float64 from the same bf16 values, and
  // the bound. Before the epilogue's GELU, each value is a dot product of K exact products
  // (bf16 x bf16 has 16 significant bits: exact in fp32) summed in fp32 (K - 1 roundings),
  // times alpha (1), beta C (2), plus the bias (1): |v - pre| <= (K + 3) u M elementwise
  // (u = 2^-24, to first order), with M = |alpha| sum |a b| + |beta C| + |bias|. GELU's slope
  // is at most 1.13, and its own fp32 evaluation (a cube, the tanh, a handful of products and
  // sums) adds at most 16 u |pre|. In the Frobenius norm:
  //   ||D - ref|| / ||ref|| <= ((K + 3) u ||M|| (x 1.13 with GELU) + 16 u ||pre|| (GELU)) / ||ref||.
  // A bf16 D rounds once more: bf16 keeps 8 significant bits, so to nearest its relative error is
  // at most 2^-8 (1 + 2^-8 is a tie, to 1); + 2^-8 (1 + that bound) (bf16_bound). (Its RMS over
  // random values is about 2^-8 / sqrt(3) x E[1 / mantissa] = 1.6e-3: measured errors sit there.)
  void reference() {
    ref.assign(nd, NAN);
    const bool bias = c.epilogue != CUBLASLT_EPILOGUE_DEFAULT, gelu = c.epilogue == CUBLASLT_EPILOGUE_GELU_BIAS;
    double nm = 0, npre = 0, nref = 0;
    std::vector<double> arow(static_cast<size_t>(c.k));
    for (int64_t i = 0; i < c.m; i++) {
      for (int64_t kk = 0; kk < c.k; kk++)
        arow[static_cast<size_t>(kk)] = bf16_float(A->p[c.ta ? kk + i * lda : i + kk * lda]);
      for (int64_t j = 0; j < c.n; j++) {
        double s = 0, sa = 0;
        for (int64_t kk = 0; kk < c.k; kk++) {
          double p = arow[static_cast<size_t>(kk)] * bf16_float(B->p[c.tb ? j + kk * ldb : kk + j * ldb]);
          s += p, sa += std::fabs(p);
        }
        double r = c.alpha * s, mij = std::fabs(c.alpha) * sa;
        if (c.beta != 0.0f) {
          double cv = c.beta * static_cast<double>(bf16_float(cval[static_cast<size_t>(i + j * ldc)]));
          r += cv, mij += std::fabs(cv);
        }
        if (bias) {
          r += bf16_float(bval[static_cast<size_t>(i)]);
          mij += std::fabs(bf16_float(bval[static_cast<size_t>(i)]));
        }
        npre += r * r, nm += mij * mij;
        if (gelu) r = 0.5 * r * (1 + std::tanh(std::sqrt(2 / 3.14159265358979323846) * (r + 0.044715 * r * r * r)));
        ref[static_cast<size_t>(i + j * ldd)] = r;
        nref += r * r;
      }
    }
    norm_ref = std::sqrt(nref);
    const double dot = (c.k + 3) * kU * std::sqrt(nm);
    bound32 = (gelu ? 1.13 * dot + 16 * kU * std::sqrt(npre) : dot) / norm_ref;
  }
  double bf16_bound() const { return bound32 + std::ldexp(1.0, -8) * (1 + bound32); }

  // C, D and the bias for a D of that type, C filled (when read), D NaN.
  Out out(bool bf16) const {
    Out o;
    o.bf16 = bf16;
    const size_t m = static_cast<size_t>(c.m);
    if (bf16) {
      o.d16.reset(new Dev16(nd));
      o.b16.reset(new Dev16(m));
      std::memcpy(o.b16->p, bval.data(), m * 2);
      if (!c.inplace) o.c16.reset(new Dev16(nc));
      uint16_t *cp = c.inplace ? o.d16->p : o.c16->p;
      if (c.beta != 0.0f) std::memcpy(cp, cval.data(), nc * 2);
    } else {
      o.d32.reset(new Dev(nd));
      o.b32.reset(new Dev(m));
      for (size_t i = 0; i < m; i++) o.b32->p[i] = bf16_float(bval[i]);
      if (!c.inplace) o.c32.reset(new Dev(nc));
      float *cp = c.inplace ? o.d32->p : o.c32->p;
      if (c.beta != 0.0f)
        for (size_t i = 0; i < nc; i++) cp[i] = bf16_float(cval[i]);
    }
    return o;
  }

  // ||D - ref|| / ||ref|| over M x N; infinite if a value is NaN.
  double rel_err(const Out &o) const {
    double num = 0;
    for (int64_t j = 0; j < c.n; j++)
      for (int64_t i = 0; i < c.m; i++) {
        size_t at = static_cast<size_t>(i + j * ldd);
        double v = o.dval(at), r = ref[at];
        if (std::isnan(v)) return INFINITY;
        num += (v - r) * (v - r);
      }
    return std::sqrt(num) / norm_ref;
  }
};

// The data types of a bf16 call; a, b, c, d: cudaDataType_t; bias: BIAS_DATA_TYPE (-1: not set).
struct Types {
  cublasComputeType_t compute;
  int32_t a, b, c, d, bias;
};
Types bf16_types(bool d_bf16, bool set_bias_type) {
  int32_t dt = d_bf16 ? CUDA_R_16BF : CUDA_R_32F;
  return Types{CUBLAS_COMPUTE_32F, CUDA_R_16BF, CUDA_R_16BF, dt, dt, set_bias_type ? dt : -1};
}

// The descriptors as cublaslt.c makes them, with those types, then the heuristic.
cublasStatus_t bf_setup(const BfProblem &P, const Out &o, const Types &t, Lt *lt, const uint32_t align[4] = nullptr) {
  static const uint32_t al256[4] = {256, 256, 256, 256};
  if (!align) align = al256;
  cublasStatus_t st;
#define TRY(call)                                                                                    \
  if ((st = (call)) != CUBLAS_STATUS_SUCCESS) return st
  TRY(cublasLtMatmulDescCreate(&lt->desc, t.compute, CUDA_R_32F));
  cublasOperation_t ta = P.c.ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb = P.c.tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  TRY(cublasLtMatmulDescSetAttribute(lt->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
  TRY(cublasLtMatmulDescSetAttribute(lt->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
  cublasLtEpilogue_t epi = static_cast<cublasLtEpilogue_t>(P.c.epilogue);
  TRY(cublasLtMatmulDescSetAttribute(lt->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
  const void *bias = o.bias();
  TRY(cublasLtMatmulDescSetAttribute(lt->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
  if (t.bias != -1)
    TRY(cublasLtMatmulDescSetAttribute(lt->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &t.bias, sizeof t.bias));
  TRY(cublasLtMatrixLayoutCreate(&lt->a, static_cast<cudaDataType>(t.a), P.ar, P.ac, P.lda));
  TRY(cublasLtMatrixLayoutCreate(&lt->b, static_cast<cudaDataType>(t.b), P.br, P.bc, P.ldb));
  TRY(cublasLtMatrixLayoutCreate(&lt->d, static_cast<cudaDataType>(t.d), P.c.m, P.c.n, P.ldd));
  if (P.c.inplace)
    lt->c = lt->d;
  else
    TRY(cublasLtMatrixLayoutCreate(&lt->c, static_cast<cudaDataType>(t.c), P.c.m, P.c.n, P.ldc));
  TRY(cublasLtMatmulPreferenceCreate(&lt->pref));
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

cublasStatus_t bf_matmul(const BfProblem &P, const Lt &lt, const void *a, const void *b, const void *c, void *d) {
  return cublasLtMatmul(g_lt, lt.desc, &P.c.alpha, a, lt.a, b, lt.b, &P.c.beta, c, lt.c, d, lt.d, &lt.algo, nullptr,
                        0, kStream);
}
cublasStatus_t bf_matmul(const BfProblem &P, const Lt &lt, const Out &o) {
  return bf_matmul(P, lt, P.A->p, P.B->p, o.c(P.c.inplace), o.d());
}

// Runs the problem with an fp32 and with a bf16 D, each against the reference and its
// bound; the bf16 D must be the fp32 D rounded once (to nearest even), bit for bit.
void bf_run_checked(const BfProblem &P, bool set_bias_type = false) {
  Out o32 = P.out(false), o16 = P.out(true);
  double err[2];
  for (int bf = 0; bf < 2; bf++) {
    const Out &o = bf ? o16 : o32;
    Lt lt;
    CHECK_ST(bf_setup(P, o, bf16_types(bf != 0, set_bias_type), &lt), CUBLAS_STATUS_SUCCESS);
    auto t0 = std::chrono::steady_clock::now();
    CHECK_ST(bf_matmul(P, lt, o), CUBLAS_STATUS_SUCCESS);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    lt_free(&lt);
    err[bf] = P.rel_err(o);
    double bound = bf ? P.bf16_bound() : P.bound32;
    std::printf("  %-28s bf16 x bf16 -> %s M %4lld N %4lld K %4lld: rel err %.2e <= %.2e (%.2f GFLOP/s)\n", P.c.name,
                bf ? "bf16" : "fp32", (long long)P.c.m, (long long)P.c.n, (long long)P.c.k, err[bf], bound,
                2e-9 * P.c.m * P.c.n * P.c.k / (secs > 0 ? secs : 1e-9));
    CHECK(err[bf] <= bound);
  }
  CHECK(err[1] > std::ldexp(1.0, -12));  // the bf16 rounding shows (about 1.6e-3): not an fp32 D
  size_t wrong = 0;
  for (int64_t j = 0; j < P.c.n; j++)
    for (int64_t i = 0; i < P.c.m; i++) {
      size_t at = static_cast<size_t>(i + j * P.ldd);
      wrong += o16.d16->p[at] != bf16_bits(o32.d32->p[at]);
    }
  if (wrong) std::fprintf(stderr, "%s: %zu bf16 values are not the fp32 ones rounded\n", P.c.name, wrong);
  CHECK(wrong == 0);
  // the padding of D stays untouched
  if (P.c.pad_d > 0) CHECK(o16.d16->p[P.c.m] == 0xffffu && std::isnan(o32.d32->p[P.c.m]));
}

void test_bf16() {
  std::printf("bf16 A and B, fp32 and bf16 C/D\n");
  // the backend's calls (TRANSA=T, TRANSB=N, C == D, beta 0), a DiT-like one among them
  const Case cases[] = {backend("DiT qkv-like, BIAS", 256, 1152, 1152, BIAS),
                        backend("DiT fc1-like, GELU_BIAS", 64, 1152, 512, GELU),
                        backend("odd sizes, GELU_BIAS", 19, 23, 37, GELU),
                        backend("odd sizes, BIAS", 19, 23, 37, BIAS),
                        backend("odd sizes, none", 19, 23, 37, NONE),
                        backend("one row, BIAS", 1, 70, 9, BIAS)};
  for (const Case &c : cases) {
    BfProblem P(c);
    bf_run_checked(P);
  }
  // every transpose, padded ld, alpha/beta, C != D, each epilogue, BIAS_DATA_TYPE set to D's type
  const uint32_t epis[3] = {NONE, BIAS, GELU};
  int e = 0;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++)
      for (int inplace = 0; inplace < 2; inplace++) {
        char name[64];
        uint32_t epi = epis[e++ % 3];
        std::snprintf(name, sizeof name, "op %c%c %s %s", ta ? 'T' : 'N', tb ? 'T' : 'N', inplace ? "C==D" : "C!=D",
                      epi == NONE ? "none" : epi == BIAS ? "bias" : "gelu");
        Case c{name, 37, 19 + ta, 23 + tb, ta != 0, tb != 0, 3, 1, 2, 5, 0.75f, -0.5f, epi, inplace != 0};
        BfProblem P(c);
        bf_run_checked(P, e % 2 == 0);
      }
  Case c{"K 1, beta 0, C not read", 7, 5, 1, false, true, 0, 2, 0, 1, 2.0f, 0.0f, GELU, false};
  BfProblem P(c);  // C is NaN: beta 0 must not read it
  bf_run_checked(P, true);
}

// Rounding to bf16, case by case: D = A (K 3) x B (ones), summed exactly in fp32.
void test_bf16_rounding() {
  std::printf("bf16 rounding of D\n");
  const double u = std::ldexp(1.0, -7);  // bf16's ulp at 1
  const double rows[][3] = {
      {1, u / 2, 0},                        // a tie: to 1 (even)
      {1 + u, u / 2, 0},                    // a tie: to 1 + 2u (even)
      {1, u / 2, std::ldexp(1.0, -16)},     // past the tie: up to 1 + u
      {-1, -u / 2, 0},                      // a tie: to -1
      {1, -u / 4, 0},                       // a tie below 1 (ulp u/2): to 1
      {1, u / 4, std::ldexp(1.0, -12)},     // under the tie: to 1
      {kBf16Max, std::ldexp(1.0, 119), 0},  // the largest bf16 and half its ulp: to inf
      {INFINITY, 1, 0},                     // inf stays
      {INFINITY, -INFINITY, 0},             // NaN
  };
  const double want[] = {1, 1 + 2 * u, 1 + u, -1, 1, 1, INFINITY, INFINITY, NAN};
  const int64_t n_rows = sizeof rows / sizeof rows[0];
  BfProblem P(Case{"bf16 rounding", n_rows, 1, 3, false, false, 0, 0, 0, 0, 1.0f, 0.0f, NONE, true});
  for (int64_t i = 0; i < n_rows; i++)
    for (int64_t kk = 0; kk < 3; kk++) {
      P.A->p[i + kk * n_rows] = bf16_bits(rows[i][kk]);
      CHECK(bf16_float(P.A->p[i + kk * n_rows]) == static_cast<float>(rows[i][kk]));  // each one a bf16
    }
  for (int64_t kk = 0; kk < 3; kk++) P.B->p[kk] = bf16_bits(1.0);
  Out o = P.out(true);
  Lt lt;
  CHECK_ST(bf_setup(P, o, bf16_types(true, false), &lt), CUBLAS_STATUS_SUCCESS);
  CHECK_ST(bf_matmul(P, lt, o), CUBLAS_STATUS_SUCCESS);
  lt_free(&lt);
  for (int64_t i = 0; i < n_rows; i++) {
    uint16_t got = o.d16->p[i];
    bool ok = std::isnan(want[i]) ? got == 0x7fffu : got == bf16_bits(want[i]);
    if (!ok) std::fprintf(stderr, "bf16 rounding row %lld: 0x%04x, want %.9g\n", (long long)i, got, want[i]);
    CHECK(ok);
  }
}

void test_bf16_refused() {
  std::printf("bf16: what cuBLASLt's table of data types lacks is refused\n");
  const cublasStatus_t NS = CUBLAS_STATUS_NOT_SUPPORTED, IV = CUBLAS_STATUS_INVALID_VALUE, OK = CUBLAS_STATUS_SUCCESS;
  BfProblem P(backend("refusals", 8, 16, 12, GELU));
  Out o16 = P.out(true), o32 = P.out(false);
  struct Bad {
    Types t;
    const char *why;
  } bad[] = {
      {Types{CUBLAS_COMPUTE_32F, CUDA_R_16BF, CUDA_R_16BF, CUDA_R_16BF, CUDA_R_16BF, CUDA_R_32F},
       "the bias must be of D's type"},  // a bf16 D takes only a bf16 bias
      {Types{CUBLAS_COMPUTE_32F, CUDA_R_16BF, CUDA_R_16BF, CUDA_R_32F, CUDA_R_32F, CUDA_R_16BF},
       "the bias must be of D's type"},
      {Types{CUBLAS_COMPUTE_32F, CUDA_R_16BF, CUDA_R_32F, CUDA_R_32F, CUDA_R_32F, -1}, "A and B differ"},
      {Types{CUBLAS_COMPUTE_32F, CUDA_R_32F, CUDA_R_16BF, CUDA_R_32F, CUDA_R_32F, -1}, "A and B differ"},
      {Types{CUBLAS_COMPUTE_32F, CUDA_R_32F, CUDA_R_32F, CUDA_R_16BF, CUDA_R_16BF, -1}, "want a CUDA_R_32F D"},
      {Types{CUBLAS_COMPUTE_32F_FAST_TF32, CUDA_R_16BF, CUDA_R_16BF, CUDA_R_16BF, CUDA_R_16BF, -1},
       "want CUBLAS_COMPUTE_32F"},
      {Types{CUBLAS_COMPUTE_32F_FAST_TF32, CUDA_R_16BF, CUDA_R_16BF, CUDA_R_32F, CUDA_R_32F, -1},
       "want CUBLAS_COMPUTE_32F"},
  };
  for (const Bad &b : bad) {
    Lt lt;
    CHECK_LOUD(bf_setup(P, b.t.d == CUDA_R_16BF ? o16 : o32, b.t, &lt), NS, b.why);
    lt_free(&lt);
  }
  // C and D of different types (out of place)
  {
    BfProblem Q(Case{"C 32F, D 16BF", 12, 8, 16, true, false, 0, 0, 0, 0, 1.0f, 0.5f, BIAS, false});
    Out q = Q.out(true);
    Lt lt;
    CHECK_LOUD(bf_setup(Q, q, Types{CUBLAS_COMPUTE_32F, CUDA_R_16BF, CUDA_R_16BF, CUDA_R_32F, CUDA_R_16BF, -1}, &lt),
               NS, "C and D differ");
    lt_free(&lt);
  }
  // what changes after the heuristic is refused by cublasLtMatmul
  Lt lt;
  CHECK_ST(bf_setup(P, o16, bf16_types(true, false), &lt), OK);
  CHECK_ST(bf_matmul(P, lt, o16), OK);
  int32_t f32 = CUDA_R_32F, bf16 = CUDA_R_16BF, none = -1;
  CHECK_ST(cublasLtMatmulDescSetAttribute(lt.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &f32, sizeof f32), OK);
  CHECK_LOUD(bf_matmul(P, lt, o16), NS, "the bias must be of D's type");
  CHECK_ST(cublasLtMatmulDescSetAttribute(lt.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bf16, sizeof bf16), OK);
  CHECK_ST(bf_matmul(P, lt, o16), OK);  // the same bias type as -1 (the algo's) gives a bf16 D
  CHECK_ST(cublasLtMatmulDescSetAttribute(lt.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &none, sizeof none), OK);
  CHECK_ST(bf_matmul(P, lt, o16), OK);
  uint32_t t32 = CUDA_R_32F;  // D (and C, the same layout) to fp32, after the heuristic
  CHECK_ST(cublasLtMatrixLayoutSetAttribute(lt.d, CUBLASLT_MATRIX_LAYOUT_TYPE, &t32, sizeof t32), OK);
  const void *b32 = o32.bias();
  CHECK_ST(cublasLtMatmulDescSetAttribute(lt.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &b32, sizeof b32), OK);
  CHECK_LOUD(bf_matmul(P, lt, P.A->p, P.B->p, o32.d(), o32.d()), IV, "other data types");
  cublasLtMatmulHeuristicResult_t res;
  int found = 0;
  CHECK_ST(cublasLtMatmulAlgoGetHeuristic(g_lt, lt.desc, lt.a, lt.b, lt.c, lt.d, lt.pref, 1, &res, &found), OK);
  CHECK(found == 1);
  lt.algo = res.algo;
  CHECK_ST(bf_matmul(P, lt, P.A->p, P.B->p, o32.d(), o32.d()), OK);
  CHECK(P.rel_err(o32) <= P.bound32);
  int32_t compute = CUBLAS_COMPUTE_32F_FAST_TF32;
  CHECK_ST(cublasLtMatmulDescSetAttribute(lt.desc, CUBLASLT_MATMUL_DESC_COMPUTE_TYPE, &compute, sizeof compute), OK);
  CHECK_LOUD(bf_matmul(P, lt, P.A->p, P.B->p, o32.d(), o32.d()), NS, "want CUBLAS_COMPUTE_32F");
  lt_free(&lt);
  // still not emulated: fp16, and a bias type other than fp32 or bf16
  cublasLtMatrixLayout_t l = nullptr;
  CHECK_LOUD(cublasLtMatrixLayoutCreate(&l, CUDA_R_16F, 4, 4, 4), NS, "data type");
  CHECK_LOUD(cublasLtMatrixLayoutCreate(&l, CUDA_R_8F_E4M3, 4, 4, 4), NS, "data type");
  CHECK_ST(cublasLtMatrixLayoutCreate(&l, CUDA_R_16BF, 4, 4, 4), OK);
  uint32_t t16f = CUDA_R_16F;
  CHECK_LOUD(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_TYPE, &t16f, sizeof t16f), NS,
             "CUBLASLT_MATRIX_LAYOUT_TYPE");
  CHECK_ST(cublasLtMatrixLayoutDestroy(l), OK);
}

// Sizes, alignment and ranges count bf16 as 2 bytes.
void test_bf16_checks() {
  std::printf("bf16: alignment and ranges in 2-byte elements\n");
  const cublasStatus_t IV = CUBLAS_STATUS_INVALID_VALUE, OK = CUBLAS_STATUS_SUCCESS;
  BfProblem P(backend("bf16 checks", 8, 16, 12, GELU));
  Out o = P.out(true);
  Lt lt;
  const uint32_t align2[4] = {2, 2, 2, 2};
  CHECK_ST(bf_setup(P, o, bf16_types(true, true), &lt, align2), OK);
  CHECK_ST(bf_matmul(P, lt, o), OK);  // every block exactly its size: A, B, D, the bias (12 bf16)
  CHECK(P.rel_err(o) <= P.bf16_bound());
  // 2 bytes past a block's start: fine with a promise of 2 (blocks one bf16 larger)
  Dev16 bigA(P.A->n + 1), bigB(P.B->n + 1), bigD(o.d16->n + 1);
  std::memcpy(bigA.p + 1, P.A->p, P.A->n * 2);
  std::memcpy(bigB.p + 1, P.B->p, P.B->n * 2);
  CHECK_ST(bf_matmul(P, lt, bigA.p + 1, bigB.p + 1, bigD.p + 1, bigD.p + 1), OK);
  CHECK(std::memcmp(bigD.p + 1, o.d16->p, o.d16->n * 2) == 0);
  CHECK_ST(bf_matmul(P, lt, bigA.p + 2, bigB.p, bigD.p, bigD.p), IV);  // A past the end
  const char *bytes = reinterpret_cast<const char *>(bigA.p);
  CHECK_LOUD(bf_matmul(P, lt, bytes + 1, P.B->p, o.d(), o.d()), IV, "or to a bf16");
  Dev16 shortB(P.B->n - 1);
  CHECK_LOUD(bf_matmul(P, lt, P.A->p, shortB.p, o.d(), o.d()), IV, "B [");
  Dev16 shortD(o.d16->n - 1);
  CHECK_LOUD(bf_matmul(P, lt, P.A->p, P.B->p, nullptr, shortD.p), IV, "D [");  // beta 0: C may be NULL
  Dev16 shortbias(11);
  const void *sb = shortbias.p, *db = o.bias();
  CHECK_ST(cublasLtMatmulDescSetAttribute(lt.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &sb, sizeof sb), OK);
  CHECK_LOUD(bf_matmul(P, lt, o), IV, "the bias [");
  CHECK_ST(cublasLtMatmulDescSetAttribute(lt.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &db, sizeof db), OK);
  lt_free(&lt);
  // a promise of 4 bytes is held against bf16 pointers too
  const uint32_t align4[4] = {4, 4, 4, 4};
  CHECK_ST(bf_setup(P, o, bf16_types(true, false), &lt, align4), OK);
  CHECK_LOUD(bf_matmul(P, lt, bigA.p + 1, P.B->p, o.d(), o.d()), IV, "not aligned to 4");
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
  const unsigned long long seed16 = s ? seed : 0xb16b16ull;  // the bf16 section: a fixed seed unless asked
  std::printf("bf16 section: seed %llu\n", seed16);
  g_rng16.seed(seed16);
  test_bf16();
  test_bf16_rounding();
  test_bf16_refused();
  test_bf16_checks();
  CHECK_ST(cublasLtDestroy(g_lt), CUBLAS_STATUS_SUCCESS);
  std::printf("test_emu_cublaslt: %s (%d failed checks, %zu dit-emu reports expected on stderr)\n",
              g_failures ? "FAIL" : "ok", g_failures, stub::reports().size());
  return g_failures ? 1 : 0;
}
