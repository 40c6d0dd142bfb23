/* npy.h: reading and writing NumPy .npy arrays (format 1.0-3.0, little
 * endian, C order): float32, int64 and int32 (widened to int64 on read). */
#ifndef DIT_RUNTIME_NPY_H
#define DIT_RUNTIME_NPY_H

#include <stdint.h>

#include "err.h"

#define NPY_MAX_RANK 8

typedef enum { NPY_F32, NPY_I64 } NpyType;

typedef struct NpyArray {
  NpyType type;   /* after widening: int32 files read as NPY_I64 */
  int rank;
  int64_t shape[NPY_MAX_RANK];
  int64_t numel;
  void *data;     /* malloc'ed: float or int64_t */
} NpyArray;

DitStatus npy_read(const char *path, NpyArray *out, DitErr *err);
void npy_free(NpyArray *a);

/* Writes float32 data of the given shape atomically (temp file + rename). */
DitStatus npy_write_f32(const char *path, const float *data, int rank, const int64_t *shape,
                        DitErr *err);

/* The same for int64 data. */
DitStatus npy_write_i64(const char *path, const int64_t *data, int rank, const int64_t *shape,
                        DitErr *err);

#endif
