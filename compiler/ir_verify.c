/* ir_verify.c: the graph invariants every pass must keep. Runs after
 * lowering and after every pass; a failure is a bug in ditc, not in the spec. */
#include <stdio.h>
#include <string.h>

#include "ir.h"

DitcStatus ir_verify(const Graph *g, char *err, size_t err_bytes) {
  size_t n_outputs = 0;
  if (g->n_nodes == 0) {
    snprintf(err, err_bytes, "graph is empty");
    return DITC_ERR_INTERNAL;
  }
  for (size_t i = 0; i < g->n_nodes; i++) {
    const Node *n = &g->nodes[i];
    char why[200];
    /* Topological order and single definition: operands come strictly earlier. */
    for (int k = 0; k < n->n_src && k < IR_MAX_SRC; k++) {
      if (n->src[k] < 0 || (size_t)n->src[k] >= i) {
        snprintf(err, err_bytes, "%%%zu (%s): operand %d = %%%d is not defined before use", i,
                 op_name(n->op), k, n->src[k]);
        return DITC_ERR_INTERNAL;
      }
    }
    /* The recorded type is exactly what the op's type rule gives. */
    TensorType t;
    if (ir_infer_type(g, n, &t, why, sizeof why) != DITC_OK) {
      snprintf(err, err_bytes, "%%%zu: %s", i, why);
      return DITC_ERR_INTERNAL;
    }
    if (t.dtype != n->type.dtype || t.rank != n->type.rank ||
        memcmp(t.dims, n->type.dims, sizeof(int64_t) * (size_t)t.rank) != 0) {
      snprintf(err, err_bytes, "%%%zu (%s): recorded type differs from its type rule", i,
               op_name(n->op));
      return DITC_ERR_INTERNAL;
    }
    if (n->op == OP_OUTPUT) n_outputs++;
    /* Weight names are unique across params and packs: they bind checkpoint tensors. */
    if (n->op == OP_PARAM || n->op == OP_PARAM_PACK) {
      int parts = n->op == OP_PARAM ? 1 : n->attr.pack.n_parts;
      for (int p = 0; p < parts; p++) {
        const char *name = n->op == OP_PARAM ? n->name : n->attr.pack.names[p];
        for (size_t j = 0; j <= i; j++) {
          const Node *m = &g->nodes[j];
          int mparts = m->op == OP_PARAM ? 1 : (m->op == OP_PARAM_PACK ? m->attr.pack.n_parts : 0);
          for (int q = 0; q < mparts; q++) {
            if (j == i && q >= p) break;
            const char *other = m->op == OP_PARAM ? m->name : m->attr.pack.names[q];
            if (strcmp(other, name) == 0) {
              snprintf(err, err_bytes, "%%%zu: weight '%s' is defined twice (first %%%zu)", i, name, j);
              return DITC_ERR_INTERNAL;
            }
          }
        }
      }
    }
  }
  if (n_outputs == 0) {
    snprintf(err, err_bytes, "graph has no output");
    return DITC_ERR_INTERNAL;
  }
  return DITC_OK;
}
