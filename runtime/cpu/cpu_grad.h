/* cpu_grad.h: the CPU kernels of training plans: the diffusion loss and its
 * gradient, the backward of every fused forward op, and the AdamW+EMA update.
 * Same rules as cpu_ops.h: plain C, fixed tiles so results are bit-identical
 * at any thread count, no allocation (scratch from CpuCtx). "accumulate"
 * means the kernel adds into its output (gradient accumulation) instead of
 * overwriting it; "dmod" outputs always accumulate (the caller zeroes them). */
#ifndef DIT_RUNTIME_CPU_GRAD_H
#define DIT_RUNTIME_CPU_GRAD_H

#include <stdint.h>

#include "cpu_ops.h"

/* The training diffusion's per-timestep coefficients (dit-reference.md 3.2,
 * 3.7): float64 tables rounded to float32, indexed by t in [0, steps). */
typedef struct DitLossTable {
  int64_t steps;
  const float *sqrt_abar, *sqrt_1m_abar;           /* q_sample */
  const float *sqrt_recip_abar, *sqrt_recipm1_abar; /* x0 from eps */
  const float *post_coef1, *post_coef2;            /* posterior mean: coef1*x0 + coef2*x_t */
  const float *post_logvar;                        /* posterior log-variance, clipped (min_log) */
  const float *log_beta;                           /* max_log of the learned range */
} DitLossTable;

/* x_t [n, chw] = sqrt_abar[t] * x0 + sqrt_1m_abar[t] * noise. */
void cpu_q_sample(const CpuCtx *c, const float *x0, const float *noise, const int64_t *t, int64_t n,
                  int64_t chw, const DitLossTable *tab, float *xt);

/* Per-sample official loss [n] (dit-reference.md 3.7): mean over (C,H,W) of
 * (noise - eps)^2, plus, when learn_sigma, the VB term in bits (KL, or the
 * discretized-Gaussian NLL at t = 0) of the learned-range variance with eps
 * stopped. model_out [n, Cout, hw], Cout = 2C with learn_sigma, else C. */
void cpu_diffusion_loss(const CpuCtx *c, const float *x0, const float *xt, const float *noise,
                        const float *model_out, const int64_t *t, int64_t n, int64_t C, int64_t hw,
                        int learn_sigma, const DitLossTable *tab, float *loss);

/* dout [n, Cout, hw] = scale * d loss[i] / d model_out[i] (the gradient of
 * scale * sum_i loss[i]); eps gets the MSE term only (the VB term stops it). */
void cpu_diffusion_loss_bwd(const CpuCtx *c, const float *x0, const float *xt, const float *noise,
                            const float *model_out, const int64_t *t, int64_t n, int64_t C,
                            int64_t hw, int learn_sigma, const DitLossTable *tab, float scale,
                            float *dout);

/* y[i] = act(z[i]); act 1 GELU(tanh), 2 SiLU (0: copy). Same formulas as cpu_linear. */
void cpu_act(const CpuCtx *c, const float *z, int64_t n, int act, float *y);
/* dz[i] = dy[i] * act'(z[i]). */
void cpu_act_bwd(const CpuCtx *c, const float *dy, const float *z, int64_t n, int act, float *dz);

/* dx [rows, K] (= or +=) dz [rows, M] @ W [M, K]. */
void cpu_linear_bwd_data(const CpuCtx *c, const float *dz, int64_t rows, int64_t M, const float *W,
                         int64_t K, int accumulate, float *dx);
/* dW [M, K] = dz^T @ x over all rows; db [M] = column sums of dz (db may be NULL). */
void cpu_linear_bwd_params(const CpuCtx *c, const float *dz, int64_t rows, int64_t M, const float *x,
                           int64_t K, float *dW, float *db);

/* Backward of out = LN(x) * (1 + mod[n, scale_col..]) + mod[n, shift_col..]
 * (x, dy [N,T,D]; mod, dmod [N,M]): dx (= or +=); dmod's shift and scale
 * columns += their gradients. */
void cpu_ln_modulate_bwd(const CpuCtx *c, const float *dy, const float *x, int64_t N, int64_t T,
                         int64_t D, const float *mod, int64_t M, int64_t shift_col,
                         int64_t scale_col, double eps, int accumulate, float *dx, float *dmod);

/* Backward of r = x + gmod[n, gate_col..] * h (dr, h [N,T,D]; gmod, dmod
 * [N,M]): dh = dr * gate (overwritten); dmod's gate columns += sum_t dr * h.
 * (dx is dr itself.) */
void cpu_residual_gate_bwd(const CpuCtx *c, const float *dr, const float *h, int64_t N, int64_t T,
                           int64_t D, const float *gmod, int64_t M, int64_t gate_col, float *dh,
                           float *dmod);

/* dqkv [N, T, 3*H*hd] (= or +=) from dout, out [N, T, H*hd], qkv and lse
 * (cpu_attention's outputs):
 * the probabilities are recomputed from q, k and lse, never stored.
 * Scratch: 2*T*T floats per thread (CpuCtx.scratch_per_thread). */
void cpu_attention_bwd(const CpuCtx *c, const float *dout, const float *qkv, const float *out,
                       const float *lse, int64_t N, int64_t T, int64_t H, int64_t hd, double scale,
                       int accumulate, float *dqkv);

/* dtable [V, D] = 0, then dtable[ids[n]] += dout[n] in order of n. */
void cpu_embedding_bwd(const CpuCtx *c, const float *dout, int64_t N, int64_t D, const int64_t *ids,
                       int64_t V, float *dtable);

/* Backward of cpu_unpatchify: dout [N, C, g*p, g*p] -> dx [N, g*g, p*p*C], order (i, j, c). */
void cpu_unpatchify_bwd(const CpuCtx *c, const float *dout, int64_t N, int64_t g, int64_t p,
                        int64_t C, float *dx);

/* out [nb] (= or +=) sum over i < n/nb of a[i*nb + j]: the gradient of a broadcast operand. */
void cpu_sum_rows(const CpuCtx *c, const float *a, int64_t n, int64_t nb, int accumulate, float *out);

/* One AdamW step (PyTorch's torch.optim.AdamW, step counted from 1) on w[0, n)
 * from g, with first and second moments m, v. */
typedef struct AdamWParams {
  double lr, beta1, beta2, eps, weight_decay;
  int64_t step; /* 1 for the first update */
} AdamWParams;
void cpu_adamw(const CpuCtx *c, float *w, const float *g, float *m, float *v, int64_t n,
               const AdamWParams *p);
/* ema = decay * ema + (1 - decay) * w, as PyTorch's mul_(decay).add_(w, alpha=1-decay). */
void cpu_ema(const CpuCtx *c, float *ema, const float *w, int64_t n, double decay);

#endif
