/* pass_fuse_residual.c: the gated residual joins the LayerNorm+modulate that
 * follows it:
 *   r = residual_gate(x, gate, h)        gate a column slice of gm [N, Mg]
 *   y = ln_modulate(r, m){...}           the only user of r before y
 * -> y = res_gate_ln_modulate(x, h, gm, m){gate_col, ...}, r = aux(y)
 * The fused op is placed where y was (all its operands exist by then) and r's
 * later users (the next residual) read aux. The runtime may update the
 * residual stream in place: x dies at the fused op. */
#include "ir_rewrite.h"
#include "passes.h"

/* The ln_modulate that reads r, if r has exactly one such user and every other user comes later. */
static ValueId ln_user(const Graph *g, ValueId r) {
  ValueId found = -1;
  for (size_t j = (size_t)r + 1; j < g->n_nodes; j++) {
    const Node *u = &g->nodes[j];
    bool reads = false;
    for (int k = 0; k < u->n_src; k++) reads |= u->src[k] == r;
    if (!reads) continue;
    if (found < 0 && u->op == OP_LN_MODULATE && u->src[0] == r) {
      found = (ValueId)j;
      continue;
    }
    if (found < 0) return -1; /* some other user comes first */
  }
  return found;
}

DitcStatus pass_fuse_residual(Graph **gp) {
  const Graph *g = *gp;
  Rewriter rw;
  DitcStatus st = rewrite_begin(g, &rw);
  if (st) return st;
  /* pending[j] = the residual_gate that the ln_modulate at j absorbs */
  ValueId *pending = arena_array(g->arena, g->n_nodes, sizeof(ValueId));
  if (!pending) return DITC_ERR_NOMEM;
  for (size_t i = 0; i < g->n_nodes; i++) pending[i] = -1;
  for (size_t i = 0; i < g->n_nodes; i++) {
    const Node *n = &g->nodes[i];
    if (n->op == OP_RESIDUAL_GATE) {
      int64_t gate_col;
      ValueId gm = ir_resolve_cols(g, n->src[1], &gate_col);
      ValueId y = ln_user(g, (ValueId)i);
      if (y >= 0 && g->nodes[gm].type.rank == 2) {
        pending[y] = (ValueId)i;
        continue; /* emitted at y */
      }
    }
    if (n->op == OP_LN_MODULATE && pending[i] >= 0) {
      const Node *rg = &g->nodes[pending[i]];
      int64_t gate_col;
      ValueId gm = ir_resolve_cols(g, rg->src[1], &gate_col);
      Node f = {.op = OP_RES_GATE_LN_MODULATE, .n_src = 4};
      f.src[0] = rw_get(&rw, rg->src[0]);
      f.src[1] = rw_get(&rw, rg->src[2]);
      f.src[2] = rw_get(&rw, gm);
      f.src[3] = rw_get(&rw, n->src[1]);
      f.attr.lnmod = n->attr.lnmod;
      f.attr.lnmod.gate_col = gate_col;
      ValueId fv = rw_emit(&rw, i, &f);
      Node aux = {.op = OP_AUX, .n_src = 1};
      aux.src[0] = fv;
      rw.map[pending[i]] = rw_emit(&rw, i, &aux);
      rw.map[i] = fv;
      continue;
    }
    rw_copy(&rw, i);
  }
  return rw_finish(&rw, gp);
}
