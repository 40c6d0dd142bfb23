/* cuda_sample.c: one sampler step on the CUDA backend (the interface's
 * step, backend.h; the loop is sample/sampler.c's). Each step is one unit
 * of device work:
 *   [guidance: x rows [n, 2n) = x rows [0, n)]; t, y from the staging buffer;
 *   the forward; the step's noise from the staging buffer; guidance mix and
 *   DDPM/DDIM update (DitStepParams read from the staging buffer); x = x_next.
 * Step 0 runs eagerly (it also settles every cuBLASLt algorithm for this
 * run's rows); step 1 is captured into a CUDA graph, which then serves every
 * later step of the run (a choice applied mid-run, cuda_tune.c, drops it:
 * the next step runs eagerly and the one after records it again). Before each step the host writes the step's t, y,
 * noise and DitStepParams into the pinned staging buffer and one async copy
 * moves them to the device, outside the graph, so the host can prepare step
 * s+1 while the device runs step s. Nothing is allocated here but the graph. */
#include <string.h>

#include "cuda_internal.h"

/* The device work of one step (eager, or recorded into the graph). */
static DitStatus enqueue_step(CudaBackend *cb, int64_t n, int64_t rows, DitErr *err) {
  const PlanView *pv = cb->pv;
  const PlanIO *io = pv->io;
  const PlanModel *m = pv->model;
  const CudaStageLayout *l = &cb->layout;
  uint64_t xbytes = (uint64_t)(n * m->in_channels * m->latent_size * m->latent_size) * sizeof(float);
  CUdeviceptr x = cuda_value_ptr(cb, io->x);
  DitStatus st = rows > n ? cuda_copy_d2d(cb, x + xbytes, x, xbytes, err) : DIT_OK;
  /* t and y every step: the planner reuses their bytes once the embeddings have read them */
  if (!st) st = cuda_copy_d2d(cb, cuda_value_ptr(cb, io->t), cb->stage + l->t, (uint64_t)rows * 8, err);
  if (!st) st = cuda_copy_d2d(cb, cuda_value_ptr(cb, io->y), cb->stage + l->y, (uint64_t)rows * 8, err);
  if (!st) st = cuda_enqueue_ops(cb, 0, io->n_forward_ops, rows, 0, err);
  if (!st) st = cuda_copy_d2d(cb, cuda_value_ptr(cb, io->noise), cb->stage + l->noise, xbytes, err);
  if (!st) st = cuda_enqueue_ops(cb, io->n_forward_ops, pv->n_ops, n, cb->stage + l->params, err);
  if (!st) st = cuda_copy_d2d(cb, x, cuda_value_ptr(cb, io->x_next), xbytes, err);
  return st;
}

/* Records one step into the backend's graph and instantiates it. */
static DitStatus capture_step(CudaBackend *cb, int64_t n, int64_t rows, DitErr *err) {
  DitStatus st = DIT_OK;
  CU_TRY(&cb->drv, err, cuStreamBeginCapture(cb->stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL));
  cb->capturing = 1;
  st = enqueue_step(cb, n, rows, err);
  cb->capturing = 0;
  CUresult rc = cb->drv.cuStreamEndCapture(cb->stream, &cb->step_graph); /* always: the stream leaves capture */
  if (st) return st;
  if (rc != CUDA_SUCCESS) return cuda_error(&cb->drv, err, rc, "cuStreamEndCapture", __FILE__, __LINE__);
  CU_TRY(&cb->drv, err, cuGraphInstantiate(&cb->step_exec, cb->step_graph, 0));
  cb->step_rows = rows;
fail:
  return st;
}

void cuda_end_steps(Backend *b) {
  CudaBackend *cb = (CudaBackend *)(void *)b;
  if (cb->step_exec) cb->drv.cuGraphExecDestroy(cb->step_exec);
  if (cb->step_graph) cb->drv.cuGraphDestroy(cb->step_graph);
  cb->step_exec = NULL;
  cb->step_graph = NULL;
  cb->step_rows = 0;
}

DitStatus cuda_step(Backend *b, const BackendStep *s, int *finite, DitErr *err) {
  CudaBackend *cb = (CudaBackend *)(void *)b;
  const PlanModel *m = cb->pv->model;
  const CudaStageLayout *l = &cb->layout;
  uint64_t xbytes = (uint64_t)(s->n * m->in_channels * m->latent_size * m->latent_size) * sizeof(float);
  unsigned char *h = cb->host_stage;
  *finite = -1; /* the state stays on the device: checked when it is fetched */
  if (s->index == 0) { /* a new run: its rows may differ */
    cuda_end_steps(b);
    cb->regraph = 0;
  }
  DitStatus st = cuda_enter(cb, err);
  if (!st) st = cuda_wait_stage(cb, err); /* the last copy has read the staging buffer */
  if (st) return st;
  memcpy(h + l->t, s->t, (size_t)s->rows * 8);
  memcpy(h + l->y, s->y, (size_t)s->rows * 8);
  memcpy(h + l->noise, s->noise, xbytes);
  memcpy(h + l->params, s->params, sizeof *s->params);
  st = cuda_push_stage(cb, l->x, err); /* everything before the state's slot */
  /* recorded at step 1; again one eager step after apply() dropped it (that step settles cuBLASLt's
   * layouts for this run's rows, which the capture cannot) */
  int record = cb->use_graph && (s->index == 1 || cb->regraph == 2);
  if (cb->regraph) cb->regraph = cb->regraph == 1 ? 2 : 0;
  if (!st && record) st = capture_step(cb, s->n, s->rows, err);
  if (st) return st;
  if (cb->step_exec && cb->step_rows == s->rows) {
    CUresult rc = cb->drv.cuGraphLaunch(cb->step_exec, cb->stream);
    if (rc != CUDA_SUCCESS) st = cuda_error(&cb->drv, err, rc, "cuGraphLaunch", __FILE__, __LINE__);
    return st;
  }
  return enqueue_step(cb, s->n, s->rows, err);
}
