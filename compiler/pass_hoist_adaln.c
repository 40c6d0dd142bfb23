/* pass_hoist_adaln.c: the adaLN modulation of every block and of the final
 * layer is linear(SiLU(c), W_i, b_i) on the same SiLU(c) (after CSE). They
 * become one linear over W_all = [W_0; W_1; ...] (param_pack: the weights are
 * placed adjacently at load time, nothing is copied per step), whose columns
 * each former output now slices: one GEMM with N rows instead of depth + 1.
 * Applies when at least two such linears share their input. */
#include <string.h>

#include "ir_rewrite.h"
#include "passes.h"

/* The linear nodes whose input is x, with plain PARAM weight and bias. */
static int collect(const Graph *g, ValueId x, size_t *out, int max) {
  int n = 0;
  for (size_t i = 0; i < g->n_nodes; i++) {
    const Node *l = &g->nodes[i];
    if (l->op != OP_LINEAR || l->src[0] != x || l->attr.linear.act != ACT_NONE) continue;
    if (g->nodes[l->src[1]].op != OP_PARAM || g->nodes[l->src[2]].op != OP_PARAM) continue;
    if (n < max) out[n] = i;
    n++;
  }
  return n;
}

static Node make_pack(Arena *a, const Graph *g, const size_t *lin, int n, int operand) {
  Node p = {.op = OP_PARAM_PACK, .n_src = 0};
  const char **names = arena_array(a, (size_t)n, sizeof(char *));
  int64_t *rows = arena_array(a, (size_t)n, sizeof(int64_t));
  const Node *first = &g->nodes[g->nodes[lin[0]].src[operand]];
  p.type = first->type;
  p.type.dims[0] = 0;
  for (int i = 0; names && rows && i < n; i++) {
    const Node *w = &g->nodes[g->nodes[lin[i]].src[operand]];
    names[i] = w->name;
    rows[i] = w->type.dims[0];
    p.type.dims[0] += rows[i];
  }
  p.attr.pack.n_parts = n;
  p.attr.pack.names = names;
  p.attr.pack.rows = rows;
  p.name = first->name;
  return p;
}

DitcStatus pass_hoist_adaln(Graph **gp) {
  const Graph *g = *gp;
  enum { MAX_LINEARS = 4096 };
  size_t *lin = arena_array(g->arena, MAX_LINEARS, sizeof(size_t));
  if (!lin) return DITC_ERR_NOMEM;
  /* The shared input: a SiLU feeding more than one plain linear. */
  ValueId x = -1;
  int n = 0;
  for (size_t i = 0; i < g->n_nodes && x < 0; i++) {
    if (g->nodes[i].op != OP_SILU) continue;
    n = collect(g, (ValueId)i, lin, MAX_LINEARS);
    if (n >= 2 && n <= MAX_LINEARS) x = (ValueId)i;
  }
  if (x < 0) return DITC_OK; /* nothing to hoist */
  for (int i = 1; i < n; i++) /* all must share the width of their input */
    if (g->nodes[g->nodes[lin[i]].src[1]].type.dims[1] != g->nodes[g->nodes[lin[0]].src[1]].type.dims[1])
      return DITC_OK;

  Rewriter rw;
  DitcStatus st = rewrite_begin(g, &rw);
  if (st) return st;
  ValueId hoisted = -1;
  int next = 0;
  int64_t col = 0;
  for (size_t i = 0; i < g->n_nodes; i++) {
    if (next < n && i == lin[next]) {
      if (hoisted < 0) {
        Node w = make_pack(g->arena, g, lin, n, 1), b = make_pack(g->arena, g, lin, n, 2);
        if (!w.attr.pack.names || !b.attr.pack.names) return DITC_ERR_NOMEM;
        rw.out->cur_block = IR_NO_BLOCK; /* shared by all blocks */
        ValueId wv = ir_append(rw.out, &w), bv = ir_append(rw.out, &b);
        Node l = {.op = OP_LINEAR, .n_src = 3};
        l.src[0] = rw_get(&rw, x);
        l.src[1] = wv;
        l.src[2] = bv;
        l.attr.linear.act = ACT_NONE;
        hoisted = ir_append(rw.out, &l);
      }
      int64_t width = g->nodes[i].type.dims[g->nodes[i].type.rank - 1];
      rw.map[i] = ir_slice(rw.out, hoisted, -1, col, width);
      col += width;
      next++;
      continue;
    }
    rw_copy(&rw, i);
  }
  return rw_finish(&rw, gp);
}
