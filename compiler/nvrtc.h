/* nvrtc.h: a small, strict wrapper of NVRTC. libnvrtc is opened with dlopen,
 * so ditc runs where the CUDA toolkit is missing (and then compiles only CPU
 * plans). The architecture is always given explicitly, never queried from a
 * device; every log is kept; a failed compile prints the log and the source
 * with line numbers. */
#ifndef DIT_COMPILER_NVRTC_H
#define DIT_COMPILER_NVRTC_H

#include <stddef.h>

#include "diag.h"

typedef struct Nvrtc Nvrtc;

typedef struct KernelImage {
  char lowered_name[256]; /* the mangled entry point of the kernel */
  unsigned char *cubin;   /* malloc'ed; NULL for PTX-only targets */
  size_t cubin_bytes;
  int registers;          /* from ptxas -v */
  int smem_bytes;
  int spill_stores, spill_loads;
  int stack_bytes;
} KernelImage;

/* NULL (with a note in d) when libnvrtc cannot be loaded. */
Nvrtc *nvrtc_open(Diag *d);
void nvrtc_close(Nvrtc *nv); /* accepts NULL */
/* "12.4" */
const char *nvrtc_version(const Nvrtc *nv);

/* Compiles `source` (which may #include the embedded kernel templates) for
 * `arch` ("sm_80", "sm_90a") and returns the cubin of the kernel named by
 * the C++ expression `name_expr` ("dit::adaln_norm_kernel<1152, 128, true>"). */
DitcStatus nvrtc_compile(Nvrtc *nv, Diag *d, const char *source, const char *name_expr,
                         const char *arch, KernelImage *out);
void kernel_image_free(KernelImage *img);

#endif
