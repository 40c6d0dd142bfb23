/* cublaslt.c: loading cuBLASLt and the GEMM of each linear op (see
 * cublaslt.h). */
#define _GNU_SOURCE /* RTLD_NODELETE */
#include "cublaslt.h"

#include <dlfcn.h>
#include <inttypes.h>
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

DitStatus cublaslt_open(CublasLt *lt, DitErr *err) {
  /* the toolkit there may be CUDA 13 or 12: the enums and structs used here
   * (descriptor attributes, cublasLtMatmulAlgo_t, the heuristic result) are
   * the same in both */
  static const char *const names[] = {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so",
                                      "/usr/local/cuda/lib64/libcublasLt.so.13",
                                      "/usr/local/cuda/lib64/libcublasLt.so.12"};
  DitStatus st = DIT_OK;
  memset(lt, 0, sizeof *lt);
  const char *why = NULL;
  /* never unloaded: cuBLASLt carries a static CUDA runtime with exit handlers */
  for (size_t i = 0; i < sizeof names / sizeof names[0] && !lt->lib; i++) {
    lt->lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!lt->lib && !why) why = dlerror();
  }
  if (!lt->lib)
    return dit_err(err, DIT_ERR_DEVICE, "cannot load libcublasLt.so.13 or .so.12: %s", why ? why : "not found");
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
      st = dit_err(err, DIT_ERR_DEVICE, "libcublasLt lacks %s", syms[i].name);
      goto fail;
    }
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
  /* GPU-VISIT: check the test's bitwise repeats ("the same sample again", "graph == eager"):
   * an algorithm whose split-K reduction is INPLACE may add partial sums in any order; if a
   * repeat differs, restrict CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK to
   * NONE | COMPUTE_TYPE | OUTPUT_TYPE in lt_gemm_init */
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
  LT_TRY(lt, err, cublasLtMatrixLayoutCreate(&g->a, CUDA_R_32F, s.a_rows, s.a_cols, s.a_ld));
  LT_TRY(lt, err, cublasLtMatrixLayoutCreate(&g->b, CUDA_R_32F, s.b_rows, s.b_cols, s.b_ld));
  LT_TRY(lt, err, cublasLtMatrixLayoutCreate(&g->d, CUDA_R_32F, s.d_rows, s.d_cols, s.d_ld));
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
  LT_TRY(lt, err, cublasLtMatmul(lt->handle, g->desc, &alpha, pw, g->a, px, g->b, &beta, py, g->d, py, g->d,
                                 &g->algo, (void *)(uintptr_t)workspace, workspace_bytes, stream));
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
