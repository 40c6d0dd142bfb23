/* executor.c: the op loops of the CPU backend (see executor.h) and the one
 * dispatch of every op kind to its adapter (exec_ops_forward.c,
 * exec_ops_train.c). Every shape and offset was checked by plan_check.c when
 * the plan loaded. */
#include "executor.h"

int64_t exec_scratch_per_thread(const PlanView *pv) {
  int64_t need = 1;
  for (size_t i = 0; i < pv->n_ops; i++) {
    const PlanOp *op = &pv->ops[i];
    if (op->kind == PLAN_OP_ATTENTION || op->kind == PLAN_OP_ATTENTION_GRAD) {
      int64_t T = pv->values[op->in[op->kind == PLAN_OP_ATTENTION ? 0 : 1]].dims[1];
      int64_t per = op->kind == PLAN_OP_ATTENTION ? T * T : 2 * T * T; /* the backward keeps P and dP */
      if (per > need) need = per;
    }
    if (op->kind == PLAN_OP_TIMESTEP_FREQ && plan_attrs_TIMESTEP_FREQ(op).freq_dim / 2 > need)
      need = plan_attrs_TIMESTEP_FREQ(op).freq_dim / 2;
    if (op->kind == PLAN_OP_CONV2D) { /* the im2col block */
      CpuConvShape s = exec_conv_shape(pv, op);
      if (cpu_conv2d_scratch(&s) > need) need = cpu_conv2d_scratch(&s);
    }
  }
  return need;
}

CpuConvShape exec_conv_shape(const PlanView *pv, const PlanOp *op) {
  const PlanValue *x = &pv->values[op->in[0]], *o = &pv->values[op->out]; /* [N,Cin,H,W], [N,Cout,Ho,Wo] */
  PlanAttrs_CONV2D at = plan_attrs_CONV2D(op);
  CpuConvShape s = {.N = x->dims[0], .Cin = x->dims[1], .H = x->dims[2], .W = x->dims[3], .Cout = o->dims[1],
                    .Ho = o->dims[2], .Wo = o->dims[3], .k = at.kernel, .stride = at.stride, .up = at.upsample,
                    .pad = {at.pad_top, at.pad_left, at.pad_bottom, at.pad_right}};
  return s;
}

static void run_op(const Executor *e, size_t i, int64_t n, const DitStepParams *sp);

void exec_op(const Executor *e, size_t i, int64_t n, const DitStepParams *sp) { run_op(e, i, n, sp); }

void exec_forward(const Executor *e, int64_t n) {
  for (size_t i = 0; i < e->pv->io->n_forward_ops; i++) run_op(e, i, n, NULL);
}

void exec_loss(const Executor *e, int64_t n) {
  for (size_t i = 0; i < e->pv->train->n_loss_ops; i++) run_op(e, i, n, NULL);
}

void exec_train(const Executor *e, int64_t n) {
  for (size_t i = 0; i < e->pv->n_ops; i++) run_op(e, i, n, NULL);
}

void exec_sampler(const Executor *e, int64_t n, const DitStepParams *p, int update) {
  for (size_t i = e->pv->io->n_forward_ops; i < e->pv->n_ops; i++)
    if (update || e->pv->ops[i].kind == PLAN_OP_CFG_MIX) run_op(e, i, n, p);
}

/* Every op kind's adapter, by kind: a kind without one is a build error
 * (an undefined exec_op_<name>), a number that is no kind was refused when
 * the plan loaded. */
typedef void (*ExecOpFn)(const Executor *e, const PlanOp *op, int64_t n, const DitStepParams *sp);
static const ExecOpFn exec_ops[PLAN_OP_MAX + 1] = {
#define EXEC_OP_ROW(ID, value, name, ...) [value] = exec_op_##name,
    DIT_PLAN_OPS(EXEC_OP_ROW)
#undef EXEC_OP_ROW
};
_Static_assert(sizeof exec_ops / sizeof exec_ops[0] == PLAN_OP_MAX + 1, "one row per op number");

/* bf16 plans: a result the device stores in bf16 is rounded as it would be. */
static void round_bf16_result(const Executor *e, uint32_t id, int64_t n) {
  if (id != DIT_PLAN_NONE && e->pv->values[id].dtype == PLAN_VDT_BF16)
    cpu_round_bf16(&e->cpu, exec_value(e, id), exec_numel(e, id, n));
}

/* Op i, with its tuned knobs when it has some: the kernels read them from
 * the context of a copy of the executor. */
static void run_op(const Executor *e, size_t i, int64_t n, const DitStepParams *sp) {
  const PlanOp *op = &e->pv->ops[i];
  const int32_t *k = e->op_knobs ? e->op_knobs[i] : NULL;
  if (k && (k[0] | k[1] | k[2] | k[3])) {
    Executor tuned = *e;
    if (k[PLAN_CPU_THREADS] > 0 && k[PLAN_CPU_THREADS] < e->cpu.n_threads) tuned.cpu.n_threads = k[PLAN_CPU_THREADS];
    tuned.cpu.tile_rows = k[PLAN_CPU_TILE_ROWS];
    tuned.cpu.tile_cols = k[PLAN_CPU_TILE_COLS];
    tuned.cpu.q_block = k[PLAN_CPU_Q_BLOCK];
    exec_ops[op->kind](&tuned, op, n, sp);
  } else {
    exec_ops[op->kind](e, op, n, sp);
  }
  round_bf16_result(e, op->out, n);
  round_bf16_result(e, op->out2, n);
}
