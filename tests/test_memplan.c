/* test_memplan.c: the memory planner on every shipped spec at several
 * batches: no two values live at the same time share a byte, buffers are
 * aligned, the arena is far below the unplanned sum, the residual stream is
 * updated in place; and the checker itself catches a planted overlap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "autodiff.h"
#include "lower.h"
#include "memplan.h"
#include "pipeline.h"

typedef struct Planned {
  Arena *arena;
  Graph *g;
  MemPlan mp;
} Planned;

static Planned plan_graph(const char *spec, int64_t batch, int train, RecomputeMode mode) {
  Planned p = {arena_new(), NULL, {0}};
  SourceMgr sm;
  Diag d;
  FILE *sink = fopen("/dev/null", "w");
  srcmgr_init(&sm, p.arena);
  diag_init(&d, &sm, sink);
  char path[512];
  snprintf(path, sizeof path, "%s/specs/%s", DIT_SOURCE_DIR, spec);
  SpecSource src = {path, NULL, 0, true};
  Spec *s = NULL;
  assert_int_equal(spec_load(p.arena, &d, &src, &s), DITC_OK);
  if (train) assert_int_equal(lower_train(p.arena, &d, s, batch, &p.g), DITC_OK);
  else assert_int_equal(lower_forward(p.arena, &d, s, batch, &p.g), DITC_OK);
  assert_int_equal(pipeline_run_passes(&p.g, &d, NULL, NULL), DITC_OK);
  if (train) {
    char why[256] = "";
    if (autodiff(p.g, mode, why, sizeof why)) fail_msg("%s: autodiff: %s", spec, why);
    if (ir_verify(p.g, why, sizeof why)) fail_msg("%s: IR after autodiff: %s", spec, why);
  }
  assert_int_equal(memplan_run(p.g, &p.mp), DITC_OK);
  fclose(sink);
  return p;
}

static Planned plan_spec(const char *spec, int64_t batch) { return plan_graph(spec, batch, 0, RECOMPUTE_NONE); }

/* Training graphs: no overlap in the arena under either recompute mode;
 * every trainable weight has exactly one gradient, in the gradient buffer at
 * the weight's own offset; recomputing blocks needs less memory. */
static void test_training_graphs(void **state) {
  (void)state;
  static const char *const specs[] = {"tests/tiny.dit", "tests/tiny_pixel.dit", "tests/tiny_mnist.dit",
                                      "S2_256.dit", "XL2_256.dit"};
  for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
    int64_t arena[2];
    for (int mode = 0; mode < 2; mode++) {
      Planned p = plan_graph(specs[i], 3, 1, (RecomputeMode)mode);
      char why[256] = "";
      if (memplan_check(p.g, &p.mp, why, sizeof why)) fail_msg("%s mode %d: %s", specs[i], mode, why);
      assert_int_equal(p.mp.grad_bytes, p.mp.weight_bytes);
      int trainable = 0, grads = 0;
      for (size_t v = 0; v < p.g->n_nodes; v++) {
        const Node *n = &p.g->nodes[v];
        if (n->op == OP_PARAM_PACK || (n->op == OP_PARAM && !n->attr.param.frozen)) trainable++;
        if (n->op != OP_PARAM_GRAD) continue;
        grads++;
        const MemSlot *gs = &p.mp.slots[v], *ws = &p.mp.slots[n->src[1]];
        assert_int_equal(gs->kind, MEM_GRADS);
        assert_int_equal(gs->offset, ws->offset);
        assert_int_equal(gs->bytes, ws->bytes);
        for (size_t u = v + 1; u < p.g->n_nodes; u++) /* one gradient per weight */
          assert_false(p.g->nodes[u].op == OP_PARAM_GRAD && p.g->nodes[u].src[1] == n->src[1]);
      }
      assert_int_equal(grads, trainable);
      arena[mode] = p.mp.arena_bytes;
      arena_free(p.arena);
    }
    if (!(arena[RECOMPUTE_BLOCK] < arena[RECOMPUTE_NONE]))
      fail_msg("%s: recompute block %lld >= none %lld", specs[i], (long long)arena[1], (long long)arena[0]);
  }
}

static void test_shipped_specs(void **state) {
  (void)state;
  static const char *const specs[] = {"tests/tiny.dit", "tests/tiny_hd72.dit", "tests/tiny_pixel.dit",
                                      "S2_256.dit", "B4_512.dit", "XL2_256.dit", "L8_512.dit"};
  static const int64_t batches[] = {1, 7, 64};
  for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
    for (size_t b = 0; b < 3; b++) {
      Planned p = plan_spec(specs[i], batches[b]);
      char why[256] = "";
      if (memplan_check(p.g, &p.mp, why, sizeof why)) fail_msg("%s batch %lld: %s", specs[i], (long long)batches[b], why);
      assert_true(p.mp.arena_bytes > 0);
      assert_true(p.mp.arena_bytes * 3 < p.mp.unplanned_bytes); /* reuse pays: 4x at depth 2, 48x for XL */
      int in_place = 0;
      for (size_t v = 0; v < p.g->n_nodes; v++) {
        const MemSlot *s = &p.mp.slots[v];
        assert_true(s->kind == MEM_WEIGHTS || s->offset % MEMPLAN_ALIGN == 0 || s->root != (ValueId)v);
        if (p.g->nodes[v].op == OP_AUX && s->root != (ValueId)v) in_place++;
      }
      /* every residual update but possibly the last is in place */
      int64_t depth = p.g->cfg->depth;
      if (in_place < 2 * depth - 1) fail_msg("%s: only %d in-place residuals", specs[i], in_place);
      arena_free(p.arena);
    }
  }
}

static void test_checker_catches_overlap(void **state) {
  (void)state;
  Planned p = plan_spec("tests/tiny.dit", 2);
  /* move the attention output onto the qkv buffer it reads */
  for (size_t v = 0; v < p.g->n_nodes; v++) {
    if (p.g->nodes[v].op != OP_ATTENTION) continue;
    p.mp.slots[v].offset = p.mp.slots[p.g->nodes[v].src[0]].offset;
    break;
  }
  char why[256] = "";
  assert_int_equal(memplan_check(p.g, &p.mp, why, sizeof why), DITC_ERR_INTERNAL);
  assert_non_null(strstr(why, "overlap in the arena"));
  arena_free(p.arena);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shipped_specs),
      cmocka_unit_test(test_checker_catches_overlap),
      cmocka_unit_test(test_training_graphs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
