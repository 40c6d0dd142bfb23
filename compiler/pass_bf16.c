/* pass_bf16.c: the storage precision of a bf16 plan. Every GEMM (linear)
 * and the attention read bf16 operands and accumulate in fp32; a value is
 * stored in bf16 when each of its readers is such an operand (a linear's x
 * or W, the attention's qkv) and its producer can write bf16. Everything
 * else stays fp32: the residual stream, LayerNorm statistics (inside their
 * ops), the adaLN modulation vectors, the timestep and class embedding, the
 * biases, the final layer's output and the sampler state. The graph's
 * structure does not change; only value dtypes do (DT_BF16, ir.h). */
#include <stdlib.h>

#include "passes.h"

/* Ops whose result a kernel can write in bf16. */
static bool writes_bf16(OpKind op) {
  return op == OP_LINEAR || op == OP_LN_MODULATE || op == OP_RES_GATE_LN_MODULATE || op == OP_ATTENTION ||
         op == OP_SILU || op == OP_PATCHIFY || op == OP_TIMESTEP_FREQ || op == OP_PARAM || op == OP_PARAM_PACK;
}

/* Operand k of op reads bf16: a GEMM's x or W, the attention's qkv. */
static bool reads_bf16(OpKind op, int k) {
  return (op == OP_LINEAR && (k == 0 || k == 1)) || (op == OP_ATTENTION && k == 0);
}

/* Sets a and b to false unless both are true. */
static bool agree(bool *a, bool *b) {
  if (*a == *b) return false;
  *a = *b = false;
  return true;
}

DitcStatus pass_bf16(Graph **gp) {
  Graph *g = *gp;
  size_t n = g->n_nodes;
  ValueId *root = malloc(n * sizeof *root);
  bool *want = malloc(n * sizeof *want);
  DitcStatus st = DITC_OK;
  if (!root || !want) {
    st = DITC_ERR_NOMEM;
    goto done;
  }
  /* A reshape is a view: its bytes are its source's. */
  for (size_t i = 0; i < n; i++) {
    const Node *nd = &g->nodes[i];
    root[i] = nd->op == OP_RESHAPE ? root[nd->src[0]] : (ValueId)i;
    want[i] = nd->type.dtype == DT_F32 && writes_bf16(nd->op);
  }
  for (size_t i = 0; i < n; i++) {
    const Node *nd = &g->nodes[i];
    if (nd->op == OP_RESHAPE || nd->op == OP_AUX) continue; /* a view; a second result's marker */
    for (int k = 0; k < nd->n_src; k++)
      if (!reads_bf16(nd->op, k)) want[root[nd->src[k]]] = false;
  }
  /* A GEMM's A and B share a type, and a bf16 result needs bf16 inputs; the
   * attention reads and writes one type. Demotions only: this terminates. */
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = 0; i < n; i++) {
      const Node *nd = &g->nodes[i];
      if (nd->op == OP_LINEAR) {
        bool *x = &want[root[nd->src[0]]], *w = &want[root[nd->src[1]]];
        changed |= agree(x, w);
        if (want[i] && !*x) want[i] = false, changed = true;
      } else if (nd->op == OP_ATTENTION) {
        changed |= agree(&want[root[nd->src[0]]], &want[i]);
      }
    }
  }
  for (size_t i = 0; i < n; i++)
    if (want[root[i]] && g->nodes[i].type.dtype == DT_F32) g->nodes[i].type.dtype = DT_BF16;
done:
  free(root);
  free(want);
  return st;
}
