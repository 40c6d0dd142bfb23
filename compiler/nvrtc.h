/* nvrtc.h: a small, strict wrapper of NVRTC. libnvrtc is opened with dlopen,
 * so ditc runs where the CUDA toolkit is missing (and then compiles only CPU
 * plans). The architecture is always given explicitly, never queried from a
 * device; every log is kept; a failed compile prints the log and the source
 * with line numbers. Several kernels compile as one program (one NVRTC and
 * one ptxas run per architecture), whose module holds all of them. */
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

/* The code of one compiled program: every kernel it names, in one module. */
typedef struct KernelModule {
  unsigned char *cubin; /* malloc'ed ELF; NULL for a virtual arch ("compute_80") */
  size_t cubin_bytes;
  char *ptx;            /* malloc'ed PTX text; ptx_bytes counts its terminating NUL */
  size_t ptx_bytes;
} KernelModule;

/* Compiles `source` once for `arch`, a real ("sm_90a": cubin and PTX) or a
 * virtual architecture ("compute_80": PTX only), with the n kernels named by
 * the C++ expressions name_exprs. kernels[i] receives kernel i's lowered name
 * and ptxas resources (zero for a virtual arch); its cubin stays NULL: the
 * code is in mod. The PTX of a real arch sm_XX is the PTX of compute_XX. */
DitcStatus nvrtc_compile_many(Nvrtc *nv, Diag *d, const char *source, const char *const *name_exprs,
                              int n, const char *arch, KernelModule *mod, KernelImage *kernels);
void kernel_module_free(KernelModule *mod); /* accepts NULL */

/* The options nvrtc_compile_many passes after --gpu-architecture=ARCH, in
 * order (part of the NVRTC cache's key); their count. */
int nvrtc_fixed_options(const char *const **out);

#endif
