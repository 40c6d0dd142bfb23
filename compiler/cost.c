/* cost.c: per-op cost conventions and the graph walk that sums them.
 *
 * MACs follow the DiT paper's "Gflops", which count multiply-accumulates:
 * every matrix product (linear layers, the patch-embedding convolution and
 * both attention products) plus the gated residual x + gate*h, which is one
 * multiply-accumulate per element. With that convention the walk reproduces
 * all twelve Table 4 values and XL/2-512's 524.60 to within 0.007 G.
 *
 * FLOPs are real operations: 2 per MAC, plus the elementwise work per output
 * element listed in ELEMENTWISE_FLOPS (transcendentals count as one). */
#include "cost.h"

#include <string.h>

static double elementwise_flops(OpKind op) {
  switch (op) {
  case OP_ADD: return 1;           /* a + b */
  case OP_SCALE: return 1;         /* x * s */
  case OP_SILU: return 4;          /* exp(-x), 1 +, divide, multiply */
  case OP_GELU_TANH: return 9;     /* x^3 (2), *0.044715, +x, *sqrt(2/pi), tanh, +1, *x, *0.5 */
  case OP_SOFTMAX: return 5;       /* max, subtract, exp, sum, scale */
  case OP_LAYERNORM: return 5;     /* mean, subtract, square, sum, normalise */
  case OP_MODULATE: return 2;      /* x * (1 + scale) + shift; (1 + scale) is per row */
  case OP_TIMESTEP_FREQ: return 2; /* t * freq, then cos or sin */
  case OP_GROUP_NORM: return 7;    /* sum; subtract, square, sum; subtract, multiply, add */
  case OP_INPUT: case OP_PARAM: case OP_RESHAPE: case OP_PERMUTE: case OP_SLICE: case OP_PATCHIFY:
  case OP_UNPATCHIFY: case OP_MATMUL: case OP_BMM: case OP_RESIDUAL_GATE: case OP_EMBEDDING: case OP_OUTPUT:
  case OP_LINEAR: case OP_PARAM_PACK: case OP_LN_MODULATE: case OP_RES_GATE_LN_MODULATE: case OP_AUX:
  case OP_ATTENTION: case OP_CFG_MIX: case OP_DIFFUSION_STEP: case OP_Q_SAMPLE: case OP_DIFFUSION_LOSS:
  case OP_LOSS_GRAD: case OP_ZEROS: case OP_ACT_GRAD: case OP_LINEAR_GRAD_X: case OP_LINEAR_GRAD_W:
  case OP_LN_MODULATE_GRAD: case OP_RESIDUAL_GATE_GRAD: case OP_ATTENTION_GRAD: case OP_EMBEDDING_GRAD:
  case OP_UNPATCHIFY_GRAD: case OP_SUM_ROWS: case OP_PARAM_GRAD: case OP_COUNT:
    return 0; /* data movement and matrix products */
  }
  return 0; /* not an OpKind */
}

void cost_node(const Graph *g, const Node *n, double *macs, double *flops) {
  int64_t numel = type_numel(&n->type);
  double out = numel > 0 ? (double)numel : 0.0;
  *macs = 0;
  *flops = 0;
  switch (n->op) {
  case OP_MATMUL: {
    const TensorType *x = &g->nodes[n->src[0]].type;
    *macs = out * (double)x->dims[x->rank - 1]; /* each output sums K products */
    break;
  }
  case OP_BMM: {
    const TensorType *a = &g->nodes[n->src[0]].type;
    *macs = out * (double)a->dims[a->rank - 1];
    break;
  }
  case OP_RESIDUAL_GATE:
    *macs = out; /* x + gate * h: one multiply-accumulate per element */
    break;
  case OP_INPUT: case OP_PARAM: case OP_RESHAPE: case OP_PERMUTE: case OP_SLICE: case OP_PATCHIFY:
  case OP_UNPATCHIFY: case OP_ADD: case OP_SCALE: case OP_SILU: case OP_GELU_TANH: case OP_SOFTMAX:
  case OP_LAYERNORM: case OP_MODULATE: case OP_TIMESTEP_FREQ: case OP_EMBEDDING: case OP_OUTPUT:
  case OP_LINEAR: case OP_PARAM_PACK: case OP_LN_MODULATE: case OP_RES_GATE_LN_MODULATE: case OP_AUX:
  case OP_ATTENTION: case OP_CFG_MIX: case OP_DIFFUSION_STEP: case OP_Q_SAMPLE: case OP_DIFFUSION_LOSS:
  case OP_LOSS_GRAD: case OP_ZEROS: case OP_ACT_GRAD: case OP_LINEAR_GRAD_X: case OP_LINEAR_GRAD_W:
  case OP_LN_MODULATE_GRAD: case OP_RESIDUAL_GATE_GRAD: case OP_ATTENTION_GRAD: case OP_EMBEDDING_GRAD:
  case OP_UNPATCHIFY_GRAD: case OP_SUM_ROWS: case OP_PARAM_GRAD: case OP_GROUP_NORM: case OP_COUNT:
    *flops = out * elementwise_flops(n->op);
    return;
  }
  *flops = 2.0 * *macs;
}

DitcStatus cost_graph(const Graph *g, GraphCost *c) {
  memset(c, 0, sizeof *c);
  for (size_t i = 0; i < g->n_nodes; i++) {
    const Node *n = &g->nodes[i];
    double m, f;
    cost_node(g, n, &m, &f);
    c->macs += m;
    c->flops += f;
    c->macs_by_op[n->op] += m;
    c->flops_by_op[n->op] += f;
    c->nodes_by_op[n->op]++;
    if (n->op == OP_PARAM) {
      int64_t k = type_numel(&n->type);
      if (k < 0 || __builtin_add_overflow(c->params, k, &c->params)) return DITC_ERR_LIMIT;
      if (n->attr.param.frozen) c->params_frozen += k;
      c->param_tensors++;
    }
  }
  return DITC_OK;
}
