/* test_torch_save.c: the torch.save writer (torch_save.h) read back through
 * this repository's own readers: a train.py-style {"model", "ema"} dict
 * (ckpt_open picks "ema": names, order, shapes, strides and bits exact),
 * "model" alone, int entries, many tensors (SETITEMS batches), ZIP64 records,
 * the zip itself (CRC-32s computed here independently, 64-byte aligned data,
 * archive/version and byteorder), byte-identical output for equal input, and
 * the argument errors, which must leave an existing file untouched. Whether
 * torch.load reads the files is tests/e2e/torch_save_load.sh's job. */
#define _POSIX_C_SOURCE 200809L
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

#include "checkpoint.h"
#include "pickle.h"
#include "torch_save.h"
#include "zip_reader.h"

enum { N_TENSORS = 5 };

/* A temporary directory per test, removed with its files. */
typedef struct Fix {
  char dir[64];
  char path[128];
  float *data[2][N_TENSORS];
  TorchSaveTensor t[2][N_TENSORS];
  TorchSaveDict d[2];
} Fix;

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t next_u32(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state >> 16);
}

/* Random bits, NaNs and denormals included: the writer must not touch them. */
static float *random_floats(int64_t n) {
  float *p = malloc((size_t)(n ? n : 1) * sizeof *p);
  assert_non_null(p);
  for (int64_t i = 0; i < n; i++) {
    uint32_t u = next_u32();
    memcpy(&p[i], &u, sizeof u);
  }
  return p;
}

/* Ranks 0 to 4; a dimension of 1 and odd sizes, so storages are not multiples of 64 bytes. */
static const struct { const char *name; int rank; int64_t shape[4]; } SHAPES[N_TENSORS] = {
  {"pos_embed", 3, {1, 16, 24}},
  {"x_embedder.proj.weight", 4, {24, 3, 2, 2}},
  {"x_embedder.proj.bias", 1, {7}},
  {"blocks.0.attn.qkv.weight", 2, {9, 5}},
  {"scale", 0, {0}},
};

static int setup(void **state) {
  Fix *f = calloc(1, sizeof *f);
  if (!f) return -1;
  snprintf(f->dir, sizeof f->dir, "/tmp/test_torch_save.XXXXXX");
  if (!mkdtemp(f->dir)) return -1;
  snprintf(f->path, sizeof f->path, "%s/ck.pt", f->dir);
  static const char *const NAMES[2] = {"model", "ema"};
  for (int k = 0; k < 2; k++) {
    for (int i = 0; i < N_TENSORS; i++) {
      TorchSaveTensor *t = &f->t[k][i];
      t->name = SHAPES[i].name;
      t->dtype = CK_F32;
      t->rank = SHAPES[i].rank;
      int64_t numel = 1;
      for (int d = 0; d < t->rank; d++) numel *= (t->shape[d] = SHAPES[i].shape[d]);
      t->data = f->data[k][i] = random_floats(numel);
    }
    f->d[k] = (TorchSaveDict){NAMES[k], f->t[k], N_TENSORS};
  }
  *state = f;
  return 0;
}

static int teardown(void **state) {
  Fix *f = *state;
  char path[192];
  static const char *const FILES[] = {"ck.pt", "a.pt", "b.pt"};
  for (size_t i = 0; i < sizeof FILES / sizeof *FILES; i++) {
    snprintf(path, sizeof path, "%s/%s", f->dir, FILES[i]);
    unlink(path);
  }
  rmdir(f->dir);
  for (int k = 0; k < 2; k++)
    for (int i = 0; i < N_TENSORS; i++) free(f->data[k][i]);
  free(f);
  return 0;
}

static void save_ok(const char *path, const TorchSaveDict *d, size_t n,
                    const TorchSaveOptions *opt) {
  DitErr err = {0};
  DitStatus st = torch_save(path, d, n, opt, &err);
  if (st != DIT_OK) fail_msg("torch_save: %s", err.msg);
}

static unsigned char *read_all(const char *path, size_t *len) {
  FILE *fp = fopen(path, "rb");
  assert_non_null(fp);
  fseek(fp, 0, SEEK_END);
  long n = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  unsigned char *buf = malloc((size_t)n + 1);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
  fclose(fp);
  *len = (size_t)n;
  return buf;
}

/* Checks that ck holds exactly the tensors of d, in order, bit for bit. */
static void expect_dict(const Checkpoint *ck, const TorchSaveDict *d) {
  assert_int_equal(ckpt_num_tensors(ck), d->n);
  for (size_t i = 0; i < d->n; i++) {
    const TorchSaveTensor *w = &d->tensors[i];
    const CkptTensor *t = ckpt_tensor_at(ck, i);
    assert_string_equal(t->name, w->name);
    assert_int_equal(t->dtype, w->dtype);
    assert_int_equal(t->rank, w->rank);
    int64_t numel = 1, stride = 1;
    for (int k = w->rank; k-- > 0;) {
      assert_int_equal(t->shape[k], w->shape[k]);
      assert_int_equal(t->strides[k], stride);
      stride *= w->shape[k];
      numel *= w->shape[k];
    }
    assert_int_equal(t->numel, numel);
    size_t bytes = (size_t)numel * ckpt_dtype_size(w->dtype);
    if (memcmp(t->data, w->data, bytes) != 0) fail_msg("'%s': the bytes differ", w->name);
    assert_int_equal((uintptr_t)t->data % 64, 0); /* 64-byte aligned in the mmap'ed file */
  }
}

static void test_train_dict_reads_back_ema(void **state) {
  Fix *f = *state;
  save_ok(f->path, f->d, 2, NULL);
  Checkpoint *ck = NULL;
  DitErr err = {0};
  if (ckpt_open(f->path, &ck, &err)) fail_msg("%s", err.msg);
  assert_string_equal(ckpt_describe(ck), "PyTorch checkpoint (training dict, using 'ema')");
  expect_dict(ck, &f->d[1]);
  float got[7];
  const CkptTensor *b = ckpt_find(ck, "x_embedder.proj.bias");
  assert_non_null(b);
  assert_int_equal(ckpt_read_f32(ck, b, got, &err), DIT_OK);
  assert_memory_equal(got, f->data[1][2], sizeof got);
  ckpt_close(ck);
}

static void test_model_alone(void **state) {
  Fix *f = *state;
  save_ok(f->path, &f->d[0], 1, NULL);
  Checkpoint *ck = NULL;
  DitErr err = {0};
  if (ckpt_open(f->path, &ck, &err)) fail_msg("%s", err.msg);
  assert_string_equal(ckpt_describe(ck), "PyTorch checkpoint (training dict, using 'model')");
  expect_dict(ck, &f->d[0]);
  ckpt_close(ck);
}

/* Other dtypes: the storage classes map back to the same dtype. */
static void test_other_dtypes(void **state) {
  Fix *f = *state;
  static const CkptDType DTYPES[] = {CK_F16, CK_BF16, CK_F64, CK_I64,
                                     CK_I32, CK_I8,   CK_U8,  CK_BOOL};
  enum { N = sizeof DTYPES / sizeof *DTYPES };
  unsigned char bytes[N][3 * 8];
  TorchSaveTensor t[N];
  char names[N][8];
  for (int i = 0; i < N; i++) {
    for (size_t k = 0; k < sizeof bytes[i]; k++)
      bytes[i][k] = (unsigned char)(DTYPES[i] == CK_BOOL ? next_u32() & 1 : next_u32());
    snprintf(names[i], sizeof names[i], "t%d", i);
    t[i] = (TorchSaveTensor){names[i], DTYPES[i], 2, {1, 3}, bytes[i]};
  }
  TorchSaveDict d = {"ema", t, N};
  save_ok(f->path, &d, 1, NULL);
  Checkpoint *ck = NULL;
  DitErr err = {0};
  if (ckpt_open(f->path, &ck, &err)) fail_msg("%s", err.msg);
  expect_dict(ck, &d);
  ckpt_close(ck);
}

/* The top-level dict as the pickle VM sees it: dicts in order, then the ints. */
static void test_ints_and_top_level(void **state) {
  Fix *f = *state;
  TorchSaveInt ints[] = {{"step", 1234567}, {"neg", -5}, {"big", (int64_t)1 << 40}, {"small", 7}};
  TorchSaveOptions opt = {ints, 4, 0};
  save_ok(f->path, f->d, 2, &opt);
  size_t len;
  unsigned char *buf = read_all(f->path, &len);
  WtArena arena;
  wt_arena_init(&arena, 1u << 26);
  ZipReader z;
  DitErr err = {0};
  assert_int_equal(zip_open(&z, buf, len, &arena, &err), DIT_OK);
  const ZipEntry *pkl = zip_find(&z, "archive/data.pkl", 16);
  assert_non_null(pkl);
  const unsigned char *data;
  assert_int_equal(zip_entry_data(&z, pkl, &data, &err), DIT_OK);
  PyValue *top = NULL;
  if (pickle_run(data, (size_t)pkl->size, &arena, &top, &err)) fail_msg("%s", err.msg);
  assert_int_equal(top->kind, PY_DICT);
  assert_int_equal(top->u.dict.n, 6);
  static const char *const KEYS[] = {"model", "ema", "step", "neg", "big", "small"};
  for (int i = 0; i < 6; i++) assert_string_equal(top->u.dict.items[i].key->u.str.s, KEYS[i]);
  for (int i = 0; i < 2; i++) {
    const PyValue *sd = top->u.dict.items[i].val;
    assert_int_equal(sd->kind, PY_DICT);
    assert_int_equal(sd->u.dict.n, N_TENSORS);
    /* storage keys count up over both dicts */
    char key[8];
    snprintf(key, sizeof key, "%d", i * N_TENSORS + 1);
    assert_string_equal(sd->u.dict.items[1].val->u.tensor->storage->key, key);
    assert_string_equal(sd->u.dict.items[1].val->u.tensor->storage->type_name, "FloatStorage");
    assert_string_equal(sd->u.dict.items[1].val->u.tensor->storage->location, "cpu");
  }
  for (int i = 0; i < 4; i++) {
    assert_int_equal(top->u.dict.items[2 + i].val->kind, PY_INT);
    assert_int_equal(top->u.dict.items[2 + i].val->u.i, ints[i].value);
  }
  wt_arena_free(&arena);
  free(buf);
}

/* 2500 tensors: three SETITEMS batches of at most 1000, order kept. */
static void test_many_tensors(void **state) {
  Fix *f = *state;
  enum { N = 2500 };
  TorchSaveTensor *t = calloc(N, sizeof *t);
  char (*names)[16] = calloc(N, sizeof *names);
  float *vals = random_floats(N);
  assert_true(t && names);
  for (int i = 0; i < N; i++) {
    snprintf(names[i], sizeof names[i], "w%d", N - i); /* not sorted: order must be kept */
    t[i] = (TorchSaveTensor){names[i], CK_F32, 1, {1}, &vals[i]};
  }
  TorchSaveDict d = {"ema", t, N};
  save_ok(f->path, &d, 1, NULL);
  Checkpoint *ck = NULL;
  DitErr err = {0};
  if (ckpt_open(f->path, &ck, &err)) fail_msg("%s", err.msg);
  expect_dict(ck, &d);
  ckpt_close(ck);
  free(vals);
  free(names);
  free(t);
}

/* Bitwise CRC-32 (IEEE 802.3, reflected), independent of the writer's zlib. */
static uint32_t crc32_ref(const unsigned char *p, uint64_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (uint64_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

static uint32_t rd32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Every entry: stored, CRC-32 right in the local and the central header, data on 64 bytes. */
static void check_zip(const char *path, int expect_zip64) {
  size_t len;
  unsigned char *buf = read_all(path, &len);
  WtArena arena;
  wt_arena_init(&arena, 1u << 26);
  ZipReader z;
  DitErr err = {0};
  if (zip_open(&z, buf, len, &arena, &err)) fail_msg("%s", err.msg);
  assert_int_equal(z.n, 3 + 2 * N_TENSORS);
  for (size_t i = 0; i < z.n; i++) {
    const ZipEntry *e = &z.entries[i];
    const unsigned char *data;
    assert_int_equal(zip_entry_data(&z, e, &data, &err), DIT_OK);
    assert_int_equal(e->method, 0);
    assert_int_equal((size_t)(data - buf) % 64, 0);
    uint32_t crc = crc32_ref(data, e->size);
    assert_int_equal(rd32(buf + e->local_offset + 14), crc); /* local header */
    assert_int_equal(rd32(buf + e->local_offset + 18), e->size);
    assert_memory_equal(buf + e->local_offset + 30 + e->name_len, "FB", 2);
  }
  const unsigned char *data;
  const ZipEntry *v = zip_find(&z, "archive/version", 15);
  assert_non_null(v);
  assert_int_equal(zip_entry_data(&z, v, &data, &err), DIT_OK);
  assert_int_equal(v->size, 2);
  assert_memory_equal(data, "3\n", 2);
  const ZipEntry *bo = zip_find(&z, "archive/byteorder", 17);
  assert_non_null(bo);
  assert_int_equal(zip_entry_data(&z, bo, &data, &err), DIT_OK);
  assert_int_equal(bo->size, 6);
  assert_memory_equal(data, "little", 6);
  /* the ZIP64 locator sits right before the 22-byte end record */
  assert_int_equal(len > 42 && rd32(buf + len - 42) == 0x07064b50, expect_zip64);
  wt_arena_free(&arena);
  free(buf);
}

static void test_zip_records(void **state) {
  Fix *f = *state;
  save_ok(f->path, f->d, 2, NULL);
  check_zip(f->path, 0);
}

/* ZIP64 offsets and end records (as an archive past 4 GiB gets them) read back the same. */
static void test_zip64(void **state) {
  Fix *f = *state;
  TorchSaveOptions opt = {NULL, 0, 1};
  save_ok(f->path, f->d, 2, &opt);
  check_zip(f->path, 1);
  Checkpoint *ck = NULL;
  DitErr err = {0};
  if (ckpt_open(f->path, &ck, &err)) fail_msg("%s", err.msg);
  expect_dict(ck, &f->d[1]);
  ckpt_close(ck);
}

/* No time stamps: saving the same state twice gives the same bytes (resume tests cmp them). */
static void test_deterministic(void **state) {
  Fix *f = *state;
  char a[192], b[192];
  snprintf(a, sizeof a, "%s/a.pt", f->dir);
  snprintf(b, sizeof b, "%s/b.pt", f->dir);
  save_ok(a, f->d, 2, NULL);
  save_ok(b, f->d, 2, NULL);
  size_t la, lb;
  unsigned char *x = read_all(a, &la), *y = read_all(b, &lb);
  assert_int_equal(la, lb);
  assert_memory_equal(x, y, la);
  free(x);
  free(y);
}

/* Saving t (in place of the first "ema" tensor) fails with st and msg; the old file stays. */
static void expect_fail(Fix *f, const TorchSaveTensor *t, DitStatus st, const char *msg) {
  TorchSaveTensor ts[N_TENSORS];
  memcpy(ts, f->t[1], sizeof ts);
  ts[0] = *t;
  TorchSaveDict d[2] = {f->d[0], {"ema", ts, N_TENSORS}};
  DitErr err = {0};
  DitStatus got = torch_save(f->path, d, 2, NULL, &err);
  if (got != st || !strstr(err.msg, msg))
    fail_msg("status %d, message '%s'; expected %d, '%s'", got, err.msg, st, msg);
  Checkpoint *ck = NULL;
  if (ckpt_open(f->path, &ck, &err)) fail_msg("the old file is gone: %s", err.msg);
  expect_dict(ck, &f->d[1]);
  ckpt_close(ck);
}

static void test_bad_arguments(void **state) {
  Fix *f = *state;
  save_ok(f->path, f->d, 2, NULL);
  float x = 1;
  TorchSaveTensor t = {"a", CK_OTHER, 1, {1}, &x};
  expect_fail(f, &t, DIT_ERR_ARG, "'ema.a': dtype OTHER cannot be saved");
  t = (TorchSaveTensor){"a", CK_F32, 9, {1}, &x};
  expect_fail(f, &t, DIT_ERR_ARG, "'ema.a': rank 9 is outside 0..8");
  t = (TorchSaveTensor){"a", CK_F32, 2, {2, -1}, &x};
  expect_fail(f, &t, DIT_ERR_ARG, "'ema.a': dimension 1 is -1");
  t = (TorchSaveTensor){"a", CK_F32, 1, {3}, NULL};
  expect_fail(f, &t, DIT_ERR_ARG, "'ema.a': no data");
  t = (TorchSaveTensor){"", CK_F32, 1, {1}, &x};
  expect_fail(f, &t, DIT_ERR_ARG, "dict 'ema': a tensor has an empty name");
  t = (TorchSaveTensor){NULL, CK_F32, 1, {1}, &x};
  expect_fail(f, &t, DIT_ERR_ARG, "dict 'ema': a tensor has an empty name");
  t = (TorchSaveTensor){"scale", CK_F32, 1, {1}, &x};
  expect_fail(f, &t, DIT_ERR_ARG, "dict 'ema' has two tensors named 'scale'");
  t = (TorchSaveTensor){"a", CK_F32, 2, {1 << 20, 1 << 10}, &x};
  expect_fail(f, &t, DIT_ERR_UNSUPPORTED, "'ema.a': 4294967296 bytes; tensors of 4 GiB or more");
  t = (TorchSaveTensor){"a", CK_F32, 3, {INT64_MAX, 4, 4}, &x};
  expect_fail(f, &t, DIT_ERR_UNSUPPORTED, "tensors of 4 GiB or more");

  TorchSaveInt ints[] = {{"ema", 1}};
  TorchSaveOptions opt = {ints, 1, 0};
  DitErr err = {0};
  assert_int_equal(torch_save(f->path, f->d, 2, &opt, &err), DIT_ERR_ARG);
  assert_non_null(strstr(err.msg, "torch.save: the saved dict has two entries named 'ema'"));
  assert_int_equal(torch_save(f->dir, f->d, 2, NULL, &err), DIT_ERR_IO);
  assert_non_null(strstr(err.msg, "is a directory"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_train_dict_reads_back_ema, setup, teardown),
    cmocka_unit_test_setup_teardown(test_model_alone, setup, teardown),
    cmocka_unit_test_setup_teardown(test_other_dtypes, setup, teardown),
    cmocka_unit_test_setup_teardown(test_ints_and_top_level, setup, teardown),
    cmocka_unit_test_setup_teardown(test_many_tensors, setup, teardown),
    cmocka_unit_test_setup_teardown(test_zip_records, setup, teardown),
    cmocka_unit_test_setup_teardown(test_zip64, setup, teardown),
    cmocka_unit_test_setup_teardown(test_deterministic, setup, teardown),
    cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
