/* cuda_backend.h: the CUDA backend as the rest of the runtime sees it
 * (runtime.c, sample/sampler.c, debug.c). Opaque, and free of CUDA headers:
 * a build without the CUDA toolkit links cuda_stub.c instead, whose
 * cuda_backend_open says so. Inference plans only; every buffer is
 * allocated by cuda_backend_open, nothing later. */
#ifndef DIT_RUNTIME_CUDA_BACKEND_H
#define DIT_RUNTIME_CUDA_BACKEND_H

#include <stdint.h>

#include "dit/dit.h"
#include "plan/plan_view.h"

typedef struct CudaBackend CudaBackend;
struct DiffusionSchedule;

/* Opens the device (opts->cuda_device), loads the plan's
 * kernels and cuBLASLt GEMMs, and allocates the arena, the weights, the
 * workspace and the staging buffers. pv must outlive the backend. On
 * failure err says why: DIT_ERR_DEVICE when there is no usable driver or
 * device, DIT_ERR_UNSUPPORTED when this plan or build cannot run on it. */
DitStatus cuda_backend_open(const PlanView *pv, const DitOptions *opts, CudaBackend **out, DitErr *err);
void cuda_backend_close(CudaBackend *cb); /* accepts NULL */
/* "cuda:0 (NVIDIA H100 80GB HBM3, sm_90)" */
const char *cuda_backend_name(const CudaBackend *cb);

/* Copies the host weight buffer (weight_bytes, the plan's layout) to the device. */
DitStatus cuda_backend_upload_weights(CudaBackend *cb, const void *weights, DitErr *err);

/* One forward of `rows` rows (labels already validated): out [rows, Cout, H, W]. */
DitStatus cuda_backend_forward(CudaBackend *cb, int64_t rows, const float *x, const int64_t *t,
                               const int64_t *y, float *out, DitErr *err);
/* The guided forward: rows [0, n) as given, rows [n, 2n) with null_class;
 * then the plan's guidance mix: out [n, Cout, H, W]. */
DitStatus cuda_backend_forward_cfg(CudaBackend *cb, int64_t n, const float *x, const int64_t *t,
                                   const int64_t *y, int64_t null_class, float cfg_scale, float *out,
                                   DitErr *err);

/* dit_sample on the device (cuda_sample.c); the options were validated. */
typedef struct CudaSampleArgs {
  const DitSampleOptions *o;
  const struct DiffusionSchedule *sched;
  int use_cfg;
  int learn_sigma;
  int64_t null_class;
  int threads; /* for the host's noise generator */
} CudaSampleArgs;
DitStatus cuda_backend_sample(CudaBackend *cb, const CudaSampleArgs *a, float *out, DitErr *err);

/* The bytes of a value (arena or weights) as the last run left them, at n
 * rows; waits for the device. */
DitStatus cuda_backend_read_value(CudaBackend *cb, uint32_t id, int64_t n, void *dst, DitErr *err);
/* Fills the arena with 0xFF bytes (float NaN). */
DitStatus cuda_backend_poison(CudaBackend *cb, DitErr *err);

#endif
