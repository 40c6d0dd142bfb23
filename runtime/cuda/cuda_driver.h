/* cuda_driver.h: the CUDA driver API, loaded at run time with dlopen, so
 * that dit starts (and runs on the CPU) on machines without a GPU or driver.
 * <cuda.h> supplies the types and prototypes only; nothing links libcuda.
 *
 * Every function the backend calls is listed once in CUDA_DRIVER_FUNCTIONS.
 * cuda.h maps several API names to versioned ABI symbols (cuMemAlloc ->
 * cuMemAlloc_v2, cuStreamBeginCapture -> cuStreamBeginCapture_v2,
 * cuGraphInstantiate -> cuGraphInstantiateWithFlags, ...); the loader
 * resolves exactly the symbol each name expands to, and the struct member
 * carries the same expanded name and the prototype's type, so a call
 * `drv->cuMemAlloc(&p, n)` always goes to the ABI that cuda.h declares.
 * The one X-macro list keeps the struct and the loader in sync. */
#ifndef DIT_RUNTIME_CUDA_DRIVER_H
#define DIT_RUNTIME_CUDA_DRIVER_H

#include <cuda.h>

#include "err.h"

#define CUDA_DRIVER_FUNCTIONS(X)                                                                    \
  X(cuInit) X(cuDriverGetVersion) X(cuGetErrorName) X(cuGetErrorString)                              \
  X(cuDeviceGetCount) X(cuDeviceGet) X(cuDeviceGetName) X(cuDeviceGetAttribute)                     \
  X(cuDevicePrimaryCtxRetain) X(cuDevicePrimaryCtxRelease) X(cuCtxSetCurrent)                       \
  X(cuStreamCreate) X(cuStreamDestroy) X(cuStreamSynchronize)                                        \
  X(cuEventCreate) X(cuEventDestroy) X(cuEventRecord) X(cuEventSynchronize)                          \
  X(cuMemAlloc) X(cuMemFree) X(cuMemAllocHost) X(cuMemFreeHost) X(cuMemGetInfo)                      \
  X(cuMemcpyHtoDAsync) X(cuMemcpyDtoHAsync) X(cuMemcpyDtoDAsync) X(cuMemsetD8Async)                  \
  X(cuModuleLoadDataEx) X(cuModuleUnload) X(cuModuleGetFunction) X(cuFuncSetAttribute)               \
  X(cuLaunchKernel)                                                                                  \
  X(cuStreamBeginCapture) X(cuStreamEndCapture) X(cuGraphInstantiate) X(cuGraphLaunch)               \
  X(cuGraphExecDestroy) X(cuGraphDestroy)

typedef struct CudaDriver {
  void *lib; /* libcuda.so.1, or the library cuda_driver_open was given (libdit_emu.so) */
#define CUDA_DRIVER_MEMBER(fn) __typeof__(&fn) fn;
  CUDA_DRIVER_FUNCTIONS(CUDA_DRIVER_MEMBER)
#undef CUDA_DRIVER_MEMBER
  /* optional (autotuning's timing, cuda_tune.c): NULL when the driver has
   * neither cuEventElapsedTime_v2 (CUDA 12.8 on, what cuda.h names) nor the
   * older cuEventElapsedTime of the same prototype */
  __typeof__(&cuEventElapsedTime) cuEventElapsedTime;
} CudaDriver;

/* Loads the driver library `path` (NULL: libcuda.so.1; the emulated
 * device's libdit_emu.so, tools/emu/), resolves every function and calls
 * cuInit(0). Messages: "cannot load <path>: <dlerror>", "<path> lacks
 * <symbol> (driver older than CUDA 12?)", "cuInit failed: <name> (<text>)". */
DitStatus cuda_driver_open(CudaDriver *d, const char *path, DitErr *err);
void cuda_driver_close(CudaDriver *d); /* accepts a zeroed struct */

/* Records a failed driver call into err: the call's text, the error's name
 * and description, and file:line. Returns DIT_ERR_NOMEM for out-of-memory,
 * else DIT_ERR_DEVICE. */
DitStatus cuda_error(const CudaDriver *d, DitErr *err, CUresult rc, const char *call, const char *file,
                     int line);

/* Calls d->call (a driver call); on failure records it in err, sets the
 * caller's `st` and jumps to its `fail` label. */
#define CU_TRY(d, err, call)                                                                         \
  do {                                                                                               \
    CUresult cu_rc_ = (d)->call;                                                                     \
    if (cu_rc_ != CUDA_SUCCESS) {                                                                    \
      st = cuda_error((d), (err), cu_rc_, #call, __FILE__, __LINE__);                                \
      goto fail;                                                                                     \
    }                                                                                                \
  } while (0)

/* "runtime/cuda/x.c" from a build's absolute __FILE__ (for messages). */
const char *cuda_short_file(const char *file);

#endif
