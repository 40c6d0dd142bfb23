/* memplan.c: weight layout, liveness, aliasing and best-fit arena placement
 * (see memplan.h). */
#include "memplan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t align_up(int64_t x, int64_t a) { return (x + a - 1) / a * a; }

/* A value's bytes: its dtype's in the arena; a weight's in the host weight
 * buffer, which holds float32 whatever the device stores (plan-format.md). */
static int64_t value_bytes(const Node *n, bool weight) {
  int64_t k = type_numel(&n->type);
  int64_t elem = n->type.dtype == DT_I64 ? 8 : n->type.dtype == DT_BF16 && !weight ? 2 : 4;
  return k < 0 ? -1 : k * elem;
}

/* The operand a gradient op adds its result to, in place, or -1. */
static int accumulator_operand(const Node *n) {
  if (n->n_src == op_arity(n->op) && op_min_arity(n->op) < op_arity(n->op)) return n->n_src - 1;
  return -1;
}

static ValueId find_root(const ValueId *parent, ValueId v) {
  while (parent[v] != v) v = parent[v];
  return v;
}

typedef struct FreeBlock {
  int64_t offset, bytes;
} FreeBlock;

typedef struct Placer {
  FreeBlock *free;
  size_t n_free, cap_free;
  int64_t end;
  Arena *arena;
} Placer;

/* Best fit among free blocks, else grow the arena. */
static int64_t place(Placer *p, int64_t bytes) {
  size_t best = SIZE_MAX;
  for (size_t i = 0; i < p->n_free; i++)
    if (p->free[i].bytes >= bytes && (best == SIZE_MAX || p->free[i].bytes < p->free[best].bytes))
      best = i;
  if (best == SIZE_MAX) {
    int64_t off = p->end;
    p->end += bytes;
    return off;
  }
  int64_t off = p->free[best].offset;
  p->free[best].offset += bytes;
  p->free[best].bytes -= bytes;
  if (p->free[best].bytes == 0) p->free[best] = p->free[--p->n_free];
  return off;
}

/* Returns a block to the free list, merging with its neighbours. */
static int release(Placer *p, int64_t offset, int64_t bytes) {
  for (size_t i = 0; i < p->n_free;) {
    FreeBlock *f = &p->free[i];
    if (f->offset + f->bytes == offset || offset + bytes == f->offset) {
      if (f->offset < offset) offset = f->offset;
      bytes += f->bytes;
      p->free[i] = p->free[--p->n_free];
      continue;
    }
    i++;
  }
  if (offset + bytes == p->end) {
    p->end = offset; /* the top of the arena shrinks back */
    return 0;
  }
  if (arena_grow(p->arena, (void **)&p->free, &p->cap_free, p->n_free + 1, sizeof(FreeBlock)))
    return -1;
  p->free[p->n_free++] = (FreeBlock){offset, bytes};
  return 0;
}

DitcStatus memplan_run(const Graph *g, MemPlan *mp) {
  size_t n = g->n_nodes;
  memset(mp, 0, sizeof *mp);
  mp->slots = arena_array(g->arena, n, sizeof(MemSlot));
  int32_t *last_use = arena_array(g->arena, n, sizeof(int32_t));
  if (!mp->slots || !last_use) return DITC_ERR_NOMEM;

  /* Liveness: the last node that reads each value; outputs live to the end. */
  for (size_t i = 0; i < n; i++) last_use[i] = (int32_t)i;
  for (size_t i = 0; i < n; i++) {
    const Node *nd = &g->nodes[i];
    for (int k = 0; k < nd->n_src; k++) last_use[nd->src[k]] = (int32_t)i;
    if (nd->op == OP_OUTPUT) last_use[i] = (int32_t)n;
  }

  /* Aliases. Views (reshape, output, param_grad) share their source's bytes.
   * Two kinds of results overwrite an operand in place: a gradient op's
   * result its accumulator operand (always: autodiff.c hands over only
   * accumulators nothing else reads later, which is checked here), and the
   * residual aux of res_gate_ln_modulate its input x when nothing reads x's
   * bytes after the fused op. grp_last[r] is the latest last use over the
   * group of values sharing root r's bytes. */
  ValueId *parent = arena_array(g->arena, n, sizeof(ValueId));
  int32_t *grp_last = arena_array(g->arena, n, sizeof(int32_t));
  if (!parent || !grp_last) return DITC_ERR_NOMEM;
  for (size_t i = 0; i < n; i++) {
    const Node *nd = &g->nodes[i];
    bool view = nd->op == OP_RESHAPE || nd->op == OP_OUTPUT || nd->op == OP_PARAM_GRAD;
    parent[i] = view ? nd->src[0] : (ValueId)i;
    grp_last[i] = last_use[i];
  }
  for (size_t i = 0; i < n; i++) {
    ValueId r = find_root(parent, (ValueId)i);
    if (last_use[i] > grp_last[r]) grp_last[r] = last_use[i];
  }
  for (size_t i = 0; i < n; i++) {
    const Node *nd = &g->nodes[i];
    ValueId target = -1; /* the operand whose bytes node i's result takes over */
    int32_t writer = (int32_t)i; /* the node that writes the result */
    bool required = true;
    int acc = accumulator_operand(nd);
    if (acc >= 0) {
      target = nd->src[acc];
    } else if (nd->op == OP_AUX) {
      const Node *f = &g->nodes[nd->src[0]];
      writer = nd->src[0];
      if (f->op == OP_LN_MODULATE_GRAD || f->op == OP_RESIDUAL_GATE_GRAD) {
        target = f->src[3]; /* dmod, updated column by column */
      } else if (f->op == OP_RES_GATE_LN_MODULATE) {
        target = f->src[0];
        required = false;
      }
    }
    if (target < 0) continue;
    ValueId r = find_root(parent, target);
    int kind = g->nodes[r].op;
    bool free_after = grp_last[r] <= writer && kind != OP_INPUT && kind != OP_PARAM && kind != OP_PARAM_PACK;
    if (!free_after) {
      if (required) return DITC_ERR_INTERNAL; /* an accumulator someone still reads */
      continue;
    }
    ValueId me = find_root(parent, (ValueId)i);
    parent[me] = r;
    if (grp_last[me] > grp_last[r]) grp_last[r] = grp_last[me];
  }
  for (size_t i = 0; i < n; i++) {
    const Node *nd = &g->nodes[i];
    MemSlot *s = &mp->slots[i];
    s->root = find_root(parent, (ValueId)i);
    const Node *rn = &g->nodes[s->root];
    s->kind = (rn->op == OP_PARAM || rn->op == OP_PARAM_PACK) ? MEM_WEIGHTS : MEM_ARENA;
    s->bytes = value_bytes(nd, s->kind == MEM_WEIGHTS);
    if (s->bytes < 0) return DITC_ERR_LIMIT;
    /* an aux result is written when its source op runs */
    s->def = nd->op == OP_AUX ? nd->src[0] : (int32_t)i;
  }
  for (size_t i = 0; i < n; i++) mp->slots[i].last_use = grp_last[mp->slots[i].root];

  /* Weights: in graph order, 64-byte aligned; a pack's parts are adjacent. */
  for (size_t i = 0; i < n; i++) {
    MemSlot *s = &mp->slots[i];
    if (s->kind != MEM_WEIGHTS || s->root != (ValueId)i) continue;
    s->offset = align_up(mp->weight_bytes, 64);
    mp->weight_bytes = s->offset + s->bytes;
  }
  /* Parameter gradients: the gradient buffer mirrors the weight buffer. */
  for (size_t i = 0; i < n; i++) {
    const Node *nd = &g->nodes[i];
    if (nd->op != OP_PARAM_GRAD) continue;
    MemSlot *root = &mp->slots[mp->slots[i].root];
    const MemSlot *w = &mp->slots[nd->src[1]];
    if (root->kind != MEM_ARENA || root->bytes != w->bytes) return DITC_ERR_INTERNAL;
    root->kind = MEM_GRADS;
    root->offset = w->offset;
    mp->grad_bytes = mp->weight_bytes;
  }
  for (size_t i = 0; i < n; i++) {
    MemSlot *s = &mp->slots[i];
    if (s->root != (ValueId)i) s->kind = mp->slots[s->root].kind;
  }

  /* Arena: walk the nodes; before node i runs, free what died before it
   * (roots bucketed by last use), then place node i's result and the
   * non-aliased aux result it writes. */
  Placer p = {.arena = g->arena};
  ValueId *dies_head = arena_array(g->arena, n + 1, sizeof(ValueId));
  ValueId *dies_next = arena_array(g->arena, n, sizeof(ValueId));
  ValueId *aux_of = arena_array(g->arena, n, sizeof(ValueId));
  if (!dies_head || !dies_next || !aux_of) return DITC_ERR_NOMEM;
  for (size_t i = 0; i <= n; i++) dies_head[i] = -1;
  for (size_t i = 0; i < n; i++) aux_of[i] = -1;
  for (size_t i = 0; i < n; i++) {
    const MemSlot *s = &mp->slots[i];
    if (g->nodes[i].op == OP_AUX) aux_of[g->nodes[i].src[0]] = (ValueId)i;
    if (s->kind != MEM_ARENA || s->root != (ValueId)i || s->last_use >= (int32_t)n) continue;
    dies_next[i] = dies_head[s->last_use];
    dies_head[s->last_use] = (ValueId)i;
  }
  for (size_t i = 0; i < n; i++) {
    if (i > 0)
      for (ValueId j = dies_head[i - 1]; j >= 0; j = dies_next[j])
        if (release(&p, mp->slots[j].offset, align_up(mp->slots[j].bytes, MEMPLAN_ALIGN))) return DITC_ERR_NOMEM;
    /* an aux result was placed with its source op */
    ValueId here[2] = {g->nodes[i].op == OP_AUX ? -1 : (ValueId)i, aux_of[i]};
    for (int h = 0; h < 2; h++) {
      if (here[h] < 0) continue;
      MemSlot *s = &mp->slots[here[h]];
      if (s->kind != MEM_ARENA || s->root != here[h]) continue;
      int64_t sz = align_up(s->bytes, MEMPLAN_ALIGN);
      s->offset = place(&p, sz);
      mp->unplanned_bytes += sz;
      if (p.end > mp->arena_bytes) mp->arena_bytes = p.end;
    }
  }
  for (size_t i = 0; i < n; i++) {
    MemSlot *s = &mp->slots[i];
    if (s->root != (ValueId)i) s->offset = mp->slots[s->root].offset;
  }
  return DITC_OK;
}

static int by_def(const void *a, const void *b) {
  const MemSlot *x = *(const MemSlot *const *)a, *y = *(const MemSlot *const *)b;
  return (x->def > y->def) - (x->def < y->def);
}

DitcStatus memplan_check(const Graph *g, const MemPlan *mp, char *err, size_t err_bytes) {
  /* sweep the arena roots in order of definition, against the ones still live */
  size_t n_roots = 0;
  const MemSlot **roots = arena_array(g->arena, g->n_nodes + 1, sizeof(MemSlot *));
  const MemSlot **live = arena_array(g->arena, g->n_nodes + 1, sizeof(MemSlot *));
  if (!roots || !live) return DITC_ERR_NOMEM;
  for (size_t i = 0; i < g->n_nodes; i++) {
    const MemSlot *a = &mp->slots[i];
    if (a->kind != MEM_ARENA || a->root != (ValueId)i) continue;
    if (a->offset % MEMPLAN_ALIGN || a->offset < 0 || a->offset + a->bytes > mp->arena_bytes) {
      snprintf(err, err_bytes, "%%%zu is misaligned or outside the arena", i);
      return DITC_ERR_INTERNAL;
    }
    roots[n_roots++] = a;
  }
  qsort(roots, n_roots, sizeof roots[0], by_def);
  size_t n_live = 0;
  for (size_t r = 0; r < n_roots; r++) {
    const MemSlot *b = roots[r];
    size_t k = 0;
    for (size_t j = 0; j < n_live; j++)
      if (live[j]->last_use >= b->def) live[k++] = live[j];
    n_live = k;
    for (size_t j = 0; j < n_live; j++) {
      const MemSlot *a = live[j];
      if (a->offset < b->offset + b->bytes && b->offset < a->offset + a->bytes) {
        snprintf(err, err_bytes, "%%%d [%d,%d] and %%%d [%d,%d] overlap in the arena", a->root, a->def,
                 a->last_use, b->root, b->def, b->last_use);
        return DITC_ERR_INTERNAL;
      }
    }
    live[n_live++] = b;
  }
  return DITC_OK;
}
