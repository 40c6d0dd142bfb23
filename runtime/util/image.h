/* image.h: turning pixel-space samples into bytes and files: the official
 * value mapping, PNG grids (libpng) and the ADM evaluation suite's .npz. */
#ifndef DIT_RUNTIME_IMAGE_H
#define DIT_RUNTIME_IMAGE_H

#include <stdint.h>

#include "err.h"

/* x [n, C, H, W] in about [-1, 1] -> out [n, H, W, 3] bytes, as sample_ddp.py:
 * byte = trunc(clamp(127.5 x + 128, 0, 255)); one channel is repeated to RGB. */
void images_to_rgb8(const float *x, int64_t n, int64_t C, int64_t H, int64_t W, uint8_t *out);

/* A grid of n RGB images [n, H, W, 3], `cols` per row (0: ceil(sqrt(n))), with
 * 2-pixel black padding as torchvision's make_grid; written atomically. */
DitStatus png_write_grid(const char *path, const uint8_t *rgb, int64_t n, int64_t H, int64_t W,
                         int64_t cols, DitErr *err);

/* np.savez(path, arr_0=images): an uncompressed zip holding arr_0.npy, uint8
 * [n, H, W, 3]; written atomically. The images come from `fill`, one batch
 * at a time, so they need not all be in memory. */
typedef DitStatus (*NpzFillFn)(void *ctx, int64_t first, int64_t count, uint8_t *dst, DitErr *err);
DitStatus npz_write_images(const char *path, int64_t n, int64_t H, int64_t W, int64_t batch,
                           NpzFillFn fill, void *ctx, DitErr *err);

#endif
