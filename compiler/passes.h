/* passes.h: the graph-to-graph passes, each in its own pass_*.c file.
 * pipeline.c runs them in order, with the verifier after each. A pass takes
 * the graph and replaces it with the rewritten one. */
#ifndef DIT_COMPILER_PASSES_H
#define DIT_COMPILER_PASSES_H

#include "ir.h"

/* Merges identical pure nodes: SiLU(c), computed afresh by every block in
 * the official model, is computed once per forward. */
DitcStatus pass_cse(Graph **g);
/* matmul + bias add -> linear; linear + GELU(tanh)/SiLU -> linear with an activation epilogue. */
DitcStatus pass_fuse_linear(Graph **g);
/* The head split, q k^T, scale, softmax, * v and head merge -> one attention op. */
DitcStatus pass_fuse_attention(Graph **g);
/* The adaLN linears of all blocks and of the final layer read the same SiLU(c):
 * one linear over their stacked weights replaces them. */
DitcStatus pass_hoist_adaln(Graph **g);
/* LayerNorm + modulate -> ln_modulate reading shift/scale as columns of the modulation tensor. */
DitcStatus pass_fuse_ln_modulate(Graph **g);
/* Gated residual + the next ln_modulate -> res_gate_ln_modulate (and aux for the residual),
 * so a block makes two elementwise passes over its activations instead of six. */
DitcStatus pass_fuse_residual(Graph **g);
/* bf16 plans, after the others: stores in bf16 the values that only GEMMs and
 * the attention read (pass_bf16.c says which). */
DitcStatus pass_bf16(Graph **g, bool gelu_kernel);

#endif
