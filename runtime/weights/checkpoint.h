/* checkpoint.h: reading model checkpoints into named tensors, without
 * copying: PyTorch zip archives written by torch.save (>= 1.6) and
 * safetensors files. The file is mmap'ed; a CkptTensor points into the
 * mapping and stays valid until ckpt_close. The format is detected from the
 * content, never from the file name. Binding tensors to a DiT plan (names,
 * shapes, diffusers renaming) is dit_weights.h's job, not this one's. */
#ifndef DIT_RUNTIME_WEIGHTS_CHECKPOINT_H
#define DIT_RUNTIME_WEIGHTS_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum { CKPT_MAX_RANK = 8 };

typedef enum CkptDType {
  CK_F32, CK_F16, CK_BF16, CK_F64, CK_I64, CK_I32, CK_I8, CK_U8, CK_BOOL, CK_OTHER
} CkptDType;

typedef struct CkptTensor {
  const char *name;
  CkptDType dtype;
  int rank;                         /* 0 .. CKPT_MAX_RANK */
  int64_t shape[CKPT_MAX_RANK];
  int64_t strides[CKPT_MAX_RANK];   /* in elements; contiguous for safetensors */
  int64_t numel;
  const unsigned char *data;        /* first element (storage base + storage_offset * elemsize) */
} CkptTensor;

typedef struct Checkpoint Checkpoint;

/* mmaps path and parses it. Errors: DIT_ERR_IO (cannot open, a directory),
 * DIT_ERR_FORMAT (not a checkpoint, malformed, truncated), DIT_ERR_UNSUPPORTED
 * (legacy torch format, compressed zip entries, big-endian data). Messages
 * start with the path. */
DitStatus ckpt_open(const char *path, Checkpoint **out, DitErr *err);

/* The same over data[0..len), which is not copied and must outlive the
 * Checkpoint; name is used in messages (may be NULL). */
DitStatus ckpt_open_memory(const void *data, size_t len, const char *name, Checkpoint **out,
                           DitErr *err);

size_t ckpt_num_tensors(const Checkpoint *ck);

/* Tensors in file order (pickle dict order, or safetensors header order); NULL past the end. */
const CkptTensor *ckpt_tensor_at(const Checkpoint *ck, size_t i);

/* The tensor named name, or NULL (binary search). */
const CkptTensor *ckpt_find(const Checkpoint *ck, const char *name);

/* Its index for ckpt_tensor_at, or (size_t)-1. */
size_t ckpt_find_index(const Checkpoint *ck, const char *name);

/* e.g. "PyTorch checkpoint (training dict, using 'ema')", "safetensors". */
const char *ckpt_describe(const Checkpoint *ck);

/* Converts F32/F16/BF16 to float32, contiguous row-major, honoring strides;
 * dst holds t->numel floats. Other dtypes give DIT_ERR_UNSUPPORTED naming the
 * key and the dtype. t must come from ck. */
DitStatus ckpt_read_f32(const Checkpoint *ck, const CkptTensor *t, float *dst, DitErr *err);

/* "F32", "BF16", ...; for CK_OTHER, the name the file used (e.g. "I16",
 * "torch.ComplexFloatStorage"). t must come from ck. */
const char *ckpt_tensor_dtype_name(const Checkpoint *ck, const CkptTensor *t);

/* "F32", "F16", ..., "OTHER". */
const char *ckpt_dtype_name(CkptDType dt);

/* Bytes per element; 0 for CK_OTHER. */
size_t ckpt_dtype_size(CkptDType dt);

/* 1 when a and b have the same dtype, shape and element bytes (strides may differ). */
int ckpt_tensors_equal(const Checkpoint *ck, const CkptTensor *a, const CkptTensor *b);

void ckpt_close(Checkpoint *ck); /* accepts NULL */

/* Exact conversions, subnormals and infinities included. NaNs keep sign and
 * payload; an fp16 signaling NaN comes out quiet (as IEEE conversion and
 * torch's .float() make it), a bf16 one is widened bit for bit (as torch does). */
float ckpt_f16_to_f32(uint16_t h);
float ckpt_bf16_to_f32(uint16_t b);

#endif
