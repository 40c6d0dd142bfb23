/* cuda_stub.c: the CUDA backend of a build without the CUDA toolkit's
 * headers (backend.h): opening it (device "cuda" or "emu") says so. */
#include <string.h>

#include "backend.h"

DitStatus backend_cuda_open(const PlanView *pv, const DitOptions *opts, Backend **out, DitErr *err) {
  (void)pv;
  *out = NULL;
  int emu = opts && opts->device && strcmp(opts->device, "emu") == 0;
  return dit_err(err, DIT_ERR_UNSUPPORTED,
                 "this build of dit has no CUDA backend%s (the CUDA toolkit's headers were not found when it "
                 "was built)", emu ? ", so no emulated device either" : "");
}
