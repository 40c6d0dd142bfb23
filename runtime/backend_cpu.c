/* backend_cpu.c: the CPU executor behind the backend interface
 * (backend.h): inputs are copied into the arena, ops run through
 * executor.c's dispatch, results are read straight from host memory. A bf16
 * plan's ops read a copy of the weights with its bf16 weights rounded, as the
 * device holds them (executor.h). */
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "nonfinite.h"

typedef struct CpuBackend {
  Backend base;
  Executor *ex;
  DitStepParams params; /* the last staged sampler parameters */
  unsigned char *weights_bf16; /* bf16 plans: ex->weights_bf16, owned here */
} CpuBackend;

static CpuBackend *cpu_of(Backend *b) { return (CpuBackend *)(void *)b; }

static const char *cpu_name(const Backend *b) {
  (void)b;
  return "cpu";
}

static DitStatus cpu_upload(Backend *b, const void *weights, DitErr *err) {
  CpuBackend *c = cpu_of(b);
  const PlanView *pv = c->ex->pv;
  if (pv->header->dtype != PLAN_DT_BF16) return DIT_OK; /* the executor reads the host weights themselves */
  if (!c->weights_bf16 && !(c->weights_bf16 = malloc(pv->weight_bytes ? pv->weight_bytes : 1)))
    return dit_err(err, DIT_ERR_NOMEM, "out of memory for the bf16 copy of %llu bytes of weights",
                   (unsigned long long)pv->weight_bytes);
  memcpy(c->weights_bf16, weights, pv->weight_bytes);
  c->ex->weights_bf16 = c->weights_bf16;
  for (uint32_t id = 0; id < pv->n_values; id++)
    if (pv->values[id].storage == PLAN_STORE_WEIGHTS && pv->values[id].dtype == PLAN_VDT_BF16)
      cpu_round_bf16(&c->ex->cpu, exec_value(c->ex, id), exec_numel(c->ex, id, 1));
  return DIT_OK;
}

/* Copies rows [row0, row0 + rows) of a batch-major value. */
static void put_rows(const Executor *ex, uint32_t id, int64_t row0, int64_t rows, const void *src) {
  int64_t row_bytes = exec_numel(ex, id, 1) * (ex->pv->values[id].dtype == PLAN_VDT_I64 ? 8 : 4);
  memcpy((unsigned char *)exec_value(ex, id) + row0 * row_bytes, src, (size_t)(rows * row_bytes));
}

static DitStatus cpu_stage(Backend *b, const BackendStage *s, DitErr *err) {
  (void)err;
  CpuBackend *c = cpu_of(b);
  const PlanIO *io = c->ex->pv->io;
  if (s->x) put_rows(c->ex, io->x, s->row0, s->rows, s->x);
  if (s->t) put_rows(c->ex, io->t, s->row0, s->rows, s->t);
  if (s->y) put_rows(c->ex, io->y, s->row0, s->rows, s->y);
  if (s->noise) put_rows(c->ex, io->noise, s->row0, s->rows, s->noise);
  if (s->params) c->params = *s->params;
  return DIT_OK;
}

static DitStatus cpu_run(Backend *b, size_t first, size_t end, int64_t n, DitErr *err) {
  (void)err;
  CpuBackend *c = cpu_of(b);
  for (size_t i = first; i < end; i++) exec_op(c->ex, i, n, &c->params); /* forward ops ignore the params */
  return DIT_OK;
}

static DitStatus cpu_fetch(Backend *b, uint32_t value, int64_t n, void *dst, DitErr *err) {
  (void)err;
  CpuBackend *c = cpu_of(b);
  int64_t bytes = exec_numel(c->ex, value, n) * (c->ex->pv->values[value].dtype == PLAN_VDT_I64 ? 8 : 4);
  memcpy(dst, exec_value(c->ex, value), (size_t)bytes);
  return DIT_OK;
}

static DitStatus cpu_put(Backend *b, uint32_t value, int64_t n, const void *src, DitErr *err) {
  (void)err;
  CpuBackend *c = cpu_of(b);
  int64_t bytes = exec_numel(c->ex, value, n) * (c->ex->pv->values[value].dtype == PLAN_VDT_I64 ? 8 : 4);
  memcpy(exec_value(c->ex, value), src, (size_t)bytes);
  if (c->ex->pv->values[value].dtype == PLAN_VDT_BF16) /* as a device storing bf16 would keep it */
    cpu_round_bf16(&c->ex->cpu, exec_value(c->ex, value), exec_numel(c->ex, value, n));
  return DIT_OK;
}

static DitStatus cpu_step(Backend *b, const BackendStep *s, int *finite, DitErr *err) {
  CpuBackend *c = cpu_of(b);
  const PlanView *pv = c->ex->pv;
  const PlanIO *io = pv->io;
  int64_t xs = exec_numel(c->ex, io->x, 1); /* floats per image */
  float *x = exec_value(c->ex, io->x);      // [rows, C, H, W]
  if (s->rows > s->n) memcpy(x + s->n * xs, x, (size_t)(s->n * xs) * sizeof(float));
  /* t and y every step: the planner reuses their bytes once the embeddings have read them */
  BackendStage in = {.row0 = 0, .rows = s->rows, .t = s->t, .y = s->y};
  DitStatus st = cpu_stage(b, &in, err);
  if (!st) st = cpu_run(b, 0, io->n_forward_ops, s->rows, err);
  BackendStage smp = {.row0 = 0, .rows = s->n, .noise = s->noise, .params = s->params};
  if (!st) st = cpu_stage(b, &smp, err);
  if (!st) st = cpu_run(b, io->n_forward_ops, pv->n_ops, s->n, err);
  if (st) return st;
  const float *x_next = exec_value(c->ex, io->x_next);
  *finite = rt_first_nonfinite(x_next, s->n * xs) < 0;
  if (*finite) memcpy(x, x_next, (size_t)(s->n * xs) * sizeof(float)); /* else x keeps the step's input */
  return DIT_OK;
}

static void cpu_end_steps(Backend *b) { (void)b; }

static DitStatus cpu_poison(Backend *b, DitErr *err) {
  (void)err;
  CpuBackend *c = cpu_of(b);
  memset(c->ex->arena, 0xFF, exec_arena_bytes(c->ex->pv));
  return DIT_OK;
}

static void cpu_close(Backend *b) {
  CpuBackend *c = cpu_of(b);
  if (c->ex->weights_bf16 == c->weights_bf16) c->ex->weights_bf16 = NULL;
  free(c->weights_bf16);
  free(b);
}

DitStatus backend_cpu_open(Executor *ex, Backend **out, DitErr *err) {
  static const BackendVt vt = {.name = cpu_name, .upload_weights = cpu_upload, .stage = cpu_stage,
                               .run = cpu_run, .fetch = cpu_fetch, .put = cpu_put, .step = cpu_step,
                               .end_steps = cpu_end_steps, .poison = cpu_poison, .close = cpu_close};
  CpuBackend *c = calloc(1, sizeof *c);
  if (!c) return dit_err(err, DIT_ERR_NOMEM, "out of memory");
  c->base.vt = &vt;
  c->ex = ex;
  *out = &c->base;
  return DIT_OK;
}
