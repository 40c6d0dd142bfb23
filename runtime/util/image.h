/* image.h: turning pixel-space samples into bytes and files: the official
 * value mapping, PNG grids (libpng; optionally upscaled, with a label per
 * row) and the ADM evaluation suite's .npz. */
#ifndef DIT_RUNTIME_IMAGE_H
#define DIT_RUNTIME_IMAGE_H

#include <stdint.h>

#include "err.h"

/* x [n, C, H, W] in about [-1, 1] -> out [n, H, W, 3] bytes, as sample_ddp.py:
 * byte = trunc(clamp(127.5 x + 128, 0, 255)); one channel is repeated to RGB. */
void images_to_rgb8(const float *x, int64_t n, int64_t C, int64_t H, int64_t W, uint8_t *out);

/* The same as sample.py's save_image(normalize=True, value_range=(-1, 1)):
 * byte = trunc(clamp(((clamp(x, -1, 1) + 1) / 2) * 255 + 0.5, 0, 255)), in
 * float32 step by step as torch computes it (a decoded VAE image's PNG). */
void images_to_rgb8_save_image(const float *x, int64_t n, int64_t C, int64_t H, int64_t W, uint8_t *out);

/* One RGB image [H, W, 3] as an 8-bit RGB PNG, written atomically. */
DitStatus png_write_rgb(const char *path, const uint8_t *rgb, int64_t H, int64_t W, DitErr *err);

/* A grid of n RGB images [n, H, W, 3], `cols` per row (0: ceil(sqrt(n))), with
 * 2-pixel black padding as torchvision's make_grid; written atomically. */
DitStatus png_write_grid(const char *path, const uint8_t *rgb, int64_t n, int64_t H, int64_t W,
                         int64_t cols, DitErr *err);

/* The geometry of a labelled grid (png_write_labeled_grid). Each image is
 * upscaled `scale` times by nearest neighbour into a cell_w x cell_h cell;
 * cells sit 2 pixels apart and 2 from the edges, as png_write_grid's. With
 * labels, a black column margin_w wide at the left holds each row's label in
 * white (font5x7.h), each font pixel text_scale x text_scale so the capitals
 * are about a third of a cell tall (at least 1); the text starts 2*text_scale
 * pixels from the left edge, its capitals centred on the row's cells (cells
 * under 7 pixels tall clip their labels: upscale them). */
typedef struct PngGridLayout {
  int64_t cols, rows;     /* cells per row, rows */
  int64_t cell_w, cell_h; /* one upscaled image, pixels */
  int64_t margin_w;       /* the label column, pixels (0 without labels) */
  int64_t text_scale;     /* pixels per font pixel (0 without labels) */
  int64_t text_x;         /* the left edge of each label */
  int64_t width, height;  /* the whole PNG */
} PngGridLayout;

#define PNG_GRID_PAD 2
#define PNG_GRID_MAX_SCALE 64

/* Checks the arguments and works out the layout: n >= 1 images of H x W,
 * cols as png_write_grid's, 1 <= scale <= PNG_GRID_MAX_SCALE, row_labels NULL
 * (no label column) or one string per row, NULL for a row without a label,
 * each printable ASCII (32..126). DIT_ERR_ARG names what was wrong. */
DitStatus png_grid_layout(int64_t n, int64_t H, int64_t W, int64_t cols, int64_t scale,
                          const char *const *row_labels, PngGridLayout *out, DitErr *err);

/* png_write_grid with upscaling and a label per row (png_grid_layout). With
 * scale 1 and no labels it writes png_write_grid's file byte for byte. */
DitStatus png_write_labeled_grid(const char *path, const uint8_t *rgb, int64_t n, int64_t H, int64_t W,
                                 int64_t cols, int64_t scale, const char *const *row_labels, DitErr *err);

/* np.savez(path, arr_0=images): an uncompressed zip holding arr_0.npy, uint8
 * [n, H, W, 3]; written atomically. The images come from `fill`, one batch
 * at a time, so they need not all be in memory. */
typedef DitStatus (*NpzFillFn)(void *ctx, int64_t first, int64_t count, uint8_t *dst, DitErr *err);
DitStatus npz_write_images(const char *path, int64_t n, int64_t H, int64_t W, int64_t batch,
                           NpzFillFn fill, void *ctx, DitErr *err);

#endif
