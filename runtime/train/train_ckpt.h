/* train_ckpt.h: training checkpoints. One safetensors file per checkpoint,
 * RUN_DIR/checkpoints/NNNNNNN.safetensors, holding everything a resume
 * needs, under these names:
 *   model.<official key>       float32, every weight (pos_embed included)
 *   ema.<official key>         float32, the EMA of every weight
 *   opt.<official key>.exp_avg, opt.<official key>.exp_avg_sq
 *                              float32, AdamW's moments of every trained weight
 *   train.state                int64 [3]: step, seed, global batch
 *   train.hparams              float64 [6]: lr, beta1, beta2, eps, weight decay, EMA decay
 * (the random state is the seed and the step: every draw is counter-based).
 * Beside it, NNNNNNN-ema.safetensors holds the EMA weights alone under the
 * official keys: what `dit sample --weights` and PyTorch's
 * model.load_state_dict(safetensors.torch.load_file(...)) take. And
 * NNNNNNN.pt is a torch.save file (torch_save.h) of {"model": ..., "ema": ...},
 * float32 under the official keys (pos_embed included): train.py's
 * checkpoint without "opt" and "args", so DiT's sample.py --ckpt loads it
 * (find_model takes "ema"). It is for PyTorch only: resumes read the
 * .safetensors file. The file RUN_DIR/checkpoints/latest names the newest
 * step; it is written last. All writes are atomic. */
#ifndef DIT_RUNTIME_TRAIN_CKPT_H
#define DIT_RUNTIME_TRAIN_CKPT_H

#include <stdint.h>

#include "dit/dit.h"
#include "err.h"

typedef struct TrainState {
  DitRuntime *rt;              /* the training plan: names, shapes and offsets */
  float *w, *ema, *m, *v;      /* flat buffers of n_floats (the plan's weight layout) */
  int64_t n_floats;
  int64_t step;                /* optimizer steps taken */
  uint64_t seed;
  int64_t global_batch;
  double lr, beta1, beta2, eps, weight_decay, ema_decay;
} TrainState;

DitStatus train_ckpt_save(const char *run_dir, const TrainState *s, DitErr *err);

/* Loads RUN_DIR's latest checkpoint into s (its buffers allocated by the caller). */
DitStatus train_ckpt_load(const char *run_dir, TrainState *s, DitErr *err);

#endif
