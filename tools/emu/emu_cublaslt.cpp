// emu_cublaslt.cpp: the emulated cuBLASLt of libdit_emu.so (README.md). It
// owns the cublasLt* entry points that runtime/cuda/cublaslt.c calls: the
// handle, matmul descriptors, matrix layouts, preferences, the heuristic (up
// to four algorithms, emu_gemm.h), cublasLtMatmulAlgoCheck and
// cublasLtMatmul, a column-major GEMM accumulated in fp32 with the BIAS and
// GELU_BIAS epilogues, for the data types of cuBLASLt's table (README.md):
// fp32 (or TF32-input) A, B, C, D; bf16 A, B with bf16 or fp32 C, D. Everything
// is checked at call time (live objects, data types, shapes, alignment
// promises, device ranges); anything not emulated, or not in the table, fails
// with CUBLAS_STATUS_NOT_SUPPORTED and a report. The GEMM is submitted to the
// stream as a closure that owns copies of all it reads (graphs replay it).
#include <cublasLt.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <new>
#include <unordered_set>
#include <vector>

#include "emu_gemm.h"
#include "emu_internal.h"

#define EMU_API extern "C" __attribute__((visibility("default")))

namespace {

using emu::Gemm;

constexpr uint64_t kHandleMagic = 0x646974656d754c68ull;  // "ditemuLh"
constexpr uint64_t kDescMagic = 0x646974656d754c64ull;
constexpr uint64_t kLayoutMagic = 0x646974656d754c6cull;
constexpr uint64_t kPrefMagic = 0x646974656d754c70ull;
constexpr uint64_t kAlgoTag = 0x646974656d75416cull;
constexpr uint64_t kMaxDim = 0x7fffffff;  // rows and cols must fit int32_t, as in cuBLASLt

// The objects behind the opaque pointers; magic first.
struct Handle { uint64_t magic; };
struct Desc {
  uint64_t magic;
  cublasComputeType_t compute;
  bool ta, tb;
  uint32_t epilogue;
  uintptr_t bias;
  int32_t bias_type;  // CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE: -1 (the default) is D's type
};
struct Layout { uint64_t magic; int32_t type; uint64_t rows, cols; int64_t ld; };
struct Pref { uint64_t magic; uint64_t workspace; uint32_t align[4] /* A, B, C, D */, reduction; };

// Every live object, so that a stale or foreign pointer is found without
// reading through it. Never destroyed: a handle may die in an exit handler.
std::mutex g_mu;
std::unordered_set<const void *> &live_set() {
  static auto *set = new std::unordered_set<const void *>;
  return *set;
}

template <class T> T *make(uint64_t magic) {
  T *t = new (std::nothrow) T{};
  if (!t) return nullptr;
  t->magic = magic;
  std::lock_guard<std::mutex> lock(g_mu);
  try {
    live_set().insert(t);
  } catch (const std::exception &) {
    delete t;
    return nullptr;
  }
  return t;
}

template <class T> T *live(const void *p, uint64_t magic) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!p || !live_set().count(p)) return nullptr;
  T *t = static_cast<T *>(const_cast<void *>(p));
  return t->magic == magic ? t : nullptr;
}

// Destroys a live object of that magic; false for any other pointer.
template <class T> bool destroy(const void *p, uint64_t magic) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!p || !live_set().count(p) || static_cast<const T *>(p)->magic != magic) return false;
  live_set().erase(p);
  delete static_cast<const T *>(p);
  return true;
}

// Attribute names for messages, indexed by value (cublasLt.h; nullptr: none).
const char *const kDescAttr[] = {
    "COMPUTE_TYPE", "SCALE_TYPE", "POINTER_MODE", "TRANSA", "TRANSB", "TRANSC", "FILL_MODE", "EPILOGUE",
    "BIAS_POINTER", nullptr, "BIAS_BATCH_STRIDE", "EPILOGUE_AUX_POINTER", "EPILOGUE_AUX_LD",
    "EPILOGUE_AUX_BATCH_STRIDE", "ALPHA_VECTOR_BATCH_STRIDE", "SM_COUNT_TARGET", nullptr, "A_SCALE_POINTER",
    "B_SCALE_POINTER", "C_SCALE_POINTER", "D_SCALE_POINTER", "AMAX_D_POINTER", "EPILOGUE_AUX_DATA_TYPE",
    "EPILOGUE_AUX_SCALE_POINTER", "EPILOGUE_AUX_AMAX_POINTER", "FAST_ACCUM", "BIAS_DATA_TYPE"};
const char *const kLayoutAttr[] = {"TYPE", "ORDER", "ROWS", "COLS", "LD", "BATCH_COUNT", "STRIDED_BATCH_OFFSET",
                                   "PLANE_OFFSET", "BATCH_MODE"};
const char *const kPrefAttr[] = {"SEARCH_MODE", "MAX_WORKSPACE_BYTES", nullptr, "REDUCTION_SCHEME_MASK", nullptr,
                                 "MIN_ALIGNMENT_A_BYTES", "MIN_ALIGNMENT_B_BYTES", "MIN_ALIGNMENT_C_BYTES",
                                 "MIN_ALIGNMENT_D_BYTES", "MAX_WAVES_COUNT", nullptr, nullptr, "IMPL_MASK"};

struct Name {
  char s[96];
};
template <size_t N> Name attr_name(const char *prefix, const char *const (&names)[N], int a) {
  Name n;
  if (a >= 0 && static_cast<size_t>(a) < N && names[a])
    std::snprintf(n.s, sizeof n.s, "%s%s", prefix, names[a]);
  else
    std::snprintf(n.s, sizeof n.s, "%s<%d>", prefix, a);
  return n;
}

// Reads an attribute value of `want` bytes (4: int32_t or uint32_t, 8:
// int64_t, uint64_t or a pointer) into *v.
bool read_value(const void *buf, size_t size, size_t want, int64_t *v, const char *fn, const char *attr) {
  if (!buf || size != want) {
    emu::report("%s: %s wants %zu bytes, got %zu%s", fn, attr, want, size, buf ? "" : " at NULL");
    return false;
  }
  int32_t x;
  if (want == 4) std::memcpy(&x, buf, 4), *v = x;
  else std::memcpy(v, buf, 8);
  return true;
}

// Destroys a descriptor for a Destroy function: NULL is fine, a dead one is reported.
template <class T> cublasStatus_t destroy_api(const void *p, uint64_t magic, const char *fn, const char *what) {
  if (!p || destroy<T>(p, magic)) return CUBLAS_STATUS_SUCCESS;
  emu::report("%s: %p is not a live %s", fn, p, what);
  return CUBLAS_STATUS_INVALID_VALUE;
}

bool compute_ok(cublasComputeType_t c) { return c == CUBLAS_COMPUTE_32F || c == CUBLAS_COMPUTE_32F_FAST_TF32; }
bool epilogue_ok(uint32_t e) {
  return e == CUBLASLT_EPILOGUE_DEFAULT || e == CUBLASLT_EPILOGUE_BIAS || e == CUBLASLT_EPILOGUE_GELU_BIAS;
}
bool pow2(uint32_t x) { return x && !(x & (x - 1)); }
bool type_ok(int64_t t) { return t == CUDA_R_32F || t == CUDA_R_16BF; }  // a matrix layout's
uint64_t type_bytes(int32_t t) { return t == CUDA_R_16BF ? 2 : 4; }

struct TypeName {
  char s[24];
};
TypeName type_name(int32_t t) {
  TypeName n;
  if (t == CUDA_R_32F) std::snprintf(n.s, sizeof n.s, "CUDA_R_32F");
  else if (t == CUDA_R_16BF) std::snprintf(n.s, sizeof n.s, "CUDA_R_16BF");
  else if (t == -1) std::snprintf(n.s, sizeof n.s, "-1 (D's)");
  else std::snprintf(n.s, sizeof n.s, "type %d", (int)t);
  return n;
}

// The data types against the table of cublasLtMatmul's supported types in the
// cuBLAS documentation (README.md): CUBLAS_COMPUTE_32F with CUDA_R_32F
// scaling takes 32F A, B with a 32F C, D, or 16BF A, B with a 16BF or a 32F
// C, D; CUBLAS_COMPUTE_32F_FAST_TF32 takes only 32F A, B, C, D. The bias is of
// D's type (BIAS_DATA_TYPE -1, its default, means D's). Reports what is not.
bool types_ok(const Desc *op, const Layout *a, const Layout *b, const Layout *c, const Layout *d, const char *fn) {
  const bool bf16_in = a->type == CUDA_R_16BF;
  const char *why = a->type != b->type                                ? "A and B differ"
                    : c->type != d->type                              ? "C and D differ"
                    : !bf16_in && d->type != CUDA_R_32F               ? "CUDA_R_32F A, B want a CUDA_R_32F D"
                    : bf16_in && op->compute != CUBLAS_COMPUTE_32F    ? "CUDA_R_16BF A, B want CUBLAS_COMPUTE_32F"
                    : op->bias_type != -1 && op->bias_type != d->type ? "the bias must be of D's type"
                                                                      : nullptr;
  if (why)
    emu::report("%s: compute type %d with A %s, B %s, C %s, D %s, bias %s: %s (not in cuBLASLt's table of "
                "cublasLtMatmul's data types)",
                fn, (int)op->compute, type_name(a->type).s, type_name(b->type).s, type_name(c->type).s,
                type_name(d->type).s, type_name(op->bias_type).s, why);
  return !why;
}

// The data types of the problem (the bias's as used: -1 is D's), as the heuristic records them in its algo.
uint64_t types_key(const Desc *op, const Layout *a, const Layout *b, const Layout *c, const Layout *d) {
  const int32_t bias = op->bias_type == -1 ? d->type : op->bias_type;
  return static_cast<uint64_t>(op->compute) << 40 | static_cast<uint64_t>(a->type & 0xff) << 32 |
         static_cast<uint64_t>(b->type & 0xff) << 24 | static_cast<uint64_t>(c->type & 0xff) << 16 |
         static_cast<uint64_t>(d->type & 0xff) << 8 | static_cast<uint64_t>(bias & 0xff);
}


// Bytes of the column-major matrix: the last column ends at ld*(cols-1)+rows.
uint64_t extent(const Layout *l) {
  return ((l->cols - 1) * static_cast<uint64_t>(l->ld) + l->rows) * type_bytes(l->type);
}

bool layout_ok(const Layout *l, const char *which, const char *fn) {
  const char *why = l->rows < 1 || l->cols < 1 || l->rows > kMaxDim || l->cols > kMaxDim ? "rows, cols not in 1..2^31-1"
                    : l->ld < 0 || static_cast<uint64_t>(l->ld) < l->rows                ? "ld < rows"
                    : (l->cols - 1) > (UINT64_MAX / 8 - l->rows) / static_cast<uint64_t>(l->ld) ? "too large"
                                                                                                : nullptr;
  if (why)
    emu::report("%s: %s is %llu x %llu, ld %lld: %s", fn, which, (unsigned long long)l->rows,
                (unsigned long long)l->cols, (long long)l->ld, why);
  return !why;
}

// The problem's sizes, from the descriptor and layouts; reports what is inconsistent.
bool shape(const Desc *op, const Layout *a, const Layout *b, const Layout *c, const Layout *d, Gemm *g,
           const char *fn) {
  if (!layout_ok(a, "A", fn) || !layout_ok(b, "B", fn) || !layout_ok(c, "C", fn) || !layout_ok(d, "D", fn))
    return false;
  uint64_t ar = op->ta ? a->cols : a->rows, ac = op->ta ? a->rows : a->cols;
  uint64_t br = op->tb ? b->cols : b->rows, bc = op->tb ? b->rows : b->cols;
  if (ar != d->rows || bc != d->cols || ac != br || c->rows != d->rows || c->cols != d->cols) {
    emu::report("%s: op(A) %llu x %llu (TRANSA=%c), op(B) %llu x %llu (TRANSB=%c), C %llu x %llu, D %llu x %llu "
                "are inconsistent (want op(A) M x K, op(B) K x N, C and D M x N)",
                fn, (unsigned long long)ar, (unsigned long long)ac, op->ta ? 'T' : 'N', (unsigned long long)br,
                (unsigned long long)bc, op->tb ? 'T' : 'N', (unsigned long long)c->rows,
                (unsigned long long)c->cols, (unsigned long long)d->rows, (unsigned long long)d->cols);
    return false;
  }
  g->m = static_cast<int64_t>(d->rows), g->n = static_cast<int64_t>(d->cols), g->k = static_cast<int64_t>(ac);
  g->ta = op->ta, g->tb = op->tb;
  g->tf32 = op->compute == CUBLAS_COMPUTE_32F_FAST_TF32;
  g->gelu = op->epilogue == CUBLASLT_EPILOGUE_GELU_BIAS;
  g->lda = a->ld, g->ldb = b->ld, g->ldc = c->ld, g->ldd = d->ld;
  return true;
}

uint64_t algo_check(const cublasLtMatmulAlgo_t *al) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int i = 0; i < 7; i++) h = (h ^ al->data[i]) * 0x100000001b3ull;
  return h;
}

// An algo's bytes: data[0] the tag, [1..4] the A, B, C, D alignments the
// preference promised, [5] the GemmAlgo | split-K slices << 8 | the
// reduction scheme << 16, [6] types_key, [7] algo_check of [0..7).
struct AlgoInfo {
  uint32_t id, scheme;
  int splits;
};

cublasLtMatmulAlgo_t algo_make(const uint32_t align[4], const AlgoInfo &in, uint64_t types) {
  cublasLtMatmulAlgo_t al;
  std::memset(&al, 0, sizeof al);
  al.data[0] = kAlgoTag;
  for (int i = 0; i < 4; i++) al.data[1 + i] = align[i];
  al.data[5] = in.id | static_cast<uint64_t>(in.splits) << 8 | static_cast<uint64_t>(in.scheme) << 16;
  al.data[6] = types;
  al.data[7] = algo_check(&al);
  return al;
}

// Reads an algo's bytes; false (reported) unless they are the emulated
// heuristic's, unchanged, for a problem of this k.
bool algo_read(const cublasLtMatmulAlgo_t *al, int64_t k, AlgoInfo *out, const char *fn) {
  const char *why = nullptr;
  if (!al || al->data[0] != kAlgoTag || al->data[7] != algo_check(al)) {
    why = "the algo does not come from cublasLtMatmulAlgoGetHeuristic (tag or checksum)";
  } else {
    out->id = static_cast<uint32_t>(al->data[5] & 0xff);
    out->splits = static_cast<int>(al->data[5] >> 8 & 0xff);
    out->scheme = static_cast<uint32_t>(al->data[5] >> 16 & 0xff);
    const bool split = out->id == emu::GEMM_SPLIT_K;
    for (int i = 0; i < 4 && !why; i++)
      if (!pow2(static_cast<uint32_t>(al->data[1 + i])) || al->data[1 + i] > 256) why = "an alignment promise is not 1..256";
    if (!why && (out->id >= emu::GEMM_ALGOS || (al->data[5] >> 24) != 0)) why = "no such emulated algorithm";
    if (!why && split != (out->scheme == CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE)) why = "its reduction scheme";
    if (!why && split && (out->splits < 2 || out->splits > k)) why = "its split-K slices do not fit K";
    if (!why && !split && out->splits) why = "split-K slices without split-K";
  }
  if (why) emu::report("%s: %s", fn, why);
  return !why;
}

bool overlap(uintptr_t p, uint64_t pn, uintptr_t q, uint64_t qn) { return p < q + qn && q < p + pn; }

}  // namespace

// The opaque handle type of cublasLt.h.
struct cublasLtContext : Handle {};

// ---- handle, version, status ----

EMU_API cublasStatus_t cublasLtCreate(cublasLtHandle_t *lightHandle) {
  if (emu::api_call("cublasLtCreate")) return CUBLAS_STATUS_ALLOC_FAILED;
  if (!lightHandle) return emu::report("cublasLtCreate: NULL handle pointer"), CUBLAS_STATUS_INVALID_VALUE;
  *lightHandle = make<cublasLtContext>(kHandleMagic);
  return *lightHandle ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_ALLOC_FAILED;
}

EMU_API cublasStatus_t cublasLtDestroy(cublasLtHandle_t lightHandle) {
  if (emu::api_call("cublasLtDestroy")) return CUBLAS_STATUS_EXECUTION_FAILED;
  if (destroy<cublasLtContext>(lightHandle, kHandleMagic)) return CUBLAS_STATUS_SUCCESS;
  emu::report("cublasLtDestroy: %p is not a live cuBLASLt handle", static_cast<void *>(lightHandle));
  return CUBLAS_STATUS_NOT_INITIALIZED;
}

EMU_API size_t cublasLtGetVersion(void) {
  if (emu::api_call("cublasLtGetVersion")) return 0;
  return CUBLAS_VERSION;
}

namespace {
struct StatusText {
  cublasStatus_t status;
  const char *name, *text;
};
#define EMU_STATUS(x, text) {CUBLAS_STATUS_##x, "CUBLAS_STATUS_" #x, text}
const StatusText kStatus[] = {
    EMU_STATUS(SUCCESS, "success"),
    EMU_STATUS(NOT_INITIALIZED, "the handle is not a live cuBLASLt handle (emulated)"),
    EMU_STATUS(ALLOC_FAILED, "resource allocation failed (emulated)"),
    EMU_STATUS(INVALID_VALUE, "an invalid value was passed (emulated; see the dit-emu message)"),
    EMU_STATUS(ARCH_MISMATCH, "architecture mismatch"),
    EMU_STATUS(MAPPING_ERROR, "memory mapping error"),
    EMU_STATUS(EXECUTION_FAILED, "the execution failed (emulated)"),
    EMU_STATUS(INTERNAL_ERROR, "internal error"),
    EMU_STATUS(NOT_SUPPORTED, "not supported by the emulation (see the dit-emu message)"),
    EMU_STATUS(LICENSE_ERROR, "license error")};
#undef EMU_STATUS
const StatusText *status_text(cublasStatus_t status) {
  for (const StatusText &t : kStatus)
    if (t.status == status) return &t;
  return nullptr;
}
}  // namespace

EMU_API const char *cublasLtGetStatusName(cublasStatus_t status) {
  if (emu::api_call("cublasLtGetStatusName")) return nullptr;
  const StatusText *t = status_text(status);
  return t ? t->name : "CUBLAS_STATUS_UNKNOWN";
}

EMU_API const char *cublasLtGetStatusString(cublasStatus_t status) {
  if (emu::api_call("cublasLtGetStatusString")) return nullptr;
  const StatusText *t = status_text(status);
  return t ? t->text : "unknown cuBLAS status";
}

// ---- matmul descriptor ----

EMU_API cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *matmulDesc, cublasComputeType_t computeType,
                                                cudaDataType_t scaleType) {
  if (emu::api_call("cublasLtMatmulDescCreate")) return CUBLAS_STATUS_ALLOC_FAILED;
  if (!matmulDesc) return emu::report("cublasLtMatmulDescCreate: NULL pointer"), CUBLAS_STATUS_INVALID_VALUE;
  if (!compute_ok(computeType) || scaleType != CUDA_R_32F) {
    emu::report("cublasLtMatmulDescCreate: compute type %d, scale type %d: only CUBLAS_COMPUTE_32F(_FAST_TF32) "
                "with CUDA_R_32F are emulated", (int)computeType, (int)scaleType);
    return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  Desc *d = make<Desc>(kDescMagic);
  if (!d) return CUBLAS_STATUS_ALLOC_FAILED;
  d->compute = computeType;
  d->epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  d->bias_type = -1;
  *matmulDesc = reinterpret_cast<cublasLtMatmulDesc_t>(d);
  return CUBLAS_STATUS_SUCCESS;
}

EMU_API cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t matmulDesc) {
  if (emu::api_call("cublasLtMatmulDescDestroy")) return CUBLAS_STATUS_EXECUTION_FAILED;
  return destroy_api<Desc>(matmulDesc, kDescMagic, "cublasLtMatmulDescDestroy", "matmul descriptor");
}

EMU_API cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t matmulDesc,
                                                      cublasLtMatmulDescAttributes_t attr, const void *buf,
                                                      size_t sizeInBytes) {
  if (emu::api_call("cublasLtMatmulDescSetAttribute")) return CUBLAS_STATUS_EXECUTION_FAILED;
  static const char fn[] = "cublasLtMatmulDescSetAttribute";
  Desc *d = live<Desc>(matmulDesc, kDescMagic);
  if (!d) return emu::report("%s: %p is not a live matmul descriptor", fn, static_cast<void *>(matmulDesc)),
              CUBLAS_STATUS_INVALID_VALUE;
  const Name nm = attr_name("CUBLASLT_MATMUL_DESC_", kDescAttr, attr);
  size_t want = 4;
  switch (attr) {
    case CUBLASLT_MATMUL_DESC_COMPUTE_TYPE: case CUBLASLT_MATMUL_DESC_SCALE_TYPE:
    case CUBLASLT_MATMUL_DESC_POINTER_MODE: case CUBLASLT_MATMUL_DESC_TRANSA: case CUBLASLT_MATMUL_DESC_TRANSB:
    case CUBLASLT_MATMUL_DESC_TRANSC: case CUBLASLT_MATMUL_DESC_EPILOGUE: case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE:
      break;
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: want = sizeof(void *); break;
    default:
      emu::report("%s: %s is not emulated", fn, nm.s);
      return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  int64_t v;
  if (!read_value(buf, sizeInBytes, want, &v, fn, nm.s)) return CUBLAS_STATUS_INVALID_VALUE;
  bool ok = true;
  switch (attr) {
    case CUBLASLT_MATMUL_DESC_COMPUTE_TYPE:
      if ((ok = compute_ok(static_cast<cublasComputeType_t>(v)))) d->compute = static_cast<cublasComputeType_t>(v);
      break;
    case CUBLASLT_MATMUL_DESC_SCALE_TYPE: ok = v == CUDA_R_32F; break;
    case CUBLASLT_MATMUL_DESC_POINTER_MODE: ok = v == CUBLASLT_POINTER_MODE_HOST; break;
    case CUBLASLT_MATMUL_DESC_TRANSA:
      if ((ok = v == CUBLAS_OP_N || v == CUBLAS_OP_T)) d->ta = v == CUBLAS_OP_T;
      break;
    case CUBLASLT_MATMUL_DESC_TRANSB:
      if ((ok = v == CUBLAS_OP_N || v == CUBLAS_OP_T)) d->tb = v == CUBLAS_OP_T;
      break;
    case CUBLASLT_MATMUL_DESC_TRANSC: ok = v == CUBLAS_OP_N; break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE:
      if ((ok = epilogue_ok(static_cast<uint32_t>(v)))) d->epilogue = static_cast<uint32_t>(v);
      break;
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: d->bias = static_cast<uintptr_t>(v); break;
    default:  // BIAS_DATA_TYPE: whether it fits D's type is checked with the layouts
      if ((ok = v == -1 || type_ok(v))) d->bias_type = static_cast<int32_t>(v);
      break;
  }
  if (ok) return CUBLAS_STATUS_SUCCESS;
  emu::report("%s: %s = %lld is not emulated", fn, nm.s, (long long)v);
  return CUBLAS_STATUS_NOT_SUPPORTED;
}

// ---- matrix layout ----

EMU_API cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *matLayout, cudaDataType type,
                                                  uint64_t rows, uint64_t cols, int64_t ld) {
  if (emu::api_call("cublasLtMatrixLayoutCreate")) return CUBLAS_STATUS_ALLOC_FAILED;
  if (!matLayout) return emu::report("cublasLtMatrixLayoutCreate: NULL pointer"), CUBLAS_STATUS_INVALID_VALUE;
  if (!type_ok(type)) {
    emu::report("cublasLtMatrixLayoutCreate: data type %d: only CUDA_R_32F and CUDA_R_16BF are emulated", (int)type);
    return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  Layout *l = make<Layout>(kLayoutMagic);
  if (!l) return CUBLAS_STATUS_ALLOC_FAILED;
  l->type = type, l->rows = rows, l->cols = cols, l->ld = ld;
  *matLayout = reinterpret_cast<cublasLtMatrixLayout_t>(l);
  return CUBLAS_STATUS_SUCCESS;
}

EMU_API cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t matLayout) {
  if (emu::api_call("cublasLtMatrixLayoutDestroy")) return CUBLAS_STATUS_EXECUTION_FAILED;
  return destroy_api<Layout>(matLayout, kLayoutMagic, "cublasLtMatrixLayoutDestroy", "matrix layout");
}

EMU_API cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t matLayout,
                                                        cublasLtMatrixLayoutAttribute_t attr, const void *buf,
                                                        size_t sizeInBytes) {
  if (emu::api_call("cublasLtMatrixLayoutSetAttribute")) return CUBLAS_STATUS_EXECUTION_FAILED;
  static const char fn[] = "cublasLtMatrixLayoutSetAttribute";
  Layout *l = live<Layout>(matLayout, kLayoutMagic);
  if (!l) return emu::report("%s: %p is not a live matrix layout", fn, static_cast<void *>(matLayout)),
              CUBLAS_STATUS_INVALID_VALUE;
  const Name nm = attr_name("CUBLASLT_MATRIX_LAYOUT_", kLayoutAttr, attr);
  size_t want = 8;
  switch (attr) {
    case CUBLASLT_MATRIX_LAYOUT_TYPE: case CUBLASLT_MATRIX_LAYOUT_ORDER: case CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT:
      want = 4;
      break;
    case CUBLASLT_MATRIX_LAYOUT_ROWS: case CUBLASLT_MATRIX_LAYOUT_COLS: case CUBLASLT_MATRIX_LAYOUT_LD:
    case CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET: case CUBLASLT_MATRIX_LAYOUT_PLANE_OFFSET:
      break;
    default:
      emu::report("%s: %s is not emulated", fn, nm.s);
      return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  int64_t v;
  if (!read_value(buf, sizeInBytes, want, &v, fn, nm.s)) return CUBLAS_STATUS_INVALID_VALUE;
  bool ok = true;
  switch (attr) {
    case CUBLASLT_MATRIX_LAYOUT_TYPE:
      if ((ok = type_ok(v))) l->type = static_cast<int32_t>(v);
      break;
    case CUBLASLT_MATRIX_LAYOUT_ORDER: ok = v == CUBLASLT_ORDER_COL; break;
    case CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT: ok = v == 1; break;
    case CUBLASLT_MATRIX_LAYOUT_ROWS: l->rows = static_cast<uint64_t>(v); break;
    case CUBLASLT_MATRIX_LAYOUT_COLS: l->cols = static_cast<uint64_t>(v); break;
    case CUBLASLT_MATRIX_LAYOUT_LD: l->ld = v; break;
    default: ok = v == 0; break;  // the batch offsets: only a single matrix is emulated
  }
  if (ok) return CUBLAS_STATUS_SUCCESS;
  emu::report("%s: %s = %lld is not emulated", fn, nm.s, (long long)v);
  return CUBLAS_STATUS_NOT_SUPPORTED;
}

// ---- preference ----

EMU_API cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *pref) {
  if (emu::api_call("cublasLtMatmulPreferenceCreate")) return CUBLAS_STATUS_ALLOC_FAILED;
  if (!pref) return emu::report("cublasLtMatmulPreferenceCreate: NULL pointer"), CUBLAS_STATUS_INVALID_VALUE;
  Pref *p = make<Pref>(kPrefMagic);
  if (!p) return CUBLAS_STATUS_ALLOC_FAILED;
  for (uint32_t &a : p->align) a = 256;  // cuBLASLt's defaults
  p->reduction = CUBLASLT_REDUCTION_SCHEME_MASK;
  *pref = reinterpret_cast<cublasLtMatmulPreference_t>(p);
  return CUBLAS_STATUS_SUCCESS;
}

EMU_API cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
  if (emu::api_call("cublasLtMatmulPreferenceDestroy")) return CUBLAS_STATUS_EXECUTION_FAILED;
  return destroy_api<Pref>(pref, kPrefMagic, "cublasLtMatmulPreferenceDestroy", "preference");
}

EMU_API cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                            cublasLtMatmulPreferenceAttributes_t attr,
                                                            const void *buf, size_t sizeInBytes) {
  if (emu::api_call("cublasLtMatmulPreferenceSetAttribute")) return CUBLAS_STATUS_EXECUTION_FAILED;
  static const char fn[] = "cublasLtMatmulPreferenceSetAttribute";
  Pref *p = live<Pref>(pref, kPrefMagic);
  if (!p) return emu::report("%s: %p is not a live preference", fn, static_cast<void *>(pref)),
              CUBLAS_STATUS_INVALID_VALUE;
  const Name nm = attr_name("CUBLASLT_MATMUL_PREF_", kPrefAttr, attr);
  int64_t v;
  switch (attr) {
    case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES:
      if (!read_value(buf, sizeInBytes, 8, &v, fn, nm.s)) return CUBLAS_STATUS_INVALID_VALUE;
      p->workspace = static_cast<uint64_t>(v);
      return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK:  // the heuristic offers split-K only under COMPUTE_TYPE
      if (!read_value(buf, sizeInBytes, 4, &v, fn, nm.s)) return CUBLAS_STATUS_INVALID_VALUE;
      p->reduction = static_cast<uint32_t>(v);
      return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES: case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES: case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES:
      if (!read_value(buf, sizeInBytes, 4, &v, fn, nm.s)) return CUBLAS_STATUS_INVALID_VALUE;
      if (!pow2(static_cast<uint32_t>(v))) {
        emu::report("%s: %s = %u is not a power of two", fn, nm.s, static_cast<uint32_t>(v));
        return CUBLAS_STATUS_INVALID_VALUE;
      }
      p->align[attr - CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES] = static_cast<uint32_t>(v);
      return CUBLAS_STATUS_SUCCESS;
    default:
      emu::report("%s: %s is not emulated", fn, nm.s);
      return CUBLAS_STATUS_NOT_SUPPORTED;
  }
}

// ---- heuristic and matmul ----

EMU_API cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t lightHandle,
                                                      cublasLtMatmulDesc_t operationDesc,
                                                      cublasLtMatrixLayout_t Adesc, cublasLtMatrixLayout_t Bdesc,
                                                      cublasLtMatrixLayout_t Cdesc, cublasLtMatrixLayout_t Ddesc,
                                                      cublasLtMatmulPreference_t preference, int requestedAlgoCount,
                                                      cublasLtMatmulHeuristicResult_t heuristicResultsArray[],
                                                      int *returnAlgoCount) {
  if (emu::api_call("cublasLtMatmulAlgoGetHeuristic")) return CUBLAS_STATUS_EXECUTION_FAILED;
  static const char fn[] = "cublasLtMatmulAlgoGetHeuristic";
  if (!live<cublasLtContext>(lightHandle, kHandleMagic))
    return emu::report("%s: not a live handle", fn), CUBLAS_STATUS_NOT_INITIALIZED;
  const Desc *op = live<Desc>(operationDesc, kDescMagic);
  const Layout *a = live<Layout>(Adesc, kLayoutMagic), *b = live<Layout>(Bdesc, kLayoutMagic);
  const Layout *c = live<Layout>(Cdesc, kLayoutMagic), *d = live<Layout>(Ddesc, kLayoutMagic);
  const Pref *p = live<Pref>(preference, kPrefMagic);
  if (!op || !a || !b || !c || !d || !p || requestedAlgoCount < 1 || !heuristicResultsArray || !returnAlgoCount) {
    emu::report("%s: a descriptor, layout or preference is not live, or no room for results", fn);
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  *returnAlgoCount = 0;
  Gemm g{};
  if (!shape(op, a, b, c, d, &g, fn) || !types_ok(op, a, b, c, d, fn)) return CUBLAS_STATUS_NOT_SUPPORTED;
  // the algorithms in a fixed order, the sequential one first (a caller that takes
  // the first gets what the emulator always computed); split-K only where the
  // mask allows its scheme, K is long enough and its workspace fits the preference's
  static const uint32_t kOrder[emu::GEMM_ALGOS] = {emu::GEMM_SEQUENTIAL, emu::GEMM_K_CHUNKS,
                                                   emu::GEMM_K_CHUNKS_REVERSED, emu::GEMM_SPLIT_K};
  const uint64_t types = types_key(op, a, b, c, d);
  for (uint32_t id : kOrder) {
    if (*returnAlgoCount == requestedAlgoCount) break;
    AlgoInfo in{id, CUBLASLT_REDUCTION_SCHEME_NONE, 0};
    if (id == emu::GEMM_SPLIT_K) {
      in.splits = emu::gemm_split_k(g.k);
      in.scheme = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
      if (!in.splits || !(p->reduction & in.scheme)) continue;
    }
    const uint64_t ws = emu::gemm_workspace(id, in.splits, g.m, g.n);
    if (ws > p->workspace) continue;
    cublasLtMatmulHeuristicResult_t &r = heuristicResultsArray[*returnAlgoCount];
    std::memset(&r, 0, sizeof r);
    r.algo = algo_make(p->align, in, types);
    r.workspaceSize = ws;
    r.state = CUBLAS_STATUS_SUCCESS;
    r.wavesCount = 1.0f + 0.25f * static_cast<float>(*returnAlgoCount);
    ++*returnAlgoCount;
  }
  return CUBLAS_STATUS_SUCCESS;
}

EMU_API cublasStatus_t cublasLtMatmulAlgoCheck(cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t operationDesc,
                                               cublasLtMatrixLayout_t Adesc, cublasLtMatrixLayout_t Bdesc,
                                               cublasLtMatrixLayout_t Cdesc, cublasLtMatrixLayout_t Ddesc,
                                               const cublasLtMatmulAlgo_t *algo,
                                               cublasLtMatmulHeuristicResult_t *result) {
  if (emu::api_call("cublasLtMatmulAlgoCheck")) return CUBLAS_STATUS_EXECUTION_FAILED;
  static const char fn[] = "cublasLtMatmulAlgoCheck";
  if (!live<cublasLtContext>(lightHandle, kHandleMagic))
    return emu::report("%s: not a live handle", fn), CUBLAS_STATUS_NOT_INITIALIZED;
  const Desc *op = live<Desc>(operationDesc, kDescMagic);
  const Layout *a = live<Layout>(Adesc, kLayoutMagic), *b = live<Layout>(Bdesc, kLayoutMagic);
  const Layout *c = live<Layout>(Cdesc, kLayoutMagic), *d = live<Layout>(Ddesc, kLayoutMagic);
  if (!op || !a || !b || !c || !d || !algo || !result) {
    emu::report("%s: a descriptor or layout is not live, or NULL algo or result", fn);
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  Gemm g{};
  if (!shape(op, a, b, c, d, &g, fn) || !types_ok(op, a, b, c, d, fn)) return CUBLAS_STATUS_NOT_SUPPORTED;
  // the real library: INVALID_VALUE when the descriptors do not match the algo
  AlgoInfo in{};
  if (!algo_read(algo, g.k, &in, fn)) return CUBLAS_STATUS_INVALID_VALUE;
  if (algo->data[6] != types_key(op, a, b, c, d))
    return emu::report("%s: the algo was chosen for other data types or another compute type", fn),
           CUBLAS_STATUS_INVALID_VALUE;
  const cublasLtMatmulAlgo_t keep = *algo;  // algo may point to result->algo, which is never updated
  std::memset(result, 0, sizeof *result);
  result->algo = keep;
  result->workspaceSize = emu::gemm_workspace(in.id, in.splits, g.m, g.n);
  result->state = CUBLAS_STATUS_SUCCESS;
  result->wavesCount = 1.0f;
  return CUBLAS_STATUS_SUCCESS;
}

EMU_API cublasStatus_t cublasLtMatmul(cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t computeDesc,
                                      const void *alpha, const void *A, cublasLtMatrixLayout_t Adesc, const void *B,
                                      cublasLtMatrixLayout_t Bdesc, const void *beta, const void *C,
                                      cublasLtMatrixLayout_t Cdesc, void *D, cublasLtMatrixLayout_t Ddesc,
                                      const cublasLtMatmulAlgo_t *algo, void *workspace,
                                      size_t workspaceSizeInBytes, cudaStream_t stream) {
  if (emu::api_call("cublasLtMatmul")) return CUBLAS_STATUS_EXECUTION_FAILED;
  static const char fn[] = "cublasLtMatmul";
  const cublasStatus_t bad = CUBLAS_STATUS_INVALID_VALUE;
  if (!live<cublasLtContext>(lightHandle, kHandleMagic))
    return emu::report("%s: not a live handle", fn), CUBLAS_STATUS_NOT_INITIALIZED;
  const Desc *op = live<Desc>(computeDesc, kDescMagic);
  if (!op) return emu::report("%s: not a live matmul descriptor", fn), bad;
  const Layout *la = live<Layout>(Adesc, kLayoutMagic), *lb = live<Layout>(Bdesc, kLayoutMagic);
  const Layout *lc = live<Layout>(Cdesc, kLayoutMagic), *ld = live<Layout>(Ddesc, kLayoutMagic);
  if (!la || !lb || !lc || !ld) return emu::report("%s: a matrix layout is not live", fn), bad;
  if (!alpha || !beta) return emu::report("%s: NULL alpha or beta", fn), bad;
  Gemm g{};
  if (!shape(op, la, lb, lc, ld, &g, fn)) return bad;
  AlgoInfo in{};
  if (!algo_read(algo, g.k, &in, fn)) return bad;
  g.algo = in.id, g.splits = in.splits;
  if (!types_ok(op, la, lb, lc, ld, fn)) return CUBLAS_STATUS_NOT_SUPPORTED;
  if (algo->data[6] != types_key(op, la, lb, lc, ld))
    return emu::report("%s: the algo was chosen for other data types or another compute type", fn), bad;
  g.ab_bf16 = la->type == CUDA_R_16BF;
  g.cd_bf16 = g.bias_bf16 = ld->type == CUDA_R_16BF;  // the bias is of D's type (types_ok)
  std::memcpy(&g.alpha, alpha, 4);  // CUBLASLT_POINTER_MODE_HOST: read now
  std::memcpy(&g.beta, beta, 4);
  g.a = reinterpret_cast<uintptr_t>(A), g.b = reinterpret_cast<uintptr_t>(B);
  g.c = reinterpret_cast<uintptr_t>(C);  // with beta 0, C may be NULL: it is not read
  g.d = reinterpret_cast<uintptr_t>(D);
  if (C && C == D && (lc->rows != ld->rows || lc->cols != ld->cols || lc->ld != ld->ld)) {
    emu::report("%s: C == D in place, but Cdesc (ld %lld) differs from Ddesc (ld %lld)", fn, (long long)lc->ld,
                (long long)ld->ld);
    return bad;
  }
  if (op->epilogue != CUBLASLT_EPILOGUE_DEFAULT) g.bias = op->bias;
  struct Operand {
    const char *name;
    uintptr_t p;
    uint64_t bytes, align, elem;
    bool used;
  } ops[5] = {{"A", g.a, extent(la), algo->data[1], type_bytes(la->type), true},
              {"B", g.b, extent(lb), algo->data[2], type_bytes(lb->type), true},
              // beta 0: C may be NULL
              {"C", g.c, extent(lc), algo->data[3], type_bytes(lc->type), g.c || g.beta != 0.0f},
              {"D", g.d, extent(ld), algo->data[4], type_bytes(ld->type), true},
              {"the bias", g.bias, static_cast<uint64_t>(g.m) * type_bytes(ld->type), type_bytes(ld->type),
               type_bytes(ld->type), op->epilogue != CUBLASLT_EPILOGUE_DEFAULT}};
  for (const Operand &o : ops) {
    if (!o.used) continue;
    if (!o.p) return emu::report("%s: %s is NULL", fn, o.name), bad;
    if (o.p % o.elem || o.p % o.align) {
      emu::report("%s: %s = %p is not aligned to %llu bytes, as the preference promised (or to a%s)", fn, o.name,
                  reinterpret_cast<void *>(o.p), (unsigned long long)(o.align > o.elem ? o.align : o.elem),
                  o.elem == 2 ? " bf16" : " float");
      return bad;
    }
    if (!emu::device_range(static_cast<CUdeviceptr>(o.p), o.bytes)) {
      emu::report("%s: %s [%p, +%llu bytes) is not inside one live device allocation", fn, o.name,
                  reinterpret_cast<void *>(o.p), (unsigned long long)o.bytes);
      return bad;
    }
  }
  if (workspaceSizeInBytes > 0 &&
      !emu::device_range(static_cast<CUdeviceptr>(reinterpret_cast<uintptr_t>(workspace)), workspaceSizeInBytes)) {
    emu::report("%s: the workspace [%p, +%zu bytes) is not inside one live device allocation", fn, workspace,
                workspaceSizeInBytes);
    return bad;
  }
  const uint64_t ws_need = emu::gemm_workspace(g.algo, g.splits, g.m, g.n);
  if (ws_need > workspaceSizeInBytes || (ws_need && reinterpret_cast<uintptr_t>(workspace) % 16)) {
    emu::report("%s: the algo needs %llu bytes of workspace (16-byte aligned), given %zu at %p", fn,
                (unsigned long long)ws_need, workspaceSizeInBytes, workspace);
    return bad;
  }
  g.workspace = reinterpret_cast<uintptr_t>(workspace);
  // D is written while A, B, the bias and a C other than D are read
  const Operand &od = ops[3];
  for (const Operand &o : ops)
    if (&o != &od && o.used && !(&o == &ops[2] && o.p == od.p) && overlap(o.p, o.bytes, od.p, od.bytes))
      return emu::report("%s: D overlaps %s", fn, o.name), bad;
  for (const Operand &o : ops)  // split-K writes its partial sums into the workspace
    if (ws_need && o.used && overlap(o.p, o.bytes, g.workspace, ws_need))
      return emu::report("%s: the workspace overlaps %s", fn, o.name), bad;
  CUresult rc;
  try {
    rc = emu::stream_submit(stream, [g] { emu::run_gemm(g); });
  } catch (const std::exception &) {
    return emu::report("%s: out of host memory", fn), CUBLAS_STATUS_ALLOC_FAILED;
  }
  if (rc == CUDA_SUCCESS) return CUBLAS_STATUS_SUCCESS;
  emu::report("%s: the stream refused the GEMM (CUresult %d)", fn, (int)rc);
  return rc == CUDA_ERROR_INVALID_HANDLE ? CUBLAS_STATUS_INVALID_VALUE : CUBLAS_STATUS_EXECUTION_FAILED;
}
