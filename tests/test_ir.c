/* test_ir.c: the graph IR: lowering of the DiT forward, official parameter
 * names and shapes, builder type errors, and each verifier invariant caught
 * on a hand-broken graph. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "autodiff.h"
#include "cost.h"
#include "ir_print.h"
#include "lower.h"

typedef struct Fixture {
  Arena *arena;
  SourceMgr sm;
  Diag diag;
  FILE *sink;
  Spec *spec;
  Graph *g;
} Fixture;

static const char TINY[] =
    "model \"tiny\" {\n image_size = 16\n latent_scale = 2\n in_channels = 4\n patch_size = 2\n"
    " hidden_size = 64\n depth = 3\n num_heads = 4\n mlp_ratio = 4.0\n num_classes = 10\n"
    " class_dropout = 0.1\n learn_sigma = true\n}\n";

static int setup(void **state) {
  Fixture *f = calloc(1, sizeof *f);
  f->arena = arena_new();
  f->sink = fopen("/dev/null", "w");
  srcmgr_init(&f->sm, f->arena);
  diag_init(&f->diag, &f->sm, f->sink);
  SpecSource src = {"tiny.dit", TINY, sizeof TINY - 1, false};
  if (spec_load(f->arena, &f->diag, &src, &f->spec)) return -1;
  if (lower_forward(f->arena, &f->diag, f->spec, 3, &f->g)) return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  Fixture *f = *state;
  fclose(f->sink);
  arena_free(f->arena);
  free(f);
  return 0;
}

static const Node *find_param(const Graph *g, const char *name) {
  for (size_t i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].op == OP_PARAM && strcmp(g->nodes[i].name, name) == 0) return &g->nodes[i];
  return NULL;
}

static void assert_dims(const Node *n, int rank, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
  assert_non_null(n);
  int64_t d[4] = {d0, d1, d2, d3};
  assert_int_equal(n->type.rank, rank);
  for (int i = 0; i < rank; i++) assert_int_equal(n->type.dims[i], d[i]);
}

static void test_lowered_graph_verifies(void **state) {
  Fixture *f = *state;
  char why[256] = "";
  assert_int_equal(ir_verify(f->g, why, sizeof why), DITC_OK);
  /* two outputs: the model's [N, 2*C, H, W] (learn_sigma), then a sampler step's x [N, C, H, W] */
  const Node *outs[2] = {NULL, NULL};
  for (size_t k = 0; k < f->g->n_nodes; k++)
    if (f->g->nodes[k].op == OP_OUTPUT) outs[outs[0] ? 1 : 0] = &f->g->nodes[k];
  assert_non_null(outs[1]);
  assert_dims(outs[0], 4, 3, 8, 8, 8);
  assert_dims(outs[1], 4, 3, 4, 8, 8);
  assert_int_equal(f->g->nodes[outs[1]->src[0]].op, OP_DIFFUSION_STEP);
}

/* The state-dict keys and shapes of the official model (12 + 10 * depth keys). */
static void test_official_parameter_names(void **state) {
  Fixture *f = *state;
  const Graph *g = f->g;
  int n_params = 0;
  for (size_t i = 0; i < g->n_nodes; i++) n_params += g->nodes[i].op == OP_PARAM;
  assert_int_equal(n_params, 12 + 10 * 3);
  assert_dims(find_param(g, "pos_embed"), 3, 1, 16, 64, 0);
  assert_true(find_param(g, "pos_embed")->attr.param.frozen);
  assert_dims(find_param(g, "x_embedder.proj.weight"), 4, 64, 4, 2, 2);
  assert_dims(find_param(g, "x_embedder.proj.bias"), 1, 64, 0, 0, 0);
  assert_dims(find_param(g, "t_embedder.mlp.0.weight"), 2, 64, 256, 0, 0);
  assert_dims(find_param(g, "t_embedder.mlp.2.weight"), 2, 64, 64, 0, 0);
  assert_dims(find_param(g, "y_embedder.embedding_table.weight"), 2, 11, 64, 0, 0);
  assert_dims(find_param(g, "final_layer.linear.weight"), 2, 2 * 2 * 8, 64, 0, 0);
  assert_dims(find_param(g, "final_layer.linear.bias"), 1, 32, 0, 0, 0);
  assert_dims(find_param(g, "final_layer.adaLN_modulation.1.weight"), 2, 128, 64, 0, 0);
  for (int b = 0; b < 3; b++) {
    char k[128];
    snprintf(k, sizeof k, "blocks.%d.attn.qkv.weight", b);
    assert_dims(find_param(g, k), 2, 192, 64, 0, 0);
    snprintf(k, sizeof k, "blocks.%d.attn.proj.bias", b);
    assert_dims(find_param(g, k), 1, 64, 0, 0, 0);
    snprintf(k, sizeof k, "blocks.%d.mlp.fc1.weight", b);
    assert_dims(find_param(g, k), 2, 256, 64, 0, 0);
    snprintf(k, sizeof k, "blocks.%d.mlp.fc2.weight", b);
    assert_dims(find_param(g, k), 2, 64, 256, 0, 0);
    snprintf(k, sizeof k, "blocks.%d.adaLN_modulation.1.weight", b);
    assert_dims(find_param(g, k), 2, 384, 64, 0, 0);
    snprintf(k, sizeof k, "blocks.%d.adaLN_modulation.1.bias", b);
    assert_dims(find_param(g, k), 1, 384, 0, 0, 0);
  }
}

/* Each block has the op structure of models.py: one attention with a
 * 1/sqrt(head_dim) scale, two LayerNorm+modulate pairs, two gated residuals. */
static void test_block_structure(void **state) {
  Fixture *f = *state;
  int count[OP_COUNT] = {0};
  for (size_t i = 0; i < f->g->n_nodes; i++) {
    const Node *n = &f->g->nodes[i];
    if (n->block != 1) continue;
    count[n->op]++;
    if (n->op == OP_SCALE) assert_true(n->attr.scale.value == 0.25); /* head dim 16 */
    if (n->op == OP_LAYERNORM) assert_true(n->attr.norm.eps == 1e-6);
  }
  assert_int_equal(count[OP_BMM], 2);
  assert_int_equal(count[OP_SOFTMAX], 1);
  assert_int_equal(count[OP_LAYERNORM], 2);
  assert_int_equal(count[OP_MODULATE], 2);
  assert_int_equal(count[OP_RESIDUAL_GATE], 2);
  assert_int_equal(count[OP_GELU_TANH], 1);
  assert_int_equal(count[OP_SILU], 1);       /* SiLU(c) inside every block */
  assert_int_equal(count[OP_MATMUL], 5);     /* adaLN, qkv, proj, fc1, fc2 */
  assert_int_equal(count[OP_SLICE], 6 + 3);  /* six adaLN chunks, q, k, v */
}

/* Copies the fixture graph so a test can break it without affecting others. */
static Graph *clone(Fixture *f) {
  Graph *g = graph_new(f->arena, f->g->cfg, f->g->batch);
  g->nodes = arena_array(f->arena, f->g->n_nodes, sizeof(Node));
  memcpy(g->nodes, f->g->nodes, f->g->n_nodes * sizeof(Node));
  g->n_nodes = g->cap_nodes = f->g->n_nodes;
  return g;
}

static size_t first_op(const Graph *g, OpKind op) {
  for (size_t i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].op == op) return i;
  fail_msg("no %s node", op_name(op));
  return 0;
}

static void expect_invalid(Graph *g, const char *fragment) {
  char why[256] = "";
  assert_int_equal(ir_verify(g, why, sizeof why), DITC_ERR_INTERNAL);
  if (!strstr(why, fragment)) fail_msg("verifier said '%s', expected '%s'", why, fragment);
}

static void test_verifier_catches_use_before_def(void **state) {
  Graph *g = clone(*state);
  size_t i = first_op(g, OP_MATMUL);
  g->nodes[i].src[0] = (ValueId)i; /* uses itself */
  expect_invalid(g, "is not defined before use");
}

static void test_verifier_catches_wrong_type(void **state) {
  Graph *g = clone(*state);
  g->nodes[first_op(g, OP_GELU_TANH)].type.dims[2] += 1;
  expect_invalid(g, "recorded type differs from its type rule");
}

static void test_verifier_catches_shape_mismatch(void **state) {
  Graph *g = clone(*state);
  size_t patch_mm = first_op(g, OP_MATMUL); /* [N,T,C*p*p] x [D, C*p*p] */
  size_t t_mm = patch_mm + 1;
  while (g->nodes[t_mm].op != OP_MATMUL) t_mm++; /* t_embedder: [N,256] x [D,256] */
  g->nodes[t_mm].src[1] = g->nodes[patch_mm].src[1];
  expect_invalid(g, "inner dims differ: 256 vs 16");
}

static void test_verifier_catches_duplicate_param(void **state) {
  Graph *g = clone(*state);
  size_t a = first_op(g, OP_PARAM);
  g->nodes[a + 1].name = g->nodes[a].name;
  g->nodes[a + 1].type = g->nodes[a].type;
  expect_invalid(g, "is defined twice");
}

static void test_verifier_catches_missing_output(void **state) {
  Graph *g = clone(*state);
  for (size_t i = 0; i < g->n_nodes; i++) /* turn both output markers into plain views */
    if (g->nodes[i].op == OP_OUTPUT) g->nodes[i].op = OP_RESHAPE;
  expect_invalid(g, "graph has no output");
}

static void test_verifier_catches_bad_attrs(void **state) {
  Graph *g = clone(*state);
  g->nodes[first_op(g, OP_PERMUTE)].attr.permute.perm[1] = 0;
  expect_invalid(g, "not a permutation");
  g = clone(*state);
  g->nodes[first_op(g, OP_SLICE)].attr.slice.start = 1000;
  expect_invalid(g, "exceeds dim");
  g = clone(*state);
  g->nodes[first_op(g, OP_EMBEDDING)].src[1] = 0; /* ids must be i64 */
  expect_invalid(g, "ids must be i64");
}

static void test_builder_records_first_error(void **state) {
  Fixture *f = *state;
  Graph *g = graph_new(f->arena, NULL, 1);
  int64_t xd[2] = {4, 8}, wd[2] = {16, 9};
  ValueId x = ir_input(g, "x", DT_F32, 2, xd);
  ValueId w = ir_param(g, "w", 2, wd, false);
  ValueId y = ir_binary(g, OP_MATMUL, x, w);
  assert_int_equal(y, -1);
  assert_int_equal(g->status, DITC_ERR_INTERNAL);
  assert_non_null(strstr(g->error, "inner dims differ: 8 vs 9"));
  assert_int_equal(ir_unary(g, OP_SILU, x), -1); /* later calls are no-ops */
  assert_int_equal(g->n_nodes, 2);
}

/* group_norm's type rule, attributes in the dump and cost. */
static void test_group_norm_node(void **state) {
  Fixture *f = *state;
  Graph *g = graph_new(f->arena, NULL, 2);
  int64_t xd[4] = {2, 64, 8, 8}, cd[1] = {64}, bad[1] = {63};
  ValueId x = ir_input(g, "x", DT_F32, 4, xd);
  ValueId gam = ir_param(g, "norm.weight", 1, cd, true), bet = ir_param(g, "norm.bias", 1, cd, true);
  ValueId y = ir_group_norm(g, x, gam, bet, 32, 1e-6);
  assert_true(y >= 0);
  const Node *n = &g->nodes[y];
  assert_int_equal(n->type.rank, 4);
  assert_memory_equal(n->type.dims, xd, sizeof xd);
  char *text = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  ir_print(g, mem);
  fclose(mem);
  if (!strstr(text, "group_norm %0, %1, %2 {groups=32, eps=1e-06} : f32[2,64,8,8]")) fail_msg("dump:\n%s", text);
  free(text);
  double macs, flops;
  cost_node(g, n, &macs, &flops);
  assert_true(macs == 0 && flops == 7.0 * 2 * 64 * 8 * 8);
  /* groups must divide the channels; gamma is [C] */
  assert_int_equal(ir_group_norm(g, x, gam, bet, 24, 1e-6), -1);
  assert_non_null(strstr(g->error, "24 groups do not divide 64 channels"));
  Graph *g2 = graph_new(f->arena, NULL, 2);
  x = ir_input(g2, "x", DT_F32, 4, xd);
  ValueId b63 = ir_param(g2, "b", 1, bad, true);
  assert_int_equal(ir_group_norm(g2, x, b63, b63, 32, 1e-6), -1);
  assert_non_null(strstr(g2->error, "gamma and beta must be [C] = [64]"));
}

static char *dump(const Graph *g) {
  char *text = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  ir_print(g, mem);
  fclose(mem);
  return text;
}

#define ASSERT_DIMS(g, v, d0, d1, d2, d3)                                  \
  do {                                                                     \
    const int64_t want_[4] = {d0, d1, d2, d3};                             \
    assert_true((v) >= 0);                                                 \
    assert_int_equal((g)->nodes[v].type.rank, 4);                          \
    assert_memory_equal((g)->nodes[v].type.dims, want_, sizeof want_);     \
  } while (0)

/* The VAE's ops: conv2d (3x3, 1x1, stride 2 with the asymmetric padding,
 * fused upsampling), group_norm with SiLU, the token transposes and the
 * posterior sample: type rules, refusals, dump, cost, and autodiff's clean
 * refusal of a trainable weight behind them. */
static void test_vae_op_nodes(void **state) {
  Fixture *f = *state;
  Graph *g = graph_new(f->arena, NULL, 2);
  const int64_t same[4] = {1, 1, 1, 1}, none[4] = {0, 0, 0, 0}, down[4] = {0, 0, 1, 1};
  int64_t xd[4] = {2, 8, 9, 7}, w3d[4] = {16, 8, 3, 3}, w1d[4] = {16, 8, 1, 1}, bd[1] = {16}, cd[1] = {16};
  ValueId x = ir_input(g, "x", DT_F32, 4, xd);
  ValueId w3 = ir_param(g, "conv.weight", 4, w3d, true), b = ir_param(g, "conv.bias", 1, bd, true);
  ValueId w1 = ir_param(g, "nin.weight", 4, w1d, true);
  ValueId c1 = ir_conv2d(g, x, w3, b, 1, same, 1, 1.0);
  ASSERT_DIMS(g, c1, 2, 16, 9, 7);
  ValueId c2 = ir_conv2d(g, x, w3, b, 2, down, 1, 1.0); /* (9 + 1 - 3) / 2 + 1 = 4, (7 + 1 - 3) / 2 + 1 = 3 */
  ASSERT_DIMS(g, c2, 2, 16, 4, 3);
  ValueId c3 = ir_conv2d(g, x, w3, b, 1, same, 2, 0.5); /* the decoder's upsampler */
  ASSERT_DIMS(g, c3, 2, 16, 18, 14);
  ValueId c4 = ir_conv2d(g, x, w1, b, 1, none, 1, 1.0);
  ASSERT_DIMS(g, c4, 2, 16, 9, 7);
  double macs, flops;
  cost_node(g, &g->nodes[c3], &macs, &flops);
  assert_true(macs == 2.0 * 16 * 18 * 14 * 8 * 9 && flops == 2 * macs + 2.0 * 16 * 18 * 14);
  cost_node(g, &g->nodes[c4], &macs, &flops);
  assert_true(macs == 2.0 * 16 * 9 * 7 * 8);
  ValueId gam = ir_param(g, "norm.weight", 1, cd, true), bet = ir_param(g, "norm.bias", 1, cd, true);
  ValueId gn = ir_group_norm_act(g, c1, gam, bet, 4, 1e-6, ACT_SILU);
  ASSERT_DIMS(g, gn, 2, 16, 9, 7);
  cost_node(g, &g->nodes[gn], &macs, &flops);
  assert_true(macs == 0 && flops == 11.0 * 2 * 16 * 9 * 7);
  ValueId tok = ir_to_tokens(g, gn);
  assert_true(tok >= 0);
  assert_int_equal(g->nodes[tok].type.rank, 3);
  assert_true(g->nodes[tok].type.dims[0] == 2 && g->nodes[tok].type.dims[1] == 63 && g->nodes[tok].type.dims[2] == 16);
  ValueId back = ir_from_tokens(g, tok, c1);
  ASSERT_DIMS(g, back, 2, 16, 9, 7);
  ValueId mom = ir_slice(g, back, 1, 0, 8); /* [2,8,9,7] as moments of 4 channels */
  int64_t zd[4] = {2, 4, 9, 7};
  ValueId z = ir_input(g, "noise", DT_F32, 4, zd);
  ValueId lat = ir_latent_sample(g, mom, z, 0.18215);
  ASSERT_DIMS(g, lat, 2, 4, 9, 7);
  char *text = dump(g);
  const char *want[] = {
      "conv2d %0, %1, %2 {stride=1, pad=1,1,1,1, up=1, alpha=1} : f32[2,16,9,7]",
      "conv2d %0, %1, %2 {stride=2, pad=0,0,1,1, up=1, alpha=1} : f32[2,16,4,3]",
      "conv2d %0, %1, %2 {stride=1, pad=1,1,1,1, up=2, alpha=0.5} : f32[2,16,18,14]",
      "{groups=4, eps=1e-06, act=silu} : f32[2,16,9,7]",
      "to_tokens %10 : f32[2,63,16]",
      "from_tokens %11, %4 : f32[2,16,9,7]",
      "{scale=0.18215} : f32[2,4,9,7]",
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    if (!strstr(text, want[i])) fail_msg("no '%s' in the dump:\n%s", want[i], text);
  free(text);
  assert_int_equal(g->status, DITC_OK);

  /* refusals, each in a fresh graph (the first error sticks) */
  struct { int64_t wk, cin, stride, pad, up; const char *msg; } bad[] = {
      {5, 8, 1, 1, 1, "weight must be [Cout,8,k,k] with k 1 or 3"},
      {3, 4, 1, 1, 1, "weight must be [Cout,8,k,k] with k 1 or 3"},
      {3, 8, 3, 1, 1, "stride must be 1 or 2"},
      {3, 8, 1, 2, 1, "padding must be 0 or 1 on each side"},
      {3, 8, 1, 1, 3, "upsampling must be 1 or 2"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    Graph *h = graph_new(f->arena, NULL, 2);
    int64_t wd[4] = {16, bad[i].cin, bad[i].wk, bad[i].wk}, pad[4] = {bad[i].pad, 0, 0, 0};
    ValueId hx = ir_input(h, "x", DT_F32, 4, xd);
    ValueId hw = ir_param(h, "w", 4, wd, true), hb = ir_param(h, "b", 1, bd, true);
    assert_int_equal(ir_conv2d(h, hx, hw, hb, bad[i].stride, pad, bad[i].up, 1.0), -1);
    if (!strstr(h->error, bad[i].msg)) fail_msg("case %zu: '%s'", i, h->error);
  }
  Graph *h = graph_new(f->arena, NULL, 2);
  int64_t tiny[4] = {1, 8, 1, 1};
  ValueId hx = ir_input(h, "x", DT_F32, 4, tiny);
  ValueId hw = ir_param(h, "w", 4, w3d, true), hb = ir_param(h, "b", 1, bd, true);
  assert_int_equal(ir_conv2d(h, hx, hw, hb, 1, none, 1, 1.0), -1);
  assert_non_null(strstr(h->error, "a 3x3 kernel does not fit a 1x1 input"));
  h = graph_new(f->arena, NULL, 2);
  hx = ir_input(h, "x", DT_F32, 4, xd);
  ValueId hz = ir_input(h, "z", DT_F32, 4, xd); /* 8 noise channels need 16 moments */
  assert_int_equal(ir_latent_sample(h, hx, hz, 1.0), -1);
  assert_non_null(strstr(h->error, "moments must be [N,2C,h,w] for noise [N,C,h,w]"));
  h = graph_new(f->arena, NULL, 2);
  int64_t td[3] = {2, 62, 8};
  ValueId ht = ir_input(h, "t", DT_F32, 3, td);
  hx = ir_input(h, "x", DT_F32, 4, xd);
  assert_int_equal(ir_from_tokens(h, ht, hx), -1);
  assert_non_null(strstr(h->error, "tokens must be [N,H*W,C] = [2,63,8]"));
  h = graph_new(f->arena, NULL, 2);
  hx = ir_input(h, "x", DT_F32, 4, xd);
  ValueId g8 = ir_param(h, "g", 1, (int64_t[]){8}, true);
  assert_int_equal(ir_group_norm_act(h, hx, g8, g8, 4, 1e-6, ACT_GELU_TANH), -1);
  assert_non_null(strstr(h->error, "activation must be none or silu"));

  /* autodiff: a trainable weight whose only path to the loss is through a
   * conv2d gets no gradient: a clean error, not a crash */
  h = graph_new(f->arena, NULL, 2);
  int64_t sd[4] = {2, 4, 8, 8}, wd[4] = {4, 4, 3, 3}, b4[1] = {4}, nd[1] = {2};
  ValueId x0 = ir_input(h, "x0", DT_F32, 4, sd), xt = ir_input(h, "xt", DT_F32, 4, sd);
  ValueId e = ir_input(h, "noise", DT_F32, 4, sd), t = ir_input(h, "t", DT_I64, 1, nd);
  ValueId cw = ir_param(h, "conv.weight", 4, wd, false), cb = ir_param(h, "conv.bias", 1, b4, false);
  ValueId mo = ir_conv2d(h, xt, cw, cb, 1, same, 1, 1.0);
  Node loss = {.op = OP_DIFFUSION_LOSS, .n_src = 5, .src = {x0, xt, mo, e, t}};
  loss.attr.step.channels = 4;
  assert_true(ir_append(h, &loss) >= 0);
  char why[256] = "";
  assert_int_not_equal(autodiff(h, RECOMPUTE_NONE, why, sizeof why), DITC_OK);
  if (!strstr(why, "a trainable parameter got no gradient")) fail_msg("autodiff: '%s'", why);
}

static void test_numel_limit(void **state) {
  (void)state;
  TensorType ok = {DT_F32, 3, {1024, 1024, 1024, 0}};
  TensorType big = {DT_F32, 4, {1 << 20, 1 << 20, 1 << 20, 2}};
  TensorType zero = {DT_F32, 2, {4, 0, 0, 0}};
  assert_int_equal(type_numel(&ok), 1 << 30);
  assert_int_equal(type_numel(&big), -1);
  assert_int_equal(type_numel(&zero), -1);
}

/* Costs come from the walk: check the walk on the tiny graph by hand. */
static void test_cost_walk_tiny(void **state) {
  Fixture *f = *state;
  GraphCost c;
  assert_int_equal(cost_graph(f->g, &c), DITC_OK);
  const int64_t D = 64, T = 16, N = 3, depth = 3, p = 2, M = 256;
  int64_t params = 4 * p * p * D + D + T * D + (256 * D + D + D * D + D) + 11 * D +
                   depth * (3 * D * D + 3 * D + D * D + D + 2 * M * D + M + D + 6 * D * D + 6 * D) +
                   (2 * D * D + 2 * D + 8 * p * p * D + 8 * p * p);
  assert_int_equal(c.params, params);
  assert_int_equal(c.params_frozen, T * D);
  double macs = N * (depth * (3 * T * D * D + T * D * D + 2 * T * M * D + 6 * D * D +
                              2 * T * T * D + 2 * T * D) +
                     4 * p * p * T * D + 8 * p * p * T * D + 2 * D * D + 256 * D + D * D);
  assert_true(c.macs == macs);
  assert_true(c.flops > 2 * macs);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_lowered_graph_verifies, setup, teardown),
      cmocka_unit_test_setup_teardown(test_official_parameter_names, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block_structure, setup, teardown),
      cmocka_unit_test_setup_teardown(test_verifier_catches_use_before_def, setup, teardown),
      cmocka_unit_test_setup_teardown(test_verifier_catches_wrong_type, setup, teardown),
      cmocka_unit_test_setup_teardown(test_verifier_catches_shape_mismatch, setup, teardown),
      cmocka_unit_test_setup_teardown(test_verifier_catches_duplicate_param, setup, teardown),
      cmocka_unit_test_setup_teardown(test_verifier_catches_missing_output, setup, teardown),
      cmocka_unit_test_setup_teardown(test_verifier_catches_bad_attrs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_builder_records_first_error, setup, teardown),
      cmocka_unit_test(test_numel_limit),
      cmocka_unit_test_setup_teardown(test_group_norm_node, setup, teardown),
      cmocka_unit_test_setup_teardown(test_vae_op_nodes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cost_walk_tiny, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
