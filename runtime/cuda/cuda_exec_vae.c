/* cuda_exec_vae.c: the launches of the VAE's ops on the CUDA backend
 * (kernels/vae.cuh, issue 13): group_norm (+ SiLU) one block per (group,
 * image), conv2d as an implicit GEMM on tiles of the slot's BM channels x BN
 * pixels, and the one-thread-per-element to_tokens, from_tokens and
 * latent_sample. Each fills its family's struct (kernels/kernel_abi.h) from
 * the op's shapes at n images; the loader has checked the slot's knobs
 * against the op (knobs_fit, plan_cuda.c). */
#include "../../kernels/kernel_abi.h"
#include "cuda_internal.h"

static int64_t vdim(const CudaBackend *cb, uint32_t id, uint32_t k, int64_t n) {
  return cuda_value_dim(cb->pv, id, k, n);
}

static DitStatus no_fit(size_t i, const char *what, DitErr *err) {
  return dit_err(err, DIT_ERR_INTERNAL, "op %zu: no %s launch fits its shape and the slot's block size", i, what);
}

static DitStatus run_group_norm(CudaBackend *cb, size_t i, uint32_t s, int64_t n, DitErr *err) {
  const PlanOp *op = &cb->pv->ops[i];
  PlanAttrs_GROUP_NORM a = plan_attrs_GROUP_NORM(op); /* x [N, C, H, W] */
  DitGroupNormArgs p = {.x = cuda_value_ptr(cb, op->in[0]), .gamma = cuda_value_ptr(cb, op->in[1]),
                        .beta = cuda_value_ptr(cb, op->in[2]), .out = cuda_value_ptr(cb, op->out),
                        .channels = vdim(cb, op->in[0], 1, n),
                        .hw = vdim(cb, op->in[0], 2, n) * vdim(cb, op->in[0], 3, n), .groups = a.groups,
                        .eps = (float)a.eps};
  void *args[] = {&p};
  CudaLaunchDims d;
  if (cuda_dims_group_norm(n, a.groups, cb->cv->slots[s].block_threads, &d)) return no_fit(i, "group_norm", err);
  return cuda_launch_slot(cb, s, &d, args, err);
}

static DitStatus run_conv2d(CudaBackend *cb, size_t i, uint32_t s, int64_t n, DitErr *err) {
  const PlanOp *op = &cb->pv->ops[i];
  const uint32_t *in = op->in; /* x [N, Cin, H, W], w [Cout, Cin, k, k], b [Cout] -> [N, Cout, Ho, Wo] */
  PlanAttrs_CONV2D a = plan_attrs_CONV2D(op);
  DitConv2dArgs p = {.x = cuda_value_ptr(cb, in[0]), .w = cuda_value_ptr(cb, in[1]), .b = cuda_value_ptr(cb, in[2]),
                     .out = cuda_value_ptr(cb, op->out), .n = n, .Cin = (int32_t)vdim(cb, in[0], 1, n),
                     .H = (int32_t)vdim(cb, in[0], 2, n), .W = (int32_t)vdim(cb, in[0], 3, n),
                     .Cout = (int32_t)vdim(cb, op->out, 1, n), .Ho = (int32_t)vdim(cb, op->out, 2, n),
                     .Wo = (int32_t)vdim(cb, op->out, 3, n), .stride = (int32_t)a.stride,
                     .pad_top = (int32_t)a.pad_top, .pad_left = (int32_t)a.pad_left, .up = (int32_t)a.upsample,
                     .alpha = (float)a.alpha};
  const PlanKernelSlot *sl = &cb->cv->slots[s];
  void *args[] = {&p};
  CudaLaunchDims d;
  if (cuda_dims_conv2d(n * p.Ho * p.Wo, p.Cout, sl->knobs[1], sl->knobs[2], sl->block_threads, &d))
    return no_fit(i, "conv2d", err);
  return cuda_launch_slot(cb, s, &d, args, err);
}

DitStatus cuda_run_vae_op(CudaBackend *cb, size_t i, int64_t n, DitErr *err) {
  const PlanOp *op = &cb->pv->ops[i];
  uint32_t s = cb->op_slot[i];
  if (s == DIT_PLAN_NONE) return dit_err(err, DIT_ERR_INTERNAL, "op %zu: no kernel slot", i);
  if (op->kind == PLAN_OP_GROUP_NORM) return run_group_norm(cb, i, s, n, err);
  if (op->kind == PLAN_OP_CONV2D) return run_conv2d(cb, i, s, n, err);
  long long count = cuda_value_numel(cb->pv, op->out, n); /* one thread per output element */
  CudaLaunchDims d;
  if (cuda_dims_elementwise(count, cb->cv->slots[s].block_threads, &d)) return no_fit(i, "elementwise", err);
  CUdeviceptr a = cuda_value_ptr(cb, op->in[0]), out = cuda_value_ptr(cb, op->out);
  if (op->kind == PLAN_OP_LATENT_SAMPLE) { /* moments [N, 2C, h, w], noise [N, C, h, w] */
    DitLatentSampleArgs p = {.moments = a, .noise = cuda_value_ptr(cb, op->in[1]), .out = out, .count = count,
                             .hw = vdim(cb, op->out, 2, n) * vdim(cb, op->out, 3, n),
                             .scale = plan_attrs_LATENT_SAMPLE(op).scale};
    void *args[] = {&p};
    return cuda_launch_slot(cb, s, &d, args, err);
  }
  /* to_tokens: x [N, C, H, W] -> [N, HW, C]; from_tokens: o [N, HW, C], residual [N, C, H, W] */
  int from = op->kind == PLAN_OP_FROM_TOKENS;
  uint32_t img = from ? op->in[1] : op->in[0];
  DitTokensArgs p = {.x = a, .residual = from ? cuda_value_ptr(cb, op->in[1]) : 0, .out = out, .count = count,
                     .hw = vdim(cb, img, 2, n) * vdim(cb, img, 3, n)};
  void *args[] = {&p};
  return cuda_launch_slot(cb, s, &d, args, err);
}
