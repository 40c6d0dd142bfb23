/* cuda_backend.c: opening and closing the CUDA backend (the driver and
 * cuBLASLt libraries, or the emulated device's; device, primary context,
 * stream, kernel modules, each op's slot, cuBLASLt GEMMs, every device
 * buffer, the timing events) and the
 * debug poison, and its table of the backend interface (backend.h; the
 * weights and the values' way in and out in cuda_weights.c, staging and ops
 * in cuda_exec.c, the sampler step in cuda_sample.c). */
#define _GNU_SOURCE /* dladdr1 */
#include <dlfcn.h>
#include <inttypes.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cuda_internal.h"
#include "model/timestep_freqs.h"

CUdeviceptr cuda_value_ptr(const CudaBackend *cb, uint32_t id) {
  const PlanValue *v = &cb->pv->values[id];
  return v->storage == PLAN_STORE_WEIGHTS ? cb->weights + cb->wdev_offset[id] : cb->arena + v->offset;
}

DitStatus cuda_enter(CudaBackend *cb, DitErr *err) {
  DitStatus st = DIT_OK;
  CU_TRY(&cb->drv, err, cuCtxSetCurrent(cb->ctx));
fail:
  return st;
}

/* The device of the given ordinal. */
static DitStatus pick_device(CudaBackend *cb, int ordinal, DitErr *err) {
  DitStatus st = DIT_OK;
  int count = 0;
  CU_TRY(&cb->drv, err, cuDeviceGetCount(&count));
  if (count < 1) return dit_err(err, DIT_ERR_DEVICE, "no CUDA device is visible");
  if (ordinal < 0 || ordinal >= count)
    return dit_err(err, DIT_ERR_DEVICE, "CUDA device %d: there %s %d (ordinals 0 to %d)", ordinal,
                   count == 1 ? "is" : "are", count, count - 1);
  cb->ordinal = ordinal;
  CU_TRY(&cb->drv, err, cuDeviceGet(&cb->dev, cb->ordinal));
  int major = 0, minor = 0;
  char devname[128] = "";
  CU_TRY(&cb->drv, err, cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, cb->dev));
  CU_TRY(&cb->drv, err, cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, cb->dev));
  CU_TRY(&cb->drv, err, cuDeviceGetName(devname, (int)sizeof devname, cb->dev));
  cb->arch = cuda_device_arch(major, minor);
  snprintf(cb->name, sizeof cb->name, "cuda:%d (%s, sm_%d%d)", cb->ordinal, devname, major, minor);
fail:
  return st;
}

/* Loads one slot's image: the cubin for this device, else the PTX through the
 * JIT; on the emulated device its image (PLAN_ARCH_EMU) and nothing else.
 * The slots of one arch share one module image (kernel_plan.c): an image
 * already loaded for an earlier slot (images[0..s)) is reused, not loaded
 * again (a PTX module would be JIT-compiled once per slot); modules[s] is then
 * NULL, so that close unloads each module once. */
static DitStatus load_slot(CudaBackend *cb, uint32_t s, const unsigned char **images, DitErr *err) {
  DitStatus st = DIT_OK;
  const PlanView *pv = cb->pv;
  const PlanKernelSlot *slot = &cb->cv->slots[s];
  const char *name = plan_string(pv, slot->name), *entry = plan_string(pv, slot->entry);
  const unsigned char *image = NULL;
  char on[16];
  if (cb->emu) snprintf(on, sizeof on, "emu");
  else snprintf(on, sizeof on, "sm_%u", cb->arch / 10);
  int k = !pv->cubin.h ? -1
          : cb->emu    ? cuda_pick_emu(pv->cubin.images, pv->cubin.h->n_images, s)
                       : cuda_pick_cubin(pv->cubin.images, pv->cubin.h->n_images, s, cb->arch);
  if (k < 0 && cb->emu)
    return dit_err(err, DIT_ERR_UNSUPPORTED, "the plan has no emulated-device kernels: compile it with ditc "
                   "--arch emu (with or without sm_XX)");
  if (k >= 0) {
    image = pv->cubin.base + pv->cubin.images[k].offset;
  } else {
    k = pv->ptx.h ? cuda_pick_ptx(pv->ptx.images, pv->ptx.h->n_images, s, cb->arch) : -1;
    if (k < 0)
      return dit_err(err, DIT_ERR_UNSUPPORTED,
                     "kernel %s has no image for sm_%u and no PTX to compile: recompile with ditc --arch "
                     "sm_%u",
                     name, cb->arch / 10, cb->arch / 10);
    image = pv->ptx.base + pv->ptx.images[k].offset;
  }
  images[s] = image;
  CUmodule mod = NULL;
  for (uint32_t o = 0; o < s && !mod; o++)
    if (images[o] == image) mod = cb->modules[o];
  if (!mod) {
    char log[8192] = "";
    CUjit_option opt[2] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
    void *val[2] = {log, (void *)(uintptr_t)sizeof log};
    CUresult rc = cb->drv.cuModuleLoadDataEx(&cb->modules[s], image, 2, opt, val);
    if (rc != CUDA_SUCCESS) {
      DitErr e = {0};
      st = cuda_error(&cb->drv, &e, rc, "cuModuleLoadDataEx", __FILE__, __LINE__);
      /* GPU-VISIT: check the driver loads these images: cubins and PTX from a CUDA 13 NVRTC
       * need a CUDA 13 driver (>= 580); an older driver fails here (UNSUPPORTED_PTX_VERSION,
       * INVALID_IMAGE): then compile the plans there, with that machine's NVRTC */
      return dit_err(err, st, "kernel %s on %s: %s%s%s", name, on, e.msg, log[0] ? "; JIT log:\n" : "", log);
    }
    mod = cb->modules[s];
  }
  CU_TRY(&cb->drv, err, cuModuleGetFunction(&cb->funcs[s], mod, entry));
  if (slot->smem_bytes > 48 * 1024)
    CU_TRY(&cb->drv, err, cuFuncSetAttribute(cb->funcs[s], CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                             (int)slot->smem_bytes));
  return DIT_OK;
fail:
  dit_err_context(err, "kernel %s (entry %s)", name, entry);
  return st;
}

/* Every slot's module and function. */
static DitStatus load_kernels(CudaBackend *cb, DitErr *err) {
  const PlanView *pv = cb->pv;
  cb->cv = pv->cubin.h ? &pv->cubin : &pv->ptx;
  uint32_t n_slots = cb->cv->h->n_slots;
  cb->modules = calloc(n_slots ? n_slots : 1, sizeof *cb->modules);
  cb->funcs = calloc(n_slots ? n_slots : 1, sizeof *cb->funcs);
  const unsigned char **images = calloc(n_slots ? n_slots : 1, sizeof *images);
  if (!cb->modules || !cb->funcs || !images) {
    free(images);
    return dit_err(err, DIT_ERR_NOMEM, "out of memory");
  }
  cb->op_slot = malloc((pv->n_ops ? pv->n_ops : 1) * sizeof *cb->op_slot);
  cb->tune_rows = calloc(pv->n_ops ? pv->n_ops : 1, sizeof *cb->tune_rows);
  if (!cb->op_slot || !cb->tune_rows) {
    free(images);
    return dit_err(err, DIT_ERR_NOMEM, "out of memory");
  }
  if (pv->n_ops) memcpy(cb->op_slot, cb->cv->op_slot, pv->n_ops * sizeof *cb->op_slot);
  for (uint32_t s = 0; s < n_slots; s++) { /* the candidates' slots too: apply() may pick them */
    DitStatus st = load_slot(cb, s, images, err);
    if (st) {
      free(images);
      return st;
    }
  }
  free(images);
  return DIT_OK;
}

/* The arena, weights, workspace, activation scratch, staging buffers and
 * frequency tables. */
static DitStatus alloc_buffers(CudaBackend *cb, DitErr *err) {
  DitStatus st = DIT_OK;
  const PlanView *pv = cb->pv;
  const PlanModel *m = pv->model;
  float *table = NULL;
  int64_t rows = pv->header->max_batch;
  int64_t xs = m->in_channels * m->latent_size * m->latent_size;
  cuda_stage_layout(rows, rows * xs, rows * xs, &cb->layout); /* every staging call uses it */
  cb->stage_bytes = cb->layout.bytes;
  CU_TRY(&cb->drv, err, cuMemAlloc(&cb->arena, pv->arena_bytes ? pv->arena_bytes : 256));
  st = cuda_weights_layout(cb, err);
  if (st) return st;
  CU_TRY(&cb->drv, err, cuMemAlloc(&cb->weights, cb->wdev_bytes ? cb->wdev_bytes : 256));
  CU_TRY(&cb->drv, err, cuMemAlloc(&cb->workspace, CUDA_WORKSPACE_BYTES));
  /* a bf16 linear op whose activation is a kernel: its GEMM writes fp32 here, the kernel the bf16 out */
  uint64_t scratch = 0;
  for (size_t i = 0; i < pv->n_ops; i++)
    if (cuda_linear_scratch(pv, i) && cuda_value_numel(pv, pv->ops[i].out, rows) * 4 > (int64_t)scratch)
      scratch = (uint64_t)cuda_value_numel(pv, pv->ops[i].out, rows) * 4;
  if (scratch) CU_TRY(&cb->drv, err, cuMemAlloc(&cb->act_scratch, scratch));
  CU_TRY(&cb->drv, err, cuMemAlloc(&cb->stage, cb->stage_bytes));
  void *host = NULL;
  CU_TRY(&cb->drv, err, cuMemAllocHost(&host, cb->stage_bytes));
  cb->host_stage = host;
  memset(cb->host_stage, 0, cb->stage_bytes);
  /* the timestep_freq ops' float32 tables, as the CPU computes them */
  uint64_t total = 0;
  cb->freq_offset = calloc(pv->n_ops, sizeof *cb->freq_offset);
  if (!cb->freq_offset) return dit_err(err, DIT_ERR_NOMEM, "out of memory");
  for (size_t i = 0; i < pv->n_ops; i++)
    if (pv->ops[i].kind == PLAN_OP_TIMESTEP_FREQ) {
      cb->freq_offset[i] = total;
      total += ((uint64_t)plan_attrs_TIMESTEP_FREQ(&pv->ops[i]).freq_dim / 2 * sizeof(float) + 255) / 256 * 256;
    }
  if (!total) return DIT_OK;
  CU_TRY(&cb->drv, err, cuMemAlloc(&cb->freqs, total));
  table = malloc(total);
  if (!table) return dit_err(err, DIT_ERR_NOMEM, "out of memory");
  for (size_t i = 0; i < pv->n_ops; i++)
    if (pv->ops[i].kind == PLAN_OP_TIMESTEP_FREQ)
      dit_timestep_freqs(plan_attrs_TIMESTEP_FREQ(&pv->ops[i]).freq_dim / 2,
                         plan_attrs_TIMESTEP_FREQ(&pv->ops[i]).max_period, table + cb->freq_offset[i] / sizeof(float));
  CU_TRY(&cb->drv, err, cuMemcpyHtoDAsync(cb->freqs, table, total, cb->stream));
  CU_TRY(&cb->drv, err, cuStreamSynchronize(cb->stream));
fail:
  free(table);
  return st;
}

/* A cuBLASLt GEMM per linear op, its algorithm chosen for max_batch rows. */
static DitStatus init_gemms(CudaBackend *cb, DitErr *err) {
  const PlanView *pv = cb->pv;
  cb->gemms = calloc(pv->n_ops, sizeof *cb->gemms);
  if (!cb->gemms) return dit_err(err, DIT_ERR_NOMEM, "out of memory");
  int64_t max_rows = pv->header->max_batch;
  for (size_t i = 0; i < pv->n_ops; i++) {
    const PlanOp *op = &pv->ops[i];
    if (op->kind != PLAN_OP_LINEAR) continue;
    uint32_t r = pv->values[op->in[0]].rank;
    LtGemmConfig c = {0};
    c.tf32 = pv->header->dtype == PLAN_DT_TF32;
    /* bf16 x and W; a bf16 result (and bias) unless an activation kernel makes it from fp32 */
    c.bf16_in = pv->values[op->in[0]].dtype == PLAN_VDT_BF16;
    c.bf16_out = pv->values[op->out].dtype == PLAN_VDT_BF16 && !cuda_linear_scratch(pv, i);
    c.K = pv->values[op->in[0]].dims[r - 1];
    c.M = pv->values[op->in[1]].dims[0];
    c.max_rows = cuda_value_numel(pv, op->in[0], max_rows) / c.K;
    /* GELU in the epilogue, unless the plan has its GELU kernel for this op (ditc --gelu-epilogue) */
    c.gelu = plan_attrs_LINEAR(op).act == PLAN_ACT_GELU_TANH && cb->cv->op_slot[i] == DIT_PLAN_NONE;
    c.bias = cuda_value_ptr(cb, op->in[2]);
    c.align_w = cuda_ptr_alignment(cuda_value_ptr(cb, op->in[1]));
    c.align_x = cuda_ptr_alignment(cuda_value_ptr(cb, op->in[0]));
    c.align_y = cuda_ptr_alignment(cuda_linear_scratch(pv, i) ? cb->act_scratch : cuda_value_ptr(cb, op->out));
    c.workspace_bytes = CUDA_WORKSPACE_BYTES;
    DitStatus st = lt_gemm_init(&cb->lt, &cb->gemms[i], &c, i, err);
    if (st) return st;
  }
  return DIT_OK;
}

static void cuda_close(Backend *b);
static const BackendVt *cuda_vt(void);

/* The folder of the shared object or executable that holds the runtime
 * (libditrt.so, or dit and any program linking libditrt.a), into dir. */
static int runtime_dir(char *dir, size_t n) {
  static const char anchor = 0; /* any address of ours: dladdr names its object */
  Dl_info info;
  struct link_map *lm = NULL;
  char path[PATH_MAX] = "";
  if (!dladdr1(&anchor, &info, (void **)&lm, RTLD_DL_LINKMAP) || !lm) return -1;
  if (lm->l_name && lm->l_name[0]) { /* a shared object, by the path it was loaded from */
    snprintf(path, sizeof path, "%s", lm->l_name);
  } else { /* the main program: its l_name is empty */
    ssize_t len = readlink("/proc/self/exe", path, sizeof path - 1);
    if (len <= 0) return -1;
    path[len] = '\0';
  }
  char *slash = strrchr(path, '/');
  if (!slash) return -1;
  *slash = '\0';
  snprintf(dir, n, "%s", path[0] ? path : "/");
  return 0;
}

/* libdit_emu.so, the emulated device (tools/emu/README.md), when no path is
 * given: next to the runtime's own object, else in the install libdir, else
 * in the build tree (both fixed when this file was compiled). */
static DitStatus find_emu_lib(char *out, size_t n, DitErr *err) {
  char dir[PATH_MAX], next_to[PATH_MAX + 32] = "", tried[1024] = "";
  const char *at[3] = {next_to, DIT_EMU_INSTALL_LIBDIR "/libdit_emu.so", DIT_EMU_BUILD_LIB};
  if (runtime_dir(dir, sizeof dir) == 0) snprintf(next_to, sizeof next_to, "%s/libdit_emu.so", dir);
  size_t len = 0;
  for (int i = 0; i < 3; i++) {
    if (!at[i][0] || (i && !strcmp(at[i], at[0])) || (i == 2 && !strcmp(at[2], at[1]))) continue;
    if (access(at[i], R_OK) == 0) {
      snprintf(out, n, "%s", at[i]);
      return DIT_OK;
    }
    if (len < sizeof tried) len += (size_t)snprintf(tried + len, sizeof tried - len, "%s%s", len ? ", " : "", at[i]);
  }
  return dit_err(err, DIT_ERR_UNSUPPORTED,
                 "the emulated device's library libdit_emu.so was not found (looked for %s): build dit "
                 "where the CUDA toolkit's headers are, on x86-64 (that builds tools/emu), or give its path "
                 "(dit: DIT_EMU_LIB=PATH; DitOptions.cuda_driver_lib)", tried);
}

DitStatus backend_cuda_open(const PlanView *pv, const DitOptions *opts, Backend **out, DitErr *err) {
  DitStatus st = DIT_OK;
  *out = NULL;
  CudaBackend *cb = calloc(1, sizeof *cb);
  if (!cb) return dit_err(err, DIT_ERR_NOMEM, "out of memory");
  cb->base.vt = cuda_vt();
  cb->pv = pv;
  cb->emu = opts && opts->device && strcmp(opts->device, "emu") == 0;
  /* the libraries: the options', else libcuda.so.1 and a cuBLASLt for its version; on the
   * emulated device both are libdit_emu.so (one option set: the other follows it) */
  const char *drv_lib = opts ? opts->cuda_driver_lib : NULL, *lt_lib = opts ? opts->cublaslt_lib : NULL;
  char emu_lib[PATH_MAX + 32];
  if (cb->emu) {
    if (!drv_lib) drv_lib = lt_lib;
    if (!drv_lib && (st = find_emu_lib(emu_lib, sizeof emu_lib, err))) goto fail;
    if (!drv_lib) drv_lib = emu_lib;
    if (!lt_lib) lt_lib = drv_lib;
  }
  st = cuda_driver_open(&cb->drv, drv_lib, err);
  if (st && cb->emu && err) {
    DitErr e = *err;
    dit_err(err, st, "%s (libdit_emu.so is built with dit where the CUDA toolkit's headers are, on x86-64)", e.msg);
  }
  if (st) goto fail;
  st = pick_device(cb, opts ? opts->cuda_device : 0, err);
  if (!st) st = cuda_plan_check(pv, cb->emu, err);
  if (st) goto fail;
  CU_TRY(&cb->drv, err, cuDevicePrimaryCtxRetain(&cb->ctx, cb->dev));
  /* The first backend of each device keeps its reference to the primary context until the
   * process exits: the context then outlives every dit_close. Released to zero, the context
   * would be destroyed and the next dit_open would get a new one, while the CUDA runtime linked
   * into cuBLASLt (never unloaded) may still hold state of the old one (its modules, its
   * notion of the current device). GPU-VISIT: check the test's several open/close cycles. */
  static int kept[64];
  if (cb->ordinal < 64) cb->ctx_kept = !__atomic_exchange_n(&kept[cb->ordinal], 1, __ATOMIC_ACQ_REL);
  CU_TRY(&cb->drv, err, cuCtxSetCurrent(cb->ctx));
  CU_TRY(&cb->drv, err, cuStreamCreate(&cb->stream, CU_STREAM_NON_BLOCKING));
  CU_TRY(&cb->drv, err, cuEventCreate(&cb->staged, CU_EVENT_DISABLE_TIMING));
  CU_TRY(&cb->drv, err, cuEventCreate(&cb->tick, CU_EVENT_DEFAULT));
  CU_TRY(&cb->drv, err, cuEventCreate(&cb->tock, CU_EVENT_DEFAULT));
  int version = 0;
  CU_TRY(&cb->drv, err, cuDriverGetVersion(&version));
  st = cublaslt_open(&cb->lt, lt_lib, version, err);
  if (!st) st = load_kernels(cb, err);
  if (!st) st = alloc_buffers(cb, err);
  if (!st) st = init_gemms(cb, err);
  if (st) goto fail;
  cb->sync_each_op = opts && opts->cuda_sync;
  cb->use_graph = !(opts && opts->cuda_no_graph);
  *out = &cb->base;
  return DIT_OK;
fail:
  if (cb->ctx) { /* which driver refused: an image from a newer toolkit than the driver fails to load */
    int v = 0;
    if (cb->drv.cuDriverGetVersion(&v) == CUDA_SUCCESS)
      dit_err_context(err, "%s, driver for CUDA %d.%d", cb->name, v / 1000, v % 1000 / 10);
  }
  if (st == DIT_ERR_NOMEM && cb->name[0])
    dit_err_context(err, "%s: the plan needs %" PRIu64 " bytes of activations and %" PRIu64 " of weights",
                    cb->name, pv->arena_bytes, pv->weight_bytes);
  cuda_close(&cb->base);
  return st;
}

static void cuda_close(Backend *b) {
  CudaBackend *cb = (CudaBackend *)(void *)b;
  if (!cb) return;
  CudaDriver *d = &cb->drv;
  if (cb->ctx) {
    d->cuCtxSetCurrent(cb->ctx);
    if (cb->stream) d->cuStreamSynchronize(cb->stream);
    cuda_end_steps(b);
    if (cb->gemms)
      for (size_t i = 0; i < cb->pv->n_ops; i++) lt_gemm_free(&cb->lt, &cb->gemms[i]);
    cublaslt_close(&cb->lt);
    if (cb->modules)
      for (uint32_t s = 0; s < cb->cv->h->n_slots; s++)
        if (cb->modules[s]) d->cuModuleUnload(cb->modules[s]);
    CUdeviceptr bufs[] = {cb->arena, cb->weights, cb->workspace, cb->stage, cb->freqs, cb->act_scratch};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
      if (bufs[i]) d->cuMemFree(bufs[i]);
    if (cb->host_stage) d->cuMemFreeHost(cb->host_stage);
    if (cb->tock) d->cuEventDestroy(cb->tock);
    if (cb->tick) d->cuEventDestroy(cb->tick);
    if (cb->staged) d->cuEventDestroy(cb->staged);
    if (cb->stream) d->cuStreamDestroy(cb->stream);
    if (!cb->ctx_kept) d->cuDevicePrimaryCtxRelease(cb->dev);
  }
  free(cb->gemms);
  free(cb->modules);
  free(cb->funcs);
  free(cb->op_slot);
  free(cb->tune_rows);
  free(cb->freq_offset);
  free(cb->wdev_offset);
  cuda_driver_close(d);
  free(cb);
}

static const char *cuda_name(const Backend *b) { return ((const CudaBackend *)(const void *)b)->name; }

static DitStatus cuda_poison(Backend *b, DitErr *err) {
  CudaBackend *cb = (CudaBackend *)(void *)b;
  DitStatus st = cuda_enter(cb, err);
  if (st) return st;
  CU_TRY(&cb->drv, err, cuMemsetD8Async(cb->arena, 0xFF, cb->pv->arena_bytes, cb->stream));
  CU_TRY(&cb->drv, err, cuStreamSynchronize(cb->stream));
fail:
  return st;
}

DitStatus cuda_push_stage(CudaBackend *cb, uint64_t bytes, DitErr *err) {
  DitStatus st = DIT_OK;
  CU_TRY(&cb->drv, err, cuMemcpyHtoDAsync(cb->stage, cb->host_stage, bytes, cb->stream));
  CU_TRY(&cb->drv, err, cuEventRecord(cb->staged, cb->stream));
fail:
  return st;
}

DitStatus cuda_wait_stage(CudaBackend *cb, DitErr *err) {
  DitStatus st = DIT_OK;
  CU_TRY(&cb->drv, err, cuEventSynchronize(cb->staged));
fail:
  return st;
}


static const BackendVt *cuda_vt(void) {
  static const BackendVt vt = {.name = cuda_name, .upload_weights = cuda_upload_weights, .stage = cuda_stage,
                               .run = cuda_run, .fetch = cuda_fetch, .put = cuda_put, .step = cuda_step,
                               .end_steps = cuda_end_steps, .poison = cuda_poison, .close = cuda_close,
                               .device_key = cuda_device_key, .choices = cuda_choices, .apply = cuda_apply,
                               .time_ops = cuda_time_ops};
  return &vt;
}
