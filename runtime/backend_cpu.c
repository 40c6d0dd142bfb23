/* backend_cpu.c: the CPU executor behind the backend interface
 * (backend.h): inputs are copied into the arena, ops run through
 * executor.c's dispatch, results are read straight from host memory. A bf16
 * plan's ops read a copy of the weights with its bf16 weights rounded, as the
 * device holds them (executor.h). Tuning: each op's CPU knobs (cpu_knobs.c),
 * timed with the wall clock. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "cpu_knobs.h"
#include "nonfinite.h"

typedef struct CpuBackend {
  Backend base;
  Executor *ex;
  DitStepParams params; /* the last staged sampler parameters */
  unsigned char *weights_bf16; /* bf16 plans: ex->weights_bf16, owned here */
  int32_t (*knobs)[4];         /* [n_ops]: ex->op_knobs once a choice is applied, owned here */
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
  if (c->knobs && c->ex->op_knobs == (const int32_t(*)[4])c->knobs) c->ex->op_knobs = NULL;
  free(c->weights_bf16);
  free(c->knobs);
  free(b);
}

/* The tuning key of this machine: the CPU's model name and the threads. */
static void cpu_device_key(Backend *b, PlanTuning *key) {
  CpuBackend *c = cpu_of(b);
  memset(key, 0, sizeof *key);
  snprintf(key->device, sizeof key->device, "unknown CPU");
  FILE *f = fopen("/proc/cpuinfo", "r");
  char line[512];
  while (f && fgets(line, sizeof line, f)) {
    char *colon = strchr(line, ':');
    if (strncmp(line, "model name", 10) != 0 || !colon) continue;
    colon += 1 + (colon[1] == ' ');
    colon[strcspn(colon, "\n")] = '\0';
    if (*colon) snprintf(key->device, sizeof key->device, "%s", colon);
    break;
  }
  if (f) fclose(f);
  key->backend = PLAN_TUNE_CPU;
  key->sm_count = (uint32_t)c->ex->cpu.n_threads;
}

static DitStatus cpu_choices(Backend *b, size_t op, uint32_t kind, int64_t n, PlanTuneChoice *out, int max,
                             int *count, DitErr *err) {
  (void)err;
  CpuBackend *c = cpu_of(b);
  *count = 0;
  if (kind != PLAN_TUNE_CPU_KNOBS) return DIT_OK;
  CpuKnobList l;
  cpu_knob_choices(c->ex, op, n, &l);
  for (int k = 0; k < l.count && k < max; k++) {
    out[k] = (PlanTuneChoice){.op = (uint32_t)op, .kind = PLAN_TUNE_CPU_KNOBS};
    memcpy(out[k].cpu, l.knobs[k], sizeof out[k].cpu);
    (*count)++;
  }
  return DIT_OK;
}

static DitStatus cpu_apply(Backend *b, const PlanTuneChoice *ch, DitErr *err) {
  CpuBackend *c = cpu_of(b);
  const PlanView *pv = c->ex->pv;
  if (ch->kind != PLAN_TUNE_CPU_KNOBS || ch->op >= pv->n_ops)
    return dit_err(err, DIT_ERR_ARG, "op %u: the CPU backend takes only CPU knobs (kind %u)", ch->op, ch->kind);
  if (!c->knobs && !(c->knobs = calloc(pv->n_ops ? pv->n_ops : 1, sizeof *c->knobs)))
    return dit_err(err, DIT_ERR_NOMEM, "out of memory for the tuned knobs");
  memcpy(c->knobs[ch->op], ch->cpu, sizeof c->knobs[0]);
  c->ex->op_knobs = (const int32_t(*)[4])c->knobs;
  return DIT_OK;
}

static DitStatus cpu_time_ops(Backend *b, size_t first, size_t end, int64_t n, double *ms, DitErr *err) {
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  DitStatus st = cpu_run(b, first, end, n, err);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  *ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-6;
  return st;
}

DitStatus backend_cpu_open(Executor *ex, Backend **out, DitErr *err) {
  static const BackendVt vt = {.name = cpu_name, .upload_weights = cpu_upload, .stage = cpu_stage,
                               .run = cpu_run, .fetch = cpu_fetch, .put = cpu_put, .step = cpu_step,
                               .end_steps = cpu_end_steps, .poison = cpu_poison, .close = cpu_close,
                               .device_key = cpu_device_key, .choices = cpu_choices, .apply = cpu_apply,
                               .time_ops = cpu_time_ops};
  CpuBackend *c = calloc(1, sizeof *c);
  if (!c) return dit_err(err, DIT_ERR_NOMEM, "out of memory");
  c->base.vt = &vt;
  c->ex = ex;
  *out = &c->base;
  return DIT_OK;
}
