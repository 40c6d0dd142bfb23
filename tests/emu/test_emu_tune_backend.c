/* test_emu_tune_backend.c: the CUDA backend's autotuning calls
 * (runtime/cuda/cuda_tune.c) on the emulated device, directly through the
 * backend interface (backend.h), on the tiny plan compiled with ditc --arch
 * emu --tune-candidates 3; and the emulated driver's event timing
 * (tools/emu/emu_event.cpp) it rests on. Under DIT_EMU_ASYNC=1 (set here):
 * streams run late, so a missing synchronisation shows.
 *   events: cuEventElapsedTime >= 0 between two records, and the driver's
 *     errors (never recorded, CU_EVENT_DISABLE_TIMING, not complete, NULL);
 *   device_key: the emulated device's name, sm_80, driver version;
 *   GEMM algorithms: each linear op's choices at 4 rows, every one giving
 *     the default's forward within 1e-5 relative, choice [0] restoring it
 *     bitwise, a corrupted algorithm and one without rows refused;
 *   slots: each op's candidates within 1e-5, a foreign slot refused;
 *   time_ops: a positive time for the forward. */
#define _GNU_SOURCE /* setenv, mkdtemp */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "emu_test.h"
#include "plan/plan_view.h"
#include "run_tool.h"

static int failures;

enum { N = 4 };

/* The driver's events, straight on the emulated driver (linked). */
static int test_events(void) {
  printf("events\n");
  CUdevice dev;
  CUcontext ctx;
  CUevent a, b, off;
  CUdeviceptr big;
  float ms = -1.0f;
  const size_t bytes = 64u << 20;
  CU(cuInit(0));
  CU(cuDeviceGet(&dev, 0));
  CU(cuDevicePrimaryCtxRetain(&ctx, dev));
  CU(cuCtxSetCurrent(ctx));
  CU(cuEventCreate(&a, CU_EVENT_DEFAULT));
  CU(cuEventCreate(&b, CU_EVENT_DEFAULT));
  CU(cuEventCreate(&off, CU_EVENT_DISABLE_TIMING));
  CU(cuMemAlloc(&big, bytes));
  CHECK(cuEventElapsedTime(&ms, a, b) == CUDA_ERROR_INVALID_HANDLE, "never recorded");
  CHECK(cuEventQuery(a) == CUDA_SUCCESS, "an event never recorded is complete");
  CU(cuEventRecord(a, NULL));
  CU(cuMemsetD8Async(big, 1, bytes, NULL)); /* late (DIT_EMU_ASYNC): the record after it is not done yet */
  CU(cuEventRecord(b, NULL));
  if (atoi(getenv("DIT_EMU_ASYNC") ? getenv("DIT_EMU_ASYNC") : "0")) { /* else the streams ran it at once */
    CHECK(cuEventQuery(b) == CUDA_ERROR_NOT_READY, "the record runs after the memset");
    CHECK(cuEventElapsedTime(&ms, a, b) == CUDA_ERROR_NOT_READY, "not complete");
  }
  CU(cuEventSynchronize(b));
  CHECK(cuEventQuery(b) == CUDA_SUCCESS, "complete");
  CU(cuEventElapsedTime(&ms, a, b));
  printf("  a 64 MiB memset: %.3f ms\n", ms);
  CHECK(ms > 0.0f, "elapsed %g ms", ms);
  CU(cuEventRecord(off, NULL));
  CU(cuEventSynchronize(off));
  CHECK(cuEventElapsedTime(&ms, a, off) == CUDA_ERROR_INVALID_HANDLE, "CU_EVENT_DISABLE_TIMING");
  CHECK(cuEventElapsedTime(NULL, a, b) == CUDA_ERROR_INVALID_VALUE, "NULL");
  CHECK(cuEventElapsedTime(&ms, a, NULL) == CUDA_ERROR_INVALID_HANDLE, "NULL event");
  CU(cuMemFree(big));
  CU(cuEventDestroy(off));
  CU(cuEventDestroy(b));
  CU(cuEventDestroy(a));
  CU(cuDevicePrimaryCtxRelease(dev));
  return 0;
}

typedef struct Fixture {
  PlanView pv;
  Backend *be;
  size_t out_floats;
  float *ref, *got, *x;
} Fixture;

/* The inputs again: the planner reuses t's and y's bytes once the embeddings have read them. */
static int stage(Fixture *f) {
  static const int64_t t[N] = {1, 250, 500, 999}, y[N] = {0, 1, 2, 0};
  BackendStage st = {.row0 = 0, .rows = N, .x = f->x, .t = t, .y = y};
  DitErr e = {0};
  if (f->be->vt->stage(f->be, &st, &e) == DIT_OK) return 0;
  CHECK(0, "stage: %s", e.msg);
  return -1;
}

/* One forward at N rows into f->got. */
static int forward(Fixture *f) {
  DitErr e = {0};
  const PlanIO *io = f->pv.io;
  if (stage(f)) return -1;
  if (f->be->vt->run(f->be, 0, io->n_forward_ops, N, &e) || f->be->vt->fetch(f->be, io->out, N, f->got, &e)) {
    CHECK(0, "forward: %s", e.msg);
    return -1;
  }
  return 0;
}

/* max |got - ref| / max |ref| */
static double rel_diff(const Fixture *f) {
  double num = 0, den = 0;
  for (size_t i = 0; i < f->out_floats; i++) {
    num = fmax(num, fabs((double)f->got[i] - f->ref[i]));
    den = fmax(den, fabs((double)f->ref[i]));
  }
  return den > 0 ? num / den : num;
}

static int same_bits(const Fixture *f) { return memcmp(f->got, f->ref, f->out_floats * sizeof(float)) == 0; }

static void test_gemm_algos(Fixture *f) {
  printf("GEMM algorithms\n");
  const BackendVt *vt = f->be->vt;
  PlanTuneChoice ch[8];
  int count = 0, linear = 0, differ = 0, first_linear = -1;
  DitErr e = {0};
  /* an algorithm applied to an op never asked (the plan has no tuning): no rows to apply it at */
  for (size_t i = 0; i < f->pv.n_ops; i++) {
    if (f->pv.ops[i].kind != PLAN_OP_LINEAR) continue;
    if (first_linear < 0) {
      first_linear = (int)i;
      continue;
    }
    CHECK(vt->choices(f->be, (size_t)first_linear, PLAN_TUNE_GEMM_ALGO, N, ch, 8, &count, &e) == DIT_OK, "%s", e.msg);
    PlanTuneChoice c = ch[0];
    c.op = (uint32_t)i;
    CHECK(vt->apply(f->be, &c, &e) != DIT_OK && strstr(e.msg, "rows"), "no rows: %s", e.msg);
    break;
  }
  for (size_t i = 0; i < f->pv.n_ops; i++) {
    CHECK(vt->choices(f->be, i, PLAN_TUNE_GEMM_ALGO, N, ch, 8, &count, &e) == DIT_OK, "op %zu: %s", i, e.msg);
    if (f->pv.ops[i].kind != PLAN_OP_LINEAR) {
      CHECK(count == 0, "op %zu is no linear op: %d choices", i, count);
      continue;
    }
    linear++;
    CHECK(count >= 3, "linear op %zu: %d algorithms", i, count);
    for (int k = 0; k < count; k++) {
      CHECK(ch[k].op == i && ch[k].kind == PLAN_TUNE_GEMM_ALGO, "op %zu choice %d", i, k);
      if (vt->apply(f->be, &ch[k], &e) != DIT_OK) {
        CHECK(0, "op %zu algo %d refused: %s", i, k, e.msg);
        continue;
      }
      if (forward(f)) return;
      double d = rel_diff(f);
      CHECK(d <= 1e-5, "op %zu algo %d: %.2e from the default", i, k, d);
      differ += !same_bits(f);
    }
    PlanTuneChoice bad = ch[count - 1];
    bad.algo[5] ^= 1; /* corrupted */
    CHECK(vt->apply(f->be, &bad, &e) == DIT_ERR_FORMAT && strstr(e.msg, "cublasLtMatmulAlgoCheck"), "corrupted: %s",
          e.msg);
    CHECK(vt->apply(f->be, &ch[0], &e) == DIT_OK, "op %zu: the default: %s", i, e.msg);
    if (forward(f)) return;
    CHECK(same_bits(f), "op %zu: choice [0] restores the default bitwise", i);
  }
  printf("  %d linear ops, %d tuned forwards differ bitwise from the default (all within 1e-5)\n", linear, differ);
  CHECK(linear > 0 && differ > 0, "the algorithms compute differently");
}

static void test_slots(Fixture *f) {
  printf("kernel slots\n");
  const BackendVt *vt = f->be->vt;
  const PlanCudaView *cv = f->pv.cubin.h ? &f->pv.cubin : &f->pv.ptx;
  PlanTuneChoice ch[8];
  int count = 0, with = 0;
  DitErr e = {0};
  for (size_t i = 0; i < f->pv.n_ops; i++) {
    size_t first = 0, n = 0;
    plan_op_candidates(&f->pv, i, &first, &n);
    CHECK(vt->choices(f->be, i, PLAN_TUNE_SLOT, N, ch, 8, &count, &e) == DIT_OK, "op %zu: %s", i, e.msg);
    uint32_t def = cv->op_slot[i];
    if (def != DIT_PLAN_NONE) { /* the default alone: always accepted */
      PlanTuneChoice one = {.op = (uint32_t)i, .kind = PLAN_TUNE_SLOT, .slot = def};
      CHECK(vt->apply(f->be, &one, &e) == DIT_OK, "op %zu: its default slot: %s", i, e.msg);
      /* a slot of another op's that is no candidate of this one */
      for (size_t j = 0; j < f->pv.n_ops; j++) {
        uint32_t s = cv->op_slot[j];
        int cand = s == def;
        for (size_t k = first; k < first + n; k++) cand |= f->pv.candidates[k].slot == s;
        if (s == DIT_PLAN_NONE || cand) continue;
        PlanTuneChoice foreign = {.op = (uint32_t)i, .kind = PLAN_TUNE_SLOT, .slot = s};
        CHECK(vt->apply(f->be, &foreign, &e) == DIT_ERR_FORMAT && strstr(e.msg, "neither"), "op %zu slot %u: %s", i,
              s, e.msg);
        break;
      }
    }
    if (!n) {
      CHECK(count == 0, "op %zu without candidates: %d choices", i, count);
      continue;
    }
    with++;
    CHECK(count == (int)(n + 1 < 8 ? n + 1 : 8) && ch[0].slot == def, "op %zu: %d choices for %zu candidates", i,
          count, n);
    for (int k = 1; k < count; k++) {
      CHECK(vt->apply(f->be, &ch[k], &e) == DIT_OK, "op %zu candidate %d: %s", i, k, e.msg);
      if (forward(f)) return;
      double d = rel_diff(f);
      CHECK(d <= 1e-5, "op %zu candidate slot %u: %.2e from the default", i, ch[k].slot, d);
    }
    CHECK(vt->apply(f->be, &ch[0], &e) == DIT_OK, "op %zu: %s", i, e.msg);
    if (forward(f)) return;
    CHECK(same_bits(f), "op %zu: its default slot again", i);
  }
  printf("  %d ops with candidates\n", with);
  CHECK(with > 0, "the plan has candidates (ditc --tune-candidates 3)");
}

static void test_time_and_key(Fixture *f) {
  printf("device key, time_ops\n");
  const BackendVt *vt = f->be->vt;
  PlanTuning key;
  vt->device_key(f->be, &key);
  printf("  %s, backend %u, arch %u, %u SMs, driver %u\n", key.device, key.backend, key.arch, key.sm_count,
         key.driver_version);
  CHECK(key.backend == PLAN_TUNE_EMU && key.arch == 80 && strstr(key.device, "emulated") && key.sm_count >= 1 &&
            key.driver_version == CUDA_VERSION,
        "the emulated device's key");
  DitErr e = {0};
  double ms = -1;
  stage(f);
  CHECK(vt->time_ops(f->be, 0, f->pv.io->n_forward_ops, N, &ms, &e) == DIT_OK, "%s", e.msg);
  printf("  the forward: %.3f ms (emulated)\n", ms);
  CHECK(ms > 0, "time_ops %g ms", ms);
  CHECK(vt->time_ops(f->be, 0, 1, N, &ms, &e) == DIT_OK && ms >= 0, "one op: %g ms, %s", ms, e.msg);
}

static int open_fixture(Fixture *f, const char *plan) {
  DitErr e = {0};
  if (plan_load(plan, &f->pv, &e)) {
    CHECK(0, "%s", e.msg);
    return -1;
  }
  DitOptions o;
  memset(&o, 0, sizeof o);
  o.device = "emu";
  if (backend_cuda_open(&f->pv, &o, &f->be, &e)) {
    CHECK(0, "open: %s", e.msg);
    return -1;
  }
  const PlanModel *m = f->pv.model;
  size_t nw = f->pv.weight_bytes / sizeof(float), xs = (size_t)(N * m->in_channels * m->latent_size * m->latent_size);
  float *w = malloc((nw ? nw : 1) * sizeof *w), *x = f->x = malloc(xs * sizeof *x);
  unsigned s = 12345;
  for (size_t i = 0; i < nw; i++) w[i] = (float)((s = s * 1103515245u + 12345u) >> 8 & 0xffff) / 65536.0f * 0.2f - 0.1f;
  for (size_t i = 0; i < xs; i++) x[i] = (float)((s = s * 1103515245u + 12345u) >> 8 & 0xffff) / 32768.0f - 1.0f;
  int rc = f->be->vt->upload_weights(f->be, w, &e);
  free(w);
  if (rc) {
    CHECK(0, "weights: %s", e.msg);
    return -1;
  }
  f->out_floats = (size_t)(f->pv.values[f->pv.io->out].bytes / sizeof(float)) / (size_t)f->pv.header->max_batch * N;
  f->ref = calloc(f->out_floats, sizeof(float));
  f->got = calloc(f->out_floats, sizeof(float));
  if (forward(f)) return -1;
  memcpy(f->ref, f->got, f->out_floats * sizeof(float));
  return 0;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  setenv("DIT_EMU_ASYNC", "1", 0); /* read at cuInit */
  char dir[] = "/tmp/dit_tune_backend_XXXXXX", plan[64];
  if (!mkdtemp(dir)) return 1;
  snprintf(plan, sizeof plan, "%s/p.plan", dir);
  const char *argv[] = {DITC_BIN, DIT_SOURCE_DIR "/specs/tests/tiny.dit", "--batch", "4", "--arch", "emu",
                        "--tune-candidates", "3", "-o", plan, NULL};
  ToolResult r;
  if (run_tool(argv, NULL, &r) || r.exit_code != 0) {
    printf("FAIL: ditc: %s\n", r.err ? r.err : "did not run");
    return 1;
  }
  tool_result_free(&r);
  test_events();
  Fixture f;
  memset(&f, 0, sizeof f);
  if (open_fixture(&f, plan) == 0) {
    test_time_and_key(&f);
    test_gemm_algos(&f);
    test_slots(&f);
  }
  if (f.be) f.be->vt->close(f.be);
  plan_view_free(&f.pv);
  free(f.ref);
  free(f.got);
  free(f.x);
  unlink(plan);
  rmdir(dir);
  printf("test_emu_tune_backend: %s (%d failures)\n", failures ? "FAIL" : "ok", failures);
  return failures ? 1 : 0;
}
