/* resample.c: Pillow-style 8-bit resampling and the ADM center crop (see
 * resample.h). The arithmetic follows Pillow's libImaging/Resample.c
 * (precompute_coeffs, normalize_coeffs_8bpc, ImagingResampleHorizontal_8bpc
 * / Vertical_8bpc) step for step, so that the bytes match Pillow's. */
#define _POSIX_C_SOURCE 200809L
#include "resample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PRECISION_BITS (32 - 8 - 2) /* Pillow's fixed-point weights */

static double box_filter(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }

static double bicubic_filter(double x) { /* Keys cubic with a = -0.5 */
  const double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

/* Per output pixel xx: taps bounds[2xx] .. bounds[2xx] + bounds[2xx+1] - 1 of
 * the input, fixed-point weights kk[xx * ksize ..]. Returns ksize, or -1 when
 * out of memory. */
static int precompute_coeffs(int64_t in_size, int64_t out_size, ResampleFilter f, int64_t **bounds_out,
                             int32_t **kk_out) {
  double (*filter)(double) = f == RESAMPLE_BOX ? box_filter : bicubic_filter;
  double support = f == RESAMPLE_BOX ? 0.5 : 2.0;
  double scale = (double)in_size / (double)out_size; /* box (0, 0, w, h): in1 - in0 = in_size */
  double filterscale = scale < 1.0 ? 1.0 : scale;
  support *= filterscale; /* downscaling widens the kernel */
  int ksize = (int)ceil(support) * 2 + 1;
  int64_t *bounds = malloc((size_t)out_size * 2 * sizeof(int64_t));
  double *pre = malloc((size_t)out_size * (size_t)ksize * sizeof(double));
  int32_t *kk = malloc((size_t)out_size * (size_t)ksize * sizeof(int32_t));
  if (!bounds || !pre || !kk) {
    free(bounds);
    free(pre);
    free(kk);
    return -1;
  }
  for (int64_t xx = 0; xx < out_size; xx++) {
    double center = ((double)xx + 0.5) * scale;
    double ww = 0.0, ss = 1.0 / filterscale;
    int64_t xmin = (int64_t)(center - support + 0.5); /* C truncation, as Pillow's (int) */
    if (xmin < 0) xmin = 0;
    int64_t xmax = (int64_t)(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double *k = pre + xx * ksize;
    int64_t x = 0;
    for (; x < xmax; x++) {
      double w = filter(((double)(x + xmin) - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (x = 0; x < xmax; x++)
      if (ww != 0.0) k[x] /= ww;
    for (; x < ksize; x++) k[x] = 0;
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  for (int64_t i = 0; i < out_size * ksize; i++) /* normalize_coeffs_8bpc */
    kk[i] = pre[i] < 0 ? (int32_t)(-0.5 + pre[i] * (1 << PRECISION_BITS))
                       : (int32_t)(0.5 + pre[i] * (1 << PRECISION_BITS));
  free(pre);
  *bounds_out = bounds;
  *kk_out = kk;
  return ksize;
}

static uint8_t clip8(int64_t v) {
  if (v <= 0) return 0;
  v >>= PRECISION_BITS;
  return v > 255 ? 255 : (uint8_t)v;
}

DitStatus resample_u8(const uint8_t *src, int64_t sw, int64_t sh, int64_t ch, uint8_t *dst, int64_t dw,
                      int64_t dh, ResampleFilter filter, DitErr *err) {
  DitStatus st = DIT_ERR_NOMEM;
  int64_t *bh = NULL, *bv = NULL;
  int32_t *kh = NULL, *kv = NULL;
  uint8_t *tmp = NULL;
  if (sw < 1 || sh < 1 || dw < 1 || dh < 1 || ch < 1)
    return dit_err(err, DIT_ERR_ARG, "resample: empty image (%lldx%lld -> %lldx%lld)", (long long)sw,
                   (long long)sh, (long long)dw, (long long)dh);
  int ksh = precompute_coeffs(sw, dw, filter, &bh, &kh);
  int ksv = precompute_coeffs(sh, dh, filter, &bv, &kv);
  if (ksh < 0 || ksv < 0) goto fail;
  /* Pillow resizes only the rows the vertical pass reads, and skips a pass
   * whose size does not change; neither changes a byte, both are kept. */
  int64_t y_first = bv[0], y_last = bv[(dh - 1) * 2] + bv[(dh - 1) * 2 + 1];
  const uint8_t *vin = src; /* input of the vertical pass, [rows, dw, ch] */
  int64_t row0 = 0;         /* the source row that vin's first row is */
  if (dw != sw) {
    tmp = malloc((size_t)((y_last - y_first) * dw * ch));
    if (!tmp) goto fail;
    for (int64_t y = y_first; y < y_last; y++)
      for (int64_t xx = 0; xx < dw; xx++) {
        const int32_t *k = kh + xx * ksh;
        int64_t xmin = bh[xx * 2], xmax = bh[xx * 2 + 1];
        for (int64_t c = 0; c < ch; c++) {
          int64_t ss = 1 << (PRECISION_BITS - 1);
          for (int64_t x = 0; x < xmax; x++) ss += (int64_t)src[(y * sw + x + xmin) * ch + c] * k[x];
          tmp[((y - y_first) * dw + xx) * ch + c] = clip8(ss);
        }
      }
    vin = tmp;
    row0 = y_first;
  }
  if (dh != sh) {
    for (int64_t yy = 0; yy < dh; yy++) {
      const int32_t *k = kv + yy * ksv;
      int64_t ymin = bv[yy * 2] - row0, ymax = bv[yy * 2 + 1];
      for (int64_t xx = 0; xx < dw * ch; xx++) {
        int64_t ss = 1 << (PRECISION_BITS - 1);
        for (int64_t y = 0; y < ymax; y++) ss += (int64_t)vin[(y + ymin) * dw * ch + xx] * k[y];
        dst[yy * dw * ch + xx] = clip8(ss);
      }
    }
  } else {
    memcpy(dst, vin, (size_t)(dh * dw * ch)); /* same height: y_first is 0 */
  }
  st = DIT_OK;
fail:
  if (st) dit_err(err, st, "resample: out of memory");
  free(bh);
  free(bv);
  free(kh);
  free(kv);
  free(tmp);
  return st;
}

void adm_crop_geometry(int64_t w, int64_t h, int64_t S, AdmCrop *o) {
  o->halvings = 0;
  while ((w < h ? w : h) >= 2 * S) {
    w /= 2;
    h /= 2;
    o->halvings++;
  }
  o->box_w = w;
  o->box_h = h;
  double scale = (double)S / (double)(w < h ? w : h);
  o->out_w = (int64_t)nearbyint((double)w * scale); /* the default rounding mode: half to even */
  o->out_h = (int64_t)nearbyint((double)h * scale);
  o->crop_x = (o->out_w - S) / 2;
  o->crop_y = (o->out_h - S) / 2;
}

DitStatus adm_center_crop(const uint8_t *rgb, int64_t w, int64_t h, int64_t S, uint8_t *dst_chw, DitErr *err) {
  DitStatus st = DIT_OK;
  uint8_t *a = NULL, *b = NULL;
  AdmCrop g;
  adm_crop_geometry(w, h, S, &g);
  if (g.out_w < S || g.out_h < S || S < 1)
    return dit_err(err, DIT_ERR_ARG, "center crop: a %lldx%lld image gives %lldx%lld, smaller than %lld",
                   (long long)w, (long long)h, (long long)g.out_w, (long long)g.out_h, (long long)S);
  const uint8_t *cur = rgb; /* [ch, cw, 3] */
  int64_t cw = w, chh = h;
  for (int i = 0; i < g.halvings; i++) {
    uint8_t *next = malloc((size_t)((cw / 2) * (chh / 2) * 3));
    if (!next) {
      st = dit_err(err, DIT_ERR_NOMEM, "center crop: out of memory");
      goto done;
    }
    if ((st = resample_u8(cur, cw, chh, 3, next, cw / 2, chh / 2, RESAMPLE_BOX, err))) {
      free(next);
      goto done;
    }
    free(a);
    a = next;
    cur = a;
    cw /= 2;
    chh /= 2;
  }
  if (g.out_w != cw || g.out_h != chh) { /* Pillow copies when the size does not change */
    b = malloc((size_t)(g.out_w * g.out_h * 3));
    if (!b) {
      st = dit_err(err, DIT_ERR_NOMEM, "center crop: out of memory");
      goto done;
    }
    if ((st = resample_u8(cur, cw, chh, 3, b, g.out_w, g.out_h, RESAMPLE_BICUBIC, err))) goto done;
    cur = b;
  }
  for (int64_t c = 0; c < 3; c++) /* HWC -> CHW, cropping */
    for (int64_t y = 0; y < S; y++)
      for (int64_t x = 0; x < S; x++)
        dst_chw[(c * S + y) * S + x] = cur[((y + g.crop_y) * g.out_w + x + g.crop_x) * 3 + c];
done:
  free(a);
  free(b);
  return st;
}
