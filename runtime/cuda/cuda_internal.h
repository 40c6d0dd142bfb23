/* cuda_internal.h: the CudaBackend object, shared by the files of the CUDA
 * backend (cuda_backend.c: open, close, weights, debug reads; cuda_exec.c:
 * op launches and forwards; cuda_sample.c: the graph-captured sampler;
 * cuda_tune.c: autotuning's device key, choices, apply and timing).
 * Nothing outside runtime/cuda/ includes it. */
#ifndef DIT_RUNTIME_CUDA_INTERNAL_H
#define DIT_RUNTIME_CUDA_INTERNAL_H

#include "cublaslt.h"
#include "backend.h"
#include "cuda_driver.h"
#include "cuda_launch.h"

enum { CUDA_WORKSPACE_BYTES = 32 << 20 }; /* cuBLASLt's one workspace */

typedef struct CudaBackend CudaBackend;

struct CudaBackend {
  Backend base;        /* the interface (backend.h): first, so a Backend * is a CudaBackend * */
  const PlanView *pv;
  CudaDriver drv;
  CublasLt lt;
  int ordinal;
  CUdevice dev;
  CUcontext ctx;       /* the device's primary context (retained) */
  int ctx_kept;        /* this backend's retain is the process's lasting one: close keeps it */
  CUstream stream;     /* every launch and copy, in order */
  CUevent staged;      /* recorded after each copy out of `host_stage` */
  int emu;             /* DitOptions.device "emu": libdit_emu.so's device, which runs the plan's emu images */
  uint32_t arch;       /* major * 100 + minor * 10 */
  char name[192];
  const PlanCudaView *cv; /* the section the kernels came from (cubin, else PTX) */
  CUmodule *modules;   /* [n_slots] */
  CUfunction *funcs;   /* [n_slots] */
  uint32_t *op_slot;   /* [n_ops]: the slot each op launches (DIT_PLAN_NONE: none): cv->op_slot, until apply() */
  LtGemm *gemms;       /* [n_ops]: set for linear ops */
  uint64_t *freq_offset; /* [n_ops]: timestep_freq ops' table, bytes into `freqs` */
  CUdeviceptr arena;   /* arena_bytes */
  CUdeviceptr weights; /* wdev_bytes */
  uint64_t *wdev_offset; /* [n_values]: a weight value's bytes into `weights` (cuda_weights.c) */
  uint64_t wdev_bytes;
  CUdeviceptr act_scratch; /* fp32 GEMM results of bf16 linear ops whose activation is a kernel */
  CUdeviceptr workspace;
  CUdeviceptr freqs;   /* float tables of the timestep_freq ops */
  CUdeviceptr stage;   /* the device copy of host_stage */
  unsigned char *host_stage; /* pinned, stage_bytes: inputs, noise, DitStepParams */
  uint64_t stage_bytes;
  int capturing;       /* inside cuStreamBeginCapture .. EndCapture */
  int sync_each_op;    /* DitOptions.cuda_sync: wait after every op and name the one that fails */
  int use_graph;       /* !DitOptions.cuda_no_graph: the sampler replays a CUDA graph */
  CudaStageLayout layout; /* of host_stage, for max_batch rows */
  CUgraph step_graph;  /* the sampler step recorded at step 1 of a run, and its executable */
  CUgraphExec step_exec;
  int64_t step_rows;   /* the rows it was recorded for */
  int regraph;         /* apply() dropped the graph mid-run: 1 the next step runs eagerly, 2 the one after records it */
  CUevent tick, tock;  /* time_ops' events (timing enabled) */
  int64_t *tune_rows;  /* [n_ops]: the rows of the op's last GEMM-algorithm choices() (cuda_tune.c), 0 none */
};

/* The interface's calls (backend.h): cuda_exec.c and cuda_sample.c. */
DitStatus cuda_stage(Backend *b, const BackendStage *s, DitErr *err);
DitStatus cuda_run(Backend *b, size_t first, size_t end, int64_t n, DitErr *err);
DitStatus cuda_fetch(Backend *b, uint32_t value, int64_t n, void *dst, DitErr *err);
DitStatus cuda_put(Backend *b, uint32_t value, int64_t n, const void *src, DitErr *err);
DitStatus cuda_step(Backend *b, const BackendStep *s, int *finite, DitErr *err);
void cuda_end_steps(Backend *b);

/* cuda_tune.c: the interface's autotuning calls (backend.h). */
void cuda_device_key(Backend *b, PlanTuning *key);
DitStatus cuda_choices(Backend *b, size_t op, uint32_t kind, int64_t n, PlanTuneChoice *out, int max, int *count,
                       DitErr *err);
DitStatus cuda_apply(Backend *b, const PlanTuneChoice *c, DitErr *err);
DitStatus cuda_time_ops(Backend *b, size_t first, size_t end, int64_t n, double *ms, DitErr *err);

/* cuda_weights.c: the device layout of the weights (wdev_offset, wdev_bytes);
 * the interface's upload (backend.h), which narrows a bf16 plan's bf16
 * weights. */
DitStatus cuda_weights_layout(CudaBackend *cb, DitErr *err);
DitStatus cuda_upload_weights(Backend *b, const void *weights, DitErr *err);

/* The device address of a value (arena or weights). */
CUdeviceptr cuda_value_ptr(const CudaBackend *cb, uint32_t id);

/* Makes the backend's context current on the calling thread (every entry point). */
DitStatus cuda_enter(CudaBackend *cb, DitErr *err);

/* Enqueues ops [first, end) of the plan: forward ops for n rows, sampler
 * ops for n images with DitStepParams at `params` (a device address). */
DitStatus cuda_enqueue_ops(CudaBackend *cb, size_t first, size_t end, int64_t n, CUdeviceptr params,
                           DitErr *err);
/* Launches kernel slot `slot` on grid d with the family's argument struct
 * (cuda_exec.c). */
DitStatus cuda_launch_slot(CudaBackend *cb, uint32_t slot, const CudaLaunchDims *d, void **args, DitErr *err);
/* Enqueues VAE op i (group_norm, conv2d, to_tokens, from_tokens,
 * latent_sample) for n images (cuda_exec_vae.c). */
DitStatus cuda_run_vae_op(CudaBackend *cb, size_t i, int64_t n, DitErr *err);
/* Enqueues a device-to-device copy (nothing when bytes is 0). */
DitStatus cuda_copy_d2d(CudaBackend *cb, CUdeviceptr dst, CUdeviceptr src, uint64_t bytes, DitErr *err);
/* Copies host_stage [0, bytes) to the device copy and records `staged`. */
DitStatus cuda_push_stage(CudaBackend *cb, uint64_t bytes, DitErr *err);
/* Waits until the last cuda_push_stage has read host_stage. */
DitStatus cuda_wait_stage(CudaBackend *cb, DitErr *err);

#endif
