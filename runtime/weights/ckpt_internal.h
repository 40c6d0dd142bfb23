/* ckpt_internal.h: what the format readers (torch_ckpt.c, safetensors.c)
 * share with checkpoint.c: the Checkpoint object, the tensor record and the
 * overflow-checked size helpers. Not part of the runtime's API. */
#ifndef DIT_RUNTIME_WEIGHTS_CKPT_INTERNAL_H
#define DIT_RUNTIME_WEIGHTS_CKPT_INTERNAL_H

#include "checkpoint.h"
#include "wt_arena.h"

enum {
  CKPT_ARENA_CAP_BYTES = 1 << 30 /* names, directory and pickle values of one checkpoint */
};

typedef struct TensorRec {
  CkptTensor pub;          /* first member: a CkptTensor* from ck is a TensorRec* */
  const char *dtype_name;  /* as ckpt_tensor_dtype_name returns it */
  size_t elem_bytes;       /* > 0, also for CK_OTHER */
} TensorRec;

struct Checkpoint {
  WtArena arena;
  void *map;               /* owned mapping (ckpt_open), or NULL */
  size_t map_len;
  const unsigned char *bytes;
  size_t len;
  const char *name;        /* for messages */
  TensorRec *tensors;      /* [n] in file order, arena */
  size_t n, cap;
  const TensorRec **by_name; /* [n] sorted by name, arena */
  char describe[160];
};

/* Appends a tensor record (copied); the name must already live in ck->arena. */
DitStatus ckpt_add_tensor(Checkpoint *ck, const TensorRec *rec, DitErr *err);

/* Product of shape[0..rank) (0 when a dimension is 0), or -1 when a dimension is
 * negative or the product overflows int64. */
int64_t ckpt_shape_numel(int rank, const int64_t *shape);

/* Formats a shape as "[a,b,c]" into buf. */
void ckpt_format_shape(char *buf, size_t size, int rank, const int64_t *shape);

/* The format readers: fill ck->tensors and ck->describe from ck->bytes. */
DitStatus ckpt_load_torch_zip(Checkpoint *ck, DitErr *err);
DitStatus ckpt_load_safetensors(Checkpoint *ck, DitErr *err);

#endif
