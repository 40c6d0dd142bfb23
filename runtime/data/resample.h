/* resample.h: Pillow's Image.resize for 8-bit images (BOX and BICUBIC) and
 * the ADM center crop that train.py applies to every ImageFolder image
 * (dit-reference.md §4.3). Follows Pillow's Resample.c: separable, the
 * horizontal pass first into an 8-bit intermediate, kernel support scaled
 * by the downscale factor, weights normalised per output pixel and rounded
 * to 22-bit fixed point. See docs/dataset-format.md for what is and is not
 * the same as Pillow. */
#ifndef DIT_RUNTIME_DATA_RESAMPLE_H
#define DIT_RUNTIME_DATA_RESAMPLE_H

#include <stdint.h>

#include "err.h"

typedef enum ResampleFilter { RESAMPLE_BOX, RESAMPLE_BICUBIC } ResampleFilter;

/* src [sh, sw, ch] bytes -> dst [dh, dw, ch]; all sizes >= 1. */
DitStatus resample_u8(const uint8_t *src, int64_t sw, int64_t sh, int64_t ch, uint8_t *dst, int64_t dw,
                      int64_t dh, ResampleFilter filter, DitErr *err);

/* The geometry of center_crop_arr(pil_image, S) for a w x h image:
 *   while min(w, h) >= 2S: (w, h) = (w // 2, h // 2)       BOX
 *   scale = S / min(w, h); (w, h) = (round(w*scale), round(h*scale))   BICUBIC
 *   crop S x S at (x, y) = ((w - S) // 2, (h - S) // 2)
 * round() is Python's: half to even. */
typedef struct AdmCrop {
  int halvings;
  int64_t box_w, box_h;   /* after the halvings */
  int64_t out_w, out_h;   /* after the bicubic resize; min(out_w, out_h) == S */
  int64_t crop_x, crop_y; /* top-left corner of the S x S crop */
} AdmCrop;
void adm_crop_geometry(int64_t w, int64_t h, int64_t S, AdmCrop *out);

/* rgb [h, w, 3] -> dst [3, S, S] (CHW bytes), as center_crop_arr then ToTensor's layout. */
DitStatus adm_center_crop(const uint8_t *rgb, int64_t w, int64_t h, int64_t S, uint8_t *dst_chw, DitErr *err);

#endif
