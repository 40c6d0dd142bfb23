/* dataset.h: the DITDATA training-set file (docs/dataset-format.md): its
 * on-disk header, the reader (mmap, validated at open) and the writer the
 * importers share. A file holds `count` samples [C, H, W] of one element
 * type, u8 pixels or f32 latents, each with an int64 class label.
 * This module owns the format only; decoding PNG/IDX/.npy sources lives in
 * import_*.c, and batching/shuffling belongs to the trainer. */
#ifndef DIT_RUNTIME_DATA_DATASET_H
#define DIT_RUNTIME_DATA_DATASET_H

#include <stdint.h>

#include "err.h"

#define DITDATA_MAGIC "DITDATA" /* 8 bytes with the terminating NUL */
#define DITDATA_VERSION 1u
#define DITDATA_HEADER_BYTES 64u
#define DITDATA_ALIGN 64u

/* Element type of the samples. Values are on disk; retired values stay reserved. */
typedef enum DatasetDType {
  DATASET_U8 = 1,  /* pixels 0..255; read as ((float)x / 255 - 0.5) / 0.5 in [-1, 1] */
  DATASET_F32 = 2  /* latents (or anything float32), copied as they are */
} DatasetDType;

/* Header flags (f32 files only; a u8 file has flags 0 and is always mirrored on flip). */
enum {
  /* each sample holds two variants [2, C, H, W]: [0] unflipped, [1] flipped
   * (fast-DiT-style feature files that encoded the mirrored image too);
   * flip selects variant 1 */
  DATASET_FLAG_FLIP_VARIANTS = 1u << 0,
  /* flip mirrors the f32 data along W (latents whose flip is taken to be the
   * latent's own mirror image); without this flag or the one above, flip is
   * ignored for f32 files */
  DATASET_FLAG_FLIP_MIRROR = 1u << 1,
  DATASET_FLAGS_KNOWN = DATASET_FLAG_FLIP_VARIANTS | DATASET_FLAG_FLIP_MIRROR
};

/* The 64-byte header at offset 0, little-endian. Labels int64 [count] follow
 * at offset 64; samples start at the next multiple of 64 after the labels,
 * [count, V, C, H, W] with V = 2 under FLIP_VARIANTS else 1; the file ends
 * exactly there. */
typedef struct DatasetHeader {
  char magic[8];          /* "DITDATA\0" */
  uint32_t version;       /* DITDATA_VERSION */
  uint32_t header_bytes;  /* 64 */
  uint64_t count;         /* samples, >= 1 */
  uint32_t channels;      /* C */
  uint32_t height;        /* H */
  uint32_t width;         /* W */
  uint32_t dtype;         /* DatasetDType */
  uint32_t num_classes;   /* labels are 0 .. num_classes-1 */
  uint32_t flags;         /* DATASET_FLAG_* */
  uint32_t labels_crc32;  /* CRC-32 (zlib) of the labels section */
  uint32_t samples_crc32; /* CRC-32 of the samples section (checked by dataset_verify) */
  uint32_t reserved;      /* 0 */
  uint32_t header_crc32;  /* CRC-32 of bytes 0..59 */
} DatasetHeader;
_Static_assert(sizeof(DatasetHeader) == DITDATA_HEADER_BYTES, "DITDATA header is 64 bytes");

/* What a writer is asked to produce. */
typedef struct DatasetSpec {
  int64_t count;
  int64_t channels, height, width;
  DatasetDType dtype;
  int64_t num_classes;
  uint32_t flags;
} DatasetSpec;

typedef struct DitDataset DitDataset; /* opaque; the mapped file */

/* Maps and validates the file: magic, version, header checksum, sizes against
 * the file size (with overflow checks), padding, labels checksum and range.
 * The samples checksum is left to dataset_verify (a full read). Messages name
 * the file and what is wrong. */
DitStatus dataset_open(const char *path, DitDataset **out, DitErr *err);
void dataset_close(DitDataset *ds); /* NULL is fine */

/* Reads every sample byte and checks the samples checksum (and, for f32
 * files, that every value is finite). */
DitStatus dataset_verify(const DitDataset *ds, DitErr *err);

int64_t dataset_count(const DitDataset *ds);
int64_t dataset_channels(const DitDataset *ds);
int64_t dataset_height(const DitDataset *ds);
int64_t dataset_width(const DitDataset *ds);
int64_t dataset_num_classes(const DitDataset *ds);
DatasetDType dataset_dtype(const DitDataset *ds);
uint32_t dataset_flags(const DitDataset *ds);
const int64_t *dataset_labels(const DitDataset *ds); /* [count], in the mapping */
const char *dataset_path(const DitDataset *ds);

/* Sample `index` as float32 [C, H, W] into dst_chw, its label into *label
 * (either may be NULL). u8: ((float)x / 255 - 0.5f) / 0.5f, mirrored along W
 * when flip != 0 (train.py's RandomHorizontalFlip does the mirroring on the
 * PIL image; the trainer draws flip). f32: see the header flags.
 * DIT_ERR_ARG when index is out of range; nothing else can fail. */
DitStatus dataset_get(const DitDataset *ds, int64_t index, int flip, float *dst_chw, int64_t *label);

/* Writer. `fill` produces sample i (the V*C*H*W elements of the dtype) and
 * its label; it is called for i = 0 .. count-1, in blocks that may run on
 * `threads` OpenMP threads at once (1: in order, one thread; <= 0: all
 * cores). The
 * file is written atomically; labels are range-checked and f32 values must
 * be finite. */
typedef DitStatus (*DatasetFillFn)(void *ctx, int64_t index, void *sample, int64_t *label, DitErr *err);
DitStatus dataset_write(const char *path, const DatasetSpec *spec, DatasetFillFn fill, void *ctx,
                        int threads, DitErr *err);

/* Convenience over dataset_write: all samples in memory, [count, V, C, H, W]. */
DitStatus dataset_write_mem(const char *path, const DatasetSpec *spec, const int64_t *labels,
                            const void *samples, DitErr *err);

/* Bytes of one sample (V*C*H*W elements), or -1 when the spec is invalid. */
int64_t dataset_sample_bytes(const DatasetSpec *spec);

/* CRC-32 (zlib's) of p[0, n), continuing from crc (0 to start): the checksum
 * of the header and of each section. */
uint32_t dataset_crc32(uint32_t crc, const void *p, uint64_t n);

/* Checks a spec: positive sizes within the format's limits, known dtype and
 * flags, their combination. Names `what` (a file) in the message. */
DitStatus dataset_check_spec(const DatasetSpec *spec, const char *what, DitErr *err);

#endif
