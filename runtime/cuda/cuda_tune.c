/* cuda_tune.c: autotuning on the CUDA backend (backend.h's device_key,
 * choices, apply and time_ops; the driver is tune/tune.c, the plan's
 * tunings are restored by tune/tune_apply.c).
 *
 * Two kinds of choice:
 *   PLAN_TUNE_SLOT: the kernel slot an op launches, its plan default or one
 *     of its candidates (ditc --tune-candidates, PlanView.candidates); every
 *     slot's module is loaded at open, so a change is one store into
 *     cb->op_slot, which every launch reads (cuda_exec.c).
 *   PLAN_TUNE_GEMM_ALGO: a linear op's cublasLtMatmulAlgo_t (its 64 bytes in
 *     PlanTuneChoice.algo), among the top algorithms cuBLASLt's heuristic
 *     returns for the op's descriptors and preference at the tuned rows,
 *     checked with cublasLtMatmulAlgoCheck when applied (cublaslt.h).
 * A GEMM algorithm is tuned for one row count: the rows of the op's last
 * GEMM choices() (dit tune asks for them, then applies them), else the rows
 * of the plan's tuning for this device (one per device; restored at open).
 * Applying a choice while the sampler holds a recorded step drops the graph
 * (cuda_sample.c records it again). Timing: two events recorded on the
 * stream around the ops, cuEventElapsedTime. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cuda_internal.h"

_Static_assert(sizeof(cublasLtMatmulAlgo_t) == sizeof(((PlanTuneChoice *)0)->algo),
               "a PlanTuneChoice holds a cublasLtMatmulAlgo_t's bytes");

void cuda_device_key(Backend *b, PlanTuning *key) {
  CudaBackend *cb = (CudaBackend *)(void *)b;
  CudaDriver *d = &cb->drv;
  memset(key, 0, sizeof *key);
  key->backend = cb->emu ? PLAN_TUNE_EMU : PLAN_TUNE_CUDA;
  key->arch = cb->arch / 10; /* cb->arch is major*100 + minor*10: the key is compute capability x 10 */
  int sms = 0, version = 0;
  if (d->cuDeviceGetName(key->device, (int)sizeof key->device, cb->dev) != CUDA_SUCCESS) key->device[0] = '\0';
  key->device[sizeof key->device - 1] = '\0';
  if (d->cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, cb->dev) == CUDA_SUCCESS && sms > 0)
    key->sm_count = (uint32_t)sms;
  if (d->cuDriverGetVersion(&version) == CUDA_SUCCESS && version > 0) key->driver_version = (uint32_t)version;
}

/* The GEMM rows of linear op i in a forward of n rows (as run_linear computes them). */
static int64_t gemm_rows(const CudaBackend *cb, size_t i, int64_t n) {
  const PlanOp *op = &cb->pv->ops[i];
  return cuda_value_numel(cb->pv, op->in[0], n) / cb->gemms[i].K;
}

static DitStatus slot_choices(CudaBackend *cb, size_t i, PlanTuneChoice *out, int max, int *count) {
  const PlanView *pv = cb->pv;
  uint32_t def = cb->cv->op_slot[i];
  size_t first = 0, n = 0;
  if (def == DIT_PLAN_NONE || max < 1) return DIT_OK;
  plan_op_candidates(pv, i, &first, &n);
  if (!n) return DIT_OK; /* nothing to choose */
  out[(*count)++] = (PlanTuneChoice){.op = (uint32_t)i, .kind = PLAN_TUNE_SLOT, .slot = def};
  for (size_t k = first; k < first + n && *count < max; k++)
    out[(*count)++] = (PlanTuneChoice){.op = (uint32_t)i, .kind = PLAN_TUNE_SLOT, .slot = pv->candidates[k].slot};
  return DIT_OK;
}

/* The heuristic's top algorithms, only deterministic ones: the preference
 * keeps the backend's reduction-scheme mask (lt_gemm_init: NONE,
 * COMPUTE_TYPE and, unless the result is bf16, OUTPUT_TYPE; never INPLACE).
 * cuBLASLt's reduction schemes (cublasLt.h, cublasLtReductionScheme_t):
 * NONE sums each dot product in one sequence; COMPUTE_TYPE and OUTPUT_TYPE
 * store the split-K partial sums in the workspace and reduce them in a
 * separate step, a fixed order; INPLACE accumulates them into the output
 * in the order the parts finish, which the backend leaves out since its
 * results must repeat bitwise (the cuBLAS documentation's "Results
 * reproducibility": bitwise equal run to run on the same architecture and
 * SM count for one configuration; split-K through atomics or in-place
 * reduction is where that would not hold). */
static DitStatus gemm_choices(CudaBackend *cb, size_t i, int64_t n, PlanTuneChoice *out, int max, int *count,
                              DitErr *err) {
  cublasLtMatmulAlgo_t algos[LT_MAX_ALGOS];
  int found = 0;
  if (cb->pv->ops[i].kind != PLAN_OP_LINEAR || max < 1) return DIT_OK;
  int64_t rows = gemm_rows(cb, i, n);
  DitStatus st = lt_gemm_algos(&cb->lt, &cb->gemms[i], rows, algos, max < LT_MAX_ALGOS ? max : LT_MAX_ALGOS, &found,
                               i, err);
  if (st) return st;
  cb->tune_rows[i] = n;
  for (int k = 0; k < found; k++) {
    PlanTuneChoice c = {.op = (uint32_t)i, .kind = PLAN_TUNE_GEMM_ALGO};
    memcpy(c.algo, &algos[k], sizeof c.algo);
    out[(*count)++] = c;
  }
  return DIT_OK;
}

DitStatus cuda_choices(Backend *b, size_t op, uint32_t kind, int64_t n, PlanTuneChoice *out, int max, int *count,
                       DitErr *err) {
  CudaBackend *cb = (CudaBackend *)(void *)b;
  *count = 0;
  if (op >= cb->pv->n_ops) return dit_err(err, DIT_ERR_INTERNAL, "choices for op %zu of %zu", op, cb->pv->n_ops);
  DitStatus st = cuda_enter(cb, err);
  if (st) return st;
  if (kind == PLAN_TUNE_SLOT) return slot_choices(cb, op, out, max, count);
  if (kind == PLAN_TUNE_GEMM_ALGO) return gemm_choices(cb, op, n, out, max, count, err);
  return DIT_OK; /* PLAN_TUNE_CPU_KNOBS and others: nothing here */
}

/* The forward rows a GEMM algorithm of op i is applied at (see the top). */
static int64_t apply_rows(CudaBackend *cb, size_t i) {
  if (cb->tune_rows[i] > 0) return cb->tune_rows[i];
  PlanTuning key;
  cuda_device_key(&cb->base, &key);
  for (size_t t = 0; t < cb->pv->n_tunings; t++) {
    const PlanTuning *pt = &cb->pv->tunings[t];
    if (pt->backend == key.backend && pt->arch == key.arch && pt->sm_count == key.sm_count &&
        pt->driver_version == key.driver_version && strncmp(pt->device, key.device, sizeof key.device) == 0)
      return pt->rows;
  }
  return 0;
}

static DitStatus apply_slot(CudaBackend *cb, const PlanTuneChoice *c, DitErr *err) {
  const PlanView *pv = cb->pv;
  uint32_t def = cb->cv->op_slot[c->op];
  size_t first = 0, n = 0;
  int known = def != DIT_PLAN_NONE && c->slot == def;
  plan_op_candidates(pv, c->op, &first, &n);
  for (size_t k = first; k < first + n && !known && def != DIT_PLAN_NONE; k++) known = pv->candidates[k].slot == c->slot;
  if (!known || c->slot >= cb->cv->h->n_slots)
    return dit_err(err, DIT_ERR_FORMAT, "op %u (%s): kernel slot %u is neither its default nor one of its %zu "
                   "candidates", c->op, plan_op_name(pv->ops[c->op].kind), c->slot, n);
  cb->op_slot[c->op] = c->slot;
  return DIT_OK;
}

static DitStatus apply_algo(CudaBackend *cb, const PlanTuneChoice *c, DitErr *err) {
  const PlanView *pv = cb->pv;
  if (pv->ops[c->op].kind != PLAN_OP_LINEAR)
    return dit_err(err, DIT_ERR_FORMAT, "op %u (%s) has no GEMM: a cuBLASLt algorithm was chosen for it", c->op,
                   plan_op_name(pv->ops[c->op].kind));
  int64_t n = apply_rows(cb, c->op);
  if (n <= 0)
    return dit_err(err, DIT_ERR_INTERNAL, "linear op %u: a cuBLASLt algorithm with no rows to apply it at (ask "
                   "choices() first, or restore it from the plan's tuning for this device)", c->op);
  cublasLtMatmulAlgo_t algo;
  memcpy(&algo, c->algo, sizeof algo);
  return lt_gemm_tune(&cb->lt, &cb->gemms[c->op], gemm_rows(cb, c->op, n), &algo, CUDA_WORKSPACE_BYTES, c->op, err);
}

DitStatus cuda_apply(Backend *b, const PlanTuneChoice *c, DitErr *err) {
  CudaBackend *cb = (CudaBackend *)(void *)b;
  if (c->op >= cb->pv->n_ops)
    return dit_err(err, DIT_ERR_FORMAT, "a tuning choice names op %u of %zu", c->op, cb->pv->n_ops);
  DitStatus st = cuda_enter(cb, err);
  if (st) return st;
  if (cb->capturing) return dit_err(err, DIT_ERR_INTERNAL, "op %u: a choice applied inside a graph capture", c->op);
  if (c->kind == PLAN_TUNE_SLOT) st = apply_slot(cb, c, err);
  else if (c->kind == PLAN_TUNE_GEMM_ALGO) st = apply_algo(cb, c, err);
  else return dit_err(err, DIT_ERR_FORMAT, "op %u: a choice of kind %u is not the CUDA backend's", c->op, c->kind);
  if (!st && cb->step_exec) { /* the recorded sampler step launches the old choice: record it again */
    cuda_end_steps(b);
    cb->regraph = 1;
  }
  return st;
}

DitStatus cuda_time_ops(Backend *b, size_t first, size_t end, int64_t n, double *ms, DitErr *err) {
  CudaBackend *cb = (CudaBackend *)(void *)b;
  float t = 0.0f;
  *ms = 0.0;
  if (!cb->drv.cuEventElapsedTime)
    return dit_err(err, DIT_ERR_UNSUPPORTED, "this CUDA driver has no cuEventElapsedTime: ops cannot be timed");
  DitStatus st = cuda_enter(cb, err);
  if (st) return st;
  CU_TRY(&cb->drv, err, cuEventRecord(cb->tick, cb->stream));
  st = cuda_enqueue_ops(cb, first, end, n, cb->stage + cb->layout.params, err);
  if (st) {
    cb->drv.cuStreamSynchronize(cb->stream); /* what was enqueued ends before the caller goes on */
    return st;
  }
  CU_TRY(&cb->drv, err, cuEventRecord(cb->tock, cb->stream));
  CU_TRY(&cb->drv, err, cuEventSynchronize(cb->tock));
  CU_TRY(&cb->drv, err, cuEventElapsedTime(&t, cb->tick, cb->tock));
  *ms = t;
fail:
  return st;
}
