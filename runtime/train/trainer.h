/* trainer.h: `dit train`: the official train.py loop over a compiled
 * training plan (dit-reference.md 4.3): AdamW at a constant learning rate,
 * an EMA whose first update copies the weights, label dropout, t uniform in
 * [0, 1000), periodic logs and atomic checkpoints, bit-exact resume, and
 * data parallelism over the ranks of a Dist (MPI).
 *
 * Every random draw (the epoch's shuffle, each row's t, label dropout, flip
 * and noise) is a function of (seed, step, global row) through the
 * counter-based Philox of sample/rng.h. So the state to resume is the step
 * alone, and K ranks that each take B/K rows of a global batch of B see the
 * same rows as one rank taking all B. */
#ifndef DIT_RUNTIME_TRAIN_TRAINER_H
#define DIT_RUNTIME_TRAIN_TRAINER_H

#include <stdint.h>
#include <stdio.h>

#include "dist.h"
#include "err.h"

typedef struct TrainOptions {
  const char *plan_path;   /* a training plan (ditc --mode train) */
  const char *data_path;   /* a DITDATA file (dit data) */
  const char *init_path;   /* initial weights (a checkpoint), or NULL: the official init */
  const char *run_dir;     /* logs and checkpoints go here */
  int resume;              /* continue from run_dir's latest checkpoint */
  int overwrite;           /* a new run in a run_dir that holds files: its run files are removed first */
  int64_t steps;           /* train until this many optimizer steps in total */
  double lr, beta1, beta2, eps, weight_decay, ema_decay;
  uint64_t seed;
  int64_t global_batch;    /* rows per step over all ranks; 0: the plan's batch times the ranks */
  int64_t log_every, ckpt_every;
  const char *sample_plan; /* an inference plan of the same spec, for EMA sample grids (pixel models) */
  int64_t sample_every;
  const char *sample_steps; /* respacing of the sample grids ("100") */
  const char *dump_batches; /* write each step's rows (x0, t, y, noise .npy) here, for tests */
  int threads;
  FILE *out;               /* log lines (rank 0), also appended to run_dir/log.txt */
} TrainOptions;

/* Defaults of train.py: lr 1e-4, betas (0.9, 0.999), eps 1e-8, no weight
 * decay, EMA 0.9999, seed 0, log every 100 steps. */
void train_defaults(TrainOptions *o);

DitStatus train_run(const TrainOptions *o, Dist *dist, DitErr *err);

#endif
