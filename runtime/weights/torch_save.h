/* torch_save.h: writing PyTorch checkpoints in torch.save's zip format
 * (torch >= 1.6), so that torch.load, and DiT's sample.py through it, read
 * what dit writes. The saved object is a dict of state dicts, e.g.
 * {"model": OrderedDict{key: tensor}, "ema": OrderedDict{...}} as train.py
 * saves it (without "opt" and "args"), optionally followed by plain int
 * entries ({"step": 1000}). Only dicts, OrderedDicts, ints and
 * torch._utils._rebuild_tensor_v2 over typed storages appear in the pickle,
 * so torch.load(..., weights_only=True) accepts the file too.
 *
 * The archive ("archive/" inside the zip) holds data.pkl (pickle protocol 2,
 * as torch.save writes it), byteorder ("little"), one raw little-endian
 * storage per tensor (data/0, data/1, ...; each one's bytes 64-byte aligned
 * in the file, padded like torch with an "FB" extra field in the local
 * header) and version ("3\n"). Entries are stored, never compressed, with
 * their CRC-32s; the file is written atomically (atomic_write.h). Archives
 * past 4 GiB (DiT-XL/2's model + EMA is 5.4 GB) get ZIP64 offsets and end
 * records, as torch writes them. Docs: docs/checkpoints.md, "Writing". */
#ifndef DIT_RUNTIME_WEIGHTS_TORCH_SAVE_H
#define DIT_RUNTIME_WEIGHTS_TORCH_SAVE_H

#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"
#include "err.h"

typedef struct TorchSaveTensor {
  const char *name;              /* state-dict key */
  CkptDType dtype;               /* F32, F16, BF16, F64, I64, I32, I8, U8 or BOOL */
  int rank;                      /* 0 .. CKPT_MAX_RANK */
  int64_t shape[CKPT_MAX_RANK];
  const void *data;              /* numel elements, contiguous row-major, little-endian */
} TorchSaveTensor;

/* One state dict: an OrderedDict of its tensors, in this order. */
typedef struct TorchSaveDict {
  const char *name;              /* its key in the saved dict ("model", "ema") */
  const TorchSaveTensor *tensors;
  size_t n;
} TorchSaveDict;

typedef struct TorchSaveInt {
  const char *name;
  int64_t value;
} TorchSaveInt;

typedef struct TorchSaveOptions {
  const TorchSaveInt *ints;      /* plain int entries after the dicts; may be NULL */
  size_t n_ints;
  /* ZIP64 offsets and end records even in a small archive, for tests: this
   * repo's reader and Python's zipfile read such a file, torch's miniz does
   * not (it checks each 32-bit offset field against the file size). */
  int force_zip64;
} TorchSaveOptions;

/* Writes {dicts[0].name: dicts[0] as an OrderedDict, ..., ints...} to path.
 * opt may be NULL. Errors: DIT_ERR_ARG (a dtype that cannot be saved, a bad
 * rank or dimension, a duplicate or empty key), DIT_ERR_UNSUPPORTED (one
 * tensor of 4 GiB or more: ZIP64 entry sizes are not written), DIT_ERR_NOMEM,
 * DIT_ERR_IO (the file at path is left as it was). */
DitStatus torch_save(const char *path, const TorchSaveDict *dicts, size_t n_dicts,
                     const TorchSaveOptions *opt, DitErr *err);

#endif
