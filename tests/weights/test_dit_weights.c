/* test_dit_weights.c: binding checkpoints to a DiT plan's weight requests.
 * The fixtures hold one tiny DiT (depth 2, hidden 8, patch 2, 4 -> 8
 * channels, 10 classes, 16 frequencies, a 4x4 token grid) in official naming
 * (.pt and .safetensors) and in diffusers naming (with and without the stray
 * pos_embed); all must bind to the same floats. Also: the strict-load errors
 * (missing, unexpected, mis-shaped, unsupported dtype) and the position
 * embedding against numpy's. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "checkpoint.h"
#include "dit_weights.h"

#define FIX DIT_FIXTURE_DIR "/"

/* Must match make_fixtures.py. */
enum { D = 8, P = 2, C_IN = 4, C_OUT = 8, N_CLS = 10, FREQ = 16, GRID = 4, DEPTH = 2 };
enum { MAX_REQ = 64 };

typedef struct Plan {
  WeightRequest req[MAX_REQ];
  char names[MAX_REQ][64];
  size_t n;
  DitGeometry geo;
} Plan;

static void add(Plan *p, const char *name, int rank, int64_t d0, int64_t d1, int64_t d2,
                int64_t d3) {
  assert_true(p->n < MAX_REQ);
  WeightRequest *r = &p->req[p->n];
  snprintf(p->names[p->n], sizeof p->names[p->n], "%s", name);
  r->name = p->names[p->n];
  r->rank = rank;
  int64_t dims[4] = {d0, d1, d2, d3}, numel = 1;
  for (int i = 0; i < 4; i++) {
    r->shape[i] = i < rank ? dims[i] : 0;
    if (i < rank) numel *= dims[i];
  }
  r->dst = calloc((size_t)numel, sizeof(float));
  assert_non_null(r->dst);
  p->n++;
}

/* The official key list of the tiny DiT, in state_dict order. */
static Plan *make_plan(void) {
  Plan *p = calloc(1, sizeof *p);
  assert_non_null(p);
  p->geo.depth = DEPTH;
  p->geo.hidden = D;
  p->geo.grid = GRID;
  add(p, "pos_embed", 3, 1, GRID * GRID, D, 0);
  add(p, "x_embedder.proj.weight", 4, D, C_IN, P, P);
  add(p, "x_embedder.proj.bias", 1, D, 0, 0, 0);
  add(p, "t_embedder.mlp.0.weight", 2, D, FREQ, 0, 0);
  add(p, "t_embedder.mlp.0.bias", 1, D, 0, 0, 0);
  add(p, "t_embedder.mlp.2.weight", 2, D, D, 0, 0);
  add(p, "t_embedder.mlp.2.bias", 1, D, 0, 0, 0);
  add(p, "y_embedder.embedding_table.weight", 2, N_CLS + 1, D, 0, 0);
  for (int i = 0; i < DEPTH; i++) {
    char b[64];
    static const struct { const char *key; int64_t out, in; } lin[] = {
      {"attn.qkv", 3 * D, D}, {"attn.proj", D, D}, {"mlp.fc1", 4 * D, D},
      {"mlp.fc2", D, 4 * D}, {"adaLN_modulation.1", 6 * D, D},
    };
    for (size_t k = 0; k < sizeof lin / sizeof *lin; k++) {
      snprintf(b, sizeof b, "blocks.%d.%s.weight", i, lin[k].key);
      add(p, b, 2, lin[k].out, lin[k].in, 0, 0);
      snprintf(b, sizeof b, "blocks.%d.%s.bias", i, lin[k].key);
      add(p, b, 1, lin[k].out, 0, 0, 0);
    }
  }
  add(p, "final_layer.linear.weight", 2, P * P * C_OUT, D, 0, 0);
  add(p, "final_layer.linear.bias", 1, P * P * C_OUT, 0, 0, 0);
  add(p, "final_layer.adaLN_modulation.1.weight", 2, 2 * D, D, 0, 0);
  add(p, "final_layer.adaLN_modulation.1.bias", 1, 2 * D, 0, 0, 0);
  return p;
}

static void free_plan(Plan *p) {
  for (size_t i = 0; i < p->n; i++) free(p->req[i].dst);
  free(p);
}

static int64_t req_numel(const WeightRequest *r) {
  int64_t n = 1;
  for (int i = 0; i < r->rank; i++) n *= r->shape[i];
  return n;
}

static WeightRequest *find_req(Plan *p, const char *name) {
  for (size_t i = 0; i < p->n; i++)
    if (strcmp(p->req[i].name, name) == 0) return &p->req[i];
  fail_msg("no request %s", name);
  return &p->req[0];
}

/* Removes the request named name. */
static void drop(Plan *p, const char *name) {
  WeightRequest *r = find_req(p, name);
  free(r->dst);
  size_t i = (size_t)(r - p->req);
  memmove(&p->req[i], &p->req[i + 1], (p->n - i - 1) * sizeof *r);
  memmove(p->names[i], p->names[i + 1], (p->n - i - 1) * sizeof p->names[0]);
  p->n--;
  for (size_t k = 0; k < p->n; k++) p->req[k].name = p->names[k];
}

static Checkpoint *open_fixture(const char *name) {
  Checkpoint *ck = NULL;
  DitErr err = {0};
  char path[512];
  snprintf(path, sizeof path, FIX "%s", name);
  if (ckpt_open(path, &ck, &err) != DIT_OK) fail_msg("%s", err.msg);
  return ck;
}

/* Binds the fixture to a fresh plan; returns the status and leaves the message in err. */
static DitStatus bind_fixture(const char *name, Plan *p, DitErr *err) {
  Checkpoint *ck = open_fixture(name);
  memset(err, 0, sizeof *err);
  DitStatus st = dit_weights_bind(ck, p->req, p->n, &p->geo, err);
  ckpt_close(ck);
  return st;
}

static void assert_plans_equal(const Plan *a, const Plan *b) {
  assert_int_equal(a->n, b->n);
  for (size_t i = 0; i < a->n; i++) {
    size_t bytes = (size_t)req_numel(&a->req[i]) * sizeof(float);
    if (memcmp(a->req[i].dst, b->req[i].dst, bytes) != 0)
      fail_msg("'%s' differs", a->req[i].name);
  }
}

static void test_official_binds_and_matches_the_file(void **state) {
  (void)state;
  Plan *p = make_plan();
  DitErr err;
  if (bind_fixture("dit_official.safetensors", p, &err)) fail_msg("%s", err.msg);
  Checkpoint *ck = open_fixture("dit_official.safetensors");
  for (size_t i = 0; i < p->n; i++) {
    const CkptTensor *t = ckpt_find(ck, p->req[i].name);
    assert_non_null(t);
    float *want = malloc((size_t)t->numel * sizeof *want);
    assert_non_null(want);
    assert_int_equal(ckpt_read_f32(ck, t, want, &err), DIT_OK);
    assert_memory_equal(want, p->req[i].dst, (size_t)t->numel * sizeof *want);
    free(want);
  }
  ckpt_close(ck);

  Plan *q = make_plan();
  if (bind_fixture("dit_official.pt", q, &err)) fail_msg("%s", err.msg);
  assert_plans_equal(p, q);
  free_plan(q);
  free_plan(p);
}

static void test_diffusers_binds_to_the_same_floats(void **state) {
  (void)state;
  Plan *off = make_plan(), *dif = make_plan(), *nopos = make_plan();
  DitErr err;
  if (bind_fixture("dit_official.safetensors", off, &err)) fail_msg("%s", err.msg);
  if (bind_fixture("dit_diffusers.safetensors", dif, &err)) fail_msg("%s", err.msg);
  assert_plans_equal(off, dif);
  /* Without the stray pos_embed key, it is computed, and equals numpy's float64 recipe. */
  if (bind_fixture("dit_diffusers_nopos.safetensors", nopos, &err)) fail_msg("%s", err.msg);
  assert_plans_equal(off, nopos);
  free_plan(off);
  free_plan(dif);
  free_plan(nopos);
}

static void test_diffusers_qkv_is_q_then_k_then_v(void **state) {
  (void)state;
  Plan *p = make_plan();
  DitErr err;
  if (bind_fixture("dit_diffusers.safetensors", p, &err)) fail_msg("%s", err.msg);
  Checkpoint *ck = open_fixture("dit_diffusers.safetensors");
  static const char *const parts[] = {"to_q", "to_k", "to_v"};
  for (int blk = 0; blk < DEPTH; blk++)
    for (int w = 0; w < 2; w++) {
      char name[96];
      snprintf(name, sizeof name, "blocks.%d.attn.qkv.%s", blk, w ? "bias" : "weight");
      WeightRequest *r = find_req(p, name);
      size_t part = (size_t)req_numel(r) / 3;
      for (int k = 0; k < 3; k++) {
        snprintf(name, sizeof name, "transformer_blocks.%d.attn1.%s.%s", blk, parts[k],
                 w ? "bias" : "weight");
        const CkptTensor *t = ckpt_find(ck, name);
        assert_non_null(t);
        assert_int_equal(t->numel, (int64_t)part);
        float buf[3 * D * D];
        assert_int_equal(ckpt_read_f32(ck, t, buf, &err), DIT_OK);
        assert_memory_equal(buf, r->dst + k * part, part * sizeof(float));
      }
    }
  ckpt_close(ck);
  free_plan(p);
}

static void test_missing_key(void **state) {
  (void)state;
  Plan *p = make_plan();
  add(p, "blocks.2.mlp.fc1.weight", 2, 4 * D, D, 0, 0);
  DitErr err;
  assert_int_equal(bind_fixture("dit_official.safetensors", p, &err), DIT_ERR_WEIGHTS);
  assert_string_equal(err.msg, "missing key 'blocks.2.mlp.fc1.weight'");
  assert_int_equal(bind_fixture("dit_diffusers.safetensors", p, &err), DIT_ERR_WEIGHTS);
  assert_string_equal(err.msg, "missing key 'blocks.2.mlp.fc1.weight' (looked for the diffusers "
                               "key 'transformer_blocks.2.ff.net.0.proj.weight')");
  free_plan(p);
}

static void test_unexpected_key(void **state) {
  (void)state;
  Plan *p = make_plan();
  drop(p, "final_layer.linear.bias");
  DitErr err;
  assert_int_equal(bind_fixture("dit_official.safetensors", p, &err), DIT_ERR_WEIGHTS);
  assert_string_equal(err.msg, "unexpected key 'final_layer.linear.bias'");
  assert_int_equal(bind_fixture("dit_diffusers.safetensors", p, &err), DIT_ERR_WEIGHTS);
  assert_string_equal(err.msg, "unexpected key 'proj_out_2.bias'");
  free_plan(p);

  /* pos_embed is tolerated when the plan does not ask for it (it computes its own). */
  p = make_plan();
  drop(p, "pos_embed");
  assert_int_equal(bind_fixture("dit_official.safetensors", p, &err), DIT_OK);
  assert_int_equal(bind_fixture("dit_diffusers.safetensors", p, &err), DIT_OK);
  free_plan(p);
}

static void test_wrong_shape(void **state) {
  (void)state;
  Plan *p = make_plan();
  WeightRequest *r = find_req(p, "blocks.0.mlp.fc1.weight");
  r->shape[0] = 31;
  DitErr err;
  assert_int_equal(bind_fixture("dit_official.pt", p, &err), DIT_ERR_WEIGHTS);
  assert_string_equal(err.msg, "key 'blocks.0.mlp.fc1.weight' has shape [32,8], the plan "
                               "expects [31,8]");
  r = find_req(p, "blocks.0.mlp.fc1.weight");
  r->shape[0] = 32;
  r = find_req(p, "blocks.1.attn.qkv.weight");
  r->shape[1] = 9;
  assert_int_equal(bind_fixture("dit_diffusers.safetensors", p, &err), DIT_ERR_WEIGHTS);
  assert_non_null(strstr(err.msg, "key 'blocks.1.attn.qkv.weight' (diffusers "
                                  "'transformer_blocks.1.attn1.to_q.weight') has shape [8,8], "
                                  "the plan expects [8,9]"));
  free_plan(p);
}

static void test_first_problem_and_count(void **state) {
  (void)state;
  Plan *p = make_plan();
  drop(p, "y_embedder.embedding_table.weight");           /* 1 unexpected, reported last */
  add(p, "blocks.7.attn.proj.bias", 1, D, 0, 0, 0);       /* missing: the first problem */
  add(p, "extra", 1, 3, 0, 0, 0);                         /* missing */
  DitErr err;
  assert_int_equal(bind_fixture("dit_official.safetensors", p, &err), DIT_ERR_WEIGHTS);
  assert_string_equal(err.msg, "missing key 'blocks.7.attn.proj.bias' (and 2 more problems)");
  free_plan(p);
}

static void test_unsupported_dtype_and_bad_args(void **state) {
  (void)state;
  Checkpoint *ck = open_fixture("st_i64.safetensors");
  float f[2], ids[3];
  WeightRequest req[2] = {{"f", 1, {2, 0, 0, 0}, f}, {"ids", 1, {3, 0, 0, 0}, ids}};
  DitGeometry geo = {1, 8, 2};
  DitErr err = {0};
  assert_int_equal(dit_weights_bind(ck, req, 2, &geo, &err), DIT_ERR_UNSUPPORTED);
  assert_string_equal(err.msg, "key 'ids' has dtype I64; only F32, F16 and BF16 weights can be "
                               "loaded");
  assert_int_equal(dit_weights_bind(ck, req, 2, NULL, &err), DIT_ERR_ARG);
  req[1].rank = 5;
  assert_int_equal(dit_weights_bind(ck, req, 2, &geo, &err), DIT_ERR_ARG);
  req[1].rank = 1;
  req[1].dst = NULL;
  assert_int_equal(dit_weights_bind(ck, req, 2, &geo, &err), DIT_ERR_ARG);
  assert_non_null(strstr(err.msg, "'ids'"));
  geo.hidden = 6;
  assert_int_equal(dit_weights_bind(ck, req, 1, &geo, &err), DIT_ERR_ARG);
  ckpt_close(ck);

  /* Half-precision weights bind through the same conversion as ckpt_read_f32. */
  ck = open_fixture("st_bf16.safetensors");
  float b2[6];
  WeightRequest rb[2] = {{"b2", 2, {3, 2, 0, 0}, b2}, {"b", 1, {18, 0, 0, 0}, NULL}};
  float bvals[18];
  rb[1].dst = bvals;
  geo.hidden = 8;
  assert_int_equal(dit_weights_bind(ck, rb, 2, &geo, &err), DIT_OK);
  assert_true(isinf(bvals[10]) && bvals[10] > 0);
  ckpt_close(ck);
}

/* Changes one byte of a per-block embedder copy: the official model cannot represent that. */
static void test_diffusers_embedder_copies_must_match(void **state) {
  (void)state;
  FILE *f = fopen(FIX "dit_diffusers.safetensors", "rb");
  assert_non_null(f);
  static unsigned char buf[1 << 16];
  size_t len = fread(buf, 1, sizeof buf, f);
  fclose(f);
  assert_true(len > 0 && len < sizeof buf);
  Checkpoint *ck = NULL;
  DitErr err = {0};
  assert_int_equal(ckpt_open_memory(buf, len, "d", &ck, &err), DIT_OK);
  const char *copy = "transformer_blocks.1.norm1.emb.timestep_embedder.linear_2.bias";
  const CkptTensor *t = ckpt_find(ck, copy);
  assert_non_null(t);
  size_t at = (size_t)(t->data - buf);
  ckpt_close(ck);
  buf[at + 1] ^= 0x40;
  assert_int_equal(ckpt_open_memory(buf, len, "d", &ck, &err), DIT_OK);
  Plan *p = make_plan();
  assert_int_equal(dit_weights_bind(ck, p->req, p->n, &p->geo, &err), DIT_ERR_UNSUPPORTED);
  assert_non_null(strstr(err.msg, copy));
  assert_non_null(strstr(err.msg, "differs from 'transformer_blocks.0.norm1.emb."
                                  "timestep_embedder.linear_2.bias'"));
  ckpt_close(ck);
  free_plan(p);
}

static uint32_t bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static void test_pos_embed_matches_numpy(void **state) {
  (void)state;
  /* Reference doc 1.4 example: D=8, g=3. */
  float pe[9 * 8];
  dit_pos_embed_sincos(pe, 3, 8);
  const float tok1[8] = {sinf(1), (float)sin(0.01), cosf(1), (float)cos(0.01), 0, 0, 1, 1};
  const float tok3[8] = {0, 0, 1, 1, sinf(1), (float)sin(0.01), cosf(1), (float)cos(0.01)};
  for (int i = 0; i < 8; i++) {
    assert_true(fabsf(pe[8 + i] - tok1[i]) < 1e-7f);
    assert_true(fabsf(pe[24 + i] - tok3[i]) < 1e-7f);
  }
  /* Bit-exact against numpy's float64 computation rounded to float32 (grid 8, hidden 32). */
  FILE *f = fopen(FIX "pos_8x32.f32", "rb");
  assert_non_null(f);
  static float want[64 * 32], got[64 * 32];
  assert_int_equal(fread(want, sizeof(float), 64 * 32, f), 64 * 32);
  fclose(f);
  dit_pos_embed_sincos(got, 8, 32);
  for (int i = 0; i < 64 * 32; i++)
    if (bits(got[i]) != bits(want[i]))
      fail_msg("pos_embed[%d] = %.9g, numpy %.9g", i, (double)got[i], (double)want[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_official_binds_and_matches_the_file),
    cmocka_unit_test(test_diffusers_binds_to_the_same_floats),
    cmocka_unit_test(test_diffusers_qkv_is_q_then_k_then_v),
    cmocka_unit_test(test_missing_key),
    cmocka_unit_test(test_unexpected_key),
    cmocka_unit_test(test_wrong_shape),
    cmocka_unit_test(test_first_problem_and_count),
    cmocka_unit_test(test_unsupported_dtype_and_bad_args),
    cmocka_unit_test(test_diffusers_embedder_copies_must_match),
    cmocka_unit_test(test_pos_embed_matches_numpy),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
