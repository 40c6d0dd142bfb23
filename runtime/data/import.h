/* import.h: the `dit data` importers, each turning one kind of source into a
 * DITDATA file (dataset.h; docs/dataset-format.md says exactly what each
 * does to the data). Every output is written atomically; every problem with
 * a source names the file. */
#ifndef DIT_RUNTIME_DATA_IMPORT_H
#define DIT_RUNTIME_DATA_IMPORT_H

#include <stdint.h>

#include "err.h"

/* Where Debian's dataset-fashion-mnist package puts the four IDX files. */
#define FASHION_MNIST_DEBIAN_DIR "/usr/share/datasets/fashion-mnist"

/* MNIST-style IDX files (images magic 2051: u8 [N, rows, cols]; labels magic
 * 2049: u8 [N]), gzip-compressed or plain. Out: u8 [N, 1, P, P] when pad_to
 * = P > 0 (symmetric zero padding, the odd pixel right/bottom), else
 * [N, 1, rows, cols]; num_classes classes. */
DitStatus import_idx(const char *images_path, const char *labels_path, int64_t pad_to, int64_t num_classes,
                     const char *out, DitErr *err);

/* An ImageFolder tree: root/<class>/.../<file>.png. Classes are the sorted
 * sub-folder names, files are taken as torchvision's make_dataset walks them;
 * each image is converted to RGB and center-cropped to S x S as ADM's
 * center_crop_arr (resample.h). Out: u8 [N, 3, S, S]. Only PNG is decoded;
 * a file with another image extension is an error, not skipped. */
DitStatus import_image_folder(const char *root, int64_t image_size, int threads, const char *out,
                              DitErr *err);

/* Pre-extracted latents, float32. Either one stacked pair (x_path [N, C, H, W]
 * or [N, 2, C, H, W] with flipped_included; y_path int64/int32 [N]) or
 * fast-DiT's per-sample folders (features_dir/<name>.npy each [1, C, H, W],
 * or [2, C, H, W] with flipped_included; labels_dir/<name>.npy each [1] or
 * []), paired in sorted-name order as fast-DiT's CustomDataset does.
 * flip_mirror sets DATASET_FLAG_FLIP_MIRROR (exclusive with
 * flipped_included). num_classes <= 0: the largest label + 1. */
typedef struct LatentImport {
  const char *x_path, *y_path;             /* stacked form */
  const char *features_dir, *labels_dir;   /* per-sample form */
  int flipped_included, flip_mirror;
  int64_t num_classes;
} LatentImport;
DitStatus import_latents(const LatentImport *li, const char *out, DitErr *err);

#endif
