/* memplan.c: weight layout, liveness, aliasing and best-fit arena placement
 * (see memplan.h). */
#include "memplan.h"

#include <stdio.h>
#include <string.h>

static int64_t align_up(int64_t x, int64_t a) { return (x + a - 1) / a * a; }

static int64_t value_bytes(const Node *n) {
  int64_t k = type_numel(&n->type);
  return k < 0 ? -1 : k * (n->type.dtype == DT_I64 ? 8 : 4);
}

static ValueId find_root(const ValueId *parent, ValueId v) {
  while (parent[v] != v) v = parent[v];
  return v;
}

/* Latest last use over every value that shares root r's bytes. */
static int32_t group_last_use(const Graph *g, const ValueId *parent, const int32_t *last_use,
                              ValueId r) {
  int32_t m = last_use[r];
  for (size_t j = (size_t)r; j < g->n_nodes; j++)
    if (find_root(parent, (ValueId)j) == r && last_use[j] > m) m = last_use[j];
  return m;
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

  /* Aliases. Views (reshape, output) share their source's bytes. The
   * residual aux of res_gate_ln_modulate overwrites its input x in place when
   * nothing reads x's bytes after the fused op. */
  ValueId *parent = arena_array(g->arena, n, sizeof(ValueId));
  if (!parent) return DITC_ERR_NOMEM;
  for (size_t i = 0; i < n; i++) {
    const Node *nd = &g->nodes[i];
    parent[i] = (nd->op == OP_RESHAPE || nd->op == OP_OUTPUT) ? nd->src[0] : (ValueId)i;
  }
  for (size_t i = 0; i < n; i++) {
    const Node *nd = &g->nodes[i];
    if (nd->op != OP_AUX) continue;
    ValueId fused = nd->src[0];
    ValueId r = find_root(parent, g->nodes[fused].src[0]);
    int kind = g->nodes[r].op;
    if (kind != OP_INPUT && kind != OP_PARAM && kind != OP_PARAM_PACK &&
        group_last_use(g, parent, last_use, r) == fused)
      parent[i] = r;
  }
  for (size_t i = 0; i < n; i++) {
    const Node *nd = &g->nodes[i];
    MemSlot *s = &mp->slots[i];
    s->bytes = value_bytes(nd);
    if (s->bytes < 0) return DITC_ERR_LIMIT;
    s->root = find_root(parent, (ValueId)i);
    const Node *rn = &g->nodes[s->root];
    s->kind = (rn->op == OP_PARAM || rn->op == OP_PARAM_PACK) ? MEM_WEIGHTS : MEM_ARENA;
    /* the residual aux is written when its fused op runs */
    s->def = nd->op == OP_AUX ? nd->src[0] : (int32_t)i;
  }
  for (size_t i = 0; i < n; i++) {
    MemSlot *s = &mp->slots[i];
    if (s->root == (ValueId)i) s->last_use = group_last_use(g, parent, last_use, (ValueId)i);
  }
  for (size_t i = 0; i < n; i++) mp->slots[i].last_use = mp->slots[mp->slots[i].root].last_use;

  /* Weights: in graph order, 64-byte aligned; a pack's parts are adjacent. */
  for (size_t i = 0; i < n; i++) {
    MemSlot *s = &mp->slots[i];
    if (s->kind != MEM_WEIGHTS || s->root != (ValueId)i) continue;
    s->offset = align_up(mp->weight_bytes, 64);
    mp->weight_bytes = s->offset + s->bytes;
  }

  /* Arena: walk the nodes; before node i runs, free what node i-1 read last,
   * then place node i's result (and an aux it writes). */
  Placer p = {.arena = g->arena};
  bool *placed = arena_array(g->arena, n, sizeof(bool));
  bool *released = arena_array(g->arena, n, sizeof(bool));
  if (!placed || !released) return DITC_ERR_NOMEM;
  for (size_t i = 0; i < n; i++) {
    for (size_t j = 0; j < i; j++) {
      MemSlot *r = &mp->slots[j];
      if (r->kind == MEM_ARENA && r->root == (ValueId)j && placed[j] && !released[j] &&
          r->last_use < (int32_t)i) {
        released[j] = true;
        if (release(&p, r->offset, align_up(r->bytes, MEMPLAN_ALIGN))) return DITC_ERR_NOMEM;
      }
    }
    for (size_t k = i; k < n; k++) {
      /* node i itself, then the non-aliased aux results it writes */
      if (k != i && !(g->nodes[k].op == OP_AUX && g->nodes[k].src[0] == (ValueId)i)) continue;
      MemSlot *s = &mp->slots[k];
      if (s->kind != MEM_ARENA || placed[k]) continue;
      placed[k] = true;
      if (s->root != (ValueId)k) continue; /* offsets of aliases are filled below */
      int64_t sz = align_up(s->bytes, MEMPLAN_ALIGN);
      s->offset = place(&p, sz);
      mp->unplanned_bytes += sz;
      if (p.end > mp->arena_bytes) mp->arena_bytes = p.end;
      if (k == i && g->nodes[i].op != OP_RES_GATE_LN_MODULATE) break;
    }
  }
  for (size_t i = 0; i < n; i++) {
    MemSlot *s = &mp->slots[i];
    if (s->root != (ValueId)i) s->offset = mp->slots[s->root].offset;
  }
  return DITC_OK;
}

DitcStatus memplan_check(const Graph *g, const MemPlan *mp, char *err, size_t err_bytes) {
  for (size_t i = 0; i < g->n_nodes; i++) {
    const MemSlot *a = &mp->slots[i];
    if (a->kind != MEM_ARENA || a->root != (ValueId)i) continue;
    if (a->offset % MEMPLAN_ALIGN || a->offset + a->bytes > mp->arena_bytes) {
      snprintf(err, err_bytes, "%%%zu is misaligned or outside the arena", i);
      return DITC_ERR_INTERNAL;
    }
    for (size_t j = i + 1; j < g->n_nodes; j++) {
      const MemSlot *b = &mp->slots[j];
      if (b->kind != MEM_ARENA || b->root != (ValueId)j) continue;
      bool live_together = a->def <= b->last_use && b->def <= a->last_use;
      bool overlap = a->offset < b->offset + b->bytes && b->offset < a->offset + a->bytes;
      if (live_together && overlap) {
        snprintf(err, err_bytes, "%%%zu [%d,%d] and %%%zu [%d,%d] overlap in the arena", i, a->def,
                 a->last_use, j, b->def, b->last_use);
        return DITC_ERR_INTERNAL;
      }
    }
  }
  return DITC_OK;
}
