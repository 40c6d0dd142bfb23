/* nonfinite.c: NaN and infinity in results. The public calls check what
 * they return once per call (forward), step (sampling) or batch (loss); on
 * a failure the CPU backend re-runs the same ops one at a time over the same
 * inputs and names the first op whose result is not finite, with the weight
 * it read. Never on the hot path: the scan of a result is O(output), the
 * re-run happens only after a failure. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "nonfinite.h"

int64_t rt_first_nonfinite(const float *p, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (!isfinite(p[i])) return i;
  return -1;
}

/* A non-finite float in words: "NaN", "+inf" or "-inf". */
static const char *kind_of(float v) { return isnan(v) ? "NaN" : v > 0 ? "+inf" : "-inf"; }

/* The checkpoint name of a weight value, or NULL. */
static const char *weight_name(const PlanView *pv, uint32_t id) {
  const PlanValue *v = &pv->values[id];
  if (v->storage != PLAN_STORE_WEIGHTS) return NULL;
  for (size_t i = 0; i < pv->n_weights; i++)
    if (pv->weights[i].offset == v->offset) return plan_string(pv, pv->weights[i].name);
  return NULL;
}

static int value_finite(const Executor *e, uint32_t id, int64_t n) {
  if (id == DIT_PLAN_NONE || e->pv->values[id].dtype != PLAN_VDT_F32) return 1;
  return rt_first_nonfinite(exec_value(e, id), exec_numel(e, id, n)) < 0;
}

size_t rt_run_checked(const Executor *e, const NonfiniteRun *r) {
  const PlanView *pv = e->pv;
  size_t n_fwd = pv->io ? pv->io->n_forward_ops : pv->n_ops;
  for (size_t i = r->begin; i < r->end; i++) {
    const PlanOp *op = &pv->ops[i];
    int sampler = pv->io && i >= n_fwd;
    if (sampler && !r->update && op->kind != PLAN_OP_CFG_MIX) continue;
    int64_t n = sampler ? r->n_images : r->rows;
    exec_op(e, i, n, sampler ? r->step : NULL);
    if (!value_finite(e, op->out, n) || !value_finite(e, op->out2, n)) return i;
  }
  return SIZE_MAX;
}

DitStatus rt_nonfinite_error(DitErr *err, const PlanView *pv, const char *what, size_t op_index) {
  if (op_index == SIZE_MAX)
    return dit_err(err, DIT_ERR_NONFINITE, "%s is not finite (NaN or infinity); re-running the ops one by one "
                                           "did not reproduce it", what);
  const PlanOp *op = &pv->ops[op_index];
  const char *w = NULL;
  for (uint32_t k = 0; k < op->n_in && !w; k++) w = weight_name(pv, op->in[k]);
  return dit_err(err, DIT_ERR_NONFINITE, "%s is not finite: op %zu (%s%s%s%s) is the first to produce NaN or "
                                         "infinity", what, op_index, plan_op_name(op->kind),
                 w ? ", weight '" : "", w ? w : "", w ? "'" : "");
}

DitStatus rt_check_weights_finite(const PlanView *pv, const unsigned char *weights, DitErr *err) {
  for (size_t i = 0; i < pv->n_weights; i++) {
    const PlanWeight *w = &pv->weights[i];
    const float *p = (const float *)(weights + w->offset);
    int64_t k = rt_first_nonfinite(p, (int64_t)(w->bytes / sizeof(float)));
    if (k >= 0)
      return dit_err(err, DIT_ERR_WEIGHTS, "weight '%s' holds %s at element %lld: the checkpoint is corrupt or "
                                           "diverged", plan_string(pv, w->name), kind_of(p[k]), (long long)k);
  }
  return DIT_OK;
}
