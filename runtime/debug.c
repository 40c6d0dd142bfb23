/* debug.c: the hooks of dit/dit_debug.h, on the CPU arena or through the
 * CUDA backend. */
#include <string.h>

#include "dit/dit_debug.h"
#include "runtime_internal.h"

size_t dit_debug_num_ops(const DitRuntime *rt) { return rt->pv.n_ops; }

size_t dit_debug_num_forward_ops(const DitRuntime *rt) {
  return rt->pv.io ? rt->pv.io->n_forward_ops : rt->pv.train->n_loss_ops;
}

DitStatus dit_debug_op(const DitRuntime *rt, size_t i, uint32_t *kind, uint32_t *out, uint32_t *out2) {
  if (i >= rt->pv.n_ops) return DIT_ERR_ARG;
  const PlanOp *op = &rt->pv.ops[i];
  *kind = op->kind;
  *out = op->out;
  *out2 = op->out2;
  return DIT_OK;
}

/* The rows a value had in the last run: the forward's, unless only sampler
 * ops touch it (the mixed output, the noise, x_next: n images). */
static int64_t value_rows(const DitRuntime *rt, uint32_t id) {
  const PlanView *pv = &rt->pv;
  size_t n_fwd = dit_debug_num_forward_ops(rt);
  for (size_t i = 0; i < n_fwd; i++) {
    const PlanOp *op = &pv->ops[i];
    if (op->out == id || op->out2 == id) return rt->last_rows;
    for (uint32_t k = 0; k < op->n_in; k++)
      if (op->in[k] == id) return rt->last_rows;
  }
  return rt->last_n;
}

static int64_t value_bytes_at(const DitRuntime *rt, uint32_t id, int64_t n) {
  const PlanValue *v = &rt->pv.values[id];
  int64_t m = v->dtype == PLAN_VDT_I64 ? 8 : 4;
  for (uint32_t k = 0; k < v->rank; k++) m *= k == 0 && v->batch_major ? n : v->dims[k];
  return m;
}

uint64_t dit_debug_value_bytes(const DitRuntime *rt, uint32_t value_id) {
  if (value_id >= rt->pv.n_values || rt->last_rows < 1) return 0;
  return (uint64_t)value_bytes_at(rt, value_id, value_rows(rt, value_id));
}

DitStatus dit_debug_read_value(DitRuntime *rt, uint32_t value_id, float *dst) {
  if (value_id >= rt->pv.n_values)
    return rt_fail(rt, dit_err(&rt->err, DIT_ERR_ARG, "value %u is not in the plan (%zu values)", value_id,
                               rt->pv.n_values));
  if (rt->last_rows < 1)
    return rt_fail(rt, dit_err(&rt->err, DIT_ERR_ARG, "no forward has run yet"));
  int64_t n = value_rows(rt, value_id);
  return rt_fail(rt, rt->be->vt->fetch(rt->be, value_id, n, dst, &rt->err));
}

DitStatus dit_debug_poison(DitRuntime *rt) {
  return rt_fail(rt, rt->be->vt->poison(rt->be, &rt->err));
}

DitStatus dit_debug_stage_forward(DitRuntime *rt, int64_t rows, const float *x, const int64_t *t, const int64_t *y) {
  if (!rt->pv.io || rows < 1 || rows > rt->pv.header->max_batch)
    return rt_fail(rt, dit_err(&rt->err, DIT_ERR_ARG, "stage: %lld rows for a plan of %lld (or not a forward plan)",
                               (long long)rows, (long long)rt->pv.header->max_batch));
  BackendStage s = {.row0 = 0, .rows = rows, .x = x, .t = t, .y = y};
  DitStatus st = rt_check_ready(rt, rows); /* weights bound and uploaded, as a forward has them */
  if (!st) st = rt->be->vt->stage(rt->be, &s, &rt->err);
  if (!st) rt->last_rows = rows;
  return rt_fail(rt, st);
}

DitStatus dit_debug_run_ops(DitRuntime *rt, size_t first, size_t end) {
  if (rt->last_rows < 1 || first > end || end > dit_debug_num_forward_ops(rt))
    return rt_fail(rt, dit_err(&rt->err, DIT_ERR_ARG, "run_ops [%zu, %zu): nothing staged, or not forward ops", first,
                               end));
  return rt_fail(rt, rt->be->vt->run(rt->be, first, end, rt->last_rows, &rt->err));
}

DitStatus dit_debug_write_value(DitRuntime *rt, uint32_t value_id, const void *src) {
  if (value_id >= rt->pv.n_values || rt->last_rows < 1)
    return rt_fail(rt, dit_err(&rt->err, DIT_ERR_ARG, "write_value %u: no such value, or nothing run yet", value_id));
  return rt_fail(rt, rt->be->vt->put(rt->be, value_id, value_rows(rt, value_id), src, &rt->err));
}

DitStatus dit_debug_op_inputs(const DitRuntime *rt, size_t i, uint32_t ids[8], uint32_t *n_in) {
  if (i >= rt->pv.n_ops) return DIT_ERR_ARG;
  const PlanOp *op = &rt->pv.ops[i];
  *n_in = op->n_in < 8 ? op->n_in : 8;
  for (uint32_t k = 0; k < *n_in; k++) ids[k] = op->in[k];
  return DIT_OK;
}
