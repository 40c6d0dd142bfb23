/* test_tune_candidates.c: ditc --tune-candidates and the NVRTC cache, on
 * specs/tests/tiny.dit at batch 2 for --arch emu,sm_80 (libnvrtc, no GPU;
 * every test skips without it).
 *  - K = 4: a candidates section (optional, count records of 8 bytes),
 *    sorted by op, each naming another slot of the op's default's family
 *    (the tensor-core attention in a bf16 plan, the SIMT one in fp32), with
 *    distinct instantiations and an image per arch like any slot;
 *  - K = 1: no section, the same bytes as without the option;
 *  - a second compile with the same cache dir is all hits, byte-identical;
 *    a truncated, byte-flipped, foreign or garbage entry is compiled again
 *    (a note) and gives the same plan; a cache dir that cannot be created
 *    is one note and no caching;
 *  - ditc's usage errors for --tune-candidates, --cache-dir, --no-cache. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "compile_mem.h"
#include "nvrtc.h"
#include "run_tool.h"

typedef struct Bytes {
  unsigned char *data;
  size_t len;
} Bytes;

typedef struct Fix {
  char dir[64]; /* a temp dir: the caches go under it */
  bool nvrtc;
} Fix;

/* The plan of tiny.dit at batch 2 for arch with K candidates, through the
 * cache in cache_dir (NULL: none); *err receives the diagnostics. */
static Bytes compile_plan(const char *arch, int k, PlanDType dtype, const char *cache_dir, DitcStatus *st,
                          char **err) {
  char *buf = NULL, *ebuf = NULL;
  size_t len = 0, elen = 0;
  FILE *out = open_memstream(&buf, &len);
  FILE *e = open_memstream(&ebuf, &elen);
  CompileOptions o = {.emit = EMIT_PLAN, .batch = 2, .arch = arch, .dtype = dtype, .tune_candidates = k,
                      .cache_dir = cache_dir};
  o.spec.path = DIT_SOURCE_DIR "/specs/tests/tiny.dit";
  o.spec.allow_include = true;
  *st = compile_pipeline(&o, out, e);
  fclose(out);
  fclose(e);
  if (err) *err = ebuf;
  else free(ebuf);
  return (Bytes){(unsigned char *)buf, len};
}

static const PlanSection *find_section(const Bytes *b, uint32_t kind) {
  const PlanHeader *h = (const PlanHeader *)b->data;
  const PlanSection *s = (const PlanSection *)(b->data + h->section_table);
  for (uint32_t i = 0; i < h->n_sections; i++)
    if (s[i].kind == kind) return &s[i];
  return NULL;
}

static void assert_same(const Bytes *a, const Bytes *b) {
  assert_int_equal(a->len, b->len);
  assert_memory_equal(a->data, b->data, a->len);
}

static int setup(void **state) {
  Fix *f = calloc(1, sizeof *f);
  Diag d;
  diag_init(&d, NULL, fopen("/dev/null", "w"));
  Nvrtc *nv = nvrtc_open(&d);
  fclose(d.out);
  f->nvrtc = nv != NULL;
  nvrtc_close(nv);
  snprintf(f->dir, sizeof f->dir, "/tmp/ditc_tune_XXXXXX");
  if (!mkdtemp(f->dir)) return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  Fix *f = *state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
  if (system(cmd) != 0) return -1;
  free(f);
  return 0;
}

/* The candidates of a K = 4 plan of dtype, checked record by record;
 * want_family: the attention's family the candidates must include. */
static void check_candidates(const Fix *f, PlanDType dtype, uint32_t want_family) {
  DitcStatus st;
  char *err;
  Bytes b = compile_plan("emu,sm_80", 4, dtype, NULL, &st, &err);
  assert_int_equal(st, DITC_OK);
  const PlanSection *cs = find_section(&b, PLAN_SEC_CANDIDATES), *ks = find_section(&b, PLAN_SEC_CUDA_CUBIN);
  const PlanSection *strs = find_section(&b, PLAN_SEC_STRINGS);
  assert_non_null(cs);
  assert_non_null(ks);
  assert_int_equal(cs->flags, PLAN_SECTION_OPTIONAL);
  assert_true(cs->count > 0);
  assert_int_equal(cs->bytes, (uint64_t)cs->count * sizeof(PlanCandidate));
  const PlanCandidate *c = (const PlanCandidate *)(b.data + cs->offset);
  const PlanCudaHeader *h = (const PlanCudaHeader *)(b.data + ks->offset);
  const uint32_t *op_slot = (const uint32_t *)(b.data + ks->offset + h->op_slot_offset);
  const PlanKernelSlot *slots = (const PlanKernelSlot *)(b.data + ks->offset + h->slots_offset);
  const PlanKernelImage *imgs = (const PlanKernelImage *)(b.data + ks->offset + h->images_offset);
  const char *names = (const char *)b.data + strs->offset;
  bool saw_family = false;
  for (uint32_t i = 0; i < cs->count; i++) {
    assert_true(c[i].op < h->n_ops);
    assert_true(c[i].slot < h->n_slots);
    uint32_t def = op_slot[c[i].op];
    assert_int_not_equal(def, DIT_PLAN_NONE);
    assert_int_not_equal(c[i].slot, def);
    assert_int_equal(slots[c[i].slot].family, slots[def].family);
    saw_family |= slots[def].family == want_family;
    assert_string_not_equal(names + slots[c[i].slot].name, names + slots[def].name);
    if (i) assert_true(c[i].op > c[i - 1].op || (c[i].op == c[i - 1].op && c[i].slot != c[i - 1].slot));
    for (uint32_t j = i; j > 0 && c[j - 1].op == c[i].op; j--) /* distinct within the op */
      assert_string_not_equal(names + slots[c[i].slot].name, names + slots[c[j - 1].slot].name);
    int n_img = 0; /* the emu image and the sm_80 one, like a default slot's */
    for (uint32_t m = 0; m < h->n_images; m++)
      if (imgs[m].slot == c[i].slot) n_img += imgs[m].arch == PLAN_ARCH_EMU || imgs[m].arch == 800;
    assert_int_equal(n_img, 2);
  }
  assert_true(saw_family);
  if (!strstr(err, "of them candidates) for emu,sm_80 in ")) fail_msg("no compile-time line:\n%s", err);
  (void)f;
  free(err);
  free(b.data);
}

static void test_candidates_section(void **state) {
  Fix *f = *state;
  if (!f->nvrtc) skip();
  check_candidates(f, PLAN_DT_BF16, PLAN_KF_ATTENTION_MMA);
  check_candidates(f, PLAN_DT_F32, PLAN_KF_ATTENTION);
}

static void test_one_candidate_is_the_defaults(void **state) {
  Fix *f = *state;
  if (!f->nvrtc) skip();
  DitcStatus st;
  Bytes none = compile_plan("emu,sm_80", 0, PLAN_DT_BF16, NULL, &st, NULL);
  assert_int_equal(st, DITC_OK);
  Bytes one = compile_plan("emu,sm_80", 1, PLAN_DT_BF16, NULL, &st, NULL);
  assert_int_equal(st, DITC_OK);
  assert_null(find_section(&one, PLAN_SEC_CANDIDATES));
  assert_same(&none, &one);
  free(none.data);
  free(one.data);
}

/* The only *.nvc file of dir, in path. */
static void entry_of(const char *dir, char *path, size_t cap) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  int n = 0;
  for (struct dirent *e; (e = readdir(d));) {
    size_t len = strlen(e->d_name);
    if (len > 4 && !strcmp(e->d_name + len - 4, ".nvc")) {
      snprintf(path, cap, "%s/%s", dir, e->d_name);
      n++;
    }
  }
  closedir(d);
  assert_int_equal(n, 1);
}

static Bytes read_bytes(const char *path) {
  size_t len = 0;
  char *t = read_text_file(path, &len);
  assert_non_null(t);
  return (Bytes){(unsigned char *)t, len};
}

static void write_bytes(const char *path, const void *data, size_t n) {
  FILE *w = fopen(path, "wb");
  assert_non_null(w);
  assert_int_equal(fwrite(data, 1, n, w), n);
  fclose(w);
}

/* A compile through cache that must give want, with a miss and a note when
 * damaged (the entry was damaged). */
static void expect_recompiled(const char *cache, const Bytes *want, bool damaged) {
  DitcStatus st;
  char *err;
  Bytes b = compile_plan("emu,sm_80", 4, PLAN_DT_BF16, cache, &st, &err);
  assert_int_equal(st, DITC_OK);
  assert_same(&b, want);
  if (!strstr(err, "(NVRTC cache: 0 hits, 1 miss)")) fail_msg("not a miss:\n%s", err);
  if (damaged != (strstr(err, "NVRTC cache: ignoring") != NULL)) fail_msg("the note:\n%s", err);
  free(err);
  free(b.data);
}

static void test_cache_hits_and_damaged_entries(void **state) {
  Fix *f = *state;
  if (!f->nvrtc) skip();
  char cache[128], entry[512];
  snprintf(cache, sizeof cache, "%s/cache/nested", f->dir); /* created with its parent */
  DitcStatus st;
  char *err;
  Bytes want = compile_plan("emu,sm_80", 4, PLAN_DT_BF16, NULL, &st, NULL);
  assert_int_equal(st, DITC_OK);
  expect_recompiled(cache, &want, false); /* cold: fills the cache */
  entry_of(cache, entry, sizeof entry);
  Bytes warm = compile_plan("emu,sm_80", 4, PLAN_DT_BF16, cache, &st, &err);
  assert_int_equal(st, DITC_OK);
  assert_same(&warm, &want);
  if (!strstr(err, "(NVRTC cache: 1 hit, 0 misses)")) fail_msg("not all hits:\n%s", err);
  free(err);
  free(warm.data);

  Bytes good = read_bytes(entry);
  assert_true(good.len > 200);
  write_bytes(entry, good.data, good.len / 2); /* truncated */
  expect_recompiled(cache, &want, true);
  Bytes again = read_bytes(entry); /* overwritten with a whole entry */
  assert_same(&again, &good);
  free(again.data);
  size_t flips[] = {good.len - 1, good.len / 2, 200, 60, 20, 0}; /* the PTX, the cubin, a name, the key... */
  for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
    good.data[flips[i]] ^= 0x5a;
    write_bytes(entry, good.data, good.len);
    good.data[flips[i]] ^= 0x5a;
    expect_recompiled(cache, &want, true);
  }
  write_bytes(entry, "not an entry", 12);
  expect_recompiled(cache, &want, true);
  /* another compile's valid entry under this name: a mismatch */
  char other_dir[160], other[512];
  snprintf(other_dir, sizeof other_dir, "%s/other", f->dir);
  Bytes o = compile_plan("emu,sm_80", 2, PLAN_DT_BF16, other_dir, &st, NULL);
  assert_int_equal(st, DITC_OK);
  free(o.data);
  entry_of(other_dir, other, sizeof other);
  Bytes ob = read_bytes(other);
  write_bytes(entry, ob.data, ob.len);
  free(ob.data);
  expect_recompiled(cache, &want, true);
  free(good.data);
  free(want.data);
}

static void test_cache_dir_unusable(void **state) {
  Fix *f = *state;
  if (!f->nvrtc) skip();
  char file[128], cache[160];
  snprintf(file, sizeof file, "%s/a_file", f->dir);
  write_bytes(file, "x", 1);
  snprintf(cache, sizeof cache, "%s/sub", file); /* under a regular file: cannot be created */
  DitcStatus st;
  char *err;
  Bytes want = compile_plan("emu,sm_80", 1, PLAN_DT_BF16, NULL, &st, NULL);
  Bytes b = compile_plan("emu,sm_80", 1, PLAN_DT_BF16, cache, &st, &err);
  assert_int_equal(st, DITC_OK);
  assert_same(&b, &want);
  if (!strstr(err, "note: NVRTC cache off: ") || !strstr(err, "(NVRTC cache off)") || strstr(err, "error"))
    fail_msg("want one note and no caching:\n%s", err);
  free(err);
  free(b.data);
  free(want.data);
}

static ToolResult ditc(const char *a1, const char *a2, const char *a3, const char *a4, const char *a5,
                       const char *a6) {
  const char *argv[] = {DITC_BIN, DIT_SOURCE_DIR "/specs/tests/tiny.dit", a1, a2, a3, a4, a5, a6, NULL};
  ToolResult r;
  assert_int_equal(run_tool(argv, NULL, &r), 0);
  return r;
}

static void expect_usage(ToolResult r, const char *fragment) {
  if (r.exit_code != 2) fail_msg("exit %d, expected 2; stderr:\n%s", r.exit_code, r.err);
  if (!strstr(r.err, fragment)) fail_msg("stderr lacks '%s':\n%s", fragment, r.err);
  assert_string_equal(r.out, "");
  tool_result_free(&r);
}

static void test_usage_errors(void **state) {
  (void)state;
  const char *out = "/tmp/ditc_tune_should_not_exist.plan";
  static const char *const bad[] = {"0", "17", "-1", "4x", "", "99999999999999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char want[96];
    snprintf(want, sizeof want, "--tune-candidates takes an integer from 1 to 16, got '%s'", bad[i]);
    expect_usage(ditc("--arch", "emu", "--tune-candidates", bad[i], "-o", out), want);
  }
  expect_usage(ditc("--tune-candidates", "4", "-o", out, NULL, NULL),
               "--tune-candidates needs --arch LIST: the candidates are GPU kernels");
  expect_usage(ditc("--arch", "none", "--tune-candidates", "4", "-o", out),
               "--tune-candidates needs --arch LIST");
  expect_usage(ditc("--arch", "emu", "--tune-candidates", "4", "--info", NULL),
               "--tune-candidates goes with -o PLAN");
  expect_usage(ditc("--tune-candidates", NULL, NULL, NULL, NULL, NULL), "--tune-candidates needs a value");
  expect_usage(ditc("--arch", "emu", "--cache-dir", "/tmp", "--no-cache", NULL),
               "choose one of --cache-dir and --no-cache");
  expect_usage(ditc("--arch", "emu", "--cache-dir", "", "-o", out), "--cache-dir needs a directory");
  assert_int_not_equal(access(out, F_OK), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_candidates_section),
      cmocka_unit_test(test_one_candidate_is_the_defaults),
      cmocka_unit_test(test_cache_hits_and_damaged_entries),
      cmocka_unit_test(test_cache_dir_unusable),
      cmocka_unit_test(test_usage_errors),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
