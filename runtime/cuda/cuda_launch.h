/* cuda_launch.h: the pure arithmetic of the CUDA backend: launch grids per
 * kernel family, the cuBLASLt view of a linear op, which kernel image suits
 * a device, operand alignment, the layout of the input staging buffer, and
 * the plan-level checks. No device, driver or CUDA header is involved, so
 * tests/test_cuda_nodevice.c covers all of it on any machine. */
#ifndef DIT_RUNTIME_CUDA_LAUNCH_H
#define DIT_RUNTIME_CUDA_LAUNCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plan/plan_view.h"

typedef struct CudaLaunchDims {
  uint32_t grid[3];
  uint32_t block; /* threads per block (1-D blocks) */
} CudaLaunchDims;

/* One thread per element (embed.cuh, sampler_step.cuh): ceil(count / block)
 * blocks. Returns 0, or -1 when block is not in 1..1024, count < 1 or the
 * grid exceeds 2^31 - 1 blocks. */
int cuda_dims_elementwise(int64_t count, uint32_t block, CudaLaunchDims *d);
/* One block per token row (adaln_norm.cuh): `rows` blocks of `block`
 * threads, block a multiple of 32. */
int cuda_dims_rows(int64_t rows, uint32_t block, CudaLaunchDims *d);
/* The attention: grid (ceil(T / (WARPS rows_per_warp)), H, N), block 32 *
 * WARPS with WARPS = block / 32; N and H at most 65535. A warp takes one
 * query (attention_simt.cuh) or 16 (attention_mma.cuh). */
int cuda_dims_attention(int64_t N, int64_t T, int64_t H, uint32_t block, int rows_per_warp, CudaLaunchDims *d);

/* The VAE's kernels (kernels/vae.cuh): group_norm_kernel one block per
 * (group, image), grid (groups, N), block a multiple of 32; conv2d_kernel a
 * block per tile of bm output channels x bn output pixels (of all N Ho Wo),
 * grid (ceil(pixels / bn), ceil(cout / bm)), block bm * bn / 16. */
int cuda_dims_group_norm(int64_t N, int64_t groups, uint32_t block, CudaLaunchDims *d);
int cuda_dims_conv2d(int64_t pixels, int64_t cout, int64_t bm, int64_t bn, uint32_t block, CudaLaunchDims *d);

/* y[rows, M] = x[rows, K] @ W[M, K]^T in column-major terms (cublaslt.h):
 * D (d_rows x d_cols, ld d_ld) = op(A) * op(B). */
typedef struct CudaGemmShape {
  int trans_a, trans_b;
  uint64_t a_rows, a_cols; int64_t a_ld; /* W: K x M, ld K, transposed */
  uint64_t b_rows, b_cols; int64_t b_ld; /* x: K x rows, ld K */
  uint64_t d_rows, d_cols; int64_t d_ld; /* y: M x rows, ld M */
} CudaGemmShape;
void cuda_gemm_shape(int64_t rows, int64_t K, int64_t M, CudaGemmShape *s);

/* A device's architecture in plan.bin's terms: major * 100 + minor * 10. */
uint32_t cuda_device_arch(int major, int minor);
/* The cubin of `slot` that runs on a device of architecture `arch`: the
 * exact match (or its "a" target: 901 = sm_90a on a 9.0 device), else the newest image of the
 * same major version at or below the device's minor version (cubins are
 * binary-compatible upwards within a major version; "a" targets are not).
 * Returns its index into images, or -1 (then JIT the PTX). */
int cuda_pick_cubin(const PlanKernelImage *images, size_t n_images, uint32_t slot, uint32_t arch);
/* The PTX image of `slot` that a device of `arch` can JIT (image arch at
 * most the device's, "a" targets only on their own arch), or -1. Neither
 * picks the emulated device's image (PLAN_ARCH_EMU). */
int cuda_pick_ptx(const PlanKernelImage *images, size_t n_images, uint32_t slot, uint32_t arch);
/* The emulated device's image of `slot` (arch PLAN_ARCH_EMU, ditc --arch
 * emu), or -1: what the backend loads on --device emu. */
int cuda_pick_emu(const PlanKernelImage *images, size_t n_images, uint32_t slot);

/* The largest power of two, at most 256, dividing a device address. */
uint32_t cuda_ptr_alignment(uint64_t addr);

/* The staging buffer (pinned on the host, one copy of it on the device) for
 * one forward or sampler step of `rows` rows and `n` images of `xs` floats:
 *   params  DitStepParams
 *   t, y    int64 [rows]
 *   noise   float [n * xs] (0 for a plain forward)
 *   x       float [x_rows * xs]
 * each 256-byte aligned. A sampler step copies [0, x) (params, t, y, noise),
 * the first step and a forward copy [0, bytes). */
typedef struct CudaStageLayout {
  uint64_t params, t, y, noise, x, bytes;
} CudaStageLayout;
void cuda_stage_layout(int64_t rows, int64_t noise_floats, int64_t x_floats, CudaStageLayout *l);

/* The plan-level reasons a plan cannot run on the CUDA backend: a training
 * plan, a plan without GPU kernels (emu: without the emulated device's image
 * for every slot; a GPU: with only those), a forward op without a kernel
 * slot, operand dtypes that its GEMM or kernel does not take (bf16 plans).
 * DIT_ERR_UNSUPPORTED with the reason in err, else DIT_OK. */
DitStatus cuda_plan_check(const PlanView *pv, int emu, DitErr *err);

/* dims[k] and the element count of a value for a forward of n rows
 * (batch-major values scale dim 0), as the CPU executor computes them. */
int64_t cuda_value_dim(const PlanView *pv, uint32_t id, uint32_t k, int64_t n);
int64_t cuda_value_numel(const PlanView *pv, uint32_t id, int64_t n);
/* Bytes of a value at n rows. */
uint64_t cuda_value_bytes(const PlanView *pv, uint32_t id, int64_t n);
/* Linear op i's GEMM writes fp32 into the activation scratch, from which its
 * activation kernel (SiLU; GELU under ditc --gelu-epilogue kernel) writes
 * the op's bf16 result. */
bool cuda_linear_scratch(const PlanView *pv, size_t i);

#endif
