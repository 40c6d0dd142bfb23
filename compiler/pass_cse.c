/* pass_cse.c: common-subexpression elimination over pure nodes. Two nodes
 * are the same when op, operands (after remapping) and attributes match.
 * Inputs, parameters and outputs are never merged. */
#include <string.h>

#include "hashset.h"
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

static uint64_t node_hash(const Node *n) {
  uint64_t h = hash_bytes(0, &n->op, sizeof n->op);
  h = hash_bytes(h, n->src, sizeof(ValueId) * (size_t)n->n_src);
  return hash_bytes(h, &n->attr, sizeof n->attr);
}

DitcStatus pass_cse(Graph **gp) {
  const Graph *g = *gp;
  Rewriter rw;
  HashSet seen;
  DitcStatus st = rewrite_begin(g, &rw);
  if (st) return st;
  if (hashset_init(&seen, g->arena, g->n_nodes)) return DITC_ERR_NOMEM;
  for (size_t i = 0; i < g->n_nodes; i++) {
    const Node *n = &g->nodes[i];
    bool pure = n->op != OP_INPUT && n->op != OP_PARAM && n->op != OP_PARAM_PACK &&
                n->op != OP_OUTPUT && n->op != OP_AUX &&
                n->op != OP_ZEROS && n->op != OP_PARAM_GRAD;
    if (pure) {
      Node probe = *n;
      for (int k = 0; k < probe.n_src; k++) probe.src[k] = rw_get(&rw, probe.src[k]);
      uint64_t key = node_hash(&probe);
      ValueId hit = -1;
      size_t slot = 0;
      for (int32_t j; hit < 0 && (j = hashset_next(&seen, key, &slot)) >= 0;)
        if (same_node(&rw.out->nodes[j], &probe)) hit = j;
      if (hit >= 0) {
        if (rw.out->nodes[hit].block != n->block) rw.out->nodes[hit].block = IR_NO_BLOCK; /* shared */
        rw.map[i] = hit;
        continue;
      }
    }
    ValueId v = rw_copy(&rw, i);
    if (pure && v >= 0) hashset_put(&seen, node_hash(&rw.out->nodes[v]), v);
  }
  return rw_finish(&rw, gp);
}
