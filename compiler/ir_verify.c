/* ir_verify.c: the graph invariants every pass must keep. Runs after
 * lowering and after every pass; a failure is a bug in ditc, not in the spec. */
#include <stdio.h>
#include <string.h>

#include "hashset.h"
#include "ir.h"

DitcStatus ir_verify(const Graph *g, char *err, size_t err_bytes) {
  size_t n_outputs = 0;
  if (g->n_nodes == 0) {
    snprintf(err, err_bytes, "graph is empty");
    return DITC_ERR_INTERNAL;
  }
  HashSet names;
  size_t n_names = 0;
  for (size_t i = 0; i < g->n_nodes; i++)
    n_names += g->nodes[i].op == OP_PARAM ? 1 : (g->nodes[i].op == OP_PARAM_PACK ? (size_t)g->nodes[i].attr.pack.n_parts : 0);
  if (hashset_init(&names, g->arena, n_names)) {
    snprintf(err, err_bytes, "out of memory");
    return DITC_ERR_NOMEM;
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
    /* The recorded type is exactly what the op's type rule gives, except that
     * a float result may be stored in bf16 (pass_bf16). */
    TensorType t;
    if (ir_infer_type(g, n, &t, why, sizeof why) != DITC_OK) {
      snprintf(err, err_bytes, "%%%zu: %s", i, why);
      return DITC_ERR_INTERNAL;
    }
    bool dtype_ok = t.dtype == n->type.dtype || (t.dtype == DT_F32 && n->type.dtype == DT_BF16);
    if (!dtype_ok || t.rank != n->type.rank ||
        memcmp(t.dims, n->type.dims, sizeof(int64_t) * (size_t)t.rank) != 0) {
      snprintf(err, err_bytes, "%%%zu (%s): recorded type differs from its type rule", i,
               op_name(n->op));
      return DITC_ERR_INTERNAL;
    }
    if (n->op == OP_OUTPUT) n_outputs++;
    /* Weight names are unique across params and packs: they bind checkpoint tensors. */
    int parts = n->op == OP_PARAM ? 1 : (n->op == OP_PARAM_PACK ? n->attr.pack.n_parts : 0);
    for (int p = 0; p < parts; p++) {
      const char *name = n->op == OP_PARAM ? n->name : n->attr.pack.names[p];
      uint64_t key = hash_bytes(0, name, strlen(name));
      size_t slot = 0;
      for (int32_t j; (j = hashset_next(&names, key, &slot)) >= 0;) {
        const Node *m = &g->nodes[j];
        int mparts = m->op == OP_PARAM ? 1 : m->attr.pack.n_parts;
        for (int q = 0; q < mparts; q++) {
          const char *other = m->op == OP_PARAM ? m->name : m->attr.pack.names[q];
          if ((size_t)j == i && q == p) continue;
          if (strcmp(other, name) == 0) {
            snprintf(err, err_bytes, "%%%zu: weight '%s' is defined twice (first %%%d)", i, name, j);
            return DITC_ERR_INTERNAL;
          }
        }
      }
      hashset_put(&names, key, (int32_t)i);
    }
  }
  if (n_outputs == 0) {
    snprintf(err, err_bytes, "graph has no output");
    return DITC_ERR_INTERNAL;
  }
  return DITC_OK;
}
