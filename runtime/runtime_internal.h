/* runtime_internal.h: the DitRuntime object, shared by the files that
 * implement the public API (runtime.c: loading and forward; sample/: the
 * samplers). Not installed; nothing outside runtime/ includes it. */
#ifndef DIT_RUNTIME_INTERNAL_H
#define DIT_RUNTIME_INTERNAL_H

#include "backend.h"
#include "dit/dit.h"
#include "executor.h"
#include "weights/dit_weights.h"

struct DitRuntime {
  PlanView pv;
  Executor ex;            /* the CPU executor; on a GPU only ex.weights (the host copy) is allocated */
  Backend *be;            /* what runs the plan: the CPU executor or a device (backend.h) */
  int on_cpu;             /* be is the CPU executor */
  int64_t *host_t, *host_y; /* [max_batch]: a call's timesteps and labels as the backend takes them */
  float *host_noise;      /* [max_batch, C, H, W]: a sampler step's noise */
  DitModelInfo info;
  int has_weights;
  int weights_dirty;      /* the host weights changed since the last upload */
  int64_t last_rows, last_n; /* the last run: rows of its forward, images of its sampler ops */
  DitErr err;
  DitLossTable loss_table; /* training plans: the training diffusion's coefficients */
  float *loss_floats;      /* their storage */
  /* autotuning (tune/): the tuning this device runs, from the plan or from dit_tune */
  PlanTuning tuning;       /* its key and figures; tuning.n_choices choices */
  PlanTuneChoice *tune_choices; /* owned */
  int tuned;               /* the device runs this tuning */
  char tuning_info[640];   /* dit_tuning_info's line */
  int vae;                 /* a plan of the vae family (vae.c) */
  DitVaeInfo vae_info;
};

/* VAE plans: their info, and the checkpoint binding (vae.c). */
void rt_vae_init(DitRuntime *rt);
DitStatus rt_vae_bind(DitRuntime *rt, const Checkpoint *ck, const WeightRequest *req, size_t n);

/* Applies the plan's tuning for rt's device, if it has one (tune/tune_apply.c). */
DitStatus rt_tuning_open(DitRuntime *rt, int ignore, DitErr *err);

/* Training plans: builds the loss table (runtime_train.c). */
DitStatus rt_train_init(DitRuntime *rt, DitErr *err);

/* Records st as the runtime's status (the message is already in rt->err). */
DitStatus rt_fail(DitRuntime *rt, DitStatus st);
/* Weights bound and 1 <= rows <= max_batch, else an error in rt->err. */
DitStatus rt_check_ready(DitRuntime *rt, int64_t rows);
/* Uploads the host weights when dit_weights_set changed them since the last upload. */
DitStatus rt_sync_weights(DitRuntime *rt);
/* Every label in [0, label_rows). */
DitStatus rt_check_labels(DitRuntime *rt, const int64_t *y, int64_t n);

#endif
