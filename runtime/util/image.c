/* image.c: byte mapping, PNG grids and .npz archives (see image.h). */
#define _POSIX_C_SOURCE 200809L
#include "image.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_write.h"

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

typedef struct PngJob {
  const uint8_t *rgb;
  int64_t n, H, W, cols;
} PngJob;

static int write_png(FILE *f, void *vctx) {
  const PngJob *j = vctx;
  const int64_t pad = 2, rows = (j->n + j->cols - 1) / j->cols;
  const int64_t gw = j->cols * (j->W + pad) + pad, gh = rows * (j->H + pad) + pad;
  uint8_t *line = calloc((size_t)gw * 3, 1);
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  int rc = -1;
  if (!line || !png || !info) goto done;
  if (setjmp(png_jmpbuf(png))) goto done; /* libpng reports errors by longjmp */
  png_init_io(png, f);
  png_set_IHDR(png, info, (png_uint_32)gw, (png_uint_32)gh, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int64_t y = 0; y < gh; y++) {
    memset(line, 0, (size_t)gw * 3);
    int64_t gr = (y - pad) / (j->H + pad), iy = (y - pad) % (j->H + pad);
    if (y >= pad && iy < j->H) {
      for (int64_t gc = 0; gc < j->cols; gc++) {
        int64_t idx = gr * j->cols + gc;
        if (idx >= j->n) break;
        memcpy(line + (gc * (j->W + pad) + pad) * 3, j->rgb + (idx * j->H + iy) * j->W * 3,
               (size_t)j->W * 3);
      }
    }
    png_write_row(png, line);
  }
  png_write_end(png, NULL);
  rc = 0;
done:
  png_destroy_write_struct(&png, &info);
  free(line);
  return rc;
}

DitStatus png_write_grid(const char *path, const uint8_t *rgb, int64_t n, int64_t H, int64_t W,
                         int64_t cols, DitErr *err) {
  if (cols <= 0) {
    cols = 1;
    while (cols * cols < n) cols++;
  }
  if (cols > n) cols = n;
  PngJob j = {rgb, n, H, W, cols};
  return atomic_write_file(path, write_png, &j, err);
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
