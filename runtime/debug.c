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
