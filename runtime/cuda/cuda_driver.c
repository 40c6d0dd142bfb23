/* cuda_driver.c: loading the driver (libcuda.so.1, or the emulated
 * device's library) and reporting its errors (see cuda_driver.h). */
#define _GNU_SOURCE /* RTLD_NODELETE */
#include "cuda_driver.h"

#include <dlfcn.h>
#include <string.h>

/* The symbol a cuda.h name expands to, as a string: "cuMemAlloc_v2". */
#define CUDA_SYMBOL_(x) #x
#define CUDA_SYMBOL(x) CUDA_SYMBOL_(x)

const char *cuda_short_file(const char *file) {
  const char *p = strstr(file, "runtime/");
  return p ? p : file;
}

DitStatus cuda_error(const CudaDriver *d, DitErr *err, CUresult rc, const char *call, const char *file,
                     int line) {
  const char *name = NULL, *text = NULL;
  if (d && d->cuGetErrorName && d->cuGetErrorName(rc, &name) != CUDA_SUCCESS) name = NULL;
  if (d && d->cuGetErrorString && d->cuGetErrorString(rc, &text) != CUDA_SUCCESS) text = NULL;
  DitStatus st = rc == CUDA_ERROR_OUT_OF_MEMORY ? DIT_ERR_NOMEM : DIT_ERR_DEVICE;
  return dit_err(err, st, "%s failed: %s (%s) at %s:%d", call, name ? name : "CUDA error",
                 text ? text : "no description", cuda_short_file(file), line);
}

DitStatus cuda_driver_open(CudaDriver *d, const char *path, DitErr *err) {
  memset(d, 0, sizeof *d);
  if (!path) path = "libcuda.so.1";
  /* never unloaded: the driver keeps threads and handlers that outlive a dlclose */
  d->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (!d->lib) {
    const char *why = dlerror();
    return dit_err(err, DIT_ERR_DEVICE, "cannot load %s: %s", path, why ? why : "not found");
  }
  struct {
    void **slot;
    const char *name;
  } syms[] = {
#define CUDA_DRIVER_ENTRY(fn) {(void **)&d->fn, CUDA_SYMBOL(fn)},
      CUDA_DRIVER_FUNCTIONS(CUDA_DRIVER_ENTRY)
#undef CUDA_DRIVER_ENTRY
  };
  for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
    *syms[i].slot = dlsym(d->lib, syms[i].name);
    if (!*syms[i].slot) {
      DitStatus st = dit_err(err, DIT_ERR_DEVICE, "%s lacks %s (driver older than CUDA 12?)", path,
                             syms[i].name);
      cuda_driver_close(d);
      return st;
    }
  }
  void **elapsed = (void **)&d->cuEventElapsedTime; /* optional: the _v2 ABI, else the older one */
  *elapsed = dlsym(d->lib, CUDA_SYMBOL(cuEventElapsedTime));
  if (!*elapsed) *elapsed = dlsym(d->lib, "cuEventElapsedTime");
  CUresult rc = d->cuInit(0);
  if (rc != CUDA_SUCCESS) {
    const char *name = NULL, *text = NULL;
    if (d->cuGetErrorName(rc, &name) != CUDA_SUCCESS) name = "CUDA error";
    if (d->cuGetErrorString(rc, &text) != CUDA_SUCCESS) text = "no description";
    DitStatus st = dit_err(err, DIT_ERR_DEVICE, "cuInit failed: %s (%s)", name, text);
    cuda_driver_close(d);
    return st;
  }
  return DIT_OK;
}

void cuda_driver_close(CudaDriver *d) {
  if (!d) return;
  if (d->lib) dlclose(d->lib); /* RTLD_NODELETE: drops the reference, keeps the code */
  memset(d, 0, sizeof *d);
}
