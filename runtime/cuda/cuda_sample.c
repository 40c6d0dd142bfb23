/* cuda_sample.c: dit_sample on the CUDA backend. The loop of
 * sample/sampler.c, with each step as one unit of device work:
 *   [guidance: x rows [n, 2n) = x rows [0, n)]; t, y from the staging buffer;
 *   the forward; the step's noise from the staging buffer; guidance mix and
 *   DDPM/DDIM update (DitStepParams read from the staging buffer); x = x_next.
 * Step 0 runs eagerly (it also settles every cuBLASLt algorithm for this
 * run's rows); step 1 is captured into a CUDA graph, which then serves every
 * step. Before each step the host writes the step's t, noise and
 * DitStepParams into the pinned staging buffer and one async copy moves
 * them to the device, outside the graph; the host draws step s+1's noise
 * while the device runs step s. Nothing is allocated here but the graph. */
#include <string.h>

#include "cuda_internal.h"
#include "sample/rng.h"
#include "sample/schedule.h"

/* The device work of one step (eager, or recorded into the graph). */
static DitStatus enqueue_step(CudaBackend *cb, int64_t n, int64_t rows, int use_cfg, const CudaStageLayout *l,
                              DitErr *err) {
  const PlanView *pv = cb->pv;
  const PlanIO *io = pv->io;
  const PlanModel *m = pv->model;
  uint64_t xbytes = (uint64_t)(n * m->in_channels * m->latent_size * m->latent_size) * sizeof(float);
  CUdeviceptr x = cuda_value_ptr(cb, io->x);
  DitStatus st = use_cfg ? cuda_copy_d2d(cb, x + xbytes, x, xbytes, err) : DIT_OK;
  /* t and y every step: the planner reuses their bytes once the embeddings have read them */
  if (!st) st = cuda_copy_d2d(cb, cuda_value_ptr(cb, io->t), cb->stage + l->t, (uint64_t)rows * 8, err);
  if (!st) st = cuda_copy_d2d(cb, cuda_value_ptr(cb, io->y), cb->stage + l->y, (uint64_t)rows * 8, err);
  if (!st) st = cuda_enqueue_ops(cb, 0, io->n_forward_ops, rows, 0, 0, err);
  if (!st) st = cuda_copy_d2d(cb, cuda_value_ptr(cb, io->noise), cb->stage + l->noise, xbytes, err);
  if (!st) st = cuda_enqueue_ops(cb, io->n_forward_ops, pv->n_ops, n, cb->stage + l->params, 0, err);
  if (!st) st = cuda_copy_d2d(cb, x, cuda_value_ptr(cb, io->x_next), xbytes, err);
  return st;
}

/* Records one step into *graph and instantiates it. */
static DitStatus capture_step(CudaBackend *cb, int64_t n, int64_t rows, int use_cfg, const CudaStageLayout *l,
                              CUgraph *graph, CUgraphExec *exec, DitErr *err) {
  DitStatus st = DIT_OK;
  CU_TRY(&cb->drv, err, cuStreamBeginCapture(cb->stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL));
  cb->capturing = 1;
  st = enqueue_step(cb, n, rows, use_cfg, l, err);
  cb->capturing = 0;
  CUresult rc = cb->drv.cuStreamEndCapture(cb->stream, graph); /* always: the stream leaves capture mode */
  if (st) return st;
  if (rc != CUDA_SUCCESS) return cuda_error(&cb->drv, err, rc, "cuStreamEndCapture", __FILE__, __LINE__);
  CU_TRY(&cb->drv, err, cuGraphInstantiate(exec, *graph, 0));
fail:
  return st;
}

DitStatus cuda_backend_sample(CudaBackend *cb, const CudaSampleArgs *a, float *out, DitErr *err) {
  const DitSampleOptions *o = a->o;
  const DiffusionSchedule *sched = a->sched;
  const PlanView *pv = cb->pv;
  const PlanModel *m = pv->model;
  int64_t n = o->n, rows = a->use_cfg ? 2 * n : n;
  int64_t xs = m->in_channels * m->latent_size * m->latent_size; /* floats per image */
  CudaStageLayout l;
  cuda_stage_layout(rows, n * xs, n * xs, &l);
  unsigned char *h = cb->host_stage;
  int64_t *ht = (int64_t *)(void *)(h + l.t), *hy = (int64_t *)(void *)(h + l.y);
  float *hnoise = (float *)(void *)(h + l.noise), *hx = (float *)(void *)(h + l.x);
  CUgraph graph = NULL;
  CUgraphExec exec = NULL;
  DitStatus st = cuda_enter(cb, err);
  if (!st) st = cuda_wait_stage(cb, err);
  if (st) return st;

  /* labels, then the null rows under guidance; the state starts as the initial noise */
  memcpy(hy, o->labels, (size_t)n * sizeof(int64_t));
  for (int64_t i = 0; i < n && a->use_cfg; i++) hy[n + i] = a->null_class;
  if (o->noise) memcpy(hx, o->noise, (size_t)(n * xs) * sizeof(float));
  else dit_randn(o->seed, 0, hx, n * xs, a->threads);

  for (int s = 0; s < sched->n && !st; s++) {
    int k = sched->n - 1 - s; /* respaced index, from the noisiest */
    if (s) st = cuda_wait_stage(cb, err); /* step s-1's copy has read the staging buffer */
    if (st) break;
    for (int64_t r = 0; r < rows; r++) ht[r] = sched->timestep_map[k]; /* the original timestep */
    if (o->step_noise) memcpy(hnoise, o->step_noise + (int64_t)s * n * xs, (size_t)(n * xs) * sizeof(float));
    else dit_randn(o->seed, (uint64_t)s + 1, hnoise, n * xs, a->threads);
    DitStepParams p;
    schedule_step_params(sched, k, o->sampler == DIT_DDIM ? DIT_SAMPLER_DDIM : DIT_SAMPLER_DDPM, a->learn_sigma,
                         o->eta, &p);
    p.use_cfg = a->use_cfg;
    p.cfg_scale = o->cfg_scale;
    memcpy(h + l.params, &p, sizeof p);
    /* the first step also carries the initial state; later ones stop before x */
    st = cuda_push_stage(cb, s == 0 ? l.bytes : l.x, err);
    if (!st && s == 0)
      st = cuda_copy_d2d(cb, cuda_value_ptr(cb, pv->io->x), cb->stage + l.x, (uint64_t)(n * xs) * sizeof(float), err);
    if (st) break;
    if (s == 1 && cb->use_graph) st = capture_step(cb, n, rows, a->use_cfg, &l, &graph, &exec, err);
    if (st) break;
    if (exec) {
      CUresult rc = cb->drv.cuGraphLaunch(exec, cb->stream);
      if (rc != CUDA_SUCCESS) st = cuda_error(&cb->drv, err, rc, "cuGraphLaunch", __FILE__, __LINE__);
    } else {
      st = enqueue_step(cb, n, rows, a->use_cfg, &l, err);
    }
    if (!st && o->progress) o->progress(o->progress_ctx, s + 1, sched->n);
  }
  if (!st) {
    CUresult rc = cb->drv.cuMemcpyDtoHAsync(out, cuda_value_ptr(cb, pv->io->x), (size_t)(n * xs) * sizeof(float),
                                            cb->stream);
    if (rc == CUDA_SUCCESS) rc = cb->drv.cuStreamSynchronize(cb->stream);
    if (rc != CUDA_SUCCESS) {
      st = cuda_error(&cb->drv, err, rc, "sampling: cuStreamSynchronize", __FILE__, __LINE__);
      dit_err_context(err, "%s (DIT_CUDA_SYNC=1 DIT_CUDA_GRAPH=0 names the failing op)", cb->name);
    }
  } else {
    cb->drv.cuStreamSynchronize(cb->stream); /* nothing in flight reads the staging buffer any more */
  }
  if (exec) cb->drv.cuGraphExecDestroy(exec);
  if (graph) cb->drv.cuGraphDestroy(graph);
  return st;
}
