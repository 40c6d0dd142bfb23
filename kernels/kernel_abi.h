/* kernel_abi.h: the runtime parameters of kernels, as plain structs that
 * both C (the CPU backend, the runtime) and CUDA (kernels/ templates, issue
 * #5) include. Shapes and attributes fixed at compile time live in the plan
 * and the templates' arguments; what a launch passes is one struct per
 * kernel family (Dit*Args below, by value), and what changes from step to
 * step inside a captured graph (the sampler's coefficients) a DitStepParams
 * in device memory. Every struct has a fixed size asserted below. */
#ifndef DIT_KERNELS_KERNEL_ABI_H
#define DIT_KERNELS_KERNEL_ABI_H

#if defined(__CUDACC_RTC__)
typedef int int32_t; /* NVRTC has no libc headers; only these fixed-width types are used */
typedef unsigned short uint16_t; /* bf16 elements, as bit patterns */
#else
#include <stdint.h>
#endif

typedef enum DitSamplerKind { DIT_SAMPLER_DDPM = 0, DIT_SAMPLER_DDIM = 1, DIT_SAMPLER_DPM = 2 } DitSamplerKind;

/* One step of the reverse diffusion at respaced index k, with every
 * coefficient gathered from the float64 tables and rounded to float32, as
 * the official sampler does (dit-reference.md 3.4-3.6). */
typedef struct DitStepParams {
  int32_t sampler;        /* DitSamplerKind */
  int32_t add_noise;      /* 0 at the last step (k == 0), else 1 */
  int32_t use_cfg;        /* 1: rows [n, 2n) of the model output are the unconditional ones */
  int32_t reserved0;
  float cfg_scale;
  float sqrt_recip_ac;    /* sqrt(1 / abar[k]) */
  float sqrt_recipm1_ac;  /* sqrt(1 / abar[k] - 1) */
  float post_coef1;       /* multiplies x0 in the posterior mean */
  float post_coef2;       /* multiplies x_t */
  float min_log;          /* learned range: posterior log variance (clipped) at k; fixed: the log variance */
  float max_log;          /* learned range: log(beta[k]) of the respaced process */
  float alpha_bar;        /* DDIM: abar[k] */
  float alpha_bar_prev;   /* DDIM: abar_prev[k] */
  float ddim_sigma;       /* DDIM: eta * sqrt((1-abp)/(1-ab)) * sqrt(1 - ab/abp), in float32 */
  float reserved1[2];
  /* DPM-Solver++ (multistep, data prediction): x0 = sqrt_recip_ac x - sqrt_recipm1_ac eps is
   * written into history slot dpm_write; then x_next = dpm_a x + dpm_b[0] x0 + dpm_b[1] m1 +
   * dpm_b[2] m2, with m1, m2 the x0 of the last two steps (slots dpm_m1, dpm_m2; read only when
   * their coefficient is used: dpm_order > 1, > 2). Coefficients from float64 (schedule_dpm.c). */
  int32_t dpm_order;      /* 1, 2 or 3: the update this step uses */
  int32_t dpm_write, dpm_m1, dpm_m2; /* history slots 0..2 */
  float dpm_a;
  float dpm_b[3];
  float reserved2[4];
} DitStepParams;

/* A device pointer: a typed pointer in a kernel, a CUdeviceptr (64 bits) on
 * the host, so that both sides lay the structs out alike. */
#if defined(__CUDACC__) || defined(__CUDACC_RTC__) || defined(DIT_KERNEL_SIDE)
#define DIT_DEVPTR(type) type *
#else
#define DIT_DEVPTR(type) unsigned long long
#endif

/* Pointers to `void` are to float, or to bf16 (16-bit patterns) where the
 * kernel's BF16 template flag says so: a bf16 plan's GEMM inputs. */

/* patchify_kernel and unpatchify_kernel: x -> out for n images. */
typedef struct DitPatchArgs {
  DIT_DEVPTR(const float) x;
  DIT_DEVPTR(void) out;         /* patchify: bf16 when OUT_BF16 */
  long long n;
} DitPatchArgs;

/* add_kernel: out[e] = a[e] + b[e % NB] for e < count. */
typedef struct DitAddArgs {
  DIT_DEVPTR(const float) a;
  DIT_DEVPTR(const float) b;
  DIT_DEVPTR(float) out;
  long long count;
} DitAddArgs;

/* silu_kernel: out = x * sigmoid(x) for count elements; out may be x (fp32). */
typedef struct DitSiluArgs {
  DIT_DEVPTR(const float) x;
  DIT_DEVPTR(void) out;         /* bf16 when OUT_BF16 */
  long long count;
} DitSiluArgs;

/* gelu_tanh_kernel: out = GELU_tanh(x) for count elements; out may be x (fp32). */
typedef struct DitGeluArgs {
  DIT_DEVPTR(const float) x;
  DIT_DEVPTR(void) out;         /* bf16 when OUT_BF16 */
  long long count;
} DitGeluArgs;

/* timestep_freq_kernel: t [n] and the host's frequency table -> out [n, 2*HALF]. */
typedef struct DitTimestepArgs {
  DIT_DEVPTR(const long long) t;
  DIT_DEVPTR(const float) freqs;
  DIT_DEVPTR(void) out;         /* bf16 when OUT_BF16 */
  long long n;
} DitTimestepArgs;

/* embedding_kernel: out [n, D] = table[ids]. */
typedef struct DitEmbeddingArgs {
  DIT_DEVPTR(const float) table;
  DIT_DEVPTR(const long long) ids;
  DIT_DEVPTR(float) out;
  long long n;
} DitEmbeddingArgs;

/* adaln_norm_kernel: r = x + gmod[.., gate_col..] * h (RESIDUAL; r may be x),
 * out = LN(r or x) * (1 + mod[.., scale_col..]) + mod[.., shift_col..]. */
typedef struct DitAdaLnArgs {
  DIT_DEVPTR(const float) x;
  DIT_DEVPTR(const float) h;    /* RESIDUAL only, else 0 */
  DIT_DEVPTR(const float) gmod; /* RESIDUAL only */
  DIT_DEVPTR(const float) mod;
  DIT_DEVPTR(float) r;          /* RESIDUAL only */
  DIT_DEVPTR(void) out;         /* bf16 when OUT_BF16 */
  long long gmod_cols, gate_col, mod_cols, shift_col, scale_col, tokens;
  float eps;
  int32_t reserved;
} DitAdaLnArgs;

/* attention_simt_kernel and attention_mma_kernel: qkv [N, T, 3*H*HD] -> out
 * [N, T, H*HD]; scale = 1/sqrt(HD). bf16 elements are uint16_t bit patterns. */
typedef struct DitAttentionArgs {
  DIT_DEVPTR(const void) qkv;   /* bf16 when BF16 (attention_mma: always) */
  DIT_DEVPTR(void) out;         /* the same type */
  int32_t T, H;
  float scale;
  int32_t reserved;
} DitAttentionArgs;

/* cfg_mix_kernel: the model output [rows, C_OUT, HW] -> the guided rows dst [n, C_OUT, HW]. */
typedef struct DitCfgMixArgs {
  DIT_DEVPTR(const float) out;
  DIT_DEVPTR(const DitStepParams) params; /* this step's, in device memory */
  DIT_DEVPTR(float) dst;
  long long n;
  int32_t guided;
  int32_t reserved;
} DitCfgMixArgs;

/* diffusion_step_kernel: x_t, the mixed model output, noise -> x_next;
 * DPM-Solver++ reads and writes the history [n, 3 C, H, W] (three x0 slots). */
typedef struct DitDiffusionStepArgs {
  DIT_DEVPTR(const float) x;
  DIT_DEVPTR(const float) model_out;
  DIT_DEVPTR(const float) noise;
  DIT_DEVPTR(const DitStepParams) params;
  DIT_DEVPTR(float) x_next;
  long long n;
  DIT_DEVPTR(float) history;
} DitDiffusionStepArgs;

/* group_norm_kernel: x [N, channels, hw] -> out: GroupNorm of `groups`
 * groups (gamma, beta [channels]), then SiLU when its SILU flag says. */
typedef struct DitGroupNormArgs {
  DIT_DEVPTR(const float) x;
  DIT_DEVPTR(const float) gamma;
  DIT_DEVPTR(const float) beta;
  DIT_DEVPTR(float) out;
  long long channels, hw, groups;
  float eps;
  int32_t reserved;
} DitGroupNormArgs;

/* conv2d_kernel: x [n, Cin, H, W], w [Cout, Cin, KS, KS], b [Cout] -> out
 * [n, Cout, Ho, Wo] = alpha * conv(x') + b, x' = x nearest-upsampled by up
 * (1 or 2) and zero-padded (pad_top, pad_left; the bottom and right pads
 * follow from Ho and Wo). */
typedef struct DitConv2dArgs {
  DIT_DEVPTR(const float) x;
  DIT_DEVPTR(const float) w;
  DIT_DEVPTR(const float) b;
  DIT_DEVPTR(float) out;
  long long n;
  int32_t Cin, H, W, Cout, Ho, Wo;
  int32_t stride, pad_top, pad_left, up;
  float alpha;
  int32_t reserved;
} DitConv2dArgs;

/* to_tokens_kernel: x [N, C, hw] -> out [N, hw, C]; from_tokens_kernel:
 * x = o [N, hw, C], residual [N, C, hw] -> out [N, C, hw]; count = numel(out). */
typedef struct DitTokensArgs {
  DIT_DEVPTR(const float) x;
  DIT_DEVPTR(const float) residual; /* from_tokens only, else 0 */
  DIT_DEVPTR(float) out;
  long long count, hw;
} DitTokensArgs;

/* latent_sample_kernel: moments [N, 2C, hw], noise [N, C, hw] -> out [N, C, hw]. */
typedef struct DitLatentSampleArgs {
  DIT_DEVPTR(const float) moments;
  DIT_DEVPTR(const float) noise;
  DIT_DEVPTR(float) out;
  long long count, hw;
  double scale;
} DitLatentSampleArgs;

#ifdef __cplusplus
#define DIT_ABI_ASSERT(cond, what) static_assert(cond, what)
#else
#define DIT_ABI_ASSERT(cond, what) _Static_assert(cond, what)
#endif
DIT_ABI_ASSERT(sizeof(DitStepParams) == 112, "DitStepParams layout");
DIT_ABI_ASSERT(sizeof(DitPatchArgs) == 24, "DitPatchArgs layout");
DIT_ABI_ASSERT(sizeof(DitAddArgs) == 32, "DitAddArgs layout");
DIT_ABI_ASSERT(sizeof(DitSiluArgs) == 24, "DitSiluArgs layout");
DIT_ABI_ASSERT(sizeof(DitGeluArgs) == 24, "DitGeluArgs layout");
DIT_ABI_ASSERT(sizeof(DitTimestepArgs) == 32, "DitTimestepArgs layout");
DIT_ABI_ASSERT(sizeof(DitEmbeddingArgs) == 32, "DitEmbeddingArgs layout");
DIT_ABI_ASSERT(sizeof(DitAdaLnArgs) == 104, "DitAdaLnArgs layout");
DIT_ABI_ASSERT(sizeof(DitAttentionArgs) == 32, "DitAttentionArgs layout");
DIT_ABI_ASSERT(sizeof(DitCfgMixArgs) == 40, "DitCfgMixArgs layout");
DIT_ABI_ASSERT(sizeof(DitDiffusionStepArgs) == 56, "DitDiffusionStepArgs layout");
DIT_ABI_ASSERT(sizeof(DitGroupNormArgs) == 64, "DitGroupNormArgs layout");
DIT_ABI_ASSERT(sizeof(DitConv2dArgs) == 88, "DitConv2dArgs layout");
DIT_ABI_ASSERT(sizeof(DitTokensArgs) == 40, "DitTokensArgs layout");
DIT_ABI_ASSERT(sizeof(DitLatentSampleArgs) == 48, "DitLatentSampleArgs layout");
#undef DIT_ABI_ASSERT

#endif
