/* dit/dit.h: the public C API of the ditc runtime. Load a compiled plan
 * (plan.bin, made by `ditc SPEC -o PLAN`), bind the weights of a checkpoint,
 * and run forward passes. Everything is allocated when the plan and the
 * weights load; dit_forward allocates nothing.
 *
 *   DitError err;
 *   DitRuntime *rt;
 *   if (dit_open("s2.plan", NULL, &rt, &err) != DIT_OK) { puts(err.message); ... }
 *   if (dit_load_weights(rt, "DiT-S-2.pt") != DIT_OK) { puts(dit_last_error(rt)); ... }
 *   dit_forward(rt, n, x, t, y, out);
 *   dit_close(rt);
 */
#ifndef DIT_DIT_H
#define DIT_DIT_H

#include <stddef.h>
#include <stdint.h>

#include "dit/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct DitRuntime DitRuntime;

typedef struct DitError {
  DitStatus status;
  char message[1024];
} DitError;

typedef struct DitOptions {
  int n_threads;      /* CPU threads; 0 = one per online core */
  const char *device; /* "cpu" (default), "cuda", "emu" or "auto": the GPU when it can run the
                       * plan (compiled with ditc --arch), else the CPU, and dit_last_error says
                       * why. "emu": the CUDA backend on the emulated device (libdit_emu.so,
                       * tools/emu: the CPU runs the plan's kernels, compiled with ditc --arch emu) */
  /* The CUDA backend's settings (ignored on the CPU). All zero: the defaults.
   * The dit CLI takes them from DIT_CUDA_DEVICE, DIT_CUDA_SYNC, DIT_CUDA_GRAPH,
   * DIT_CUDA_DRIVER_LIB and DIT_CUBLASLT_LIB (cuda), DIT_EMU_LIB (emu: both libraries). */
  int cuda_device;    /* the device ordinal (0: the first) */
  int cuda_sync;      /* 1: wait after every op, so that a failure names its op (slow) */
  int cuda_no_graph;  /* 1: run the sampler's steps eagerly instead of replaying a CUDA graph */
  /* The libraries the CUDA backend loads, as paths for dlopen; NULL: the default.
   * "cuda": libcuda.so.1, and the cuBLASLt that suits the driver's version (libcublasLt.so.13
   * or .so.12 on the loader's path, in /usr/local/cuda/lib64 or in PyTorch's pip wheels).
   * "emu": both libdit_emu.so (one set: the other follows it), else the one next to the
   * runtime's shared object or executable, else in the install libdir, else in the build tree. */
  const char *cuda_driver_lib;
  const char *cublaslt_lib;
  int no_tuning;      /* 1: ignore the plan's tunings (dit tune) and run every op's defaults */
} DitOptions;

/* What a loaded plan computes. Shapes of one forward with n rows:
 *   x   float32 [n, in_channels, latent_size, latent_size]
 *   t   int64   [n]  timesteps on the original 0..999 scale
 *   y   int64   [n]  labels 0..num_classes-1, or num_classes (the null class) when has_null_class
 *   out float32 [n, out_channels, latent_size, latent_size] */
typedef struct DitModelInfo {
  const char *name;
  int64_t image_size, latent_size, in_channels, out_channels;
  int64_t num_classes, guided_channels, patch_size, hidden_size, depth, num_heads;
  int64_t max_batch;    /* rows one forward may run */
  int has_null_class;
  int learn_sigma;
  uint64_t arena_bytes, weight_bytes;
  int training;          /* a training plan (ditc --mode train) */
  double class_dropout;  /* label dropout probability in training */
} DitModelInfo;

DitStatus dit_open(const char *plan_path, const DitOptions *opts, DitRuntime **out, DitError *err);

/* "ditrt 0.1.0": the library's version (libditrt.so, libditrt.a). */
const char *dit_version(void);
DitStatus dit_load_weights(DitRuntime *rt, const char *checkpoint_path);
const DitModelInfo *dit_model_info(const DitRuntime *rt);
const char *dit_device_name(const DitRuntime *rt);

/* One forward pass of n rows, 1 <= n <= max_batch. */
DitStatus dit_forward(DitRuntime *rt, int64_t n, const float *x, const int64_t *t,
                      const int64_t *y, float *out);

/* The official forward_with_cfg: x and y hold the n conditional rows; the
 * runtime adds the n null-class rows itself (2n <= max_batch). out receives
 * the n guided rows: channels below guided_channels are
 * uncond + scale * (cond - uncond), the rest are the conditional outputs. */
DitStatus dit_forward_cfg(DitRuntime *rt, int64_t n, const float *x, const int64_t *t,
                          const int64_t *y, float cfg_scale, float *out);

/* Sampling, as the official sample.py / sample_ddp.py do it (dit-reference.md 3, 4). */
/* DIT_DPM_SOLVER: multistep DPM-Solver++ as diffusers' DPMSolverMultistepScheduler
 * (dpmsolver++, midpoint, lower_order_final, final sigma zero, linspace timesteps) */
typedef enum DitSampler { DIT_DDPM = 0, DIT_DDIM = 1, DIT_DPM_SOLVER = 2 } DitSampler;

typedef struct DitSampleOptions {
  int64_t n;                /* images; 2n rows must fit the plan with guidance, n without */
  const int64_t *labels;    /* [n] class labels */
  DitSampler sampler;
  const char *steps;        /* respacing: "250", "25", "10,20,30", "ddim50"; NULL = "250";
                               DPM-Solver++: a step count ("20"; NULL = "20") */
  double eta;               /* DDIM only; 0 = deterministic */
  float cfg_scale;          /* guidance when > 1 (the batch is doubled); <= 1: the plain forward */
  uint64_t seed;            /* noise: stream 0 = initial latents, stream s + 1 = step s */
  const float *noise;       /* optional [n, C, H, W] initial latents, instead of the seed's */
  const float *step_noise;  /* optional [steps, n, C, H, W]: slice s is used by the s-th step executed */
  void (*progress)(void *ctx, int step, int steps); /* after every step; may be NULL */
  void *progress_ctx;
  int dpm_order;            /* DPM-Solver++: solver order 1, 2 or 3 (0: 2) */
  int dpm_karras;           /* DPM-Solver++: Karras sigmas (diffusers' use_karras_sigmas) */
} DitSampleOptions;

/* The number of steps a respacing string gives, or -1 (message in rt's last error). */
int dit_sample_steps(DitRuntime *rt, const char *steps);

/* Runs the sampler from noise to the final latents out [n, C, H, W]. */
DitStatus dit_sample(DitRuntime *rt, const DitSampleOptions *opts, float *out);

/* Standard normal samples of one noise stream (as dit_sample draws them). */
void dit_randn_stream(uint64_t seed, uint64_t stream, float *out, int64_t n);

/* Training plans (ditc SPEC --mode train --batch N -o PLAN). */

/* One weight tensor of the plan, with its place in the flat buffers that
 * hold all weights (and, for training plans, all gradients) back to back. */
typedef struct DitWeightView {
  const char *name;   /* official state-dict key */
  int rank;
  int64_t dims[4];
  int64_t numel;
  int frozen;         /* not trained (pos_embed) */
  int64_t offset;     /* in floats, into dit_weights_flat() and dit_grads_flat() */
} DitWeightView;

size_t dit_num_weights(const DitRuntime *rt);
DitStatus dit_weight_view(const DitRuntime *rt, size_t i, DitWeightView *out);
/* The flat weight buffer (*n_floats floats, padding between tensors
 * included) and, for training plans, the gradient buffer of the same layout. */
float *dit_weights_flat(DitRuntime *rt, int64_t *n_floats);
float *dit_grads_flat(DitRuntime *rt);
/* Binds deterministic random weights instead of a checkpoint (benchmarks,
 * demos): every tensor, at scales that keep activations O(1) (1/sqrt(fan_in)
 * for linear and conv weights, GroupNorm gains near 1), from the seed alone. */
DitStatus dit_random_weights(DitRuntime *rt, uint64_t seed);
/* Marks the weights as set by the caller (who wrote dit_weights_flat). */
void dit_weights_set(DitRuntime *rt);

/* The official training loss of one batch (dit-reference.md 3.7), labels
 * used as given: x0, noise [n, C, H, W]; t [n] in [0, 1000); y [n].
 * losses [n] receives each row's loss (mse + vb). With grads set, the
 * gradient buffer then holds the gradient of grad_scale * sum(losses) for
 * every trainable weight (grad_scale = 1/n gives the mean loss's). */
DitStatus dit_loss(DitRuntime *rt, int64_t n, const float *x0, const int64_t *t, const int64_t *y,
                   const float *noise, int grads, float grad_scale, float *losses);

/* VAE plans (family "vae", docs/vae.md: `ditc specs/vae/sd-vae-ft-mse.dit -o vae.plan`):
 * the Stable Diffusion KL-f8 autoencoder that DiT's latents come from.
 * dit_open and dit_load_weights take them too (diffusers, legacy or LDM
 * names); dit_forward and the samplers refuse them. */
typedef struct DitVaeInfo {
  int has_decoder, has_encoder;
  int64_t image_size, latent_size;         /* H = W of the image; of the latent (image_size / 8) */
  int64_t image_channels, latent_channels; /* 3, 4 */
  double scaling_factor;                   /* DiT-space latent = scaling_factor * the VAE's (0.18215) */
  int64_t max_batch;                       /* images one run of the plan takes; the calls below split more */
} DitVaeInfo;

/* The plan's VAE shapes, or NULL when it is not a VAE plan. */
const DitVaeInfo *dit_vae_info(const DitRuntime *rt);
/* images [n, 3, H, W] (the decoder's range, about [-1, 1]) from DiT-space
 * latents z [n, 4, h, w]: the decoder of z / scaling_factor, as sample.py's
 * vae.decode(samples / 0.18215). Any n >= 1 (runs of max_batch). */
DitStatus dit_vae_decode(DitRuntime *rt, int64_t n, const float *z, float *images);
/* DiT-space latents [n, 4, h, w] of images [n, 3, H, W] in [-1, 1]:
 * scaling_factor * (mean + exp(logvar / 2) * noise), logvar clamped to
 * [-30, 20]; noise [n, 4, h, w], or NULL for scaling_factor * mean. */
DitStatus dit_vae_encode(DitRuntime *rt, int64_t n, const float *images, const float *noise, float *latents);

/* Autotuning (`dit tune`, docs/autotune.md): each op's choices on this
 * runtime's device, timed at the plan's real shapes on random inputs, each
 * checked against the default's output; the fastest correct one is kept. */
typedef struct DitTuneOptions {
  int64_t rows;       /* the forward's rows to time at (0: the plan's max_batch) */
  double budget_s;    /* stop after about this many seconds (0: no limit); the rest keep their defaults */
  int repeats;        /* timed runs per choice, of which the median counts (0: 5) */
  uint64_t seed;      /* of the random inputs */
  void (*progress)(void *ctx, size_t done, size_t total); /* after each tuned op; may be NULL */
  void *progress_ctx;
} DitTuneOptions;

typedef struct DitTuneOp {
  size_t op;              /* plan op index */
  const char *op_name;    /* "linear" */
  char shape[64];         /* its result's, "8x256x384" */
  char chosen[192];       /* "default", or the choice that replaced it */
  double default_us, tuned_us; /* the op alone, median */
  int tried, failed, wrong; /* choices tried; of those, failed to run; gave another result than the default */
  char note[256];         /* the first failure or mismatch, if any */
} DitTuneOp;

typedef struct DitTuneReport {
  char device[192];       /* what was tuned: "cpu: <model> (2 threads)", "cuda:0 (...)" */
  size_t n_ops;           /* the ops that had choices */
  DitTuneOp *ops;         /* [n_ops] */
  double default_ms, tuned_ms; /* one forward at the tuning's rows, median */
  double rel_err;         /* ||tuned - default|| / ||default|| of the forward's output */
  size_t out_of_budget;   /* ops left at their defaults when the budget ran out */
} DitTuneReport;

/* Tunes rt's plan for rt's device (weights must be bound: random ones do)
 * and keeps the result in rt, which then runs tuned; dit_save_plan writes it. */
DitStatus dit_tune(DitRuntime *rt, const DitTuneOptions *opts, DitTuneReport *report);
void dit_tune_report_free(DitTuneReport *report); /* accepts a zeroed report */
/* Writes the plan, with this device's tuning (dit_tune's) in place of any
 * earlier one for the same device, atomically. */
DitStatus dit_save_plan(DitRuntime *rt, const char *path);
/* One line on the plan's tunings and whether this device runs one
 * ("" when the plan has none). */
const char *dit_tuning_info(const DitRuntime *rt);

/* The message of the last failed call on rt. */
const char *dit_last_error(const DitRuntime *rt);
void dit_close(DitRuntime *rt); /* accepts NULL */

#ifdef __cplusplus
}
#endif

#endif
