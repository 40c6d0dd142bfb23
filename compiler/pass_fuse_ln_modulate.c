/* pass_fuse_ln_modulate.c: LayerNorm + modulate -> one op.
 *   modulate(layernorm(x), shift, scale), the layernorm used once, shift and
 *   scale column slices of one modulation tensor m [N, M]
 *   -> ln_modulate(x, m){eps, shift_col, scale_col}
 * Reading shift and scale as columns of m needs no slice copies. */
#include "ir_rewrite.h"
#include "passes.h"

DitcStatus pass_fuse_ln_modulate(Graph **gp) {
  const Graph *g = *gp;
  Rewriter rw;
  DitcStatus st = rewrite_begin(g, &rw);
  if (st) return st;
  for (size_t i = 0; i < g->n_nodes; i++) {
    const Node *n = &g->nodes[i];
    if (n->op == OP_MODULATE) {
      const Node *ln = &g->nodes[n->src[0]];
      int64_t shift_col, scale_col;
      ValueId ms = ir_resolve_cols(g, n->src[1], &shift_col);
      ValueId mc = ir_resolve_cols(g, n->src[2], &scale_col);
      if (ln->op == OP_LAYERNORM && rw.uses[n->src[0]] == 1 && ms == mc &&
          g->nodes[ms].type.rank == 2) {
        Node f = {.op = OP_LN_MODULATE, .n_src = 2};
        f.src[0] = rw_get(&rw, ln->src[0]);
        f.src[1] = rw_get(&rw, ms);
        f.attr.lnmod.eps = ln->attr.norm.eps;
        f.attr.lnmod.shift_col = shift_col;
        f.attr.lnmod.scale_col = scale_col;
        rw.map[i] = rw_emit(&rw, i, &f);
        continue;
      }
    }
    rw_copy(&rw, i);
  }
  return rw_finish(&rw, gp);
}
