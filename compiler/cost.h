/* cost.h: model statistics computed by walking the graph: parameter counts,
 * multiply-accumulates and floating-point operations per op kind. */
#ifndef DIT_COMPILER_COST_H
#define DIT_COMPILER_COST_H

#include "ir.h"

typedef struct GraphCost {
  int64_t params;         /* elements of all PARAM nodes, the frozen pos_embed included */
  int64_t params_frozen;  /* of which frozen */
  int64_t param_tensors;
  double macs;            /* multiply-accumulates of the whole graph (all batch rows) */
  double flops;           /* floating-point operations: 2 per MAC plus elementwise work */
  double macs_by_op[OP_COUNT];
  double flops_by_op[OP_COUNT];
  int nodes_by_op[OP_COUNT];
} GraphCost;

/* MACs and FLOPs of one node (docs/ir.md lists the conventions). */
void cost_node(const Graph *g, const Node *n, double *macs, double *flops);

/* Fails (DITC_ERR_LIMIT) only when the parameter count overflows 64 bits. */
DitcStatus cost_graph(const Graph *g, GraphCost *out);

#endif
