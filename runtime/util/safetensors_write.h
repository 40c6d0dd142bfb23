/* safetensors_write.h: writing tensors as a safetensors file (the format the
 * Hugging Face safetensors library reads: an 8-byte little-endian header
 * length, a JSON header naming each tensor's dtype, shape and byte range, then
 * the raw little-endian data), atomically. Used for gradients and training
 * checkpoints, so that PyTorch users load them with safetensors.torch. */
#ifndef DIT_RUNTIME_SAFETENSORS_WRITE_H
#define DIT_RUNTIME_SAFETENSORS_WRITE_H

#include <stdint.h>

#include "err.h"

typedef struct StTensor {
  const char *name;
  const char *dtype;  /* "F32", "I64", "U8", ... */
  int rank;           /* 0 .. 8 */
  int64_t shape[8];
  const void *data;
  uint64_t bytes;     /* numel * element size */
} StTensor;

/* Metadata: n_meta key/value string pairs (the "__metadata__" object). */
DitStatus st_write(const char *path, const StTensor *t, int64_t n, const char *const *meta_kv,
                   int n_meta, DitErr *err);

#endif
