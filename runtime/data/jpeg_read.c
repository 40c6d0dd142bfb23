/* jpeg_read.c: a JPEG file -> RGB8, byte for byte as PIL's
 * Image.open(f).convert("RGB") (jpeg_read.h). PIL decodes with the same
 * libjpeg-turbo at its defaults (islow DCT, fancy upsampling); this asks
 * libjpeg for what PIL asks it: RGB for colour files, grey for greyscale
 * (then replicated, as convert does), CMYK for CMYK and YCCK files (inverted
 * when an Adobe marker says so, as PIL's "CMYK;I"), then PIL's CMYK -> RGB. */
#include "jpeg_read.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

typedef struct JpegErr {
  struct jpeg_error_mgr mgr;
  jmp_buf jump;
  char msg[JMSG_LENGTH_MAX];
} JpegErr;

static void on_error(j_common_ptr c) {
  JpegErr *je = (JpegErr *)(void *)c->err;
  (*c->err->format_message)(c, je->msg);
  longjmp(je->jump, 1);
}

static void on_message(j_common_ptr c) { (void)c; } /* other warnings: PIL ignores them too */

/* A file that ends early is an error, as PIL's "image file is truncated"
 * (libjpeg would pad it with grey and warn). */
static void on_emit(j_common_ptr c, int level) {
  if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) {
    JpegErr *je = (JpegErr *)(void *)c->err;
    snprintf(je->msg, sizeof je->msg, "the file is truncated (PIL refuses it too)");
    longjmp(je->jump, 1);
  }
}

/* PIL's cmyk2rgb (Convert.c): each channel times (255 - k), rounded as its MULDIV255. */
static uint8_t cmyk_channel(int v, int k) {
  int nk = 255 - k, tmp = v * nk + 128;
  int r = nk - (((tmp >> 8) + tmp) >> 8);
  return (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
}

bool jpeg_sniff(const uint8_t *head, size_t n) { return n >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF; }

DitStatus jpeg_read_rgb(const char *path, uint8_t **out, int64_t *w_out, int64_t *h_out, DitErr *err) {
  struct jpeg_decompress_struct cinfo;
  JpegErr je;
  volatile DitStatus st = DIT_OK;
  uint8_t *volatile px = NULL, *volatile row = NULL;
  *out = NULL;
  FILE *volatile f = fopen(path, "rb");
  if (!f) return dit_err(err, DIT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  memset(&cinfo, 0, sizeof cinfo);
  cinfo.err = jpeg_std_error(&je.mgr);
  je.mgr.error_exit = on_error;
  je.mgr.output_message = on_message;
  je.mgr.emit_message = on_emit;
  if (setjmp(je.jump)) {
    st = dit_err(err, DIT_ERR_FORMAT, "%s: not a readable JPEG: %s", path, je.msg);
    goto done;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_stdio_src(&cinfo, f);
  jpeg_read_header(&cinfo, TRUE);
  int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  int gray = cinfo.jpeg_color_space == JCS_GRAYSCALE;
  cinfo.out_color_space = cmyk ? JCS_CMYK : gray ? JCS_GRAYSCALE : JCS_RGB;
  int inverted = cmyk && cinfo.saw_Adobe_marker; /* PIL's rawmode "CMYK;I" */
  jpeg_start_decompress(&cinfo);
  int64_t w = cinfo.output_width, h = cinfo.output_height, comps = cinfo.output_components;
  if (w < 1 || h < 1 || w > 65535 || h > 65535 || (comps != 1 && comps != 3 && comps != 4)) {
    st = dit_err(err, DIT_ERR_FORMAT, "%s: a %lldx%lld JPEG with %lld components", path, (long long)w, (long long)h,
                 (long long)comps);
    jpeg_abort_decompress(&cinfo);
    goto done;
  }
  px = malloc((size_t)(w * h * 3));
  row = malloc((size_t)(w * comps));
  if (!px || !row) {
    st = dit_err(err, DIT_ERR_NOMEM, "%s: out of memory for a %lldx%lld image", path, (long long)w, (long long)h);
    jpeg_abort_decompress(&cinfo);
    goto done;
  }
  while (cinfo.output_scanline < cinfo.output_height) {
    int64_t y = cinfo.output_scanline;
    JSAMPROW r = row;
    jpeg_read_scanlines(&cinfo, &r, 1);
    uint8_t *o = px + y * w * 3;
    for (int64_t x = 0; x < w; x++) {
      const uint8_t *p = row + x * comps;
      if (comps == 1) {
        o[3 * x] = o[3 * x + 1] = o[3 * x + 2] = p[0];
      } else if (comps == 3) {
        memcpy(o + 3 * x, p, 3);
      } else {
        int c = p[0], m = p[1], ye = p[2], k = p[3];
        if (inverted) c = 255 - c, m = 255 - m, ye = 255 - ye, k = 255 - k;
        o[3 * x] = cmyk_channel(c, k);
        o[3 * x + 1] = cmyk_channel(m, k);
        o[3 * x + 2] = cmyk_channel(ye, k);
      }
    }
  }
  jpeg_finish_decompress(&cinfo);
  *out = px;
  px = NULL;
  *w_out = w;
  *h_out = h;
done:
  jpeg_destroy_decompress(&cinfo);
  free(px);
  free(row);
  fclose(f);
  return st;
}
