/* cuda_exec.c: the plan's ops on the device, and the forward entry points
 * of the CUDA backend. Each op launches its kernel slot's template
 * instantiation with its family's parameter struct (kernels/kernel_abi.h),
 * (cb->op_slot: the plan's, or a tuned candidate, cuda_tune.c), on a grid
 * computed from the op's shapes at this run's rows
 * (cuda_launch.h); a linear op is a cuBLASLt GEMM (cublaslt.h), followed by
 * the SiLU kernel when its activation is SiLU, and by the GELU kernel when
 * the plan gives it one (else GELU is the GEMM's epilogue); the VAE's ops
 * launch in cuda_exec_vae.c. Values move to
 * and from the host in cuda_weights.c. Inputs reach the arena from
 * the staging buffer: one host-to-device copy, then device copies. */
#include <inttypes.h>
#include <string.h>

#include "../../kernels/kernel_abi.h"
#include "cuda_internal.h"

static int64_t vdim(const CudaBackend *cb, uint32_t id, uint32_t k, int64_t n) {
  return cuda_value_dim(cb->pv, id, k, n);
}
static int64_t vnumel(const CudaBackend *cb, uint32_t id, int64_t n) { return cuda_value_numel(cb->pv, id, n); }

DitStatus cuda_launch_slot(CudaBackend *cb, uint32_t slot, const CudaLaunchDims *d, void **args, DitErr *err) {
  DitStatus st = DIT_OK;
  CU_TRY(&cb->drv, err, cuLaunchKernel(cb->funcs[slot], d->grid[0], d->grid[1], d->grid[2], d->block, 1, 1,
                                       cb->cv->slots[slot].smem_bytes, cb->stream, args, NULL));
fail:
  return st;
}

static DitStatus bad_shape(size_t i, const char *what, DitErr *err) {
  return dit_err(err, DIT_ERR_INTERNAL, "op %zu: no %s launch fits its shape and the slot's block size", i, what);
}

static DitStatus launch(CudaBackend *cb, uint32_t slot, const CudaLaunchDims *d, void **args, DitErr *err) {
  return cuda_launch_slot(cb, slot, d, args, err);
}

/* An elementwise kernel over `count` elements of slot s. */
static DitStatus launch_elementwise(CudaBackend *cb, size_t i, uint32_t s, int64_t count, void **args,
                                    DitErr *err) {
  CudaLaunchDims d;
  if (cuda_dims_elementwise(count, cb->cv->slots[s].block_threads, &d)) return bad_shape(i, "elementwise", err);
  return launch(cb, s, &d, args, err);
}

/* The GEMM of linear op i for n rows, then its activation kernel when its
 * slot has one (SiLU; GELU under --gelu-epilogue kernel): in place in fp32,
 * or from the fp32 scratch into a bf16 result. */
static DitStatus run_linear(CudaBackend *cb, size_t i, int64_t n, DitErr *err) {
  const PlanView *pv = cb->pv;
  const PlanOp *op = &pv->ops[i];
  uint32_t r = pv->values[op->in[0]].rank;
  int64_t K = vdim(cb, op->in[0], r - 1, n), rows = vnumel(cb, op->in[0], n) / K;
  CUdeviceptr y = cuda_value_ptr(cb, op->out), z = cuda_linear_scratch(pv, i) ? cb->act_scratch : y;
  DitStatus st = lt_gemm_run(&cb->lt, &cb->gemms[i], rows, cuda_value_ptr(cb, op->in[1]),
                             cuda_value_ptr(cb, op->in[0]), z, cb->workspace, CUDA_WORKSPACE_BYTES, cb->stream,
                             cb->capturing, i, err);
  uint32_t s = cb->op_slot[i];
  long long count = rows * cb->gemms[i].M;
  if (st || s == DIT_PLAN_NONE) return st;
  if (plan_attrs_LINEAR(op).act == PLAN_ACT_GELU_TANH) { /* a BIAS GEMM, then the plan's GELU kernel */
    DitGeluArgs ga = {.x = z, .out = y, .count = count};
    void *args[] = {&ga};
    return launch_elementwise(cb, i, s, count, args, err);
  }
  DitSiluArgs sa = {.x = z, .out = y, .count = count};
  void *args[] = {&sa};
  return launch_elementwise(cb, i, s, count, args, err);
}

/* Op i: forward ops for n rows, sampler ops for n images (DitStepParams at params). */
static DitStatus run_op(CudaBackend *cb, size_t i, int64_t n, CUdeviceptr params, DitErr *err) {
  const PlanOp *op = &cb->pv->ops[i];
  const uint32_t *in = op->in;
  if (op->kind == PLAN_OP_LINEAR) return run_linear(cb, i, n, err);
  uint32_t s = cb->op_slot[i];
  CUdeviceptr a = cuda_value_ptr(cb, in[0]), out = cuda_value_ptr(cb, op->out);
  long long count = vnumel(cb, op->out, n); /* one thread per output element */
  /* each family takes one struct by value (kernels/kernel_abi.h) */
  switch ((PlanOpKind)op->kind) {
  case PLAN_OP_PATCHIFY:   /* patchify_kernel<C,H,W,P> */
  case PLAN_OP_UNPATCHIFY: /* unpatchify_kernel<C,G,P> */
  {
    DitPatchArgs p = {.x = a, .out = out, .n = n};
    void *args[] = {&p};
    return launch_elementwise(cb, i, s, count, args, err);
  }
  case PLAN_OP_ADD: { /* add_kernel<NB> */
    DitAddArgs p = {.a = a, .b = cuda_value_ptr(cb, in[1]), .out = out, .count = count};
    void *args[] = {&p};
    return launch_elementwise(cb, i, s, count, args, err);
  }
  case PLAN_OP_SILU: {
    DitSiluArgs p = {.x = a, .out = out, .count = count};
    void *args[] = {&p};
    return launch_elementwise(cb, i, s, count, args, err);
  }
  case PLAN_OP_TIMESTEP_FREQ: { /* timestep_freq_kernel<HALF> */
    DitTimestepArgs p = {.t = a, .freqs = cb->freqs + cb->freq_offset[i], .out = out, .n = n};
    void *args[] = {&p};
    return launch_elementwise(cb, i, s, count, args, err);
  }
  case PLAN_OP_EMBEDDING: { /* embedding_kernel<D> */
    DitEmbeddingArgs p = {.table = a, .ids = cuda_value_ptr(cb, in[1]), .out = out, .n = n};
    void *args[] = {&p};
    return launch_elementwise(cb, i, s, count, args, err);
  }
  case PLAN_OP_LN_MODULATE:
  case PLAN_OP_RES_GATE_LN_MODULATE: { /* adaln_norm_kernel<D,THREADS,RESIDUAL> */
    int res = op->kind == PLAN_OP_RES_GATE_LN_MODULATE;
    uint32_t mod_id = res ? in[3] : in[1];
    PlanAttrs_LN_MODULATE lm = plan_attrs_LN_MODULATE(op); /* the residual kind's first attributes too */
    DitAdaLnArgs p = {.x = a, .mod = cuda_value_ptr(cb, mod_id), .out = out, .mod_cols = vdim(cb, mod_id, 1, n),
                      .shift_col = lm.shift_col, .scale_col = lm.scale_col, .tokens = vdim(cb, in[0], 1, n),
                      .eps = (float)lm.eps};
    if (res) {
      p.h = cuda_value_ptr(cb, in[1]);
      p.gmod = cuda_value_ptr(cb, in[2]);
      p.r = cuda_value_ptr(cb, op->out2);
      p.gmod_cols = vdim(cb, in[2], 1, n);
      p.gate_col = plan_attrs_RES_GATE_LN_MODULATE(op).gate_col;
    }
    void *args[] = {&p};
    CudaLaunchDims d;
    if (cuda_dims_rows(n * p.tokens, cb->cv->slots[s].block_threads, &d)) return bad_shape(i, "adaln_norm", err);
    return launch(cb, s, &d, args, err);
  }
  case PLAN_OP_ATTENTION: { /* attention_simt_kernel<HD,WARPS,BLOCK_N,BF16>, attention_mma_kernel<HD,WARPS,...> */
    PlanAttrs_ATTENTION at = plan_attrs_ATTENTION(op);
    DitAttentionArgs p = {.qkv = a, .out = out, .T = (int32_t)vdim(cb, in[0], 1, n), .H = (int32_t)at.heads,
                          .scale = (float)at.scale};
    void *args[] = {&p};
    CudaLaunchDims d;
    int rows_per_warp = cb->cv->slots[s].family == PLAN_KF_ATTENTION_MMA ? 16 : 1;
    if (cuda_dims_attention(n, p.T, p.H, cb->cv->slots[s].block_threads, rows_per_warp, &d))
      return bad_shape(i, "attention", err);
    return launch(cb, s, &d, args, err);
  }
  case PLAN_OP_CFG_MIX: { /* cfg_mix_kernel<C_OUT,HW> */
    DitCfgMixArgs p = {.out = a, .params = params, .dst = out, .n = n,
                       .guided = (int32_t)plan_attrs_CFG_MIX(op).guided_channels};
    void *args[] = {&p};
    return launch_elementwise(cb, i, s, count, args, err);
  }
  case PLAN_OP_DIFFUSION_STEP: { /* diffusion_step_kernel<C,HW,LEARN_SIGMA> */
    DitDiffusionStepArgs p = {.x = a, .model_out = cuda_value_ptr(cb, in[1]), .noise = cuda_value_ptr(cb, in[2]),
                              .params = params, .x_next = out, .n = n, .history = cuda_value_ptr(cb, in[3])};
    void *args[] = {&p};
    return launch_elementwise(cb, i, s, count, args, err);
  }
  case PLAN_OP_GROUP_NORM: /* group_norm_kernel<THREADS,SILU>: one block per (group, image) */
  case PLAN_OP_CONV2D:     /* conv2d_kernel<KS,BM,BN,BK> */
  case PLAN_OP_TO_TOKENS: case PLAN_OP_FROM_TOKENS: case PLAN_OP_LATENT_SAMPLE:
    return cuda_run_vae_op(cb, i, n, err); /* cuda_exec_vae.c */
  case PLAN_OP_LINEAR: case PLAN_OP_Q_SAMPLE: case PLAN_OP_DIFFUSION_LOSS: case PLAN_OP_LOSS_GRAD:
  case PLAN_OP_ZEROS: case PLAN_OP_ACT_GRAD: case PLAN_OP_LINEAR_GRAD_X: case PLAN_OP_LINEAR_GRAD_W:
  case PLAN_OP_LN_MODULATE_GRAD: case PLAN_OP_RESIDUAL_GATE_GRAD: case PLAN_OP_ATTENTION_GRAD:
  case PLAN_OP_EMBEDDING_GRAD: case PLAN_OP_UNPATCHIFY_GRAD: case PLAN_OP_SUM_ROWS:
    break;
  }
  return dit_err(err, DIT_ERR_INTERNAL, "op %zu: kind %u does not run on the CUDA backend", i, op->kind);
}

DitStatus cuda_enqueue_ops(CudaBackend *cb, size_t first, size_t end, int64_t n, CUdeviceptr params,
                           DitErr *err) {
  for (size_t i = first; i < end; i++) {
    DitStatus st = run_op(cb, i, n, params, err);
    if (!st && cb->sync_each_op && !cb->capturing) {
      CUresult rc = cb->drv.cuStreamSynchronize(cb->stream);
      if (rc != CUDA_SUCCESS) st = cuda_error(&cb->drv, err, rc, "cuStreamSynchronize (DIT_CUDA_SYNC)", __FILE__, __LINE__);
    }
    if (st) {
      dit_err_context(err, "plan op %zu (kind %u) on %s", i, cb->pv->ops[i].kind, cb->name);
      return st;
    }
  }
  return DIT_OK;
}

DitStatus cuda_copy_d2d(CudaBackend *cb, CUdeviceptr dst, CUdeviceptr src, uint64_t bytes, DitErr *err) {
  DitStatus st = DIT_OK;
  if (bytes) CU_TRY(&cb->drv, err, cuMemcpyDtoDAsync(dst, src, bytes, cb->stream));
fail:
  return st;
}

/* The interface's staging (backend.h): the given rows into the pinned
 * staging buffer, one copy to its device twin, then device copies into the
 * values. The previous copy must have read the buffer first. */
DitStatus cuda_stage(Backend *b, const BackendStage *s, DitErr *err) {
  CudaBackend *cb = (CudaBackend *)(void *)b;
  const PlanIO *io = cb->pv->io;
  const PlanModel *m = cb->pv->model;
  const CudaStageLayout *l = &cb->layout;
  uint64_t xs_bytes = (uint64_t)(m->in_channels * m->latent_size * m->latent_size) * sizeof(float);
  uint64_t r0 = (uint64_t)s->row0, rows = (uint64_t)s->rows;
  unsigned char *h = cb->host_stage;
  DitStatus st = cuda_enter(cb, err);
  if (!st) st = cuda_wait_stage(cb, err);
  if (st) return st;
  if (s->t) memcpy(h + l->t + r0 * 8, s->t, rows * 8);
  if (s->y) memcpy(h + l->y + r0 * 8, s->y, rows * 8);
  if (s->noise) memcpy(h + l->noise + r0 * xs_bytes, s->noise, rows * xs_bytes);
  if (s->x) memcpy(h + l->x + r0 * xs_bytes, s->x, rows * xs_bytes);
  if (s->params) memcpy(h + l->params, s->params, sizeof *s->params);
  st = cuda_push_stage(cb, l->bytes, err);
  if (!st && s->t) st = cuda_copy_d2d(cb, cuda_value_ptr(cb, io->t) + r0 * 8, cb->stage + l->t + r0 * 8, rows * 8, err);
  if (!st && s->y) st = cuda_copy_d2d(cb, cuda_value_ptr(cb, io->y) + r0 * 8, cb->stage + l->y + r0 * 8, rows * 8, err);
  if (!st && s->noise)
    st = cuda_copy_d2d(cb, cuda_value_ptr(cb, io->noise) + r0 * xs_bytes, cb->stage + l->noise + r0 * xs_bytes,
                       rows * xs_bytes, err);
  if (!st && s->x)
    st = cuda_copy_d2d(cb, cuda_value_ptr(cb, io->x) + r0 * xs_bytes, cb->stage + l->x + r0 * xs_bytes,
                       rows * xs_bytes, err);
  return st;
}

/* Ops [first, end); the sampler ops read the staged DitStepParams. */
DitStatus cuda_run(Backend *b, size_t first, size_t end, int64_t n, DitErr *err) {
  CudaBackend *cb = (CudaBackend *)(void *)b;
  DitStatus st = cuda_enter(cb, err);
  if (!st) st = cuda_enqueue_ops(cb, first, end, n, cb->stage + cb->layout.params, err);
  return st;
}
