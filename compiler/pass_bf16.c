/* pass_bf16.c: the storage precision of a bf16 plan. Every GEMM (linear)
 * and the attention read bf16 operands and accumulate in fp32; a value is
 * stored in bf16 when each of its readers is such an operand (a linear's x
 * or W, the attention's qkv) and its producer can write bf16; and the bias
 * of a GEMM that writes a bf16 result itself, since cuBLASLt takes a bias of
 * D's type (not one whose activation is a kernel after it: SiLU, and GELU
 * under --gelu-epilogue kernel, whose GEMM writes fp32 for that kernel).
 * Everything else stays fp32: the residual stream, LayerNorm statistics
 * (inside their ops), the adaLN modulation vectors, the timestep and class
 * embedding, the other biases, the final layer's output and the sampler
 * state. The graph's structure does not change; only value dtypes do
 * (DT_BF16, ir.h). A VAE plan keeps every value in fp32: no conv2d or
 * group_norm reads bf16, and to_tokens, which feeds the mid-block's qkv
 * GEMM, writes fp32, so that GEMM, the attention and its projection stay
 * fp32 as well (kernels/README.md, "The VAE's kernels"; test_emu_vae). */
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

/* Whether linear n's GEMM writes its result itself (an epilogue activation). */
static bool gemm_writes_out(const Node *n, bool gelu_kernel) {
  return n->attr.linear.act == ACT_NONE || (n->attr.linear.act == ACT_GELU_TANH && !gelu_kernel);
}

DitcStatus pass_bf16(Graph **gp, bool gelu_kernel) {
  Graph *g = *gp;
  size_t n = g->n_nodes;
  ValueId *root = malloc(n * sizeof *root);
  bool *want = malloc(n * sizeof *want);
  int *uses = calloc(n, sizeof *uses);
  DitcStatus st = DITC_OK;
  if (!root || !want || !uses) {
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
    for (int k = 0; k < nd->n_src; k++) {
      uses[root[nd->src[k]]]++;
      if (!reads_bf16(nd->op, k)) want[root[nd->src[k]]] = false;
    }
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
        /* its bias becomes bf16 with it: only a bias no other op reads */
        bool bias_alone = g->nodes[root[nd->src[2]]].op == OP_PARAM && uses[root[nd->src[2]]] == 1;
        if (want[i] && (!*x || !bias_alone)) want[i] = false, changed = true;
      } else if (nd->op == OP_ATTENTION) {
        changed |= agree(&want[root[nd->src[0]]], &want[i]);
      }
    }
  }
  for (size_t i = 0; i < n; i++)
    if (g->nodes[i].op == OP_LINEAR && want[i] && gemm_writes_out(&g->nodes[i], gelu_kernel))
      want[root[g->nodes[i].src[2]]] = true;
  for (size_t i = 0; i < n; i++)
    if (want[root[i]] && g->nodes[i].type.dtype == DT_F32) g->nodes[i].type.dtype = DT_BF16;
done:
  free(root);
  free(want);
  free(uses);
  return st;
}
