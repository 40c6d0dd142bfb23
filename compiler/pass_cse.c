/* pass_cse.c: common-subexpression elimination over pure nodes. Two nodes
 * are the same when op, operands (after remapping) and attributes match.
 * Inputs, parameters and outputs are never merged. */
#include <string.h>

#include "ir_rewrite.h"
#include "passes.h"

static bool same_node(const Node *a, const Node *b) {
  if (a->op != b->op || a->n_src != b->n_src) return false;
  for (int k = 0; k < a->n_src; k++)
    if (a->src[k] != b->src[k]) return false;
  if (memcmp(&a->attr, &b->attr, sizeof a->attr) != 0) return false;
  return a->type.rank == b->type.rank &&
         memcmp(a->type.dims, b->type.dims, sizeof(int64_t) * (size_t)a->type.rank) == 0;
}

DitcStatus pass_cse(Graph **gp) {
  const Graph *g = *gp;
  Rewriter rw;
  DitcStatus st = rewrite_begin(g, &rw);
  if (st) return st;
  for (size_t i = 0; i < g->n_nodes; i++) {
    const Node *n = &g->nodes[i];
    bool pure = n->op != OP_INPUT && n->op != OP_PARAM && n->op != OP_PARAM_PACK &&
                n->op != OP_OUTPUT && n->op != OP_AUX;
    if (pure) {
      Node probe = *n;
      for (int k = 0; k < probe.n_src; k++) probe.src[k] = rw_get(&rw, probe.src[k]);
      ValueId hit = -1;
      for (size_t j = 0; j < rw.out->n_nodes && hit < 0; j++)
        if (same_node(&rw.out->nodes[j], &probe)) hit = (ValueId)j;
      if (hit >= 0) {
        if (rw.out->nodes[hit].block != n->block) rw.out->nodes[hit].block = IR_NO_BLOCK; /* shared */
        rw.map[i] = hit;
        continue;
      }
    }
    rw_copy(&rw, i);
  }
  if (rw.out->status) return rw.out->status;
  *gp = rw.out;
  return ir_dce(gp);
}
