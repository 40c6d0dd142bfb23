/* cpu_ops.h: the CPU kernels, one per plan op kind: plain, readable C (the
 * numerical reference of the project), GEMMs through OpenBLAS, parallel
 * loops through OpenMP. Work is split into tiles of fixed size, so results
 * are bit-identical whatever the thread count. Kernels never allocate:
 * scratch comes from the caller's workspace. Shapes are in the comments. */
#ifndef DIT_RUNTIME_CPU_OPS_H
#define DIT_RUNTIME_CPU_OPS_H

#include <stdint.h>

#include "../../kernels/kernel_abi.h"

typedef struct CpuCtx {
  int n_threads;
  float *scratch;          /* attention scores: n_threads * scratch_per_thread floats */
  int64_t scratch_per_thread;
  /* An op's tuned knobs (dit tune: PlanCpuKnob), 0 = the kernel's default. */
  int64_t tile_rows, tile_cols; /* cpu_linear's tile */
  int64_t q_block;              /* cpu_attention's query rows per task */
} CpuCtx;

/* x [N,C,H,W] -> out [N, (H/p)(W/p), C*p*p], patch vector order (c, i, j). */
/* x[i] = x rounded to bf16 (ties to even): a bf16 plan's stored result. */
void cpu_round_bf16(const CpuCtx *c, float *x, int64_t n);
void cpu_patchify(const CpuCtx *c, const float *x, int64_t N, int64_t C, int64_t H, int64_t W,
                  int64_t p, float *out);
/* x [N, g*g, p*p*C] -> out [N, C, g*p, g*p], token vector order (i, j, c). */
void cpu_unpatchify(const CpuCtx *c, const float *x, int64_t N, int64_t g, int64_t p, int64_t C,
                    float *out);
/* y [rows, M] = act(x [rows, K] @ W[M, K]^T + b[M]); act: 0 none, 1 GELU(tanh), 2 SiLU.
 * Tiles of c->tile_rows (default 256) rows; of c->tile_cols columns when set,
 * else all M columns, or 512 when the rows fit one tile (the conditioning GEMMs). */
void cpu_linear(const CpuCtx *c, const float *x, int64_t rows, int64_t K, const float *W, int64_t M,
                const float *b, int act, float *y);
/* out[i] = a[i] + b[i % nb], i < n. */
void cpu_add(const CpuCtx *c, const float *a, int64_t n, const float *b, int64_t nb, float *out);
void cpu_silu(const CpuCtx *c, const float *x, int64_t n, float *out);
/* t [N] -> out [N, 2*half] = [cos(t*f), sin(t*f)], f from dit_timestep_freqs. */
void cpu_timestep_freq(const CpuCtx *c, const int64_t *t, int64_t N, int64_t half,
                       double max_period, float *out);
/* out [N, D] = table[ids[n], :] (ids already validated). */
void cpu_embedding(const CpuCtx *c, const float *table, int64_t D, const int64_t *ids, int64_t N,
                   float *out);
/* out [N,T,D] = LN(x) * (1 + mod[n, scale_col..]) + mod[n, shift_col..]; mod [N, M]. */
void cpu_ln_modulate(const CpuCtx *c, const float *x, int64_t N, int64_t T, int64_t D,
                     const float *mod, int64_t M, int64_t shift_col, int64_t scale_col, double eps,
                     float *out);
/* r = x + gmod[n, gate_col..] * h; out = LN(r) * (1 + mod[scale]) + mod[shift].
 * r may be x itself (in place). */
void cpu_res_gate_ln_modulate(const CpuCtx *c, const float *x, const float *h, int64_t N,
                              int64_t T, int64_t D, const float *gmod, int64_t Mg,
                              int64_t gate_col, const float *mod, int64_t M, int64_t shift_col,
                              int64_t scale_col, double eps, float *r, float *out);
/* x [N, C, HW] -> out [N, C, HW]: torch.nn.GroupNorm(groups, C, eps) with its
 * affine gamma, beta [C]: each group of C/groups channels is normalised by
 * its mean and biased variance (in double) over those channels and HW; then
 * act (0 none, 2 SiLU). */
void cpu_group_norm(const CpuCtx *c, const float *x, int64_t N, int64_t C, int64_t hw, int64_t groups,
                    double eps, const float *gamma, const float *beta, int act, float *out);

/* conv2d's shapes: x [N, Cin, H, W] -> out [N, Cout, Ho, Wo], a k x k kernel
 * (1 or 3), stride 1 or 2, padding {top, left, bottom, right} of 0 or 1 each,
 * after a nearest upsampling by up (1 or 2). */
typedef struct CpuConvShape {
  int64_t N, Cin, H, W, Cout, Ho, Wo;
  int64_t k, stride, up, pad[4];
} CpuConvShape;
/* Output pixels per task of cpu_conv2d (its im2col block is [Cin*k*k, this]). */
#define CPU_CONV_TILE_PIXELS 512
/* out = alpha * (w [Cout, Cin, k, k] * x') + b [Cout], x' the upsampled and
 * padded x: im2col tiles of CPU_CONV_TILE_PIXELS pixels in the thread's
 * scratch, one sgemm each (none for a plain 1x1 convolution). */
void cpu_conv2d(const CpuCtx *c, const float *x, const CpuConvShape *s, const float *w, const float *b,
                double alpha, float *out);
/* Floats of scratch per thread that cpu_conv2d needs for these shapes. */
int64_t cpu_conv2d_scratch(const CpuConvShape *s);
/* x [N, C, hw] -> out [N, hw, C]. */
void cpu_to_tokens(const CpuCtx *c, const float *x, int64_t N, int64_t C, int64_t hw, float *out);
/* out [N, C, hw] = res [N, C, hw] + o [N, hw, C] transposed. */
void cpu_from_tokens(const CpuCtx *c, const float *o, const float *res, int64_t N, int64_t C, int64_t hw,
                     float *out);
/* out [N, C, hw] = scale * (mean + exp(clamp(logvar, -30, 20) / 2) * noise [N, C, hw]),
 * mean and logvar the two halves of moments [N, 2C, hw]. */
void cpu_latent_sample(const CpuCtx *c, const float *moments, const float *noise, int64_t N, int64_t C,
                       int64_t hw, double scale, float *out);
/* qkv [N, T, 3*H*hd] -> out [N, T, H*hd]: softmax(q k^T * scale) v per head,
 * one task per (row, head, block of c->q_block query rows; default all T).
 * lse [N, H, T], when not NULL (training), receives the natural log of each
 * query row's sum of exp(scaled scores), for the backward. */
void cpu_attention(const CpuCtx *c, const float *qkv, int64_t N, int64_t T, int64_t H, int64_t hd,
                   double scale, float *out, float *lse);

/* dst [n, C, H*W] = guided rows: channels < guided are unc + s * (cond - unc)
 * with cond = out[i], unc = out[n + i]; the rest are cond. Without guidance, a copy of out[0, n). */
void cpu_cfg_mix(const CpuCtx *c, const float *out, int64_t n, int64_t C, int64_t hw, int64_t guided,
                 const DitStepParams *p, float *dst);
/* x_next [n, C, hw] from x, the (mixed) model output [n, C or 2C, hw] and noise:
 * DDPM with learned-range or fixed variance, or DDIM (dit-reference.md 3.4-3.6),
 * or multistep DPM-Solver++, which writes this step's x0 into the history
 * [n, 3C, hw] and reads the last steps' (DitStepParams' dpm fields). */
void cpu_diffusion_step(const CpuCtx *c, const float *x, const float *model_out, const float *noise,
                        int64_t n, int64_t C, int64_t hw, int learn_sigma, const DitStepParams *p,
                        float *history, float *x_next);

#endif
