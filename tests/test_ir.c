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
      cmocka_unit_test_setup_teardown(test_cost_walk_tiny, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
