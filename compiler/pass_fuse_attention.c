/* pass_fuse_attention.c: one attention op per block. Matches, from the head
 * merge back to qkv (every intermediate used once):
 *   reshape[N,T,D](permute{0,2,1,3}(bmm(softmax(scale(bmm(q, k, trans_b))), v)))
 *   with q, k, v = permute{0,2,1,3}(reshape[N,T,H,hd](slice(qkv, last axis, s*D, D)))
 * and replaces it with attention(qkv){heads, head_dim, scale}. */
#include "ir_rewrite.h"
#include "passes.h"

static const Node *single(const Rewriter *rw, ValueId v, OpKind op) {
  if (v < 0 || rw->old->nodes[v].op != op || rw->uses[v] != 1) return NULL;
  return &rw->old->nodes[v];
}

static bool is_head_perm(const Node *p) {
  return p && p->type.rank == 4 && p->attr.permute.perm[0] == 0 && p->attr.permute.perm[1] == 2 &&
         p->attr.permute.perm[2] == 1 && p->attr.permute.perm[3] == 3;
}

/* q, k or v: the qkv value and the chunk index s it slices, or -1. */
static ValueId head_operand(const Rewriter *rw, ValueId v, int64_t *chunk, int64_t D) {
  const Node *perm = single(rw, v, OP_PERMUTE);
  if (!is_head_perm(perm)) return -1;
  const Node *resh = single(rw, perm->src[0], OP_RESHAPE);
  if (!resh || resh->type.rank != 4) return -1;
  const Node *sl = single(rw, resh->src[0], OP_SLICE);
  if (!sl || sl->attr.slice.len != D || sl->attr.slice.start % D) return -1;
  const TensorType *src = &rw->old->nodes[sl->src[0]].type;
  if (sl->attr.slice.axis != -1 && sl->attr.slice.axis != src->rank - 1) return -1;
  *chunk = sl->attr.slice.start / D;
  return sl->src[0];
}

/* If old node i is the head merge of an attention, builds the fused node. */
static bool match(const Rewriter *rw, size_t i, Node *fused) {
  const Graph *g = rw->old;
  const Node *merge = &g->nodes[i];
  if (merge->op != OP_RESHAPE || merge->type.rank != 3) return false;
  int64_t D = merge->type.dims[2];
  const Node *perm = single(rw, merge->src[0], OP_PERMUTE);
  if (!is_head_perm(perm)) return false;
  const Node *pv = single(rw, perm->src[0], OP_BMM);
  if (!pv || pv->attr.bmm.trans_b) return false;
  const Node *sm = single(rw, pv->src[0], OP_SOFTMAX);
  if (!sm) return false;
  const Node *sc = single(rw, sm->src[0], OP_SCALE);
  if (!sc) return false;
  const Node *qk = single(rw, sc->src[0], OP_BMM);
  if (!qk || !qk->attr.bmm.trans_b) return false;
  int64_t cq = -1, ck = -1, cv = -1;
  ValueId q = head_operand(rw, qk->src[0], &cq, D);
  ValueId k = head_operand(rw, qk->src[1], &ck, D);
  ValueId v = head_operand(rw, pv->src[1], &cv, D);
  if (q < 0 || q != k || q != v || cq != 0 || ck != 1 || cv != 2) return false;
  if (g->nodes[q].type.rank != 3 || g->nodes[q].type.dims[2] != 3 * D) return false;
  *fused = (Node){.op = OP_ATTENTION, .n_src = 1};
  fused->src[0] = rw_get(rw, q);
  fused->attr.attn.heads = qk->type.dims[1];
  fused->attr.attn.head_dim = D / qk->type.dims[1];
  fused->attr.attn.scale = sc->attr.scale.value;
  return true;
}

DitcStatus pass_fuse_attention(Graph **gp) {
  const Graph *g = *gp;
  Rewriter rw;
  DitcStatus st = rewrite_begin(g, &rw);
  if (st) return st;
  for (size_t i = 0; i < g->n_nodes; i++) {
    Node fused;
    if (match(&rw, i, &fused)) rw.map[i] = rw_emit(&rw, i, &fused);
    else rw_copy(&rw, i);
  }
  return rw_finish(&rw, gp);
}
