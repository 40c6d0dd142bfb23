/* nonfinite.c: NaN and infinity in results. The public calls check what
 * they return once per call (forward), step (sampling) or batch (loss); on
 * a failure the backend (CPU or GPU) re-runs the same ops one at a time over
 * the same inputs and names the first op whose result is not finite, with
 * the weight it read. Never on the hot path: the scan of a result is O(output), the
 * re-run happens only after a failure. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
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

/* Whether value id holds only finite floats at n rows (non-float values: yes). */
static DitStatus value_finite(Backend *be, const PlanView *pv, uint32_t id, int64_t n, int *finite, DitErr *err) {
  *finite = 1;
  if (id == DIT_PLAN_NONE || pv->values[id].dtype != PLAN_VDT_F32) return DIT_OK;
  const PlanValue *v = &pv->values[id];
  int64_t count = 1;
  for (uint32_t k = 0; k < v->rank; k++) count *= k == 0 && v->batch_major ? n : v->dims[k];
  float *buf = malloc((size_t)count * sizeof(float) + 1);
  if (!buf) return dit_err(err, DIT_ERR_NOMEM, "out of memory");
  DitStatus st = be->vt->fetch(be, id, n, buf, err);
  if (!st) *finite = rt_first_nonfinite(buf, count) < 0;
  free(buf);
  return st;
}

DitStatus rt_run_checked(Backend *be, const PlanView *pv, const NonfiniteRun *r, size_t *bad, DitErr *err) {
  size_t n_fwd = pv->io ? pv->io->n_forward_ops : pv->n_ops;
  BackendStage params = {.params = r->step};
  DitStatus st = r->step ? be->vt->stage(be, &params, err) : DIT_OK;
  *bad = SIZE_MAX;
  for (size_t i = r->begin; i < r->end && !st; i++) {
    const PlanOp *op = &pv->ops[i];
    int sampler = pv->io && i >= n_fwd, f1 = 1, f2 = 1;
    if (sampler && !r->update && op->kind != PLAN_OP_CFG_MIX) continue;
    int64_t n = sampler ? r->n_images : r->rows;
    st = be->vt->run(be, i, i + 1, n, err);
    if (!st) st = value_finite(be, pv, op->out, n, &f1, err);
    if (!st) st = value_finite(be, pv, op->out2, n, &f2, err);
    if (!st && (!f1 || !f2)) {
      *bad = i;
      break;
    }
  }
  return st;
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
