/* test_checkpoint.c: the checkpoint readers against the committed fixtures
 * (tests/weights/fixtures, made by make_fixtures.py with PyTorch): every
 * tensor's dtype, shape and float32 bits as torch computes them, the
 * training-dict selection, fp16/bf16 conversion exhaustively, safetensors
 * header errors, and hostile input (every truncation, byte corruption,
 * wrong magic, empty file, directory, missing path) that must fail cleanly. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "checkpoint.h"
#include "dit_weights.h"

#define FIX DIT_FIXTURE_DIR "/"

/* The fixtures that must parse; every one is also truncated and corrupted. */
static const char *const GOOD_FIXTURES[] = {
  "bare.pt", "bare_proto4.pt", "bare_zip64.pt", "train.pt", "train_model.pt", "half.pt",
  "st_f32.safetensors", "st_f16.safetensors", "st_bf16.safetensors", "st_i64.safetensors",
  "dit_official.pt", "dit_official.safetensors", "dit_diffusers.safetensors",
};

static unsigned char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("cannot open fixture %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return buf;
}

static Checkpoint *open_fixture(const char *name) {
  char path[512];
  snprintf(path, sizeof path, FIX "%s", name);
  Checkpoint *ck = NULL;
  DitErr err = {0};
  DitStatus st = ckpt_open(path, &ck, &err);
  if (st != DIT_OK) fail_msg("%s: %s", name, err.msg);
  return ck;
}

/* ---- expected.txt ---- */

static uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

/* Checks one "t <key> <dtype> <rank> <dims> = <bits...>" line against ck. */
static void check_tensor_line(const Checkpoint *ck, const char *fixture, char *line) {
  char *save = NULL;
  strtok_r(line, " \n", &save); /* "t" */
  const char *key = strtok_r(NULL, " \n", &save);
  const char *dtype = strtok_r(NULL, " \n", &save);
  int rank = atoi(strtok_r(NULL, " \n", &save));
  const CkptTensor *t = ckpt_find(ck, key);
  if (!t) fail_msg("%s: tensor '%s' not found", fixture, key);
  assert_string_equal(ckpt_tensor_dtype_name(ck, t), dtype);
  assert_int_equal(t->rank, rank);
  int64_t numel = 1;
  for (int d = 0; d < rank; d++) {
    long long dim = atoll(strtok_r(NULL, " \n", &save));
    if (t->shape[d] != dim) fail_msg("%s: '%s' dim %d is %lld, expected %lld", fixture, key, d,
                                     (long long)t->shape[d], dim);
    numel *= dim;
  }
  assert_int_equal(t->numel, numel);
  assert_string_equal(strtok_r(NULL, " \n", &save), "=");
  float *buf = malloc((size_t)(numel ? numel : 1) * sizeof *buf);
  assert_non_null(buf);
  DitErr err = {0};
  DitStatus st = ckpt_read_f32(ck, t, buf, &err);
  const char *tok = strtok_r(NULL, " \n", &save);
  if (tok && strcmp(tok, "-") == 0) {
    /* A dtype that cannot be read as float: the message names the key and the dtype. */
    assert_int_equal(st, DIT_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, key));
    assert_non_null(strstr(err.msg, dtype));
    free(buf);
    return;
  }
  if (st != DIT_OK) fail_msg("%s: reading '%s': %s", fixture, key, err.msg);
  for (int64_t i = 0; i < numel; i++, tok = strtok_r(NULL, " \n", &save)) {
    assert_non_null(tok);
    uint32_t want = (uint32_t)strtoul(tok, NULL, 16);
    if (f32_bits(buf[i]) != want)
      fail_msg("%s: '%s'[%lld] is %08x, expected %08x", fixture, key, (long long)i,
               f32_bits(buf[i]), want);
  }
  assert_null(tok);
  free(buf);
}

static void test_fixtures_match_expected(void **state) {
  (void)state;
  FILE *f = fopen(FIX "expected.txt", "r");
  assert_non_null(f);
  static char line[1 << 16];
  Checkpoint *ck = NULL;
  char fixture[128] = "";
  size_t n_files = 0, n_tensors = 0, n_errors = 0;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "file ", 5) == 0) {
      ckpt_close(ck);
      size_t count;
      int used = 0;
      assert_int_equal(sscanf(line, "file %127s %zu %n", fixture, &count, &used), 2);
      line[strcspn(line, "\n")] = '\0';
      ck = open_fixture(fixture);
      assert_int_equal(ckpt_num_tensors(ck), count);
      assert_string_equal(ckpt_describe(ck), line + used);
      n_files++;
    } else if (strncmp(line, "t ", 2) == 0) {
      assert_non_null(ck);
      check_tensor_line(ck, fixture, line);
      n_tensors++;
    } else if (strncmp(line, "error ", 6) == 0) {
      char name[128], path[512];
      int status, used = 0;
      assert_int_equal(sscanf(line, "error %127s %d %n", name, &status, &used), 2);
      line[strcspn(line, "\n")] = '\0';
      snprintf(path, sizeof path, FIX "%s", name);
      Checkpoint *bad = NULL;
      DitErr err = {0};
      assert_int_equal(ckpt_open(path, &bad, &err), status);
      assert_null(bad);
      if (!strstr(err.msg, line + used)) fail_msg("%s: message '%s' lacks '%s'", name, err.msg,
                                                  line + used);
      assert_non_null(strstr(err.msg, name)); /* messages start with the path */
      n_errors++;
    }
  }
  ckpt_close(ck);
  fclose(f);
  assert_true(n_files >= 10);
  assert_true(n_tensors >= 40);
  assert_true(n_errors >= 2);
}

static void test_training_dict_uses_ema_and_skips_the_rest(void **state) {
  (void)state;
  Checkpoint *ck = open_fixture("train.pt");
  assert_string_equal(ckpt_describe(ck), "PyTorch checkpoint (training dict, using 'ema')");
  /* ema holds the 4 Linear tensors plus one nn.Parameter; opt and args give nothing. */
  assert_int_equal(ckpt_num_tensors(ck), 5);
  assert_non_null(ckpt_find(ck, "param"));
  assert_null(ckpt_find(ck, "exp_avg"));
  assert_null(ckpt_find(ck, "state"));
  assert_string_equal(ckpt_tensor_at(ck, 0)->name, "0.weight");
  assert_null(ckpt_tensor_at(ck, 5));
  ckpt_close(ck);

  ck = open_fixture("train_model.pt");
  assert_string_equal(ckpt_describe(ck), "PyTorch checkpoint (training dict, using 'model')");
  assert_int_equal(ckpt_num_tensors(ck), 4);
  ckpt_close(ck);
}

static void test_views_keep_strides_and_offsets(void **state) {
  (void)state;
  Checkpoint *ck = open_fixture("bare.pt");
  const CkptTensor *t = ckpt_find(ck, "transposed");
  assert_non_null(t);
  assert_int_equal(t->strides[0], 1);
  assert_int_equal(t->strides[1], 5);
  t = ckpt_find(ck, "expanded");
  assert_int_equal(t->strides[1], 0);
  /* "row" and "cols" share one storage: row = base[2] starts 12 floats in, cols 1 float in. */
  const CkptTensor *row = ckpt_find(ck, "row"), *cols = ckpt_find(ck, "cols");
  assert_int_equal(row->data - cols->data, 11 * 4);
  assert_int_equal(cols->strides[0], 6);
  t = ckpt_find(ck, "scalar");
  assert_int_equal(t->rank, 0);
  assert_int_equal(t->numel, 1);
  t = ckpt_find(ck, "empty");
  assert_int_equal(t->numel, 0);
  assert_int_equal(ckpt_find_index(ck, "nope"), (size_t)-1);
  assert_null(ckpt_find(ck, "nope"));
  ckpt_close(ck);
}

/* ---- fp16 / bf16, all 65536 patterns each, against ldexp ---- */

static double f16_reference(uint16_t h) {
  int e = (h >> 10) & 31, m = h & 1023;
  double v = e == 0 ? ldexp(m, -24) : ldexp(m + 1024, e - 25);
  return (h & 0x8000) ? -v : v;
}

static void test_f16_conversion_is_exact(void **state) {
  (void)state;
  for (uint32_t h = 0; h < 65536; h++) {
    float f = ckpt_f16_to_f32((uint16_t)h);
    uint32_t bits = f32_bits(f);
    assert_int_equal(bits >> 31, h >> 15);
    if (((h >> 10) & 31) == 31) {
      if (h & 1023) { /* NaN: quiet, payload in the top mantissa bits */
        assert_true(isnan(f));
        assert_int_equal(bits & 0x7FC00000u, 0x7FC00000u);
        assert_int_equal((bits >> 13) & 0x1FFu, h & 0x1FFu);
      } else {
        assert_true(isinf(f));
      }
      continue;
    }
    if ((double)f != f16_reference((uint16_t)h)) fail_msg("f16 %04x -> %a", h, (double)f);
  }
}

static void test_bf16_conversion_is_exact(void **state) {
  (void)state;
  for (uint32_t b = 0; b < 65536; b++) {
    float f = ckpt_bf16_to_f32((uint16_t)b);
    assert_int_equal(f32_bits(f), b << 16);
    int e = (b >> 7) & 255, m = b & 127;
    if (e == 255) continue;
    double v = e == 0 ? ldexp(m, -133) : ldexp(m + 128, e - 134);
    if (b & 0x8000) v = -v;
    if ((double)f != v) fail_msg("bf16 %04x -> %a", b, (double)f);
  }
}

/* ---- safetensors built in memory ---- */

/* A safetensors file: 8-byte length, header, then data_len bytes of data (all 0x3f). */
static unsigned char *make_st(const char *header, size_t data_len, size_t *len) {
  size_t h = strlen(header);
  *len = 8 + h + data_len;
  unsigned char *buf = malloc(*len);
  assert_non_null(buf);
  for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)h >> (8 * i));
  memcpy(buf + 8, header, h);
  memset(buf + 8 + h, 0x3f, data_len);
  return buf;
}

static DitStatus open_st(const char *header, size_t data_len, char *msg, size_t msg_size) {
  size_t len;
  unsigned char *buf = make_st(header, data_len, &len);
  Checkpoint *ck = NULL;
  DitErr err = {0};
  DitStatus st = ckpt_open_memory(buf, len, "h.safetensors", &ck, &err);
  snprintf(msg, msg_size, "%s", err.msg);
  if (st == DIT_OK) assert_non_null(ck);
  else assert_null(ck);
  ckpt_close(ck);
  free(buf);
  return st;
}

static void test_safetensors_bad_headers(void **state) {
  (void)state;
  static const struct {
    const char *header;
    size_t data;
    DitStatus st;
    const char *msg;
  } cases[] = {
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8, DIT_ERR_FORMAT,
     "tensor 'a' (F32 [2]) needs 8 bytes"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, DIT_ERR_FORMAT,
     "outside the data buffer"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, DIT_ERR_FORMAT,
     "not a non-negative integer"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8, DIT_ERR_FORMAT,
     "not a non-negative integer"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,8]}}", 8,
     DIT_ERR_FORMAT, "not a non-negative integer"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8,
     DIT_ERR_FORMAT, "overflows"},
    {"{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, DIT_ERR_FORMAT, "lacks 'dtype'"},
    {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, DIT_ERR_FORMAT, "lacks 'shape'"},
    {"{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, DIT_ERR_UNSUPPORTED,
     "unknown dtype 'Q7'"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
     DIT_ERR_UNSUPPORTED, "more than 8"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, DIT_ERR_FORMAT,
     "'a' appears twice"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x", 4, DIT_ERR_FORMAT,
     "trailing characters"},
    {"{\"a\\q\":{}}", 0, DIT_ERR_FORMAT, "bad escape"},
    {"{\"a", 0, DIT_ERR_FORMAT, "unterminated string"},
    {"{\"\\ud800\":{}}", 0, DIT_ERR_FORMAT, "unpaired surrogate"},
    {"{\"a\\u0000\":{}}", 0, DIT_ERR_FORMAT, "NUL character"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4, DIT_ERR_FORMAT,
     "expected ',' or '}'"},
    {"{\"__metadata__\":[1]}", 0, DIT_ERR_FORMAT, "not an object"},
    {"{\"__metadata__\":{\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
     "[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}", 0,
     DIT_ERR_FORMAT, "nesting deeper"},
    {"{\"__metadata__\":{\"x\":tru}}", 0, DIT_ERR_FORMAT, "unexpected character"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, DIT_ERR_FORMAT,
     "outside the data buffer"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, DIT_ERR_FORMAT,
     "not [begin, end]"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}", 4, DIT_ERR_FORMAT,
     "leading zero"},
  };
  char msg[1024];
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    DitStatus st = open_st(cases[i].header, cases[i].data, msg, sizeof msg);
    if (st != cases[i].st || !strstr(msg, cases[i].msg))
      fail_msg("case %zu: status %d, message '%s'; expected %d with '%s'", i, st, msg,
               cases[i].st, cases[i].msg);
    assert_non_null(strstr(msg, "h.safetensors"));
  }
}

static void test_safetensors_good_headers(void **state) {
  (void)state;
  /* Escaped names, unknown fields, metadata, numbers of every JSON form in skipped values. */
  const char *header =
      "{ \"__metadata__\" : {\"format\":\"pt\",\"k\":[1,-2.5e3,true,false,null,{}]},\n"
      "  \"caf\\u00e9\\ud83d\\ude00\\t\\/\" : {\"shape\":[2,1],\"extra\":{\"a\":[]},"
      "\"dtype\":\"BF16\",\"data_offsets\":[0,4]} ,"
      "\"z\":{\"dtype\":\"BOOL\",\"shape\":[],\"data_offsets\":[4,5]}}   ";
  size_t len;
  unsigned char *buf = make_st(header, 5, &len);
  Checkpoint *ck = NULL;
  DitErr err = {0};
  if (ckpt_open_memory(buf, len, NULL, &ck, &err) != DIT_OK) fail_msg("%s", err.msg);
  assert_int_equal(ckpt_num_tensors(ck), 2);
  const CkptTensor *t = ckpt_find(ck, "caf\xc3\xa9\xf0\x9f\x98\x80\t/");
  assert_non_null(t);
  assert_int_equal(t->dtype, CK_BF16);
  assert_int_equal(t->strides[0], 1);
  float v[2];
  assert_int_equal(ckpt_read_f32(ck, t, v, &err), DIT_OK);
  assert_int_equal(f32_bits(v[0]), 0x3f3f0000u);
  t = ckpt_find(ck, "z");
  assert_int_equal(t->dtype, CK_BOOL);
  assert_int_equal(ckpt_read_f32(ck, t, v, &err), DIT_ERR_UNSUPPORTED);
  assert_non_null(strstr(err.msg, "'z' has dtype BOOL"));
  ckpt_close(ck);
  free(buf);

  /* Empty tensors whose other dims multiply past int64 (found by fuzzing: UB in strides). */
  char msg[256];
  assert_int_equal(open_st("{\"e\":{\"dtype\":\"F16\",\"shape\":[877777,377777777777770,0],"
                           "\"data_offsets\":[0,0]}}", 0, msg, sizeof msg), DIT_OK);

  /* An empty header is a valid, empty checkpoint. */
  assert_int_equal(open_st("{}      ", 0, msg, sizeof msg), DIT_OK);
}

/* ---- hostile input ---- */

static DitStatus open_copy(const unsigned char *src, size_t len, DitErr *err, Checkpoint **ck) {
  /* An exact-size heap copy, so that ASan sees any read past the end. */
  unsigned char *buf = malloc(len ? len : 1);
  assert_non_null(buf);
  if (len) memcpy(buf, src, len);
  DitStatus st = ckpt_open_memory(buf, len, "x", ck, err);
  if (st == DIT_OK) {
    /* Read every tensor that can be read; the data must be inside buf. */
    for (size_t i = 0; i < ckpt_num_tensors(*ck); i++) {
      const CkptTensor *t = ckpt_tensor_at(*ck, i);
      if (t->numel > (1 << 16)) continue;
      float *dst = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *dst);
      assert_non_null(dst);
      DitErr rerr;
      ckpt_read_f32(*ck, t, dst, &rerr);
      free(dst);
    }
    ckpt_close(*ck);
    *ck = NULL;
  }
  free(buf);
  return st;
}

static void test_every_truncation_fails_cleanly(void **state) {
  (void)state;
  size_t opens = 0;
  for (size_t f = 0; f < sizeof GOOD_FIXTURES / sizeof *GOOD_FIXTURES; f++) {
    char path[512];
    snprintf(path, sizeof path, FIX "%s", GOOD_FIXTURES[f]);
    size_t len;
    unsigned char *data = read_file(path, &len);
    for (size_t n = 0; n < len; n++) {
      Checkpoint *ck = NULL;
      DitErr err = {0};
      DitStatus st = open_copy(data, n, &err, &ck);
      if (st == DIT_OK) fail_msg("%s truncated to %zu of %zu bytes opened", GOOD_FIXTURES[f], n, len);
      assert_true(strlen(err.msg) > 3);
      opens++;
    }
    free(data);
  }
  print_message("%zu truncated files rejected\n", opens);
}

static void test_corrupted_bytes_never_crash(void **state) {
  (void)state;
  size_t opens = 0, ok = 0;
  static const unsigned char patterns[] = {0xFF, 0x01, 0x80};
  for (size_t f = 0; f < sizeof GOOD_FIXTURES / sizeof *GOOD_FIXTURES; f++) {
    char path[512];
    snprintf(path, sizeof path, FIX "%s", GOOD_FIXTURES[f]);
    size_t len;
    unsigned char *data = read_file(path, &len);
    for (size_t i = 0; i < len; i++) {
      for (size_t p = 0; p < sizeof patterns; p++) {
        data[i] ^= patterns[p];
        Checkpoint *ck = NULL;
        DitErr err = {0};
        DitStatus st = open_copy(data, len, &err, &ck);
        if (st != DIT_OK) assert_true(strlen(err.msg) > 3);
        ok += st == DIT_OK;
        opens++;
        data[i] ^= patterns[p];
      }
    }
    free(data);
  }
  print_message("%zu corrupted files: %zu still opened, the rest rejected\n", opens, ok);
}

static void test_not_a_checkpoint(void **state) {
  (void)state;
  static const struct {
    const char *bytes;
    size_t len;
    DitStatus st;
    const char *msg;
  } cases[] = {
    {"", 0, DIT_ERR_FORMAT, "file is empty"},
    {"hello world, this is text", 25, DIT_ERR_FORMAT,
     "not a checkpoint (neither a PyTorch zip archive nor safetensors)"},
    {"\x80\x02}q\x00.", 6, DIT_ERR_FORMAT, "plain Python pickle"},
    {"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 22, DIT_ERR_FORMAT, "not a checkpoint"},
    {"PK\x03\x04 truncated zip", 18, DIT_ERR_FORMAT, "no end-of-central-directory"},
    {"\x05\0\0\0\0\0\0\0{}", 10, DIT_ERR_FORMAT, "truncated"},
    {"\xff\xff\xff\xff\0\0\0\0{}", 10, DIT_ERR_FORMAT, "larger than the limit"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    Checkpoint *ck = NULL;
    DitErr err = {0};
    DitStatus st = open_copy((const unsigned char *)cases[i].bytes, cases[i].len, &err, &ck);
    if (st != cases[i].st || !strstr(err.msg, cases[i].msg))
      fail_msg("case %zu: status %d, '%s'", i, st, err.msg);
  }
}

static void test_paths(void **state) {
  (void)state;
  Checkpoint *ck = (Checkpoint *)&ck; /* must be reset to NULL on failure */
  DitErr err = {0};
  assert_int_equal(ckpt_open(DIT_FIXTURE_DIR, &ck, &err), DIT_ERR_IO);
  assert_null(ck);
  assert_non_null(strstr(err.msg, "is a directory"));
  assert_int_equal(ckpt_open(FIX "no-such-file.pt", &ck, &err), DIT_ERR_IO);
  assert_non_null(strstr(err.msg, "no-such-file.pt: cannot open"));

  char tmp[] = "/tmp/ckpt_empty_XXXXXX";
  int fd = mkstemp(tmp);
  assert_true(fd >= 0);
  close(fd);
  assert_int_equal(ckpt_open(tmp, &ck, &err), DIT_ERR_FORMAT);
  assert_non_null(strstr(err.msg, "file is empty"));
  unlink(tmp);
  ckpt_close(NULL);
}

/* Patches "data.pkl" in a copy of bare.pt (central and local headers) so that it is missing. */
static void test_zip_without_data_pkl(void **state) {
  (void)state;
  size_t len;
  unsigned char *data = read_file(FIX "bare.pt", &len);
  size_t hits = 0;
  for (size_t i = 0; i + 8 <= len; i++)
    if (memcmp(data + i, "data.pkl", 8) == 0) {
      data[i + 7] = 'x';
      hits++;
    }
  assert_int_equal(hits, 2);
  Checkpoint *ck = NULL;
  DitErr err = {0};
  assert_int_equal(open_copy(data, len, &err, &ck), DIT_ERR_FORMAT);
  assert_non_null(strstr(err.msg, "without a data.pkl entry"));
  free(data);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_fixtures_match_expected),
    cmocka_unit_test(test_training_dict_uses_ema_and_skips_the_rest),
    cmocka_unit_test(test_views_keep_strides_and_offsets),
    cmocka_unit_test(test_f16_conversion_is_exact),
    cmocka_unit_test(test_bf16_conversion_is_exact),
    cmocka_unit_test(test_safetensors_bad_headers),
    cmocka_unit_test(test_safetensors_good_headers),
    cmocka_unit_test(test_not_a_checkpoint),
    cmocka_unit_test(test_paths),
    cmocka_unit_test(test_zip_without_data_pkl),
    cmocka_unit_test(test_every_truncation_fails_cleanly),
    cmocka_unit_test(test_corrupted_bytes_never_crash),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
