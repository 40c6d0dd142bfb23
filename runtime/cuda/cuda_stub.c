/* cuda_stub.c: the CUDA backend of a build without the CUDA toolkit's
 * headers (cuda_backend.h): opening it says so; nothing else is reachable,
 * because the runtime only calls the backend it opened. */
#include "cuda_backend.h"

DitStatus cuda_backend_open(const PlanView *pv, const DitOptions *opts, CudaBackend **out, DitErr *err) {
  (void)pv, (void)opts;
  *out = NULL;
  return dit_err(err, DIT_ERR_UNSUPPORTED,
                 "this build of dit has no CUDA backend (the CUDA toolkit's headers were not found when it "
                 "was built)");
}

void cuda_backend_close(CudaBackend *cb) { (void)cb; }
const char *cuda_backend_name(const CudaBackend *cb) { (void)cb; return "cpu"; }

static DitStatus unreachable(DitErr *err) {
  return dit_err(err, DIT_ERR_INTERNAL, "the CUDA backend is not part of this build");
}

DitStatus cuda_backend_upload_weights(CudaBackend *cb, const void *weights, DitErr *err) {
  (void)cb, (void)weights;
  return unreachable(err);
}
DitStatus cuda_backend_forward(CudaBackend *cb, int64_t rows, const float *x, const int64_t *t,
                               const int64_t *y, float *out, DitErr *err) {
  (void)cb, (void)rows, (void)x, (void)t, (void)y, (void)out;
  return unreachable(err);
}
DitStatus cuda_backend_forward_cfg(CudaBackend *cb, int64_t n, const float *x, const int64_t *t,
                                   const int64_t *y, int64_t null_class, float cfg_scale, float *out,
                                   DitErr *err) {
  (void)cb, (void)n, (void)x, (void)t, (void)y, (void)null_class, (void)cfg_scale, (void)out;
  return unreachable(err);
}
DitStatus cuda_backend_sample(CudaBackend *cb, const CudaSampleArgs *a, float *out, DitErr *err) {
  (void)cb, (void)a, (void)out;
  return unreachable(err);
}
DitStatus cuda_backend_read_value(CudaBackend *cb, uint32_t id, int64_t n, void *dst, DitErr *err) {
  (void)cb, (void)id, (void)n, (void)dst;
  return unreachable(err);
}
DitStatus cuda_backend_poison(CudaBackend *cb, DitErr *err) {
  (void)cb;
  return unreachable(err);
}
