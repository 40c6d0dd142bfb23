/* pass_fuse_linear.c: GEMM epilogues.
 *   add(matmul(x, W), b)  with b a vector [M] and the matmul used once -> linear(x, W, b)
 *   gelu_tanh/silu(linear) with the linear used once                      -> linear {act}
 * On the GPU these become cuBLASLt bias and GELU epilogues. */
#include "ir_rewrite.h"
#include "passes.h"

DitcStatus pass_fuse_linear(Graph **gp) {
  const Graph *g = *gp;
  Rewriter rw;
  DitcStatus st = rewrite_begin(g, &rw);
  if (st) return st;
  for (size_t i = 0; i < g->n_nodes; i++) {
    const Node *n = &g->nodes[i];
    if (n->op == OP_ADD) {
      const Node *mm = &g->nodes[n->src[0]];
      const TensorType *b = &g->nodes[n->src[1]].type;
      if (mm->op == OP_MATMUL && rw.uses[n->src[0]] == 1 && b->rank == 1 &&
          b->dims[0] == mm->type.dims[mm->type.rank - 1]) {
        Node lin = {.op = OP_LINEAR, .n_src = 3};
        lin.src[0] = rw_get(&rw, mm->src[0]);
        lin.src[1] = rw_get(&rw, mm->src[1]);
        lin.src[2] = rw_get(&rw, n->src[1]);
        lin.attr.linear.act = ACT_NONE;
        /* fold the activation that is this add's only user */
        if (rw.uses[i] == 1) {
          const Node *u = &g->nodes[rw.user[i]];
          if (u->op == OP_GELU_TANH) lin.attr.linear.act = ACT_GELU_TANH;
          if (u->op == OP_SILU) lin.attr.linear.act = ACT_SILU;
          if (lin.attr.linear.act != ACT_NONE) {
            rw.map[rw.user[i]] = rw.map[i] = rw_emit(&rw, i, &lin);
            continue;
          }
        }
        rw.map[i] = rw_emit(&rw, i, &lin);
        continue;
      }
    }
    if (rw.map[i] >= 0) continue; /* an activation folded above */
    rw_copy(&rw, i);
  }
  return rw_finish(&rw, gp);
}
