/* cuda_launch.c: launch arithmetic and plan checks of the CUDA backend (see
 * cuda_launch.h). */
#include "cuda_launch.h"

#include "../../kernels/kernel_abi.h"

#include <string.h>

enum { MAX_BLOCK = 1024, MAX_GRID_X = 0x7fffffff, MAX_GRID_YZ = 65535 };

static void dims_set(CudaLaunchDims *d, int64_t x, int64_t y, int64_t z, uint32_t block) {
  d->grid[0] = (uint32_t)x;
  d->grid[1] = (uint32_t)y;
  d->grid[2] = (uint32_t)z;
  d->block = block;
}

int cuda_dims_elementwise(int64_t count, uint32_t block, CudaLaunchDims *d) {
  if (block < 1 || block > MAX_BLOCK || count < 1) return -1;
  int64_t blocks = (count + block - 1) / block;
  if (blocks > MAX_GRID_X) return -1;
  dims_set(d, blocks, 1, 1, block);
  return 0;
}

int cuda_dims_rows(int64_t rows, uint32_t block, CudaLaunchDims *d) {
  if (block < 32 || block > MAX_BLOCK || block % 32 || rows < 1 || rows > MAX_GRID_X) return -1;
  dims_set(d, rows, 1, 1, block);
  return 0;
}

int cuda_dims_attention(int64_t N, int64_t T, int64_t H, uint32_t block, int rows_per_warp, CudaLaunchDims *d) {
  if (block < 32 || block > MAX_BLOCK || block % 32 || N < 1 || T < 1 || H < 1 || rows_per_warp < 1) return -1;
  int64_t q = block / 32 * rows_per_warp, bx = (T + q - 1) / q;
  if (bx > MAX_GRID_X || H > MAX_GRID_YZ || N > MAX_GRID_YZ) return -1;
  dims_set(d, bx, H, N, block);
  return 0;
}

int cuda_dims_group_norm(int64_t N, int64_t groups, uint32_t block, CudaLaunchDims *d) {
  if (block < 32 || block > MAX_BLOCK || block % 32 || N < 1 || groups < 1 || groups > MAX_GRID_X ||
      N > MAX_GRID_YZ)
    return -1;
  dims_set(d, groups, N, 1, block);
  return 0;
}

int cuda_dims_conv2d(int64_t pixels, int64_t cout, int64_t bm, int64_t bn, uint32_t block, CudaLaunchDims *d) {
  if (bm < 4 || bn < 4 || bm % 4 || bn % 4 || block != bm * bn / 16 || block > MAX_BLOCK || pixels < 1 || cout < 1)
    return -1;
  int64_t bx = (pixels + bn - 1) / bn, by = (cout + bm - 1) / bm;
  if (bx > MAX_GRID_X || by > MAX_GRID_YZ) return -1;
  dims_set(d, bx, by, 1, block);
  return 0;
}

void cuda_gemm_shape(int64_t rows, int64_t K, int64_t M, CudaGemmShape *s) {
  s->trans_a = 1; /* row-major W[M, K] is column-major K x M: op_T gives M x K */
  s->trans_b = 0;
  s->a_rows = (uint64_t)K, s->a_cols = (uint64_t)M, s->a_ld = K;
  s->b_rows = (uint64_t)K, s->b_cols = (uint64_t)rows, s->b_ld = K;
  s->d_rows = (uint64_t)M, s->d_cols = (uint64_t)rows, s->d_ld = M;
}

uint32_t cuda_device_arch(int major, int minor) { return (uint32_t)(major * 100 + minor * 10); }

int cuda_pick_cubin(const PlanKernelImage *images, size_t n_images, uint32_t slot, uint32_t arch) {
  int best = -1;
  for (size_t i = 0; i < n_images; i++) {
    const PlanKernelImage *im = &images[i];
    if (im->slot != slot || im->arch == PLAN_ARCH_EMU) continue; /* never the emulated device's */
    if (im->arch == arch || im->arch == arch + 1) return (int)i; /* sm_90a on 9.0 */
    int same_major = im->arch / 100 == arch / 100, family = im->arch % 10 == 0;
    if (same_major && family && im->arch < arch && (best < 0 || im->arch > images[best].arch))
      best = (int)i;
  }
  return best;
}

int cuda_pick_ptx(const PlanKernelImage *images, size_t n_images, uint32_t slot, uint32_t arch) {
  int best = -1;
  for (size_t i = 0; i < n_images; i++) {
    const PlanKernelImage *im = &images[i];
    if (im->slot != slot || im->arch == PLAN_ARCH_EMU) continue;
    int ok = im->arch % 10 == 0 ? im->arch <= arch : im->arch == arch + 1;
    if (ok && (best < 0 || im->arch > images[best].arch)) best = (int)i;
  }
  return best;
}

int cuda_pick_emu(const PlanKernelImage *images, size_t n_images, uint32_t slot) {
  for (size_t i = 0; i < n_images; i++)
    if (images[i].slot == slot && images[i].arch == PLAN_ARCH_EMU) return (int)i;
  return -1;
}

uint32_t cuda_ptr_alignment(uint64_t addr) {
  uint32_t a = 1;
  while (a < 256 && addr % (2u * a) == 0) a *= 2;
  return a;
}

static uint64_t align256(uint64_t x) { return (x + 255) / 256 * 256; }

void cuda_stage_layout(int64_t rows, int64_t noise_floats, int64_t x_floats, CudaStageLayout *l) {
  l->params = 0;
  l->t = align256(l->params + sizeof(DitStepParams));
  l->y = align256(l->t + (uint64_t)rows * sizeof(int64_t));
  l->noise = align256(l->y + (uint64_t)rows * sizeof(int64_t));
  l->x = align256(l->noise + (uint64_t)noise_floats * sizeof(float));
  l->bytes = align256(l->x + (uint64_t)x_floats * sizeof(float));
}

int64_t cuda_value_dim(const PlanView *pv, uint32_t id, uint32_t k, int64_t n) {
  const PlanValue *v = &pv->values[id];
  return k == 0 && v->batch_major ? n : v->dims[k];
}

int64_t cuda_value_numel(const PlanView *pv, uint32_t id, int64_t n) {
  int64_t m = 1;
  for (uint32_t k = 0; k < pv->values[id].rank; k++) m *= cuda_value_dim(pv, id, k, n);
  return m;
}

uint64_t cuda_value_bytes(const PlanView *pv, uint32_t id, int64_t n) {
  uint32_t dt = pv->values[id].dtype;
  size_t elem = dt == PLAN_VDT_I64 ? sizeof(int64_t) : dt == PLAN_VDT_BF16 ? 2 : sizeof(float);
  return (uint64_t)cuda_value_numel(pv, id, n) * elem;
}

bool cuda_linear_scratch(const PlanView *pv, size_t i) {
  const PlanOp *op = &pv->ops[i];
  const PlanCudaView *cv = pv->cubin.h ? &pv->cubin : &pv->ptx;
  return op->kind == PLAN_OP_LINEAR && pv->values[op->out].dtype == PLAN_VDT_BF16 && cv->h &&
         cv->op_slot[i] != DIT_PLAN_NONE;
}

static bool is_bf16(const PlanView *pv, uint32_t id) { return pv->values[id].dtype == PLAN_VDT_BF16; }
static const char *dt_name(const PlanView *pv, uint32_t id) {
  return is_bf16(pv, id) ? "bf16" : pv->values[id].dtype == PLAN_VDT_I64 ? "int64" : "fp32";
}

/* Op i's operand dtypes are what its GEMM or kernel slot s takes. */
static DitStatus check_dtypes(const PlanView *pv, const PlanCudaView *cv, size_t i, uint32_t s, DitErr *err) {
  const PlanOp *op = &pv->ops[i];
  uint32_t want = (is_bf16(pv, op->out) ? PLAN_SLOT_OUT_BF16 : 0) | (op->n_in && is_bf16(pv, op->in[0]) ? PLAN_SLOT_IN_BF16 : 0);
  if (op->kind == PLAN_OP_LINEAR) {
    /* cuBLASLt: A and B of one type, a bf16 D from bf16 inputs only, the bias of D's type; an
     * activation kernel after it makes the bf16 result from the fp32 GEMM */
    bool scratch = cuda_linear_scratch(pv, i), x = is_bf16(pv, op->in[0]), w = is_bf16(pv, op->in[1]);
    bool d = is_bf16(pv, op->out) && !scratch;
    if (x != w || (is_bf16(pv, op->out) && !x) || is_bf16(pv, op->in[2]) != d)
      return dit_err(err, DIT_ERR_UNSUPPORTED, "op %zu (linear): x %s, W %s, bias %s, out %s is not a GEMM "
                     "cuBLASLt runs", i, dt_name(pv, op->in[0]), dt_name(pv, op->in[1]), dt_name(pv, op->in[2]),
                     dt_name(pv, op->out));
    want &= PLAN_SLOT_OUT_BF16; /* the activation kernel reads the fp32 scratch (or its own fp32 out) */
  } else {
    for (uint32_t k = 1; k < op->n_in; k++)
      if (is_bf16(pv, op->in[k]))
        return dit_err(err, DIT_ERR_UNSUPPORTED, "op %zu (%s): its input %u is bf16, which its kernel reads as "
                       "fp32", i, plan_op_name(op->kind), k);
    if (op->out2 != DIT_PLAN_NONE && is_bf16(pv, op->out2))
      return dit_err(err, DIT_ERR_UNSUPPORTED, "op %zu (%s): its second result is bf16", i, plan_op_name(op->kind));
  }
  if (s != DIT_PLAN_NONE && cv->slots[s].dtypes != want)
    return dit_err(err, DIT_ERR_UNSUPPORTED, "op %zu (%s): kernel %s takes operand dtypes %u, the op's are %u", i,
                   plan_op_name(op->kind), plan_string(pv, cv->slots[s].name), cv->slots[s].dtypes, want);
  return DIT_OK;
}

/* Images of the cubin section for a real GPU (not PLAN_ARCH_EMU's). */
static uint32_t real_images(const PlanCudaView *cv) {
  uint32_t n = 0;
  for (uint32_t i = 0; cv->h && i < cv->h->n_images; i++) n += cv->images[i].arch != PLAN_ARCH_EMU;
  return n;
}

DitStatus cuda_plan_check(const PlanView *pv, int emu, DitErr *err) {
  if (pv->train)
    return dit_err(err, DIT_ERR_UNSUPPORTED,
                   "training plans run on the CPU only for now; use --device cpu");
  const PlanCudaView *cv = pv->cubin.h ? &pv->cubin : &pv->ptx;
  if (emu) { /* every slot's emulated-device image, in the cubin section */
    int ok = pv->cubin.h != NULL;
    for (uint32_t s = 0; ok && s < pv->cubin.h->n_slots; s++)
      ok = cuda_pick_emu(pv->cubin.images, pv->cubin.h->n_images, s) >= 0;
    if (!ok)
      return dit_err(err, DIT_ERR_UNSUPPORTED, "the plan has no emulated-device kernels: compile it with ditc "
                     "--arch emu (with or without sm_XX)");
  } else if (!cv->h) {
    return dit_err(err, DIT_ERR_UNSUPPORTED,
                   "the plan has no GPU kernels: compile it with ditc --arch sm_80,sm_90");
  } else if (!pv->ptx.h && real_images(cv) == 0) {
    return dit_err(err, DIT_ERR_UNSUPPORTED, "the plan has kernels for the emulated device only (ditc --arch "
                   "emu): compile it with ditc --arch sm_80,sm_90 (emu may stay) for a GPU, or use --device emu");
  }
  for (size_t i = 0; i < pv->n_ops; i++) {
    const PlanOp *op = &pv->ops[i];
    uint32_t s = cv->op_slot[i];
    bool needs_slot = op->kind != PLAN_OP_LINEAR || plan_attrs_LINEAR(op).act == PLAN_ACT_SILU;
    if (needs_slot && (s == DIT_PLAN_NONE || s >= cv->h->n_slots))
      return dit_err(err, DIT_ERR_UNSUPPORTED, "op %zu (%s) has no GPU kernel in the plan", i, plan_op_name(op->kind));
    DitStatus st = check_dtypes(pv, cv, i, s, err);
    if (st) return st;
  }
  return DIT_OK;
}
