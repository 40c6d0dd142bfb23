/* cli_env.c: the settings dit takes from its environment (cli.h): the
 * library itself reads no environment variable; the CLI passes these to
 * dit_open in DitOptions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* "0" or "1" (empty or unset: fallback); else -1. */
static int env_bool(const char *name, int fallback) {
  const char *v = getenv(name);
  if (!v || !*v) return fallback;
  if (!strcmp(v, "0") || !strcmp(v, "1")) return v[0] == '1';
  fprintf(stderr, "dit: error: %s=%s: expected 0 or 1\n", name, v);
  return -1;
}

/* A library path (empty or unset: NULL, the runtime's default). */
static const char *env_path(const char *name) {
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

int cli_env_options(DitOptions *o) {
  const char *dev = getenv("DIT_CUDA_DEVICE");
  if (dev && *dev) {
    char *end;
    long v = strtol(dev, &end, 10);
    if (*end || v < 0 || v > 1023) {
      fprintf(stderr, "dit: error: DIT_CUDA_DEVICE=%s: expected a device ordinal (0, 1, ...)\n", dev);
      return -1;
    }
    o->cuda_device = (int)v;
  }
  int sync = env_bool("DIT_CUDA_SYNC", 0), graph = env_bool("DIT_CUDA_GRAPH", 1);
  if (sync < 0 || graph < 0) return -1;
  o->cuda_sync = sync;
  o->cuda_no_graph = !graph;
  /* the libraries: the emulated device's one library, or the real driver's and cuBLASLt's */
  if (o->device && !strcmp(o->device, "emu")) {
    const char *emu = env_path("DIT_EMU_LIB");
    o->cuda_driver_lib = emu;
    o->cublaslt_lib = emu;
  } else {
    o->cuda_driver_lib = env_path("DIT_CUDA_DRIVER_LIB");
    o->cublaslt_lib = env_path("DIT_CUBLASLT_LIB");
  }
  return 0;
}
