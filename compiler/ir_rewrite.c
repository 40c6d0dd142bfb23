/* ir_rewrite.c: graph rebuilding for passes, and dead-node elimination. */
#include "ir_rewrite.h"

#include <string.h>

DitcStatus rewrite_begin(const Graph *old, Rewriter *rw) {
  memset(rw, 0, sizeof *rw);
  rw->old = old;
  rw->out = graph_new(old->arena, old->cfg, old->batch);
  rw->map = arena_array(old->arena, old->n_nodes, sizeof(ValueId));
  rw->uses = arena_array(old->arena, old->n_nodes, sizeof(int));
  rw->user = arena_array(old->arena, old->n_nodes, sizeof(ValueId));
  if (!rw->out || !rw->map || !rw->uses || !rw->user) return DITC_ERR_NOMEM;
  for (size_t i = 0; i < old->n_nodes; i++) rw->map[i] = -1;
  for (size_t i = 0; i < old->n_nodes; i++) {
    const Node *n = &old->nodes[i];
    for (int k = 0; k < n->n_src; k++) {
      rw->uses[n->src[k]]++;
      rw->user[n->src[k]] = (ValueId)i;
    }
  }
  return DITC_OK;
}

ValueId rw_get(const Rewriter *rw, ValueId old) {
  return old >= 0 && (size_t)old < rw->old->n_nodes ? rw->map[old] : -1;
}

ValueId rw_emit(Rewriter *rw, size_t i, const Node *proto) {
  rw->out->cur_block = rw->old->nodes[i].block;
  ValueId v = ir_append(rw->out, proto);
  rw->out->cur_block = IR_NO_BLOCK;
  return v;
}

ValueId rw_copy(Rewriter *rw, size_t i) {
  Node n = rw->old->nodes[i];
  for (int k = 0; k < n.n_src; k++) n.src[k] = rw_get(rw, n.src[k]);
  rw->map[i] = rw_emit(rw, i, &n);
  return rw->map[i];
}

ValueId ir_resolve_cols(const Graph *g, ValueId v, int64_t *col) {
  *col = 0;
  while (v >= 0) {
    const Node *n = &g->nodes[v];
    if (n->op != OP_SLICE) break;
    const TensorType *src = &g->nodes[n->src[0]].type;
    int ax = n->attr.slice.axis < 0 ? n->attr.slice.axis + src->rank : n->attr.slice.axis;
    if (ax != src->rank - 1) break;
    *col += n->attr.slice.start;
    v = n->src[0];
  }
  return v;
}

DitcStatus rw_finish(Rewriter *rw, Graph **gp) {
  if (rw->out->status) return rw->out->status;
  *gp = rw->out;
  return ir_dce(gp);
}

DitcStatus ir_dce(Graph **gp) {
  const Graph *g = *gp;
  bool *live = arena_array(g->arena, g->n_nodes, sizeof(bool));
  if (!live) return DITC_ERR_NOMEM;
  for (size_t i = g->n_nodes; i-- > 0;) {
    const Node *n = &g->nodes[i];
    if (n->op == OP_OUTPUT || n->op == OP_PARAM_GRAD) live[i] = true;
    /* a two-result op lives as long as its second result does */
    if (n->op == OP_AUX && live[i]) live[n->src[0]] = true;
    if (!live[i]) continue;
    for (int k = 0; k < n->n_src; k++) live[n->src[k]] = true;
  }
  for (size_t i = 0; i < g->n_nodes; i++) /* a live two-result op keeps its second result */
    if (g->nodes[i].op == OP_AUX && live[g->nodes[i].src[0]]) live[i] = true;
  Rewriter rw;
  DitcStatus st = rewrite_begin(g, &rw);
  if (st) return st;
  for (size_t i = 0; i < g->n_nodes; i++)
    if (live[i]) rw_copy(&rw, i);
  if (rw.out->status) return rw.out->status;
  *gp = rw.out;
  return DITC_OK;
}
