/* cuda_stub.c: the CUDA backend of a build without the CUDA toolkit's
 * headers (backend.h): opening it says so. */
#include "backend.h"

DitStatus backend_cuda_open(const PlanView *pv, const DitOptions *opts, Backend **out, DitErr *err) {
  (void)pv, (void)opts;
  *out = NULL;
  return dit_err(err, DIT_ERR_UNSUPPORTED,
                 "this build of dit has no CUDA backend (the CUDA toolkit's headers were not found when it "
                 "was built)");
}
