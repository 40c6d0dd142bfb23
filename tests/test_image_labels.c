/* test_image_labels.c: labelled PNG grids (runtime/util/image.c, font5x7.c):
 * the font covers printable ASCII with distinct glyphs; png_write_grid's
 * geometry is unchanged; png_write_labeled_grid upscales by nearest
 * neighbour and draws each row's label in white on a black column, pixel for
 * pixel as the font says, read back with libpng; bad labels and scales are
 * refused. Then `dit sample --per-class --label-names --png-scale` end to end
 * on specs/tests/tiny_mnist.dit with zero weights, and its usage errors. */
#define _GNU_SOURCE
#include <png.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "font5x7.h"
#include "image.h"
#include "plan/plan_view.h"
#include "run_tool.h"
#include "safetensors_write.h"

#define DIT_BIN_PATH DITC_BIN_DIR "/../runtime/dit"

static char g_dir[64];

static const char *path_in(const char *name) {
  static char buf[4][160];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
  return buf[k];
}

/* A whole PNG as 8-bit RGB [h, w, 3] (libpng's simplified API). */
typedef struct Rgb {
  uint32_t w, h;
  uint8_t *px;
} Rgb;

static Rgb read_rgb(const char *path) {
  png_image im;
  memset(&im, 0, sizeof im);
  im.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&im, path)) fail_msg("%s: %s", path, im.message);
  im.format = PNG_FORMAT_RGB;
  Rgb r = {im.width, im.height, malloc(PNG_IMAGE_SIZE(im))};
  assert_non_null(r.px);
  if (!png_image_finish_read(&im, NULL, r.px, 0, NULL)) fail_msg("%s: %s", path, im.message);
  return r;
}

static const uint8_t *at(const Rgb *r, int64_t x, int64_t y) { return r->px + (y * r->w + x) * 3; }

/* Every pixel of the label column is white where row r's label has ink (each
 * font pixel a ts x ts block at text_x + 6 ts k, centred capitals) and black
 * elsewhere; returns the white pixels counted. */
static int64_t check_margin(const Rgb *img, int64_t margin_w, int64_t cell_h, int64_t ts,
                            const char *const *labels, int64_t rows) {
  int64_t white = 0;
  for (int64_t y = 0; y < img->h; y++) {
    int64_t r = (y - 2) / (cell_h + 2), top = 2 + r * (cell_h + 2) + (cell_h - 7 * ts) / 2;
    for (int64_t x = 0; x < margin_w; x++) {
      int ink = 0;
      const char *s = y >= 2 && r < rows ? labels[r] : NULL;
      int64_t fx = x - 2 * ts, fy = y - top;
      if (s && fx >= 0 && fy >= 0) {
        int64_t k = fx / (6 * ts), gx = (fx % (6 * ts)) / ts, gy = fy / ts;
        ink = k < (int64_t)strlen(s) && font5x7_pixel((unsigned char)s[k], (int)gx, (int)gy);
      }
      const uint8_t *p = at(img, x, y);
      uint8_t want = ink ? 255 : 0;
      if (p[0] != want || p[1] != want || p[2] != want)
        fail_msg("label column pixel (%lld, %lld) is %u,%u,%u, want %u", (long long)x, (long long)y, p[0], p[1],
                 p[2], want);
      white += ink;
    }
  }
  return white;
}

static void test_font_covers_printable_ascii(void **state) {
  (void)state;
  assert_false(font5x7_has_glyph(31));
  assert_false(font5x7_has_glyph(127));
  assert_false(font5x7_has_glyph(0xC3));
  uint8_t bits[95][FONT5X7_CELL_H][FONT5X7_W];
  for (int c = 32; c <= 126; c++) {
    assert_true(font5x7_has_glyph(c));
    int ink = 0;
    for (int y = 0; y < FONT5X7_CELL_H; y++)
      for (int x = 0; x < FONT5X7_W; x++) ink += bits[c - 32][y][x] = (uint8_t)font5x7_pixel(c, x, y);
    if (c == ' ') assert_int_equal(ink, 0);
    else if (!ink) fail_msg("'%c' has no glyph", c);
    assert_false(font5x7_pixel(c, -1, 0) || font5x7_pixel(c, 5, 0) || font5x7_pixel(c, 0, 8));
    for (int d = 32; d < c; d++)
      if (!memcmp(bits[c - 32], bits[d - 32], sizeof bits[0])) fail_msg("'%c' and '%c' look the same", c, d);
  }
  /* descenders (row 7) only where letters descend */
  for (int c = 'A'; c <= 'Z'; c++)
    for (int x = 0; x < 5; x++) assert_false(font5x7_pixel(c, x, 7));
  int g_desc = 0;
  for (int x = 0; x < 5; x++) g_desc += font5x7_pixel('g', x, 7);
  assert_true(g_desc > 0);
  assert_int_equal(font5x7_text_width("", 3), 0);
  assert_int_equal(font5x7_text_width("Ab", 1), 11);
  assert_int_equal(font5x7_text_width("Ab", 4), 44);
}

/* 3x2 images [n, 3, 2, 3]: image i pixel (x, y) = (10 i + x, 100 + y, 200) */
static void fill_images(uint8_t *rgb, int64_t n, int64_t H, int64_t W) {
  for (int64_t i = 0; i < n; i++)
    for (int64_t y = 0; y < H; y++)
      for (int64_t x = 0; x < W; x++) {
        uint8_t *p = rgb + ((i * H + y) * W + x) * 3;
        p[0] = (uint8_t)(10 * i + x);
        p[1] = (uint8_t)(100 + y);
        p[2] = 200;
      }
}

static void test_plain_grid_geometry_unchanged(void **state) {
  (void)state;
  uint8_t rgb[5 * 3 * 2 * 3];
  fill_images(rgb, 5, 3, 2);
  DitErr e = {0};
  assert_int_equal(png_write_grid(path_in("plain.png"), rgb, 5, 3, 2, 0, &e), DIT_OK);
  Rgb g = read_rgb(path_in("plain.png"));
  assert_int_equal(g.w, 3 * (2 + 2) + 2); /* ceil(sqrt(5)) = 3 columns */
  assert_int_equal(g.h, 2 * (3 + 2) + 2);
  assert_memory_equal(at(&g, 2, 2), rgb, 3);                               /* image 0 (0, 0) */
  assert_memory_equal(at(&g, 2 + 4 + 1, 2 + 5 + 2), rgb + ((4 * 3 + 2) * 2 + 1) * 3, 3); /* image 4 (1, 2) */
  assert_int_equal(at(&g, 0, 0)[2], 0);
  assert_int_equal(at(&g, 2 + 8, 2 + 5)[2], 0); /* the empty sixth cell */
  free(g.px);
}

static void test_labeled_grid_pixels(void **state) {
  (void)state;
  enum { N = 5, H = 28, W = 28, S = 3 };
  uint8_t *rgb = malloc(N * H * W * 3);
  fill_images(rgb, N, H, W);
  const char *labels[2] = {"T-shirt/top", "Ab gy"};
  DitErr e = {0};
  assert_int_equal(png_write_labeled_grid(path_in("lab.png"), rgb, N, H, W, 3, S, labels, &e), DIT_OK);
  Rgb g = read_rgb(path_in("lab.png"));
  /* cells 84 px; text scale 84 / 21 = 4; column 2*8 + (11*6 - 1)*4 = 276 px */
  const int64_t margin = 276, cell = 84;
  assert_int_equal(g.w, margin + 3 * (cell + 2) + 2);
  assert_int_equal(g.h, 2 * (cell + 2) + 2);
  PngGridLayout l;
  assert_int_equal(png_grid_layout(N, H, W, 3, S, labels, &l, &e), DIT_OK);
  assert_int_equal(l.margin_w, margin);
  assert_int_equal(l.text_scale, 4);
  int64_t white = check_margin(&g, margin, cell, 4, labels, 2);
  int64_t ink = 0; /* the font's pixels of both labels, 16 image pixels each */
  for (int r = 0; r < 2; r++)
    for (const char *s = labels[r]; *s; s++)
      for (int y = 0; y < 8; y++)
        for (int x = 0; x < 5; x++) ink += font5x7_pixel((unsigned char)*s, x, y);
  assert_int_equal(white, ink * 16);
  /* nearest neighbour: image 4 is row 1 col 1; its pixel (x 27, y 13) covers 3x3 */
  for (int dy = 0; dy < S; dy++)
    for (int dx = 0; dx < S; dx++)
      assert_memory_equal(at(&g, margin + 2 + (cell + 2) + 27 * S + dx, 2 + (cell + 2) + 13 * S + dy),
                          rgb + ((4 * H + 13) * W + 27) * 3, 3);
  assert_int_equal(at(&g, margin + 1, 10)[2], 0); /* the padding stays black */
  free(g.px);
  free(rgb);

  /* a row without a label (NULL) leaves its part of the column black */
  const char *one[2] = {NULL, "x"};
  uint8_t small[2 * 8 * 8 * 3] = {0};
  assert_int_equal(png_write_labeled_grid(path_in("one.png"), small, 2, 8, 8, 1, 1, one, &e), DIT_OK);
  Rgb o = read_rgb(path_in("one.png"));
  assert_int_equal(o.w, 9 + 2 + 8 + 2); /* text scale 1: 2 + "x" 5 + 2, then a cell */
  assert_int_equal(o.h, 2 * (8 + 2) + 2);
  assert_true(check_margin(&o, 9, 8, 1, one, 2) > 0);
  free(o.px);
}

static void test_labeled_grid_bad_arguments(void **state) {
  (void)state;
  uint8_t rgb[4 * 3] = {0};
  DitErr e = {0};
  const char *bad[1] = {"Sand\xc3\xa1l"};
  assert_int_equal(png_write_labeled_grid(path_in("bad.png"), rgb, 1, 2, 2, 1, 1, bad, &e), DIT_ERR_ARG);
  assert_non_null(strstr(e.msg, "byte 0xc3 at offset 4; labels are printable ASCII"));
  assert_int_equal(access(path_in("bad.png"), F_OK), -1);
  assert_int_equal(png_write_labeled_grid(path_in("bad.png"), rgb, 1, 2, 2, 1, 0, NULL, &e), DIT_ERR_ARG);
  assert_non_null(strstr(e.msg, "scale 0 is outside 1..64"));
  assert_int_equal(png_write_labeled_grid(path_in("bad.png"), rgb, 1, 2, 2, 1, 65, NULL, &e), DIT_ERR_ARG);
  assert_int_equal(png_write_labeled_grid(path_in("bad.png"), rgb, 0, 2, 2, 1, 1, NULL, &e), DIT_ERR_ARG);
}

/* ---- dit sample end to end ---- */

static const char *NAMES = "T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot";

static ToolResult run(const char *const *argv) {
  ToolResult r;
  assert_int_equal(run_tool(argv, NULL, &r), 0);
  return r;
}

static void expect(ToolResult *r, int code, const char *fragment) {
  if (r->signal) fail_msg("died from signal %d", r->signal);
  if (r->exit_code != code || !strstr(r->err, fragment))
    fail_msg("exit %d (want %d), stderr:\n%s\nwant: %s", r->exit_code, code, r->err, fragment);
  tool_result_free(r);
}

/* Compiles spec to plan (batch rows) and writes an all-zero checkpoint for it. */
static void make_model(const char *spec, const char *plan, const char *ckpt, const char *batch) {
  const char *argv[] = {DITC_BIN, spec, "-o", plan, "--batch", batch, NULL};
  ToolResult r = run(argv);
  expect(&r, 0, "");
  PlanView pv;
  DitErr e = {0};
  assert_int_equal(plan_load(plan, &pv, &e), DIT_OK);
  StTensor *t = calloc(pv.n_weights, sizeof *t);
  void *zeros = calloc(1, 1 << 20);
  for (size_t i = 0; i < pv.n_weights; i++) {
    const PlanWeight *w = &pv.weights[i];
    t[i] = (StTensor){plan_string(&pv, w->name), "F32", (int)w->rank, {0}, zeros, w->bytes};
    for (uint32_t d = 0; d < w->rank; d++) t[i].shape[d] = w->dims[d];
    assert_true(w->bytes <= 1 << 20);
  }
  assert_int_equal(st_write(ckpt, t, (int64_t)pv.n_weights, NULL, 0, &e), DIT_OK);
  free(zeros);
  free(t);
  plan_view_free(&pv);
}

static void test_dit_sample_per_class_labels(void **state) {
  (void)state;
  char plan[160], ckpt[160], png[160];
  snprintf(plan, sizeof plan, "%s", path_in("m.plan"));
  snprintf(ckpt, sizeof ckpt, "%s", path_in("m.safetensors"));
  snprintf(png, sizeof png, "%s", path_in("grid.png"));
  make_model(DIT_SOURCE_DIR "/specs/tests/tiny_mnist.dit", plan, ckpt, "20");
  const char *ok[] = {DIT_BIN_PATH, "sample", plan, "--weights", ckpt, "--per-class", "2", "--label-names", NAMES,
                      "--png", png, "--png-scale", "2", "--cfg-scale", "1", "--steps", "2", "-o",
                      path_in("s.npy"), NULL};
  ToolResult r = run(ok);
  expect(&r, 0, "");
  Rgb g = read_rgb(png);
  /* cells 56 px; text scale 56 / 21 = 2; column 2*4 + (11*6 - 1)*2 = 138 px */
  assert_int_equal(g.w, 138 + 2 * (56 + 2) + 2);
  assert_int_equal(g.h, 10 * (56 + 2) + 2);
  const char *rows[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
  assert_true(check_margin(&g, 138, 56, 2, rows, 10) > 0);
  free(g.px);

  /* the names are checked before sampling */
  const char *few[] = {DIT_BIN_PATH, "sample", plan, "--weights", ckpt, "--per-class", "1", "--label-names", "a,b,c",
                       "--png", png, "--cfg-scale", "1", NULL};
  r = run(few);
  expect(&r, 1, "--label-names gives 3 names, but the model has 10 classes");
  const char *empty[] = {DIT_BIN_PATH, "sample", plan, "--weights", ckpt, "--per-class", "1", "--label-names",
                         "a,b,, ,e,f,g,h,i,j", "--png", png, "--cfg-scale", "1", NULL};
  r = run(empty);
  expect(&r, 1, "--label-names: name 3 (class 2) is empty");
  const char *utf8[] = {DIT_BIN_PATH, "sample", plan, "--weights", ckpt, "--per-class", "1", "--label-names",
                        "a,b,c,d,e,Sand\xc3\xa1l,g,h,i,j", "--png", png, "--cfg-scale", "1", NULL};
  r = run(utf8);
  expect(&r, 1, "the name of class 5 has byte 0xc3; the PNG's font draws printable ASCII only");
  const char *batch[] = {DIT_BIN_PATH, "sample", plan, "--weights", ckpt, "--per-class", "3", "--png", png,
                         "--cfg-scale", "1", NULL};
  r = run(batch);
  expect(&r, 1, "30 images need 30 rows, but the plan runs at most 20");

  /* usage errors: exit 2 before anything is loaded */
  const char *nopng[] = {DIT_BIN_PATH, "sample", plan, "--weights", ckpt, "--label-names", NAMES, NULL};
  r = run(nopng);
  expect(&r, 2, "--label-names, --grid-cols and --png-scale lay out the PNG grid; give --png");
  const char *both[] = {DIT_BIN_PATH, "sample", plan, "--weights", ckpt, "--per-class", "2", "--labels", "1,2", NULL};
  r = run(both);
  expect(&r, 2, "it takes no -n, --labels or --grid-cols");
  const char *scale[] = {DIT_BIN_PATH, "sample", plan, "--weights", ckpt, "--png", png, "--png-scale", "65", NULL};
  r = run(scale);
  expect(&r, 2, "--png-scale takes an integer from 1 to 64, got '65'");

  /* a latent model has no pixels to label without its VAE (dit sample --vae) */
  snprintf(plan, sizeof plan, "%s", path_in("latent.plan"));
  snprintf(ckpt, sizeof ckpt, "%s", path_in("latent.safetensors"));
  make_model(DIT_SOURCE_DIR "/specs/tests/tiny.dit", plan, ckpt, "2");
  const char *latent[] = {DIT_BIN_PATH, "sample", plan, "--weights", ckpt, "-n", "1", "--label-names", NAMES,
                          "--png", png, "--cfg-scale", "1", "--steps", "2", NULL};
  r = run(latent);
  expect(&r, 1, "--png of a latent model's samples needs its VAE: --vae VAE_PLAN --vae-weights W");
}

static int setup(void **state) {
  (void)state;
  strcpy(g_dir, "/tmp/dit_labels_XXXXXX");
  return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
  return system(cmd) ? -1 : 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_font_covers_printable_ascii),
      cmocka_unit_test(test_plain_grid_geometry_unchanged),
      cmocka_unit_test(test_labeled_grid_pixels),
      cmocka_unit_test(test_labeled_grid_bad_arguments),
      cmocka_unit_test(test_dit_sample_per_class_labels),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
