/* cpu_knobs.c: the knob space dit tune searches on the CPU backend
 * (PlanCpuKnob): per op, the threads it runs on and, for the GEMMs and the
 * attention, the tile shapes of cpu_linear.c and cpu_attention.c. Each
 * choice is distinct in effect at the op's shape: two knob settings that
 * give the same tiles and threads are listed once. */
#include <string.h>

#include "cpu_knobs.h"

enum { DEFAULT_TILE_ROWS = 256, DEFAULT_TILE_COLS_FEW_ROWS = 512 }; /* cpu_linear.c's */

/* cpu_linear's tile at these knobs (its rule). */
static void linear_tile(int64_t rows, int64_t M, int32_t tr, int32_t tc, int64_t *r, int64_t *c) {
  *r = tr > 0 ? tr : DEFAULT_TILE_ROWS;
  *c = tc > 0 ? tc : rows <= *r ? DEFAULT_TILE_COLS_FEW_ROWS : M;
  if (*r > rows) *r = rows;
  if (*c > M) *c = M;
}

/* Appends k unless a listed choice has the same effect (eff: its effect key). */
static void add(CpuKnobList *l, const int32_t k[4], const int64_t eff[3]) {
  for (int i = 0; i < l->count; i++)
    if (memcmp(l->effect[i], eff, sizeof l->effect[i]) == 0) return;
  if (l->count == CPU_KNOBS_MAX) return;
  memcpy(l->knobs[l->count], k, sizeof l->knobs[0]);
  memcpy(l->effect[l->count], eff, sizeof l->effect[0]);
  l->count++;
}

void cpu_knob_choices(const Executor *e, size_t i, int64_t n, CpuKnobList *out) {
  const PlanView *pv = e->pv;
  const PlanOp *op = &pv->ops[i];
  int T = e->cpu.n_threads;
  int threads[3] = {0, T >= 4 ? T / 2 : 0, T > 1 ? 1 : 0}; /* 0: the runtime's; then fewer */
  out->count = 0;
  if (op->kind == PLAN_OP_LINEAR) {
    uint32_t r = pv->values[op->in[0]].rank;
    int64_t K = exec_dim(e, op->in[0], r - 1, n), rows = exec_numel(e, op->in[0], n) / K;
    int64_t M = exec_dim(e, op->in[1], 0, n);
    /* the tile's rows alone, its columns alone, a few shapes of both; fewer threads at the default tile */
    static const int32_t tiles[][2] = {{0, 0},    {64, 0},    {128, 0},  {512, 0},   {1024, 0}, {0, 128},
                                       {0, 256},  {0, 512},   {0, 1024}, {64, 256},  {128, 512}, {512, 128}};
    for (int t = 0; t < 3; t++)
      for (size_t a = 0; a < sizeof tiles / sizeof tiles[0]; a++) {
        if ((t && !threads[t]) || (t && a)) continue;
        int32_t k[4] = {threads[t], tiles[a][0], tiles[a][1], 0};
        int64_t eff[3];
        linear_tile(rows, M, tiles[a][0], tiles[a][1], &eff[0], &eff[1]);
        eff[2] = threads[t] ? threads[t] : T;
        add(out, k, eff);
      }
    return;
  }
  if (op->kind == PLAN_OP_ATTENTION) {
    int64_t Tq = exec_dim(e, op->in[0], 1, n);
    static const int32_t qbs[] = {0, 32, 64, 128, 256};
    for (int t = 0; t < 3; t++)
      for (size_t a = 0; a < sizeof qbs / sizeof qbs[0]; a++) {
        if ((t && !threads[t]) || qbs[a] >= Tq) continue;
        int32_t k[4] = {threads[t], 0, 0, qbs[a]};
        int64_t eff[3] = {qbs[a] ? qbs[a] : Tq, 0, threads[t] ? threads[t] : T};
        add(out, k, eff);
      }
    return;
  }
  for (int t = 0; t < 3; t++) { /* every other op: its threads */
    if (t && !threads[t]) continue;
    int32_t k[4] = {threads[t], 0, 0, 0};
    int64_t eff[3] = {0, 0, threads[t] ? threads[t] : T};
    add(out, k, eff);
  }
}
