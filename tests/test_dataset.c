/* test_dataset.c: the DITDATA training-set format (runtime/data): u8 and f32
 * round trips, the value mapping and flips, then every kind of damage:
 * truncation at every length, each header byte flipped, corrupt labels and
 * samples, labels out of range. Then the IDX importer (plain and gzip) with
 * its errors, and the latent importer (stacked and fast-DiT folders).
 *   test_dataset --fashion-mnist DIT_BIN: imports Debian's Fashion-MNIST
 *   through the CLI and checks it; exit 77 (skip) when it is not installed. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "data/dataset.h"
#include "data/import.h"
#include "npy.h"

static char g_dir[64]; /* a fresh temp folder per run */

static const char *tmp_path(const char *name) { /* a ring of buffers: hold a path for up to 63 more calls */
  static char buf[64][256];
  static int k;
  k = (k + 1) % 64;
  snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
  return buf[k];
}

static void write_bytes(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(p, 1, n, f), n);
  fclose(f);
}

static uint8_t *read_bytes(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *p = malloc(*n + 1);
  assert_int_equal(fread(p, 1, *n, f), *n);
  fclose(f);
  return p;
}

/* Opening `path` must fail with status want and a message holding fragment and the path. */
static void expect_open_error(const char *path, DitStatus want, const char *fragment) {
  DitDataset *ds = NULL;
  DitErr e = {0};
  DitStatus st = dataset_open(path, &ds, &e);
  if (st != want || !strstr(e.msg, fragment) || !strstr(e.msg, path))
    fail_msg("status %d (want %d), message '%s' (want '%s')", st, want, e.msg, fragment);
  assert_null(ds);
}

static void reseal_header(uint8_t *file) {
  DatasetHeader *h = (DatasetHeader *)file;
  h->header_crc32 = (uint32_t)crc32(0, (const Bytef *)h, offsetof(DatasetHeader, header_crc32));
}

/* A small u8 file: 3 samples [2, 3, 4], labels 0 2 1, sample i byte k = (37 i + 11 k) mod 256 (with 0 and 255). */
static const char *small_u8(uint8_t samples[3 * 24]) {
  const char *path = tmp_path("small_u8.ditdata");
  int64_t labels[3] = {0, 2, 1};
  for (int i = 0; i < 3; i++)
    for (int k = 0; k < 24; k++) samples[i * 24 + k] = (uint8_t)((37 * i + 11 * k) % 256);
  samples[0] = 0;
  samples[1] = 255;
  DatasetSpec s = {3, 2, 3, 4, DATASET_U8, 3, 0};
  DitErr e = {0};
  if (dataset_write_mem(path, &s, labels, samples, &e)) fail_msg("%s", e.msg);
  return path;
}

static void test_dataset_roundtrip_u8(void **state) {
  (void)state;
  uint8_t px[72];
  const char *path = small_u8(px);
  DitDataset *ds = NULL;
  DitErr e = {0};
  if (dataset_open(path, &ds, &e) || dataset_verify(ds, &e)) fail_msg("%s", e.msg);
  assert_int_equal(dataset_count(ds), 3);
  assert_int_equal(dataset_channels(ds), 2);
  assert_int_equal(dataset_height(ds), 3);
  assert_int_equal(dataset_width(ds), 4);
  assert_int_equal(dataset_num_classes(ds), 3);
  assert_int_equal(dataset_dtype(ds), DATASET_U8);
  float out[24];
  int64_t label = -1;
  const int64_t want_labels[3] = {0, 2, 1};
  for (int i = 0; i < 3; i++)
    for (int flip = 0; flip < 2; flip++) {
      assert_int_equal(dataset_get(ds, i, flip, out, &label), DIT_OK);
      assert_int_equal(label, want_labels[i]);
      for (int c = 0; c < 2; c++)
        for (int y = 0; y < 3; y++)
          for (int x = 0; x < 4; x++) {
            uint8_t v = px[i * 24 + (c * 3 + y) * 4 + (flip ? 3 - x : x)];
            float want = ((float)v / 255.0f - 0.5f) / 0.5f; /* ToTensor + Normalize(0.5, 0.5) */
            if (out[(c * 3 + y) * 4 + x] != want) fail_msg("sample %d flip %d (%d,%d,%d)", i, flip, c, y, x);
          }
    }
  assert_int_equal(dataset_get(ds, 0, 0, out, NULL), DIT_OK);
  assert_true(out[0] == -1.0f && out[1] == 1.0f); /* 0 -> -1 and 255 -> 1 exactly */
  assert_int_equal(dataset_get(ds, 3, 0, out, &label), DIT_ERR_ARG);
  assert_int_equal(dataset_get(ds, -1, 0, out, &label), DIT_ERR_ARG);
  dataset_close(ds);
}

/* f32 samples [2 variants?, 1, 2, 3]: flip ignored, mirrored, or the stored flipped variant. */
static void test_dataset_roundtrip_f32_flips(void **state) {
  (void)state;
  float v[2 * 2 * 6];
  for (int k = 0; k < 24; k++) v[k] = 0.25f * (float)k - 3.0f;
  int64_t labels[2] = {4, 0};
  const uint32_t flags[3] = {0, DATASET_FLAG_FLIP_MIRROR, DATASET_FLAG_FLIP_VARIANTS};
  for (int m = 0; m < 3; m++) {
    const char *path = tmp_path("f32.ditdata");
    int V = m == 2 ? 2 : 1;
    DatasetSpec s = {2, 1, 2, 3, DATASET_F32, 5, flags[m]};
    DitErr e = {0};
    DitDataset *ds = NULL;
    if (dataset_write_mem(path, &s, labels, v, &e) || dataset_open(path, &ds, &e) || dataset_verify(ds, &e))
      fail_msg("%s", e.msg);
    assert_int_equal(dataset_flags(ds), flags[m]);
    for (int i = 0; i < 2; i++) {
      float out[6];
      int64_t label;
      const float *base = v + i * V * 6;
      assert_int_equal(dataset_get(ds, i, 0, out, &label), DIT_OK);
      assert_int_equal(label, labels[i]);
      assert_memory_equal(out, base, sizeof out);
      assert_int_equal(dataset_get(ds, i, 1, out, NULL), DIT_OK);
      for (int y = 0; y < 2; y++)
        for (int x = 0; x < 3; x++) {
          float want = m == 0 ? base[y * 3 + x] : m == 1 ? base[y * 3 + 2 - x] : base[6 + y * 3 + x];
          if (out[y * 3 + x] != want) fail_msg("mode %d sample %d (%d,%d)", m, i, y, x);
        }
    }
    dataset_close(ds);
  }
}

static void test_dataset_truncated_every_length(void **state) {
  (void)state;
  uint8_t px[72];
  size_t n;
  uint8_t *file = read_bytes(small_u8(px), &n);
  assert_int_equal(n, 64 + 64 + 72); /* header, labels padded to 64, samples */
  const char *cut = tmp_path("cut.ditdata");
  for (size_t len = 0; len < n; len++) {
    write_bytes(cut, file, len);
    expect_open_error(cut, DIT_ERR_FORMAT, "truncated");
  }
  uint8_t *longer = calloc(n + 1, 1);
  memcpy(longer, file, n);
  write_bytes(cut, longer, n + 1);
  expect_open_error(cut, DIT_ERR_FORMAT, "trailing bytes");
  free(longer);
  free(file);
}

static void test_dataset_header_byte_flips(void **state) {
  (void)state;
  uint8_t px[72];
  size_t n;
  uint8_t *file = read_bytes(small_u8(px), &n);
  const char *bad = tmp_path("bad.ditdata");
  for (size_t b = 0; b < DITDATA_HEADER_BYTES; b++) {
    file[b] ^= 0x10;
    write_bytes(bad, file, n);
    if (b < 8) expect_open_error(bad, DIT_ERR_FORMAT, "bad magic");
    else if (b < 12) expect_open_error(bad, DIT_ERR_VERSION, "version");
    else expect_open_error(bad, DIT_ERR_FORMAT, "header checksum mismatch");
    file[b] ^= 0x10;
  }
  /* a consistent header of a future version is refused by version */
  ((DatasetHeader *)file)->version = 2;
  reseal_header(file);
  write_bytes(bad, file, n);
  expect_open_error(bad, DIT_ERR_VERSION, "DITDATA version 2, this build reads version 1");
  free(file);
}

static void test_dataset_corrupt_sections(void **state) {
  (void)state;
  uint8_t px[72];
  size_t n;
  const char *good = small_u8(px);
  uint8_t *file = read_bytes(good, &n);
  const char *bad = tmp_path("bad.ditdata");
  DatasetHeader *h = (DatasetHeader *)file;
  int64_t *labels = (int64_t *)(file + 64);
  /* a flipped label byte */
  labels[1] ^= 1;
  write_bytes(bad, file, n);
  expect_open_error(bad, DIT_ERR_FORMAT, "labels checksum mismatch");
  /* a label out of range with matching checksums */
  labels[1] = 7;
  h->labels_crc32 = (uint32_t)crc32(0, (const Bytef *)labels, 3 * 8);
  reseal_header(file);
  write_bytes(bad, file, n);
  expect_open_error(bad, DIT_ERR_FORMAT, "label 7 of sample 1 is outside 0..2");
  labels[1] = -1;
  h->labels_crc32 = (uint32_t)crc32(0, (const Bytef *)labels, 3 * 8);
  reseal_header(file);
  write_bytes(bad, file, n);
  expect_open_error(bad, DIT_ERR_FORMAT, "label -1 of sample 1");
  free(file);
  /* non-zero padding between labels and samples */
  file = read_bytes(good, &n);
  file[64 + 24 + 3] = 1;
  write_bytes(bad, file, n);
  expect_open_error(bad, DIT_ERR_FORMAT, "non-zero padding");
  free(file);
  /* a flipped sample byte: opens (the header and labels are sound), verify finds it */
  file = read_bytes(good, &n);
  file[n - 5] ^= 0x80;
  write_bytes(bad, file, n);
  DitDataset *ds = NULL;
  DitErr e = {0};
  assert_int_equal(dataset_open(bad, &ds, &e), DIT_OK);
  assert_int_equal(dataset_verify(ds, &e), DIT_ERR_FORMAT);
  assert_non_null(strstr(e.msg, "samples checksum mismatch"));
  dataset_close(ds);
  free(file);
  /* huge sizes that overflow the arithmetic */
  file = read_bytes(good, &n);
  h = (DatasetHeader *)file;
  h->count = (uint64_t)1 << 40;
  h->channels = h->height = h->width = 1024;
  reseal_header(file);
  write_bytes(bad, file, n);
  expect_open_error(bad, DIT_ERR_FORMAT, "the sizes in the header overflow");
  h->count = (uint64_t)1 << 30;
  reseal_header(file);
  write_bytes(bad, file, n);
  expect_open_error(bad, DIT_ERR_FORMAT, "truncated");
  h->count = (uint64_t)1 << 50;
  reseal_header(file);
  write_bytes(bad, file, n);
  expect_open_error(bad, DIT_ERR_FORMAT, "over 2^40");
  h->count = 3;
  h->width = 70000;
  reseal_header(file);
  write_bytes(bad, file, n);
  expect_open_error(bad, DIT_ERR_FORMAT, "outside the format's limits");
  free(file);
  expect_open_error(tmp_path("missing.ditdata"), DIT_ERR_IO, "cannot open");
}

static void test_dataset_writer_rejects(void **state) {
  (void)state;
  const char *path = tmp_path("rej.ditdata");
  DitErr e = {0};
  uint8_t px[4] = {1, 2, 3, 4};
  int64_t labels[2] = {0, 5};
  DatasetSpec s = {2, 1, 1, 2, DATASET_U8, 3, 0};
  assert_int_equal(dataset_write_mem(path, &s, labels, px, &e), DIT_ERR_FORMAT);
  assert_non_null(strstr(e.msg, "sample 1: label 5 is outside 0..2"));
  assert_int_equal(access(path, F_OK), -1); /* nothing written, no temp left */
  float v[2] = {1.0f, NAN};
  labels[1] = 1;
  DatasetSpec f = {1, 1, 1, 2, DATASET_F32, 3, 0};
  assert_int_equal(dataset_write_mem(path, &f, labels, v, &e), DIT_ERR_FORMAT);
  assert_non_null(strstr(e.msg, "non-finite"));
  s.flags = DATASET_FLAG_FLIP_MIRROR;
  assert_int_equal(dataset_write_mem(path, &s, labels, px, &e), DIT_ERR_FORMAT);
  assert_non_null(strstr(e.msg, "f32 files only"));
  f.flags = DATASET_FLAG_FLIP_MIRROR | DATASET_FLAG_FLIP_VARIANTS;
  assert_int_equal(dataset_write_mem(path, &f, labels, v, &e), DIT_ERR_FORMAT);
  f.flags = 0x80;
  assert_int_equal(dataset_write_mem(path, &f, labels, v, &e), DIT_ERR_FORMAT);
  assert_non_null(strstr(e.msg, "unknown flag"));
}

/* ---- IDX ---- */

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* IDX images [n, 4, 5] with pixel (i, y, x) = 10 i + 5 y + x + 1, and labels (i * 3) % 10. */
static size_t make_idx(uint8_t *img, uint8_t *lab, uint32_t n_img, uint32_t n_lab, size_t *lab_len) {
  put_be32(img, 2051);
  put_be32(img + 4, n_img);
  put_be32(img + 8, 4);
  put_be32(img + 12, 5);
  for (uint32_t i = 0; i < n_img; i++)
    for (int k = 0; k < 20; k++) img[16 + i * 20 + (uint32_t)k] = (uint8_t)(10 * i + 5 * (uint32_t)(k / 5) + (uint32_t)(k % 5) + 1);
  put_be32(lab, 2049);
  put_be32(lab + 4, n_lab);
  for (uint32_t i = 0; i < n_lab; i++) lab[8 + i] = (uint8_t)((i * 3) % 10);
  *lab_len = 8 + n_lab;
  return 16 + 20 * (size_t)n_img;
}

static void write_gz(const char *path, const void *p, size_t n) {
  gzFile g = gzopen(path, "wb");
  assert_non_null(g);
  assert_int_equal(gzwrite(g, p, (unsigned)n), (int)n);
  assert_int_equal(gzclose(g), Z_OK);
}

static void expect_idx_error(const char *img, const char *lab, int64_t pad, DitStatus want, const char *fragment) {
  DitErr e = {0};
  char out[300];
  snprintf(out, sizeof out, "%s/idx_bad.ditdata", g_dir);
  DitStatus st = import_idx(img, lab, pad, 10, out, &e);
  if (st != want || !strstr(e.msg, fragment))
    fail_msg("status %d (want %d), message '%s' (want '%s')", st, want, e.msg, fragment);
}

static void test_idx_import_plain_and_gz(void **state) {
  (void)state;
  uint8_t img[16 + 60], lab[16];
  size_t lab_len, img_len = make_idx(img, lab, 3, 3, &lab_len);
  for (int gz = 0; gz < 2; gz++)
    for (int pad = 0; pad < 2; pad++) {
      const char *ip = tmp_path(gz ? "img.gz" : "img"), *lp = tmp_path(gz ? "lab.gz" : "lab");
      if (gz) {
        write_gz(ip, img, img_len);
        write_gz(lp, lab, lab_len);
      } else {
        write_bytes(ip, img, img_len);
        write_bytes(lp, lab, lab_len);
      }
      const char *out = tmp_path("idx.ditdata");
      DitErr e = {0};
      DitDataset *ds = NULL;
      if (import_idx(ip, lp, pad ? 8 : 0, 10, out, &e) || dataset_open(out, &ds, &e) || dataset_verify(ds, &e))
        fail_msg("%s", e.msg);
      int64_t H = pad ? 8 : 4, W = pad ? 8 : 5, top = pad ? 2 : 0, left = pad ? 1 : 0;
      assert_int_equal(dataset_count(ds), 3);
      assert_int_equal(dataset_channels(ds), 1);
      assert_int_equal(dataset_height(ds), H);
      assert_int_equal(dataset_width(ds), W);
      assert_int_equal(dataset_num_classes(ds), 10);
      float out_px[64];
      for (int i = 0; i < 3; i++) {
        int64_t label;
        assert_int_equal(dataset_get(ds, i, 0, out_px, &label), DIT_OK);
        assert_int_equal(label, (i * 3) % 10);
        for (int64_t y = 0; y < H; y++)
          for (int64_t x = 0; x < W; x++) {
            int64_t sy = y - top, sx = x - left;
            int in = sy >= 0 && sy < 4 && sx >= 0 && sx < 5;
            uint8_t v = in ? (uint8_t)(10 * i + 5 * sy + sx + 1) : 0; /* padding is background 0 */
            if (out_px[y * W + x] != ((float)v / 255.0f - 0.5f) / 0.5f) fail_msg("gz %d pad %d (%d,%lld,%lld)", gz, pad, i, (long long)y, (long long)x);
          }
      }
      dataset_close(ds);
    }
}

static void test_idx_errors(void **state) {
  (void)state;
  uint8_t img[16 + 60], lab[16];
  size_t lab_len, img_len = make_idx(img, lab, 3, 3, &lab_len);
  const char *ip = tmp_path("e_img"), *lp = tmp_path("e_lab"), *cut = tmp_path("e_cut");
  write_bytes(ip, img, img_len);
  write_bytes(lp, lab, lab_len);
  expect_idx_error(lp, ip, 0, DIT_ERR_FORMAT, "not an IDX images file: magic 2049, expected 2051");
  expect_idx_error(ip, ip, 0, DIT_ERR_FORMAT, "not an IDX labels file: magic 2051, expected 2049");
  for (size_t len = 0; len < img_len; len++) { /* every truncation, plain and gzip'ed */
    write_bytes(cut, img, len);
    expect_idx_error(cut, lp, 0, DIT_ERR_FORMAT, len >= 4 && len < 16 ? "shorter than the 16-byte IDX header"
                                                                      : "truncated");
    write_gz(cut, img, len);
    expect_idx_error(cut, lp, 0, DIT_ERR_FORMAT, "truncated");
  }
  for (size_t len = 0; len < lab_len; len++) {
    write_bytes(cut, lab, len);
    expect_idx_error(ip, cut, 0, DIT_ERR_FORMAT, "truncated");
  }
  /* a gzip stream cut short */
  write_gz(cut, img, img_len);
  size_t gz_len;
  uint8_t *gz = read_bytes(cut, &gz_len);
  write_bytes(cut, gz, gz_len - 12);
  DitErr e = {0};
  assert_int_not_equal(import_idx(cut, lp, 0, 10, tmp_path("x.ditdata"), &e), DIT_OK);
  assert_non_null(strstr(e.msg, cut));
  free(gz);
  /* trailing bytes */
  uint8_t longer[16 + 61];
  memcpy(longer, img, img_len);
  longer[img_len] = 7;
  write_bytes(cut, longer, img_len + 1);
  expect_idx_error(cut, lp, 0, DIT_ERR_FORMAT, "trailing bytes");
  /* counts that differ */
  uint8_t lab2[16];
  size_t lab2_len;
  make_idx(img, lab2, 3, 2, &lab2_len);
  write_bytes(cut, lab2, lab2_len);
  expect_idx_error(ip, cut, 0, DIT_ERR_FORMAT, "holds 3 images but");
  /* a label outside the classes */
  lab[8 + 1] = 10;
  write_bytes(cut, lab, lab_len);
  expect_idx_error(ip, cut, 0, DIT_ERR_FORMAT, "label 10 of item 1 is outside 0..9");
  /* zero dimension, padding smaller than the images, missing file */
  put_be32(img + 8, 0);
  write_bytes(cut, img, img_len);
  expect_idx_error(cut, lp, 0, DIT_ERR_FORMAT, "dimension 1 is 0");
  expect_idx_error(ip, lp, 4, DIT_ERR_ARG, "--pad-to 4 is smaller");
  expect_idx_error(tmp_path("nope"), lp, 0, DIT_ERR_IO, "cannot open");
}

/* ---- latents ---- */

static void write_npy_i64(const char *path, const int64_t *v, int64_t n, int scalar) {
  char hdr[118];
  memset(hdr, ' ', sizeof hdr);
  int k = scalar ? snprintf(hdr, sizeof hdr, "{'descr': '<i8', 'fortran_order': False, 'shape': (), }")
                 : snprintf(hdr, sizeof hdr, "{'descr': '<i8', 'fortran_order': False, 'shape': (%lld,), }", (long long)n);
  hdr[k] = ' ';
  hdr[117] = '\n';
  uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 118, 0};
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fwrite(pre, 1, 10, f);
  fwrite(hdr, 1, sizeof hdr, f);
  fwrite(v, 8, (size_t)n, f);
  fclose(f);
}

static void test_latents_stacked(void **state) {
  (void)state;
  float x[3 * 2 * 2 * 2 * 2]; /* [3, 2, 2, 2, 2] or [3, 2, 2, 4]-sized */
  for (int k = 0; k < 48; k++) x[k] = (float)k * 0.5f - 7.0f;
  int64_t y[3] = {2, 0, 6};
  DitErr e = {0};
  for (int fl = 0; fl < 2; fl++) {
    int64_t shape5[5] = {3, 2, 2, 2, 2}, shape4[4] = {3, 2, 2, 4};
    const char *xp = tmp_path("x.npy"), *yp = tmp_path("y.npy"), *out = tmp_path("lat.ditdata");
    if (npy_write_f32(xp, x, fl ? 5 : 4, fl ? shape5 : shape4, &e)) fail_msg("%s", e.msg);
    write_npy_i64(yp, y, 3, 0);
    LatentImport li = {xp, yp, NULL, NULL, fl, 0, fl ? 0 : 1000};
    DitDataset *ds = NULL;
    if (import_latents(&li, out, &e) || dataset_open(out, &ds, &e) || dataset_verify(ds, &e)) fail_msg("%s", e.msg);
    assert_int_equal(dataset_count(ds), 3);
    assert_int_equal(dataset_num_classes(ds), fl ? 7 : 1000); /* default: the largest label + 1 */
    assert_int_equal(dataset_channels(ds), 2);
    assert_int_equal(dataset_height(ds), 2);
    assert_int_equal(dataset_width(ds), fl ? 2 : 4);
    assert_int_equal(dataset_flags(ds), fl ? DATASET_FLAG_FLIP_VARIANTS : 0);
    float out_v[16]; /* [2, 2, 4], or [2, 2, 2] per variant */
    int64_t label;
    assert_int_equal(dataset_get(ds, 2, 1, out_v, &label), DIT_OK);
    assert_int_equal(label, 6);
    assert_memory_equal(out_v, x + (fl ? 2 * 16 + 8 : 2 * 16), (fl ? 8 : 16) * sizeof(float));
    dataset_close(ds);
  }
  /* a wrong shape, labels that do not match */
  int64_t bad3[3] = {3, 2, 8};
  const char *xp = tmp_path("x.npy"), *yp = tmp_path("y.npy");
  if (npy_write_f32(xp, x, 3, bad3, &e)) fail_msg("%s", e.msg);
  LatentImport li = {xp, yp, NULL, NULL, 0, 0, 0};
  assert_int_equal(import_latents(&li, tmp_path("l.ditdata"), &e), DIT_ERR_FORMAT);
  assert_non_null(strstr(e.msg, "expected float32 [N, C, H, W]"));
  int64_t s4[4] = {3, 2, 2, 4};
  npy_write_f32(xp, x, 4, s4, &e);
  write_npy_i64(yp, y, 2, 0);
  assert_int_equal(import_latents(&li, tmp_path("l.ditdata"), &e), DIT_ERR_FORMAT);
  assert_non_null(strstr(e.msg, "labels [3]"));
  write_npy_i64(yp, y, 3, 0);
  li.num_classes = 5;
  assert_int_equal(import_latents(&li, tmp_path("l.ditdata"), &e), DIT_ERR_FORMAT);
  assert_non_null(strstr(e.msg, "label 6 of sample 2 is outside 0..4"));
}

static void test_latents_fastdit_folders(void **state) {
  (void)state;
  char fd[300], ld[300];
  snprintf(fd, sizeof fd, "%s/features", g_dir);
  snprintf(ld, sizeof ld, "%s/labels", g_dir);
  assert_int_equal(mkdir(fd, 0755), 0);
  assert_int_equal(mkdir(ld, 0755), 0);
  const int ids[4] = {0, 1, 10, 2}; /* sorted(os.listdir) order: "0", "1", "10", "2" */
  DitErr e = {0};
  for (int k = 0; k < 4; k++) {
    char p[400];
    float v[2 * 3 * 2 * 2];
    for (int j = 0; j < 24; j++) v[j] = (float)(ids[k] * 100 + j);
    int64_t shape[4] = {2, 3, 2, 2}, lab = ids[k] % 7;
    snprintf(p, sizeof p, "%s/%d.npy", fd, ids[k]);
    if (npy_write_f32(p, v, 4, shape, &e)) fail_msg("%s", e.msg);
    snprintf(p, sizeof p, "%s/%d.npy", ld, ids[k]);
    write_npy_i64(p, &lab, 1, k == 3); /* one label file a scalar, the rest [1] */
  }
  LatentImport li = {NULL, NULL, fd, ld, 1, 0, 0};
  const char *out = tmp_path("fd.ditdata");
  DitDataset *ds = NULL;
  if (import_latents(&li, out, &e) || dataset_open(out, &ds, &e)) fail_msg("%s", e.msg);
  assert_int_equal(dataset_count(ds), 4);
  assert_int_equal(dataset_channels(ds), 3);
  for (int k = 0; k < 4; k++) {
    float v[12];
    int64_t label;
    assert_int_equal(dataset_get(ds, k, 1, v, &label), DIT_OK);
    assert_int_equal(label, ids[k] % 7);
    assert_true(v[0] == (float)(ids[k] * 100 + 12)); /* the flipped variant */
  }
  dataset_close(ds);
  /* without --flipped-included a [2, ...] file is refused, naming it */
  li.flipped_included = 0;
  assert_int_equal(import_latents(&li, out, &e), DIT_ERR_FORMAT);
  assert_non_null(strstr(e.msg, "/0.npy: expected float32 [1, C, H, W]"));
  /* a file of another shape */
  li.flipped_included = 1;
  char p[400];
  float v[2 * 3 * 2 * 3] = {0};
  int64_t shape[4] = {2, 3, 2, 3};
  snprintf(p, sizeof p, "%s/10.npy", fd);
  npy_write_f32(p, v, 4, shape, &e);
  assert_int_equal(import_latents(&li, out, &e), DIT_ERR_FORMAT);
  assert_non_null(strstr(e.msg, "10.npy: shape [3, 2, 3] differs"));
  /* counts that differ */
  snprintf(p, sizeof p, "%s/2.npy", ld);
  unlink(p);
  assert_int_equal(import_latents(&li, out, &e), DIT_ERR_FORMAT);
  assert_non_null(strstr(e.msg, "holds 4 files but"));
}

/* ---- Debian's Fashion-MNIST through the CLI ---- */

static int fashion_mnist_check(const char *dit_bin) {
  char img[256];
  snprintf(img, sizeof img, "%s/train-images-idx3-ubyte.gz", FASHION_MNIST_DEBIAN_DIR);
  if (access(img, R_OK) != 0) {
    printf("SKIP: %s is absent (apt-get install dataset-fashion-mnist)\n", img);
    return 77;
  }
  char cmd[600];
  const char *out = tmp_path("fashion.ditdata");
  snprintf(cmd, sizeof cmd, "%s data fashion-mnist --pad-to 32 -o %s && %s data info %s", dit_bin, out, dit_bin, out);
  if (system(cmd) != 0) return 1;
  DitDataset *ds = NULL;
  DitErr e = {0};
  if (dataset_open(out, &ds, &e)) {
    fprintf(stderr, "%s\n", e.msg);
    return 1;
  }
  int ok = dataset_count(ds) == 60000 && dataset_channels(ds) == 1 && dataset_height(ds) == 32 &&
           dataset_width(ds) == 32 && dataset_num_classes(ds) == 10 && dataset_labels(ds)[0] == 9;
  int64_t counts[10] = {0};
  for (int64_t i = 0; i < dataset_count(ds); i++) counts[dataset_labels(ds)[i]]++;
  for (int k = 0; k < 10; k++) ok = ok && counts[k] == 6000; /* the training split is balanced */
  float x[32 * 32];
  dataset_get(ds, 0, 0, x, NULL);
  ok = ok && x[0] == -1.0f && x[31 * 32 + 31] == -1.0f; /* the zero padding */
  dataset_close(ds);
  printf("%s\n", ok ? "fashion-mnist: 60000 samples [1, 32, 32], first label 9, 6000 per class" : "FAILED");
  return ok ? 0 : 1;
}

static void rm_tree(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
}

int main(int argc, char **argv) {
  snprintf(g_dir, sizeof g_dir, "/tmp/test_dataset.XXXXXX");
  if (!mkdtemp(g_dir)) return 1;
  int rc;
  if (argc == 3 && !strcmp(argv[1], "--fashion-mnist")) {
    rc = fashion_mnist_check(argv[2]);
  } else {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dataset_roundtrip_u8),
        cmocka_unit_test(test_dataset_roundtrip_f32_flips),
        cmocka_unit_test(test_dataset_truncated_every_length),
        cmocka_unit_test(test_dataset_header_byte_flips),
        cmocka_unit_test(test_dataset_corrupt_sections),
        cmocka_unit_test(test_dataset_writer_rejects),
        cmocka_unit_test(test_idx_import_plain_and_gz),
        cmocka_unit_test(test_idx_errors),
        cmocka_unit_test(test_latents_stacked),
        cmocka_unit_test(test_latents_fastdit_folders),
    };
    rc = cmocka_run_group_tests(tests, NULL, NULL);
  }
  rm_tree();
  return rc;
}
