/* font5x7.h: a small bitmap font for labelling PNG grids: printable ASCII
 * (32..126), each glyph 5 pixels wide and 7 tall above the baseline, in a
 * 5x8 cell whose last row holds descenders (g j p q y , ;). Text advances 6
 * pixels per character (one blank column). Owns no drawing policy (colours,
 * layout); image.c decides those. */
#ifndef DIT_RUNTIME_FONT5X7_H
#define DIT_RUNTIME_FONT5X7_H

#include <stdint.h>

#define FONT5X7_W 5       /* glyph width, pixels */
#define FONT5X7_H 7       /* cap height: rows 0..6, baseline under row 6 */
#define FONT5X7_CELL_H 8  /* rows per cell: row 7 holds descenders */
#define FONT5X7_ADVANCE 6 /* pixels from one character to the next */
#define FONT5X7_FIRST 32
#define FONT5X7_LAST 126

/* 1 when the font has a glyph for byte c (printable ASCII), else 0. */
int font5x7_has_glyph(int c);

/* 1 where glyph c is inked at column x (0..4), row y (0..7); 0 elsewhere and
 * for characters the font lacks. */
int font5x7_pixel(int c, int x, int y);

/* The width in pixels of s drawn at an integer scale: its characters'
 * advances less the last blank column (0 for ""). */
int64_t font5x7_text_width(const char *s, int scale);

/* Draws s into rgb [h, w, 3] with its top-left cell corner at (x0, y0), each
 * font pixel a scale x scale block of `color`; clipped to the buffer. Blank
 * pixels are left as they are; characters without a glyph draw nothing. */
void font5x7_draw(uint8_t *rgb, int64_t w, int64_t h, int64_t x0, int64_t y0, const char *s, int scale,
                  const uint8_t color[3]);

#endif
