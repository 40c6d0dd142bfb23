/* image.c: byte mapping, PNG grids (labelled or not) and .npz archives (see
 * image.h); the labels' glyphs are font5x7.c's. */
#define _POSIX_C_SOURCE 200809L
#include "image.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_write.h"
#include "font5x7.h"

void images_to_rgb8(const float *x, int64_t n, int64_t C, int64_t H, int64_t W, uint8_t *out) {
  for (int64_t i = 0; i < n; i++)
    for (int64_t r = 0; r < H; r++)
      for (int64_t c = 0; c < W; c++)
        for (int64_t ch = 0; ch < 3; ch++) {
          int64_t src = C == 1 ? 0 : (ch < C ? ch : C - 1);
          float v = 127.5f * x[((i * C + src) * H + r) * W + c] + 128.0f;
          v = v < 0.0f ? 0.0f : (v > 255.0f ? 255.0f : v);
          out[((i * H + r) * W + c) * 3 + ch] = (uint8_t)v;
        }
}

void images_to_rgb8_save_image(const float *x, int64_t n, int64_t C, int64_t H, int64_t W, uint8_t *out) {
  for (int64_t i = 0; i < n; i++)
    for (int64_t r = 0; r < H; r++)
      for (int64_t c = 0; c < W; c++)
        for (int64_t ch = 0; ch < 3; ch++) {
          int64_t src = C == 1 ? 0 : (ch < C ? ch : C - 1);
          float v = x[((i * C + src) * H + r) * W + c]; /* each step rounded to float32, as torch's ops */
          v = v < -1.0f ? -1.0f : v > 1.0f ? 1.0f : v;  /* make_grid(normalize, value_range=(-1, 1)) */
          v = (v - -1.0f) / 2.0f;
          v = v * 255.0f + 0.5f;                        /* save_image: mul(255).add_(0.5).clamp_(0, 255) */
          v = v > 0.0f ? (v > 255.0f ? 255.0f : v) : 0.0f; /* (a NaN, which decoding refuses, as 0) */
          out[((i * H + r) * W + c) * 3 + ch] = (uint8_t)v;
        }
}

DitStatus png_grid_layout(int64_t n, int64_t H, int64_t W, int64_t cols, int64_t scale,
                          const char *const *row_labels, PngGridLayout *out, DitErr *err) {
  const int64_t pad = PNG_GRID_PAD, max_side = 1 << 24;
  memset(out, 0, sizeof *out);
  if (n < 1 || H < 1 || W < 1 || H > max_side || W > max_side)
    return dit_err(err, DIT_ERR_ARG, "a PNG grid needs at least one image of at least 1x1 pixels");
  if (scale < 1 || scale > PNG_GRID_MAX_SCALE)
    return dit_err(err, DIT_ERR_ARG, "PNG grid scale %lld is outside 1..%d", (long long)scale, PNG_GRID_MAX_SCALE);
  if (cols <= 0) {
    cols = 1;
    while (cols * cols < n) cols++;
  }
  if (cols > n) cols = n;
  out->cols = cols;
  out->rows = (n + cols - 1) / cols;
  out->cell_w = W * scale;
  out->cell_h = H * scale;
  if (row_labels) {
    out->text_scale = out->cell_h / (3 * FONT5X7_H);
    if (out->text_scale < 1) out->text_scale = 1;
    out->text_x = 2 * out->text_scale;
    int64_t widest = 0;
    for (int64_t r = 0; r < out->rows; r++) {
      const char *s = row_labels[r];
      if (!s) continue;
      for (const char *p = s; *p; p++)
        if (!font5x7_has_glyph((unsigned char)*p))
          return dit_err(err, DIT_ERR_ARG,
                         "the label of grid row %lld has byte 0x%02x at offset %lld; labels are printable "
                         "ASCII (32..126)",
                         (long long)r, (unsigned)(unsigned char)*p, (long long)(p - s));
      if (strlen(s) > 4096) return dit_err(err, DIT_ERR_ARG, "the label of grid row %lld is too long", (long long)r);
      int64_t w = font5x7_text_width(s, (int)out->text_scale);
      if (w > widest) widest = w;
    }
    out->margin_w = 2 * out->text_x + widest;
  }
  out->width = out->margin_w + cols * (out->cell_w + pad) + pad;
  out->height = out->rows * (out->cell_h + pad) + pad;
  if (out->width > max_side || out->height > max_side)
    return dit_err(err, DIT_ERR_ARG, "a PNG grid of %lldx%lld pixels is too large", (long long)out->width,
                   (long long)out->height);
  return DIT_OK;
}

typedef struct PngJob {
  const uint8_t *rgb; /* [n, H, W, 3] */
  int64_t n, H, W, scale;
  const char *const *row_labels;
  PngGridLayout g;
} PngJob;

/* Writes the grid one row of cells at a time: a strip [cell_h + pad, width, 3]
 * holding the cells, the padding below them and the row's label. */
static int write_png(FILE *f, void *vctx) {
  const PngJob *j = vctx;
  const PngGridLayout *g = &j->g;
  const int64_t pad = PNG_GRID_PAD, strip_h = g->cell_h + pad;
  static const uint8_t white[3] = {255, 255, 255};
  uint8_t *strip = malloc((size_t)(strip_h * g->width * 3));
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  int rc = -1;
  if (!strip || !png || !info) goto done;
  if (setjmp(png_jmpbuf(png))) goto done; /* libpng reports errors by longjmp */
  png_init_io(png, f);
  png_set_IHDR(png, info, (png_uint_32)g->width, (png_uint_32)g->height, 8, PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  memset(strip, 0, (size_t)(g->width * 3));
  for (int64_t y = 0; y < pad; y++) png_write_row(png, strip); /* the top padding */
  for (int64_t gr = 0; gr < g->rows; gr++) {
    memset(strip, 0, (size_t)(strip_h * g->width * 3));
    for (int64_t gc = 0; gc < g->cols; gc++) {
      int64_t idx = gr * g->cols + gc;
      if (idx >= j->n) break;
      int64_t x0 = g->margin_w + pad + gc * (g->cell_w + pad);
      for (int64_t y = 0; y < g->cell_h; y++) {
        const uint8_t *src = j->rgb + (idx * j->H + y / j->scale) * j->W * 3;
        uint8_t *dst = strip + (y * g->width + x0) * 3;
        if (j->scale == 1) memcpy(dst, src, (size_t)j->W * 3);
        else
          for (int64_t x = 0; x < g->cell_w; x++) memcpy(dst + x * 3, src + (x / j->scale) * 3, 3);
      }
    }
    if (j->row_labels && j->row_labels[gr]) {
      int64_t ty = (g->cell_h - FONT5X7_H * g->text_scale) / 2;
      font5x7_draw(strip, g->width, strip_h, g->text_x, ty, j->row_labels[gr], (int)g->text_scale, white);
    }
    for (int64_t y = 0; y < strip_h; y++) png_write_row(png, strip + y * g->width * 3);
  }
  png_write_end(png, NULL);
  rc = 0;
done:
  png_destroy_write_struct(&png, &info);
  free(strip);
  return rc;
}

DitStatus png_write_labeled_grid(const char *path, const uint8_t *rgb, int64_t n, int64_t H, int64_t W,
                                 int64_t cols, int64_t scale, const char *const *row_labels, DitErr *err) {
  PngJob j = {rgb, n, H, W, scale, row_labels, {0}};
  DitStatus st = png_grid_layout(n, H, W, cols, scale, row_labels, &j.g, err);
  if (st) return st;
  return atomic_write_file(path, write_png, &j, err);
}

typedef struct PngImage {
  const uint8_t *rgb;
  int64_t H, W;
} PngImage;

static int write_png_image(FILE *f, void *vctx) {
  const PngImage *im = vctx;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  int rc = -1;
  if (!png || !info) goto done;
  if (setjmp(png_jmpbuf(png))) goto done;
  png_init_io(png, f);
  png_set_IHDR(png, info, (png_uint_32)im->W, (png_uint_32)im->H, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int64_t y = 0; y < im->H; y++) png_write_row(png, im->rgb + y * im->W * 3);
  png_write_end(png, NULL);
  rc = 0;
done:
  png_destroy_write_struct(&png, &info);
  return rc;
}

DitStatus png_write_rgb(const char *path, const uint8_t *rgb, int64_t H, int64_t W, DitErr *err) {
  if (H < 1 || W < 1 || H > 65535 || W > 65535)
    return dit_err(err, DIT_ERR_ARG, "%s: a %lldx%lld PNG is out of range", path, (long long)W, (long long)H);
  PngImage im = {rgb, H, W};
  return atomic_write_file(path, write_png_image, &im, err);
}

DitStatus png_write_grid(const char *path, const uint8_t *rgb, int64_t n, int64_t H, int64_t W,
                         int64_t cols, DitErr *err) {
  return png_write_labeled_grid(path, rgb, n, H, W, cols, 1, NULL, err);
}

/* ---- .npz: a zip of one stored entry, arr_0.npy ---- */

static uint32_t crc_table_entry(uint32_t c) {
  for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  return c;
}

static uint32_t crc_update(const uint32_t *table, uint32_t crc, const void *data, size_t n) {
  const uint8_t *p = data;
  for (size_t i = 0; i < n; i++) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return crc;
}

typedef struct NpzJob {
  int64_t n, H, W, batch;
  NpzFillFn fill;
  void *ctx;
  DitErr *err;
  uint32_t table[256];
} NpzJob;

static void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, v & 0xFFFF); put16(p + 2, v >> 16); }

static int write_npz(FILE *f, void *vctx) {
  NpzJob *j = vctx;
  /* the .npy header, padded so that the data starts on a 64-byte boundary */
  char hdr[128];
  int k = snprintf(hdr, sizeof hdr, "{'descr': '|u1', 'fortran_order': False, 'shape': (%lld, %lld, %lld, 3), }",
                   (long long)j->n, (long long)j->H, (long long)j->W);
  size_t total = 10 + (size_t)k + 1, padn = (64 - total % 64) % 64;
  uint8_t npy_pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
  put16(npy_pre + 8, (uint32_t)((size_t)k + padn + 1));
  uint64_t data_bytes = (uint64_t)j->n * (uint64_t)j->H * (uint64_t)j->W * 3;
  uint64_t entry_bytes = 10 + (uint64_t)k + padn + 1 + data_bytes;
  if (entry_bytes >= 0xFFFFFFFFu) {
    dit_err(j->err, DIT_ERR_UNSUPPORTED, "an .npz over 4 GiB needs ZIP64, which this version does not write");
    return -1;
  }
  /* the CRC is needed in the local header: compute it in a first pass over the images */
  uint8_t *buf = malloc((size_t)(j->batch * j->H * j->W * 3));
  if (!buf) return -1;
  const char name[] = "arr_0.npy";
  uint32_t crc = ~0u;
  int rc = -1;
  crc = crc_update(j->table, crc, npy_pre, 10);
  crc = crc_update(j->table, crc, hdr, (size_t)k);
  for (size_t q = 0; q < padn; q++) crc = crc_update(j->table, crc, " ", 1);
  crc = crc_update(j->table, crc, "\n", 1);
  for (int64_t first = 0; first < j->n; first += j->batch) {
    int64_t cnt = j->n - first < j->batch ? j->n - first : j->batch;
    if (j->fill(j->ctx, first, cnt, buf, j->err)) goto done;
    crc = crc_update(j->table, crc, buf, (size_t)(cnt * j->H * j->W * 3));
  }
  crc = ~crc;
  uint8_t lh[30] = {'P', 'K', 3, 4};
  put16(lh + 4, 20);
  put32(lh + 14, crc);
  put32(lh + 18, (uint32_t)entry_bytes);
  put32(lh + 22, (uint32_t)entry_bytes);
  put16(lh + 26, sizeof name - 1);
  if (fwrite(lh, 1, 30, f) != 30 || fwrite(name, 1, sizeof name - 1, f) != sizeof name - 1) goto done;
  if (fwrite(npy_pre, 1, 10, f) != 10 || fwrite(hdr, 1, (size_t)k, f) != (size_t)k) goto done;
  for (size_t q = 0; q < padn; q++)
    if (fputc(' ', f) == EOF) goto done;
  if (fputc('\n', f) == EOF) goto done;
  for (int64_t first = 0; first < j->n; first += j->batch) {
    int64_t cnt = j->n - first < j->batch ? j->n - first : j->batch;
    if (j->fill(j->ctx, first, cnt, buf, j->err)) goto done;
    size_t len = (size_t)(cnt * j->H * j->W * 3);
    if (fwrite(buf, 1, len, f) != len) goto done;
  }
  uint8_t cd[46] = {'P', 'K', 1, 2};
  put16(cd + 4, 20);
  put16(cd + 6, 20);
  put32(cd + 16, crc);
  put32(cd + 20, (uint32_t)entry_bytes);
  put32(cd + 24, (uint32_t)entry_bytes);
  put16(cd + 28, sizeof name - 1);
  uint32_t cd_offset = (uint32_t)(30 + sizeof name - 1 + entry_bytes);
  uint8_t eocd[22] = {'P', 'K', 5, 6};
  put16(eocd + 8, 1);
  put16(eocd + 10, 1);
  put32(eocd + 12, (uint32_t)(46 + sizeof name - 1));
  put32(eocd + 16, cd_offset);
  if (fwrite(cd, 1, 46, f) != 46 || fwrite(name, 1, sizeof name - 1, f) != sizeof name - 1 ||
      fwrite(eocd, 1, 22, f) != 22)
    goto done;
  rc = 0;
done:
  free(buf);
  return rc;
}

DitStatus npz_write_images(const char *path, int64_t n, int64_t H, int64_t W, int64_t batch,
                           NpzFillFn fill, void *ctx, DitErr *err) {
  NpzJob j = {n, H, W, batch > 0 ? batch : 1, fill, ctx, err, {0}};
  for (uint32_t i = 0; i < 256; i++) j.table[i] = crc_table_entry(i);
  return atomic_write_file(path, write_npz, &j, err);
}
