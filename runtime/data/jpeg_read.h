/* jpeg_read.h: decoding JPEG files for `dit data images` as PIL does
 * (jpeg_read.c), through Debian's libjpeg-turbo. */
#ifndef DIT_RUNTIME_DATA_JPEG_READ_H
#define DIT_RUNTIME_DATA_JPEG_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Whether a file's first bytes are a JPEG's (SOI and a marker). */
bool jpeg_sniff(const uint8_t *head, size_t n);

/* Decodes path into a malloc'd RGB8 [h, w, 3], as PIL's
 * Image.open(path).convert("RGB"): greyscale replicated, CMYK and YCCK
 * converted by PIL's formula. */
DitStatus jpeg_read_rgb(const char *path, uint8_t **out, int64_t *w_out, int64_t *h_out, DitErr *err);

#endif
