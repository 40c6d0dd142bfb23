/* cpu_optim.c: the parameter update of a training step: one AdamW step
 * (torch.optim.AdamW of PyTorch 1.13, foreach=False) and the EMA of the
 * weights (DiT's update_ema). Elementwise float32 in PyTorch's operation
 * order, every scalar computed in double and cast to float where PyTorch's
 * tensor-scalar ops cast it. Elementwise, so any split over threads gives the
 * same bits. Not here: gradient computation, the flat buffer layout. */
#include <math.h>

#include "cpu_grad.h"

void cpu_adamw(const CpuCtx *c, float *w, const float *g, float *m, float *v, int64_t n,
               const AdamWParams *p) {
  double bc1 = 1.0 - pow(p->beta1, (double)p->step); /* bias corrections, in double */
  double bc2 = 1.0 - pow(p->beta2, (double)p->step);
  /* param.mul_(1 - lr wd) */
  const float decay = (float)(1.0 - p->lr * p->weight_decay);
  /* exp_avg.mul_(b1).add_(g, alpha=1-b1); exp_avg_sq.mul_(b2).addcmul_(g, g, value=1-b2) */
  const float b1 = (float)p->beta1, one_m_b1 = (float)(1.0 - p->beta1);
  const float b2 = (float)p->beta2, one_m_b2 = (float)(1.0 - p->beta2);
  /* denom = (exp_avg_sq.sqrt() / sqrt(bc2)).add_(eps); param.addcdiv_(exp_avg, denom, value=-lr/bc1) */
  const float bc2_sqrt = (float)sqrt(bc2), eps = (float)p->eps;
  const float neg_step = (float)(-(p->lr / bc1));
#pragma omp parallel for num_threads(c->n_threads) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    float wi = w[i] * decay;
    float mi = m[i] * b1 + one_m_b1 * g[i];
    float vi = v[i] * b2 + one_m_b2 * g[i] * g[i];
    float denom = sqrtf(vi) / bc2_sqrt + eps;
    w[i] = wi + neg_step * mi / denom;
    m[i] = mi;
    v[i] = vi;
  }
}

void cpu_ema(const CpuCtx *c, float *ema, const float *w, int64_t n, double decay) {
  const float d = (float)decay, one_m_d = (float)(1.0 - decay);
#pragma omp parallel for num_threads(c->n_threads) schedule(static)
  for (int64_t i = 0; i < n; i++) ema[i] = ema[i] * d + one_m_d * w[i];
}
