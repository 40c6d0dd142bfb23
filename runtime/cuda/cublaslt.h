/* cublaslt.h: the plan's linear ops as cuBLASLt GEMMs. libcublasLt is
 * loaded with dlopen (cublasLt.h supplies types only), like the driver.
 *
 * A linear op y[rows, M] = act(x[rows, K] @ W[M, K]^T + b[M]) in row-major
 * is, in cuBLASLt's column-major terms, D(M x rows) = op_T(A) * B + bias with
 * A = W seen as a K x M matrix (ld K), B = x seen as K x rows (ld K) and
 * D = y seen as M x rows (ld M): no copies or transposes of the data
 * (cuda_gemm_shape in cuda_launch.h). The bias is the epilogue's, one value
 * per row of D. Activations: GELU through CUBLASLT_EPILOGUE_GELU_BIAS
 * (cuBLASLt's GELU is the tanh approximation, as PyTorch relies on for
 * torch._addmm_activation; cublasLt.h itself only says "GELU", so the GPU
 * test checks it against the CPU's tanh GELU); SiLU as a BIAS GEMM followed
 * by the plan's silu kernel (cuda_exec.c).
 *
 * Descriptors, the preference and the first algorithm (for the plan's
 * max rows) are made once at load. A forward of fewer rows changes the B and
 * D layouts' column count and asks the heuristic again, once per change of
 * rows; a captured CUDA graph never does (the sampler runs one eager step
 * with the same rows first, cuda_sample.c).
 *
 * Autotuning (cuda_tune.c): lt_gemm_algos lists the heuristic's top
 * algorithms at a row count, lt_gemm_tune makes one of them (checked with
 * cublasLtMatmulAlgoCheck) the op's algorithm at that row count; at other
 * row counts the heuristic's first stays in use. */
#ifndef DIT_RUNTIME_CUDA_CUBLASLT_H
#define DIT_RUNTIME_CUDA_CUBLASLT_H

#include <cublasLt.h>
#include <cuda.h>

#include "err.h"

#define CUBLASLT_FUNCTIONS(X)                                                                        \
  X(cublasLtCreate) X(cublasLtDestroy) X(cublasLtGetVersion) X(cublasLtGetStatusName)                \
  X(cublasLtGetStatusString) X(cublasLtMatmulDescCreate) X(cublasLtMatmulDescDestroy)                \
  X(cublasLtMatmulDescSetAttribute) X(cublasLtMatrixLayoutCreate) X(cublasLtMatrixLayoutDestroy)     \
  X(cublasLtMatrixLayoutSetAttribute) X(cublasLtMatmulPreferenceCreate)                              \
  X(cublasLtMatmulPreferenceDestroy) X(cublasLtMatmulPreferenceSetAttribute)                         \
  X(cublasLtMatmulAlgoGetHeuristic) X(cublasLtMatmulAlgoCheck) X(cublasLtMatmul)

typedef struct CublasLt {
  void *lib;
  cublasLtHandle_t handle;
#define CUBLASLT_MEMBER(fn) __typeof__(&fn) fn;
  CUBLASLT_FUNCTIONS(CUBLASLT_MEMBER)
#undef CUBLASLT_MEMBER
} CublasLt;

/* Loads cuBLASLt and creates the handle; the CUDA context must be current.
 * path: that library only (the emulated device's libdit_emu.so), else NULL:
 * chosen by the driver's version (cuDriverGetVersion: 12040, 13000; 0 if
 * unknown): libcublasLt.so.13 only for a CUDA 13 driver or newer, then
 * .so.12, each on the loader's path (LD_LIBRARY_PATH, ld.so.cache), in
 * /usr/local/cuda/lib64, then where PyTorch's pip wheels put it:
 * nvidia/cublas/lib in the site-packages (or dist-packages) of python3.X
 * under $VIRTUAL_ENV/lib, ~/.local/lib ($HOME), /usr/local/lib and /usr/lib
 * (where to search, not a setting: the only environment the runtime reads);
 * the unversioned libcublasLt.so last, refused when newer than the driver. */
DitStatus cublaslt_open(CublasLt *lt, const char *path, int driver_version, DitErr *err);
void cublaslt_close(CublasLt *lt); /* accepts a zeroed struct */

/* One linear op's GEMM. */
typedef struct LtGemm {
  cublasLtMatmulDesc_t desc;
  cublasLtMatrixLayout_t a, b, d; /* W as K x M; x as K x rows; y as M x rows */
  cublasLtMatmulPreference_t pref;
  int64_t K, M;
  int64_t rows;                   /* the rows the layouts and algo are set for */
  cublasLtMatmulAlgo_t algo;      /* the heuristic's first at `rows` */
  int64_t tuned_rows;             /* > 0: at these rows lt_gemm_run runs `tuned` instead */
  cublasLtMatmulAlgo_t tuned;
} LtGemm;

typedef struct LtGemmConfig {
  int tf32;                  /* CUBLAS_COMPUTE_32F_FAST_TF32, else CUBLAS_COMPUTE_32F */
  int bf16_in, bf16_out;     /* bf16 plans: x and W in bf16; y (and the bias) in bf16 */
  int64_t K, M, max_rows;
  int gelu;                  /* GELU_BIAS epilogue, else BIAS */
  CUdeviceptr bias;          /* [M] */
  uint32_t align_w, align_x, align_y; /* bytes: the operands' pointer alignment (cuda_ptr_alignment) */
  size_t workspace_bytes;
} LtGemmConfig;

/* Descriptors and the algorithm for max_rows. Messages name op_index. */
DitStatus lt_gemm_init(const CublasLt *lt, LtGemm *g, const LtGemmConfig *c, size_t op_index, DitErr *err);
/* Enqueues y = act(x W^T + b) for `rows` rows on stream. A new row count
 * asks the heuristic first, which is refused while `capturing`. */
DitStatus lt_gemm_run(const CublasLt *lt, LtGemm *g, int64_t rows, CUdeviceptr w, CUdeviceptr x,
                      CUdeviceptr y, CUdeviceptr workspace, size_t workspace_bytes, CUstream stream,
                      int capturing, size_t op_index, DitErr *err);
void lt_gemm_free(const CublasLt *lt, LtGemm *g); /* accepts a zeroed struct */

enum { LT_MAX_ALGOS = 8 }; /* lt_gemm_algos' requestedAlgoCount at most */

/* The heuristic's algorithms for `rows` rows (at most max, <= LT_MAX_ALGOS)
 * with the GEMM's descriptors and preference (its workspace and reduction
 * schemes), in its order: out[0] is the one lt_gemm_run uses by default. */
DitStatus lt_gemm_algos(const CublasLt *lt, LtGemm *g, int64_t rows, cublasLtMatmulAlgo_t *out, int max, int *count,
                        size_t op_index, DitErr *err);
/* Runs `algo` at `rows` rows from now on, once cublasLtMatmulAlgoCheck
 * accepts it for the GEMM's descriptors at those rows and its workspace
 * fits workspace_bytes; else DIT_ERR_FORMAT (the algorithm unchanged). The
 * heuristic's first algorithm at those rows clears the tuning. */
DitStatus lt_gemm_tune(const CublasLt *lt, LtGemm *g, int64_t rows, const cublasLtMatmulAlgo_t *algo,
                       size_t workspace_bytes, size_t op_index, DitErr *err);

#endif
