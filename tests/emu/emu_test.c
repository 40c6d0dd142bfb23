/* emu_test.c: the shared plumbing of the emulated device's C tests (see
 * emu_test.h). */
#include "emu_test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

char *emu_test_read(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (s && fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
  if (s) s[n] = '\0';
  fclose(f);
  return s;
}

char *emu_test_image(const char *const *headers, int n_headers, const char *tu) {
  size_t cap = strlen(tu) + 256, len = 0;
  char **texts = calloc((size_t)n_headers + 1, sizeof *texts);
  int ok = texts != NULL;
  for (int i = 0; ok && i < n_headers; i++) {
    char path[512];
    snprintf(path, sizeof path, "%s/kernels/%s", DIT_SOURCE_DIR, headers[i]);
    texts[i] = emu_test_read(path);
    ok = texts[i] != NULL;
    if (ok) cap += strlen(texts[i]) + strlen(headers[i]) + 64;
  }
  char *img = ok ? malloc(cap) : NULL;
  if (img) {
    len += (size_t)snprintf(img + len, cap - len, "DITEMU1\n");
    for (int i = 0; i < n_headers; i++)
      len += (size_t)snprintf(img + len, cap - len, "file %s %zu\n%s\n", headers[i], strlen(texts[i]), texts[i]);
    snprintf(img + len, cap - len, "main kernels.cu %zu\n%s\nend\n", strlen(tu), tu);
  }
  for (int i = 0; texts && i < n_headers; i++) free(texts[i]);
  free(texts);
  return img;
}

int emu_test_open(const char *image, CUstream *stream, CUmodule *mod) {
  CUdevice dev;
  CUcontext ctx;
  char log[16384] = "";
  CUjit_option opt[2] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
  void *val[2] = {log, (void *)(uintptr_t)sizeof log};
  if (cuInit(0) || cuDeviceGet(&dev, 0) || cuDevicePrimaryCtxRetain(&ctx, dev) || cuCtxSetCurrent(ctx) ||
      cuStreamCreate(stream, CU_STREAM_NON_BLOCKING)) {
    printf("FAIL: the emulated device does not open\n");
    return -1;
  }
  CUresult rc = cuModuleLoadDataEx(mod, image, 2, opt, val);
  if (rc != CUDA_SUCCESS) {
    const char *name = NULL;
    cuGetErrorName(rc, &name);
    printf("FAIL: cuModuleLoadDataEx: %s: %s\n", name ? name : "?", log);
    return -1;
  }
  return 0;
}
