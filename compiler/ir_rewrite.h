/* ir_rewrite.h: the mechanism every pass uses. A pass never edits a graph in
 * place: it walks the old nodes in order and appends to a fresh graph,
 * copying a node (its operands remapped) or emitting a replacement, so the
 * result is topologically ordered by construction. dce then drops what no
 * output needs. */
#ifndef DIT_COMPILER_IR_REWRITE_H
#define DIT_COMPILER_IR_REWRITE_H

#include "ir.h"

typedef struct Rewriter {
  const Graph *old;
  Graph *out;
  ValueId *map;      /* old value -> new value, -1 until defined */
  int *uses;         /* number of operand slots that read each old value */
  ValueId *user;     /* for values with one use: the node that uses it */
} Rewriter;

DitcStatus rewrite_begin(const Graph *old, Rewriter *rw);
/* Appends a copy of old node i with remapped operands and records map[i]. */
ValueId rw_copy(Rewriter *rw, size_t i);
/* Appends `proto` (operands already in new ids) stamped with old node i's block. */
ValueId rw_emit(Rewriter *rw, size_t i, const Node *proto);
/* The new id of an old value. */
ValueId rw_get(const Rewriter *rw, ValueId old);

/* Follows SLICE nodes on the last axis down to the sliced base value;
 * *col receives the accumulated column offset. Returns v itself when v is
 * not such a slice. */
ValueId ir_resolve_cols(const Graph *g, ValueId v, int64_t *col);

/* Ends a pass: the first error of the rebuild, or *g replaced by the new
 * graph without its dead nodes. */
DitcStatus rw_finish(Rewriter *rw, Graph **g);

/* Dead-node elimination: keeps what outputs need, in order. */
DitcStatus ir_dce(Graph **g);

#endif
