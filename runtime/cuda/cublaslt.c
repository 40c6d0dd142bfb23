/* cublaslt.c: finding and loading cuBLASLt (or the emulated device's) and
 * the GEMM of each linear op, with its tuned algorithm (see cublaslt.h). */
#define _GNU_SOURCE /* RTLD_NODELETE */
#include "cublaslt.h"

#include <dlfcn.h>
#include <glob.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_driver.h"
#include "cuda_launch.h"

#define LT_SYMBOL_(x) #x
#define LT_SYMBOL(x) LT_SYMBOL_(x)

static DitStatus lt_error(const CublasLt *lt, DitErr *err, cublasStatus_t rc, const char *call,
                          const char *file, int line) {
  const char *name = lt->cublasLtGetStatusName ? lt->cublasLtGetStatusName(rc) : NULL;
  const char *text = lt->cublasLtGetStatusString ? lt->cublasLtGetStatusString(rc) : NULL;
  return dit_err(err, rc == CUBLAS_STATUS_ALLOC_FAILED ? DIT_ERR_NOMEM : DIT_ERR_DEVICE,
                 "%s failed: %s (%s) at %s:%d", call, name ? name : "cuBLASLt error",
                 text ? text : "no description", cuda_short_file(file), line);
}

/* Calls lt->call; on failure records it, sets `st` and jumps to `fail`. */
#define LT_TRY(lt, err, call)                                                                        \
  do {                                                                                               \
    cublasStatus_t lt_rc_ = (lt)->call;                                                              \
    if (lt_rc_ != CUBLAS_STATUS_SUCCESS) {                                                           \
      st = lt_error((lt), (err), lt_rc_, #call, __FILE__, __LINE__);                                 \
      goto fail;                                                                                     \
    }                                                                                                \
  } while (0)

/* dlopen, keeping the first failure's reason in why[0..n) */
static void *try_open(const char *path, char *why, size_t n) {
  /* never unloaded: cuBLASLt carries a static CUDA runtime with exit handlers */
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (!h && !why[0]) {
    const char *e = dlerror();
    snprintf(why, n, "%s", e ? e : "not found");
  }
  return h;
}

/* soname from PyTorch's pip wheels (nvidia-cublas-cu12, -cu13), which put it
 * in <site-packages>/nvidia/cublas/lib: under $VIRTUAL_ENV, ~/.local and the
 * system's Pythons. Only these few folders: a glob each. */
static void *open_from_wheels(const char *soname, char *why, size_t n) {
  const struct {
    const char *base, *site;
  } sites[] = {
      {getenv("VIRTUAL_ENV"), "/lib/python3*/site-packages"},
      {getenv("HOME"), "/.local/lib/python3*/site-packages"},
      {"/usr/local/lib", "/python3*/dist-packages"},
      {"/usr/local/lib", "/python3*/site-packages"},
      {"/usr/lib", "/python3*/dist-packages"},
      {"/usr/lib", "/python3*/site-packages"},
  };
  void *h = NULL;
  for (size_t i = 0; i < sizeof sites / sizeof sites[0] && !h; i++) {
    if (!sites[i].base || sites[i].base[0] != '/') continue;
    char pattern[1024];
    glob_t g;
    snprintf(pattern, sizeof pattern, "%s%s/nvidia/cublas/lib/%s", sites[i].base, sites[i].site, soname);
    if (glob(pattern, 0, NULL, &g) != 0) continue;
    for (size_t k = 0; k < g.gl_pathc && !h; k++) h = try_open(g.gl_pathv[k], why, n);
    globfree(&g);
  }
  return h;
}

/* The cuBLASLt for a driver of driver_version (cuDriverGetVersion: 12040,
 * 13000; 0 unknown): the newest major it runs, libcublasLt.so.13 only for a
 * CUDA 13 driver or newer, then .so.12; each on the loader's path, in
 * /usr/local/cuda/lib64, then in PyTorch's wheels; the unversioned
 * libcublasLt.so last. *name: the soname it loaded. */
static void *open_default(int driver_version, const char **name, char *why, size_t n) {
  static const char *const sonames[] = {"libcublasLt.so.13", "libcublasLt.so.12"};
  static const int majors[] = {13, 12};
  int driver_major = driver_version / 1000;
  void *h = NULL;
  for (size_t i = 0; i < sizeof sonames / sizeof sonames[0] && !h; i++) {
    if (driver_major > 0 && majors[i] > driver_major) continue; /* a CUDA 12 driver cannot run cuBLAS 13 */
    char path[256];
    snprintf(path, sizeof path, "/usr/local/cuda/lib64/%s", sonames[i]);
    h = try_open(sonames[i], why, n);
    if (!h) h = try_open(path, why, n);
    if (!h) h = open_from_wheels(sonames[i], why, n);
    *name = sonames[i];
  }
  if (!h) {
    h = try_open("libcublasLt.so", why, n);
    *name = "libcublasLt.so";
  }
  return h;
}

DitStatus cublaslt_open(CublasLt *lt, const char *path, int driver_version, DitErr *err) {
  /* the toolkit there may be CUDA 13 or 12: the enums and structs used here
   * (descriptor attributes, cublasLtMatmulAlgo_t, the heuristic result) are
   * the same in both */
  DitStatus st = DIT_OK;
  memset(lt, 0, sizeof *lt);
  char why[512] = "";
  const char *name = path;
  int major = driver_version / 1000, minor = driver_version % 1000 / 10;
  lt->lib = path ? try_open(path, why, sizeof why) : open_default(driver_version, &name, why, sizeof why);
  if (!lt->lib && path) return dit_err(err, DIT_ERR_DEVICE, "cannot load cuBLASLt %s: %s", path, why);
  if (!lt->lib)
    return dit_err(err, DIT_ERR_DEVICE,
                   "cannot load cuBLASLt for a CUDA %d.%d driver: looked for %s on the loader's path, in "
                   "/usr/local/cuda/lib64 and in PyTorch's nvidia/cublas/lib under site-packages, then for "
                   "libcublasLt.so (%s); give "
                   "its path in DitOptions.cublaslt_lib (dit: DIT_CUBLASLT_LIB)",
                   major, minor, major == 12 ? "libcublasLt.so.12" : "libcublasLt.so.13 and .so.12", why);
  struct {
    void **slot;
    const char *name;
  } syms[] = {
#define CUBLASLT_ENTRY(fn) {(void **)&lt->fn, LT_SYMBOL(fn)},
      CUBLASLT_FUNCTIONS(CUBLASLT_ENTRY)
#undef CUBLASLT_ENTRY
  };
  for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
    *syms[i].slot = dlsym(lt->lib, syms[i].name);
    if (!*syms[i].slot) {
      st = dit_err(err, DIT_ERR_DEVICE, "%s lacks %s", name, syms[i].name);
      goto fail;
    }
  }
  size_t v = lt->cublasLtGetVersion(); /* 120405: cuBLAS 12.4.5 */
  if (!path && major > 0 && (int)(v / 10000) > major) { /* the unversioned name may be a newer one */
    st = dit_err(err, DIT_ERR_DEVICE, "%s is cuBLAS %zu.%zu, which needs a newer driver than this CUDA %d.%d one",
                 name, v / 10000, v / 100 % 100, major, minor);
    goto fail;
  }
  LT_TRY(lt, err, cublasLtCreate(&lt->handle));
  return DIT_OK;
fail:
  cublaslt_close(lt);
  return st;
}

void cublaslt_close(CublasLt *lt) {
  if (!lt) return;
  if (lt->handle) lt->cublasLtDestroy(lt->handle);
  if (lt->lib) dlclose(lt->lib);
  memset(lt, 0, sizeof *lt);
}

/* Sets the B and D layouts to `rows` columns and asks the heuristic for the
 * best algorithm of that problem. */
static DitStatus choose_algo(const CublasLt *lt, LtGemm *g, int64_t rows, size_t op_index, DitErr *err) {
  DitStatus st = DIT_OK;
  uint64_t cols = (uint64_t)rows;
  LT_TRY(lt, err, cublasLtMatrixLayoutSetAttribute(g->b, CUBLASLT_MATRIX_LAYOUT_COLS, &cols, sizeof cols));
  LT_TRY(lt, err, cublasLtMatrixLayoutSetAttribute(g->d, CUBLASLT_MATRIX_LAYOUT_COLS, &cols, sizeof cols));
  cublasLtMatmulHeuristicResult_t res;
  int found = 0;
  memset(&res, 0, sizeof res);
  LT_TRY(lt, err, cublasLtMatmulAlgoGetHeuristic(lt->handle, g->desc, g->a, g->b, g->d, g->d, g->pref, 1,
                                                 &res, &found));
  if (found < 1 || res.state != CUBLAS_STATUS_SUCCESS) {
    g->rows = 0;
    return dit_err(err, DIT_ERR_DEVICE,
                   "cuBLASLt has no algorithm for linear op %zu (%" PRId64 " rows x K %" PRId64
                   " -> M %" PRId64 ")",
                   op_index, rows, g->K, g->M);
  }
  g->algo = res.algo;
  g->rows = rows;
  return DIT_OK;
fail:
  g->rows = 0; /* the layouts may be half changed: ask again next time */
  return st;
}

DitStatus lt_gemm_init(const CublasLt *lt, LtGemm *g, const LtGemmConfig *c, size_t op_index, DitErr *err) {
  DitStatus st = DIT_OK;
  memset(g, 0, sizeof *g);
  g->K = c->K;
  g->M = c->M;
  CudaGemmShape s;
  cuda_gemm_shape(c->max_rows, c->K, c->M, &s);
  cublasComputeType_t compute = c->tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  LT_TRY(lt, err, cublasLtMatmulDescCreate(&g->desc, compute, CUDA_R_32F));
  cublasOperation_t ta = s.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, tb = s.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  LT_TRY(lt, err, cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
  LT_TRY(lt, err, cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
  cublasLtEpilogue_t epi = c->gelu ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
  LT_TRY(lt, err, cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
  const void *bias = (const void *)(uintptr_t)c->bias;
  LT_TRY(lt, err, cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
  /* bf16 plans: A and B bf16; D bf16 or fp32, and the bias of D's type (cuBLASLt's rule), said explicitly */
  cudaDataType_t in = c->bf16_in ? CUDA_R_16BF : CUDA_R_32F, out = c->bf16_out ? CUDA_R_16BF : CUDA_R_32F;
  if (c->bf16_in)
    LT_TRY(lt, err, cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &out, sizeof out));
  LT_TRY(lt, err, cublasLtMatrixLayoutCreate(&g->a, in, s.a_rows, s.a_cols, s.a_ld));
  LT_TRY(lt, err, cublasLtMatrixLayoutCreate(&g->b, in, s.b_rows, s.b_cols, s.b_ld));
  LT_TRY(lt, err, cublasLtMatrixLayoutCreate(&g->d, out, s.d_rows, s.d_cols, s.d_ld));
  LT_TRY(lt, err, cublasLtMatmulPreferenceCreate(&g->pref));
  uint64_t ws = c->workspace_bytes;
  LT_TRY(lt, err, cublasLtMatmulPreferenceSetAttribute(g->pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                                       sizeof ws));
  /* the algorithm must accept the operands' real alignment, at any row count */
  uint32_t al[4] = {c->align_w, c->align_x, c->align_y, c->align_y};
  cublasLtMatmulPreferenceAttributes_t which[4] = {
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
  for (int i = 0; i < 4; i++)
    LT_TRY(lt, err, cublasLtMatmulPreferenceSetAttribute(g->pref, which[i], &al[i], sizeof al[i]));
  /* repeated runs bitwise equal (the sampler's "the same sample again", graph == eager): no
   * split-K whose INPLACE reduction adds partial sums in whatever order they arrive */
  uint32_t schemes = CUBLASLT_REDUCTION_SCHEME_NONE | CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE |
                     (c->bf16_out ? 0 : CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE); /* never partial sums in bf16 */
  LT_TRY(lt, err, cublasLtMatmulPreferenceSetAttribute(g->pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK,
                                                       &schemes, sizeof schemes));
  return choose_algo(lt, g, c->max_rows, op_index, err);
fail:
  return st;
}

DitStatus lt_gemm_run(const CublasLt *lt, LtGemm *g, int64_t rows, CUdeviceptr w, CUdeviceptr x,
                      CUdeviceptr y, CUdeviceptr workspace, size_t workspace_bytes, CUstream stream,
                      int capturing, size_t op_index, DitErr *err) {
  DitStatus st = DIT_OK;
  if (rows != g->rows) {
    if (capturing)
      return dit_err(err, DIT_ERR_INTERNAL,
                     "linear op %zu: %" PRId64 " rows need a new cuBLASLt algorithm inside a graph capture",
                     op_index, rows);
    st = choose_algo(lt, g, rows, op_index, err);
    if (st) return st;
  }
  const float alpha = 1.0f, beta = 0.0f;
  const void *pw = (const void *)(uintptr_t)w, *px = (const void *)(uintptr_t)x;
  void *py = (void *)(uintptr_t)y;
  const cublasLtMatmulAlgo_t *algo = rows == g->tuned_rows ? &g->tuned : &g->algo;
  LT_TRY(lt, err, cublasLtMatmul(lt->handle, g->desc, &alpha, pw, g->a, px, g->b, &beta, py, g->d, py, g->d,
                                 algo, (void *)(uintptr_t)workspace, workspace_bytes, stream));
  return DIT_OK;
fail:
  return st;
}

void lt_gemm_free(const CublasLt *lt, LtGemm *g) {
  if (!g) return;
  if (g->pref) lt->cublasLtMatmulPreferenceDestroy(g->pref);
  if (g->d) lt->cublasLtMatrixLayoutDestroy(g->d);
  if (g->b) lt->cublasLtMatrixLayoutDestroy(g->b);
  if (g->a) lt->cublasLtMatrixLayoutDestroy(g->a);
  if (g->desc) lt->cublasLtMatmulDescDestroy(g->desc);
  memset(g, 0, sizeof *g);
}

DitStatus lt_gemm_algos(const CublasLt *lt, LtGemm *g, int64_t rows, cublasLtMatmulAlgo_t *out, int max, int *count,
                        size_t op_index, DitErr *err) {
  DitStatus st = choose_algo(lt, g, rows, op_index, err); /* the layouts at `rows`; g->algo the first */
  cublasLtMatmulHeuristicResult_t res[LT_MAX_ALGOS];
  int found = 0;
  *count = 0;
  if (st) return st;
  if (max > LT_MAX_ALGOS) max = LT_MAX_ALGOS;
  if (max < 1) return DIT_OK;
  memset(res, 0, sizeof res);
  /* the preference keeps the backend's reduction schemes (lt_gemm_init): only deterministic split-K */
  LT_TRY(lt, err, cublasLtMatmulAlgoGetHeuristic(lt->handle, g->desc, g->a, g->b, g->d, g->d, g->pref, max, res,
                                                 &found));
  for (int i = 0; i < found && i < max; i++)
    if (res[i].state == CUBLAS_STATUS_SUCCESS) out[(*count)++] = res[i].algo;
  return DIT_OK;
fail:
  return st;
}

DitStatus lt_gemm_tune(const CublasLt *lt, LtGemm *g, int64_t rows, const cublasLtMatmulAlgo_t *algo,
                       size_t workspace_bytes, size_t op_index, DitErr *err) {
  DitStatus st = choose_algo(lt, g, rows, op_index, err); /* the layouts at `rows`, which the check reads */
  if (st) return st;
  cublasLtMatmulHeuristicResult_t res;
  memset(&res, 0, sizeof res);
  cublasStatus_t rc = lt->cublasLtMatmulAlgoCheck(lt->handle, g->desc, g->a, g->b, g->d, g->d, algo, &res);
  if (rc != CUBLAS_STATUS_SUCCESS || res.state != CUBLAS_STATUS_SUCCESS) {
    cublasStatus_t why = rc != CUBLAS_STATUS_SUCCESS ? rc : res.state;
    const char *name = lt->cublasLtGetStatusName ? lt->cublasLtGetStatusName(why) : NULL;
    return dit_err(err, DIT_ERR_FORMAT,
                   "linear op %zu: cublasLtMatmulAlgoCheck refuses the tuned cuBLASLt algorithm at %" PRId64
                   " rows: %s",
                   op_index, rows, name ? name : "cuBLASLt error");
  }
  if (res.workspaceSize > workspace_bytes)
    return dit_err(err, DIT_ERR_FORMAT,
                   "linear op %zu: the tuned cuBLASLt algorithm needs %zu bytes of workspace, more than the %zu "
                   "the backend has",
                   op_index, res.workspaceSize, workspace_bytes);
  if (memcmp(algo, &g->algo, sizeof *algo) == 0) { /* the default: no tuning */
    g->tuned_rows = 0;
    return DIT_OK;
  }
  g->tuned = *algo;
  g->tuned_rows = rows;
  return DIT_OK;
}
