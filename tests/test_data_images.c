/* test_data_images.c: the PNG ImageFolder importer (runtime/data): the ADM
 * center-crop geometry on non-square images (halvings, Python's round half
 * to even, crop offsets), Pillow-style BOX/BICUBIC resampling on values
 * worked out by hand, and a folder of PNGs of different sizes and colour
 * types written here with libpng: labels by sorted folder name, files in
 * ImageFolder's walk order, RGB conversion; then the importer's errors. */
#define _POSIX_C_SOURCE 200809L
#include <png.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "data/dataset.h"
#include "data/import.h"
#include "data/resample.h"

static char g_dir[64];

static const char *path_in(const char *rel) {
  static char buf[4][300];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, rel);
  return buf[k];
}

static void make_dir(const char *rel) { assert_int_equal(mkdir(path_in(rel), 0755), 0); }

/* Writes a w x h PNG of colour type `type` (PNG_COLOR_TYPE_*), 8 bits, pixel
 * (x, y) from px(x, y, channel). Palette images use a 4-colour palette. */
typedef uint8_t (*PixelFn)(int x, int y, int c);
static void write_png(const char *rel, int w, int h, int type, PixelFn px) {
  FILE *f = fopen(path_in(rel), "wb");
  assert_non_null(f);
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) fail_msg("libpng write failed");
  png_init_io(png, f);
  png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (type == PNG_COLOR_TYPE_PALETTE) {
    png_color pal[4] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {10, 20, 30}};
    png_set_PLTE(png, info, pal, 4);
  }
  png_write_info(png, info);
  int ch = type == PNG_COLOR_TYPE_RGB ? 3 : type == PNG_COLOR_TYPE_RGBA ? 4 : type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : 1;
  uint8_t *row = malloc((size_t)(w * ch));
  for (int y = 0; y < h; y++) {
    for (int x = 0; x < w; x++)
      for (int c = 0; c < ch; c++) row[x * ch + c] = px(x, y, c);
    png_write_row(png, row);
  }
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  free(row);
  fclose(f);
}

static uint8_t px_orange(int x, int y, int c) { (void)x, (void)y; return (uint8_t)(c == 0 ? 200 : c == 1 ? 100 : c == 2 ? 50 : 7); }
static uint8_t px_gray(int x, int y, int c) { (void)x, (void)y, (void)c; return 90; }
static uint8_t px_pal(int x, int y, int c) { (void)x, (void)y, (void)c; return 3; }
static uint8_t px_ramp(int x, int y, int c) { return (uint8_t)((x * 5 + y * 3 + c * 40) & 0xFF); }

static void test_crop_geometry_nonsquare(void **state) {
  (void)state;
  AdmCrop g;
  adm_crop_geometry(500, 375, 256, &g); /* landscape, no halving */
  assert_int_equal(g.halvings, 0);
  assert_int_equal(g.out_w, 341); /* round(500 * 256/375) = round(341.33) */
  assert_int_equal(g.out_h, 256);
  assert_int_equal(g.crop_x, 42); /* (341 - 256) // 2 */
  assert_int_equal(g.crop_y, 0);
  adm_crop_geometry(1200, 2000, 256, &g); /* portrait: 1200x2000 -> 600x1000 -> 300x500 */
  assert_int_equal(g.halvings, 2);
  assert_int_equal(g.box_w, 300);
  assert_int_equal(g.box_h, 500);
  assert_int_equal(g.out_w, 256);
  assert_int_equal(g.out_h, 427); /* round(500 * 256/300) = round(426.67) */
  assert_int_equal(g.crop_x, 0);
  assert_int_equal(g.crop_y, 85);
  adm_crop_geometry(1025, 1031, 256, &g); /* odd sides halve with floor: 512x515 -> 256x257 */
  assert_int_equal(g.halvings, 2);
  assert_int_equal(g.box_w, 256);
  assert_int_equal(g.box_h, 257);
  assert_int_equal(g.out_h, 257);
  assert_int_equal(g.crop_y, 0);
  adm_crop_geometry(5, 4, 2, &g); /* 4 >= 2*2: halve to 2x2 */
  assert_int_equal(g.halvings, 1);
  adm_crop_geometry(10, 6, 4, &g); /* scale 2/3: round(6.67) = 7; round(4) = 4 */
  assert_int_equal(g.out_w, 7);
  adm_crop_geometry(5, 2, 2, &g); /* scale 1: 5x2 stays */
  assert_int_equal(g.out_w, 5);
  assert_int_equal(g.crop_x, 1);
  adm_crop_geometry(25, 12, 8, &g); /* scale 8/12: 25 * 2/3 = 16.67 -> 17 */
  assert_int_equal(g.out_w, 17);
  adm_crop_geometry(15, 6, 4, &g); /* 15 * 4/6 = 10.0 exactly? 9.999.. or 10: round gives 10 */
  assert_int_equal(g.out_w, 10);
  adm_crop_geometry(5, 3, 1, &g); /* 3 >= 2: halve to 2x1; scale 1: 2x1, crop (0, 0) */
  assert_int_equal(g.halvings, 1);
  assert_int_equal(g.out_w, 2);
  adm_crop_geometry(7, 6, 4, &g); /* scale 4/6: 7 * 0.667 = 4.67 -> 5 */
  assert_int_equal(g.out_w, 5);
  adm_crop_geometry(9, 6, 4, &g); /* 9 * 2/3 = 6.0 -> 6 */
  assert_int_equal(g.out_w, 6);
  adm_crop_geometry(5, 4, 3, &g); /* 5 * 0.75 = 3.75 -> 4 */
  assert_int_equal(g.out_w, 4);
  adm_crop_geometry(10, 4, 2, &g); /* halve: 5x2; scale 1 */
  assert_int_equal(g.out_w, 5);
  adm_crop_geometry(5, 2, 1, &g); /* halve: 2x1; scale 1 */
  assert_int_equal(g.out_w, 2);
  adm_crop_geometry(5, 4, 8, &g); /* upscale 2x: 10x8 */
  assert_int_equal(g.out_w, 10);
  assert_int_equal(g.out_h, 8);
  assert_int_equal(g.crop_x, 1);
  adm_crop_geometry(3, 2, 3, &g); /* 3 * 1.5 = 4.5 -> 4 (half to even, as Python) */
  assert_int_equal(g.out_w, 4);
  adm_crop_geometry(5, 2, 3, &g); /* 5 * 1.5 = 7.5 -> 8 */
  assert_int_equal(g.out_w, 8);
}

static void test_resample_known_values(void **state) {
  (void)state;
  DitErr e = {0};
  /* BOX halving averages 2x2 blocks (horizontal pass, then vertical, each rounded); Pillow: 25 */
  const uint8_t src[4] = {10, 20, 30, 40};
  uint8_t out[16];
  assert_int_equal(resample_u8(src, 2, 2, 1, out, 1, 1, RESAMPLE_BOX, &e), DIT_OK);
  assert_int_equal(out[0], 25);
  /* a constant image stays constant under BICUBIC, up and down */
  uint8_t flat[7 * 5];
  memset(flat, 173, sizeof flat);
  assert_int_equal(resample_u8(flat, 7, 5, 1, out, 4, 3, RESAMPLE_BICUBIC, &e), DIT_OK);
  for (int i = 0; i < 12; i++) assert_int_equal(out[i], 173);
  /* a step edge upscaled 2x; the expected bytes are Pillow 9.4's
   * Image.fromarray(np.uint8([[0, 0, 255, 255]])).resize((8, 1), Image.BICUBIC) */
  const uint8_t edge[4] = {0, 0, 255, 255};
  uint8_t up[8];
  assert_int_equal(resample_u8(edge, 4, 1, 1, up, 8, 1, RESAMPLE_BICUBIC, &e), DIT_OK);
  const uint8_t want[8] = {0, 0, 0, 52, 203, 255, 255, 255};
  for (int i = 0; i < 8; i++)
    if (up[i] != want[i]) fail_msg("edge[%d] = %u, want %u", i, up[i], want[i]);
  /* same size: a copy */
  uint8_t ramp[12], copy[12];
  for (int i = 0; i < 12; i++) ramp[i] = (uint8_t)(i * 21);
  assert_int_equal(resample_u8(ramp, 4, 3, 1, copy, 4, 3, RESAMPLE_BICUBIC, &e), DIT_OK);
  assert_memory_equal(ramp, copy, 12);
}

static void test_image_folder_import(void **state) {
  (void)state;
  make_dir("root");
  make_dir("root/b_cls");
  make_dir("root/a_cls");
  make_dir("root/a_cls/sub");
  make_dir("root/a_cls/sub/deeper");
  make_dir("root/a_cls/sub-x");
  write_png("root/b_cls/z.png", 40, 30, PNG_COLOR_TYPE_RGB, px_orange);
  write_png("root/b_cls/a.PNG", 16, 16, PNG_COLOR_TYPE_GRAY, px_gray);
  write_png("root/a_cls/img.png", 20, 50, PNG_COLOR_TYPE_PALETTE, px_pal);
  write_png("root/a_cls/sub/deeper/x.png", 64, 64, PNG_COLOR_TYPE_RGB_ALPHA, px_orange);
  write_png("root/a_cls/sub-x/y.png", 9, 13, PNG_COLOR_TYPE_GRAY_ALPHA, px_gray);
  write_png("root/a_cls/sub-x/ramp.png", 33, 17, PNG_COLOR_TYPE_RGB, px_ramp);
  FILE *f = fopen(path_in("root/a_cls/notes.txt"), "w"); /* no image extension: skipped */
  fputs("x", f);
  fclose(f);
  const char *out = path_in("img.ditdata");
  DitErr e = {0};
  DitDataset *ds = NULL;
  if (import_image_folder(path_in("root"), 8, 2, out, &e) || dataset_open(out, &ds, &e) || dataset_verify(ds, &e))
    fail_msg("%s", e.msg);
  assert_int_equal(dataset_count(ds), 6);
  assert_int_equal(dataset_channels(ds), 3);
  assert_int_equal(dataset_height(ds), 8);
  assert_int_equal(dataset_width(ds), 8);
  assert_int_equal(dataset_num_classes(ds), 2);
  /* sorted(os.walk()) sorts by the folder path, and '-' (0x2d) sorts before '/' (0x2f):
   * a_cls: img.png; a_cls/sub: none; a_cls/sub-x: ramp.png, y.png; a_cls/sub/deeper: x.png;
   * then b_cls: a.PNG, z.png (extensions match in any case) */
  const int64_t want_labels[6] = {0, 0, 0, 0, 1, 1};
  /* expected constant colours (R, G, B), -1 for the ramp */
  const int want_rgb[6][3] = {{10, 20, 30}, {-1, -1, -1}, {90, 90, 90}, {200, 100, 50}, {90, 90, 90}, {200, 100, 50}};
  float x[3 * 64];
  for (int i = 0; i < 6; i++) {
    int64_t label;
    assert_int_equal(dataset_get(ds, i, 0, x, &label), DIT_OK);
    assert_int_equal(label, want_labels[i]);
    if (want_rgb[i][0] < 0) continue;
    for (int c = 0; c < 3; c++)
      for (int k = 0; k < 64; k++) {
        float want = ((float)want_rgb[i][c] / 255.0f - 0.5f) / 0.5f;
        if (x[c * 64 + k] != want) fail_msg("sample %d channel %d pixel %d: %g, want %g", i, c, k, x[c * 64 + k], want);
      }
  }
  /* the ramp: 33x17 -> halve to 16x8 (BOX) -> scale 1 -> crop x 4..11 of the halved image */
  uint8_t ramp[17 * 33 * 3], half[8 * 16 * 3], crop[3 * 64];
  for (int y = 0; y < 17; y++)
    for (int xx = 0; xx < 33; xx++)
      for (int c = 0; c < 3; c++) ramp[(y * 33 + xx) * 3 + c] = px_ramp(xx, y, c);
  assert_int_equal(resample_u8(ramp, 33, 17, 3, half, 16, 8, RESAMPLE_BOX, &e), DIT_OK);
  assert_int_equal(adm_center_crop(ramp, 33, 17, 8, crop, &e), DIT_OK);
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < 8; y++)
      for (int xx = 0; xx < 8; xx++) assert_int_equal(crop[(c * 8 + y) * 8 + xx], half[(y * 16 + xx + 4) * 3 + c]);
  assert_int_equal(dataset_get(ds, 1, 1, x, NULL), DIT_OK); /* flipped */
  for (int c = 0; c < 3; c++)
    for (int k = 0; k < 64; k++) {
      float want = ((float)crop[c * 64 + (k / 8) * 8 + 7 - k % 8] / 255.0f - 0.5f) / 0.5f;
      assert_true(x[c * 64 + k] == want);
    }
  dataset_close(ds);
}

static void expect_import_error(const char *root, DitStatus want, const char *fragment) {
  DitErr e = {0};
  DitStatus st = import_image_folder(path_in(root), 8, 1, path_in("bad.ditdata"), &e);
  if (st != want || !strstr(e.msg, fragment))
    fail_msg("status %d (want %d), message '%s' (want '%s')", st, want, e.msg, fragment);
  assert_int_equal(access(path_in("bad.ditdata"), F_OK), -1);
}

static void test_image_folder_errors(void **state) {
  (void)state;
  make_dir("e1");
  expect_import_error("e1", DIT_ERR_FORMAT, "no class folders");
  make_dir("e1/cls");
  expect_import_error("e1", DIT_ERR_FORMAT, "no image files");
  write_png("e1/cls/ok.png", 12, 12, PNG_COLOR_TYPE_RGB, px_ramp);
  FILE *f = fopen(path_in("e1/cls/photo.jpg"), "w");
  fputs("\xff\xd8\xff", f); /* a JPEG's first bytes, then nothing */
  fclose(f);
  expect_import_error("e1", DIT_ERR_FORMAT, "photo.jpg: not a readable JPEG: ");
  unlink(path_in("e1/cls/photo.jpg"));
  f = fopen(path_in("e1/cls/scan.bmp"), "w");
  fputs("BM", f);
  fclose(f);
  expect_import_error("e1", DIT_ERR_UNSUPPORTED, "scan.bmp: only JPEG and PNG images are decoded");
  unlink(path_in("e1/cls/scan.bmp"));
  f = fopen(path_in("e1/cls/fake.png"), "w");
  fputs("not a png at all", f);
  fclose(f);
  expect_import_error("e1", DIT_ERR_FORMAT, "fake.png: not a PNG file");
  /* a PNG cut short: every length past the signature fails cleanly */
  unlink(path_in("e1/cls/fake.png"));
  FILE *g = fopen(path_in("e1/cls/ok.png"), "rb");
  uint8_t buf[4096];
  size_t n = fread(buf, 1, sizeof buf, g);
  fclose(g);
  for (size_t len = 8; len < n; len += 7) {
    FILE *h = fopen(path_in("e1/cls/ok.png"), "wb");
    fwrite(buf, 1, len, h);
    fclose(h);
    expect_import_error("e1", DIT_ERR_FORMAT, "ok.png: bad PNG");
  }
  DitErr e = {0};
  assert_int_equal(import_image_folder(path_in("e1"), 0, 1, path_in("bad.ditdata"), &e), DIT_ERR_ARG);
  assert_int_equal(import_image_folder(path_in("nope"), 8, 1, path_in("bad.ditdata"), &e), DIT_ERR_IO);
}

int main(void) {
  snprintf(g_dir, sizeof g_dir, "/tmp/test_data_images.XXXXXX");
  if (!mkdtemp(g_dir)) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_crop_geometry_nonsquare),
      cmocka_unit_test(test_resample_known_values),
      cmocka_unit_test(test_image_folder_import),
      cmocka_unit_test(test_image_folder_errors),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
  return rc;
}
