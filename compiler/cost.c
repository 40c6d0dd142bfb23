/* cost.c: per-op cost conventions and the graph walk that sums them.
 *
 * MACs follow the DiT paper's "Gflops", which count multiply-accumulates:
 * every matrix product (linear layers, the patch-embedding convolution and
 * both attention products) plus the gated residual x + gate*h, which is one
 * multiply-accumulate per element. With that convention the walk reproduces
 * all twelve Table 4 values and XL/2-512's 524.60 to within 0.007 G.
 *
 * FLOPs are real operations: 2 per MAC, plus the elementwise work per output
 * element that each op's row of ops.def gives (transcendentals count as one).
 * The fused ops (linear, ln_modulate, attention) are costed on the unfused
 * graph, so only primitive ops carry costs. */
#include "cost.h"

#include <string.h>

void cost_node(const Graph *g, const Node *n, double *macs, double *flops) {
  int64_t numel = type_numel(&n->type);
  double out = numel > 0 ? (double)numel : 0.0;
  *macs = 0;
  *flops = out * op_elementwise_flops(n->op); /* ops.def's column: 0 for products and data movement */
  if (n->op == OP_MATMUL || n->op == OP_BMM) { /* each output sums K products */
    const TensorType *x = &g->nodes[n->src[0]].type;
    *macs = out * (double)x->dims[x->rank - 1];
    *flops = 2.0 * *macs;
  } else if (n->op == OP_RESIDUAL_GATE) { /* x + gate * h: one multiply-accumulate per element */
    *macs = out;
    *flops = 2.0 * *macs;
  } else if (n->op == OP_CONV2D) { /* each output sums Cin*k*k products, then its bias (ops.def's 1) */
    const TensorType *w = &g->nodes[n->src[1]].type; /* [Cout, Cin, k, k] */
    *macs = out * (double)w->dims[1] * (double)w->dims[2] * (double)w->dims[3];
    *flops += 2.0 * *macs;
  } else if (n->op == OP_GROUP_NORM && n->attr.gnorm.act == ACT_SILU) { /* the fused SiLU */
    *flops += out * op_elementwise_flops(OP_SILU);
  }
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
