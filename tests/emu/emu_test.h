/* emu_test.h: what the emulated device's C tests share (test_emu_simt.c,
 * test_emu_mma.c, test_mma_nvrtc.c): the check macros over the test's own
 * `failures` counter, reading a source file, an emu image of a translation
 * unit and its headers (tools/emu/README.md), and a context, stream and
 * module on the emulated driver. */
#ifndef DIT_TESTS_EMU_TEST_H
#define DIT_TESTS_EMU_TEST_H

#include <cuda.h>
#include <stdio.h>

/* A failed check: counted in the including file's `failures`, and printed. */
#define CHECK(cond, ...)                          \
  do {                                            \
    if (!(cond)) {                                \
      printf("FAIL %s:%d: ", __FILE__, __LINE__); \
      printf(__VA_ARGS__);                        \
      printf("\n");                               \
      failures++;                                 \
    }                                             \
  } while (0)
/* A driver call that must succeed, in a function returning int (-1 on failure). */
#define CU(call)                                                                \
  do {                                                                          \
    CUresult rc_ = (call);                                                      \
    if (rc_ != CUDA_SUCCESS) {                                                  \
      const char *n_ = NULL;                                                    \
      cuGetErrorName(rc_, &n_);                                                 \
      printf("FAIL %s:%d: %s: %s\n", __FILE__, __LINE__, #call, n_ ? n_ : "?"); \
      failures++;                                                               \
      return -1;                                                                \
    }                                                                           \
  } while (0)

/* The file's text (malloc'ed, NUL-terminated), or NULL. */
char *emu_test_read(const char *path);

/* The emu image of translation unit `tu` and the headers it includes: each
 * headers[i] read from DIT_SOURCE_DIR/kernels/headers[i]. NULL when one
 * cannot be read. */
char *emu_test_image(const char *const *headers, int n_headers, const char *tu);

/* cuInit, the device's primary context, a non-blocking stream and the
 * image's module; 0, or -1 with the module's compile log printed. */
int emu_test_open(const char *image, CUstream *stream, CUmodule *mod);

#endif
