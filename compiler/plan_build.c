/* plan_build.c: fused graph + memory plan -> Plan. Value ids in the plan are
 * the graph's node indices, so ops refer to values without any renumbering. */
#include <string.h>

#include "family.h"
#include "lower.h"
#include "plan.h"

#define DIT_TRAIN_STEPS_IN_PLAN DIT_TRAIN_TIMESTEPS

uint32_t plan_add_string(Arena *a, Plan *p, const char *s) {
  size_t n = strlen(s) + 1;
  if (arena_grow(a, (void **)&p->strings, &p->strings_cap, p->strings_bytes + n, 1)) return UINT32_MAX;
  uint32_t off = (uint32_t)p->strings_bytes;
  memcpy(p->strings + off, s, n);
  p->strings_bytes += n;
  return off;
}

/* The model section: its name and family here, the rest the family's. */
static DitcStatus fill_model(Arena *a, Plan *p, const ModelConfig *c) {
  p->model.name = plan_add_string(a, p, c->name);
  p->model.family = plan_add_string(a, p, c->family->name);
  if (p->model.name == UINT32_MAX || p->model.family == UINT32_MAX) return DITC_ERR_NOMEM;
  return c->family->fill_plan_model(a, p, c);
}

static void fill_value(PlanValue *v, const Node *n, const MemSlot *s) {
  v->storage = s->kind == MEM_WEIGHTS ? PLAN_STORE_WEIGHTS
               : s->kind == MEM_GRADS ? PLAN_STORE_GRADS : PLAN_STORE_ARENA;
  v->dtype = n->type.dtype == DT_I64 ? PLAN_VDT_I64 : n->type.dtype == DT_BF16 ? PLAN_VDT_BF16 : PLAN_VDT_F32;
  v->rank = (uint32_t)n->type.rank;
  v->batch_major = s->kind == MEM_ARENA;
  for (int k = 0; k < n->type.rank; k++) v->dims[k] = n->type.dims[k];
  v->offset = (uint64_t)s->offset;
  v->bytes = (uint64_t)s->bytes;
}

/* The weight records of a PARAM or of each part of a PARAM_PACK. */
static int add_weights(Arena *a, Plan *p, const Node *n, const MemSlot *s, size_t *cap) {
  int parts = n->op == OP_PARAM ? 1 : n->attr.pack.n_parts;
  int64_t row_bytes = s->bytes / n->type.dims[0];
  uint64_t off = (uint64_t)s->offset;
  for (int i = 0; i < parts; i++) {
    if (arena_grow(a, (void **)&p->weights, cap, p->n_weights + 1, sizeof(PlanWeight))) return -1;
    PlanWeight *w = &p->weights[p->n_weights++];
    memset(w, 0, sizeof *w);
    int64_t rows = n->op == OP_PARAM ? n->type.dims[0] : n->attr.pack.rows[i];
    w->name = plan_add_string(a, p, n->op == OP_PARAM ? n->name : n->attr.pack.names[i]);
    w->flags = n->op == OP_PARAM && n->attr.param.frozen ? PLAN_WEIGHT_FROZEN : 0;
    w->rank = (uint32_t)n->type.rank;
    w->dtype = PLAN_VDT_F32;
    for (int k = 0; k < n->type.rank; k++) w->dims[k] = n->type.dims[k];
    w->dims[0] = rows;
    w->offset = off;
    w->bytes = (uint64_t)(rows * row_bytes);
    off += w->bytes;
  }
  return 0;
}

/* The AUX node that holds node self's second result, or DIT_PLAN_NONE. */
static uint32_t second_result(const Graph *g, ValueId self) {
  for (size_t j = (size_t)self + 1; j < g->n_nodes; j++)
    if (g->nodes[j].op == OP_AUX && g->nodes[j].src[0] == self) return (uint32_t)j;
  return DIT_PLAN_NONE;
}

static bool to_plan_op(const Node *n, ValueId self, const Graph *g, PlanOp *op) {
  memset(op, 0, sizeof *op);
  op->n_in = (uint32_t)n->n_src;
  for (int k = 0; k < n->n_src; k++) op->in[k] = (uint32_t)n->src[k];
  op->out = (uint32_t)self;
  op->out2 = DIT_PLAN_NONE;
  bool needs_out2 = false;
  const NodeAttr *at = &n->attr;
  switch (n->op) { /* the plan op of each IR op, its attributes by name (plan_ops.h) */
  case OP_PATCHIFY: plan_set_attrs_PATCHIFY(op, (PlanAttrs_PATCHIFY){.patch = at->patch.p}); break;
  case OP_UNPATCHIFY:
    plan_set_attrs_UNPATCHIFY(op, (PlanAttrs_UNPATCHIFY){.patch = at->patch.p, .channels = at->patch.channels});
    break;
  case OP_UNPATCHIFY_GRAD:
    plan_set_attrs_UNPATCHIFY_GRAD(op, (PlanAttrs_UNPATCHIFY_GRAD){.patch = at->patch.p,
                                                                   .channels = at->patch.channels});
    break;
  case OP_LINEAR:
    plan_set_attrs_LINEAR(op, (PlanAttrs_LINEAR){.act = (int64_t)at->linear.act});
    op->out2 = second_result(g, self); /* training: the pre-activation */
    break;
  case OP_ADD: plan_set_attrs_ADD(op, (PlanAttrs_ADD){0}); break;
  case OP_TIMESTEP_FREQ:
    plan_set_attrs_TIMESTEP_FREQ(op, (PlanAttrs_TIMESTEP_FREQ){.freq_dim = at->tfreq.dim,
                                                               .max_period = at->tfreq.max_period});
    break;
  case OP_EMBEDDING: plan_set_attrs_EMBEDDING(op, (PlanAttrs_EMBEDDING){0}); break;
  case OP_SILU: plan_set_attrs_SILU(op, (PlanAttrs_SILU){0}); break;
  case OP_LN_MODULATE:
    plan_set_attrs_LN_MODULATE(op, (PlanAttrs_LN_MODULATE){.shift_col = at->lnmod.shift_col,
                                                           .scale_col = at->lnmod.scale_col, .eps = at->lnmod.eps});
    break;
  case OP_RES_GATE_LN_MODULATE:
    plan_set_attrs_RES_GATE_LN_MODULATE(
        op, (PlanAttrs_RES_GATE_LN_MODULATE){.shift_col = at->lnmod.shift_col, .scale_col = at->lnmod.scale_col,
                                             .gate_col = at->lnmod.gate_col, .eps = at->lnmod.eps});
    needs_out2 = true;
    op->out2 = second_result(g, self); /* the residual r */
    break;
  case OP_LN_MODULATE_GRAD:
    plan_set_attrs_LN_MODULATE_GRAD(op, (PlanAttrs_LN_MODULATE_GRAD){.shift_col = at->lnmod.shift_col,
                                                                     .scale_col = at->lnmod.scale_col,
                                                                     .eps = at->lnmod.eps});
    needs_out2 = true;
    op->out2 = second_result(g, self); /* dmod */
    break;
  case OP_RESIDUAL_GATE_GRAD:
    plan_set_attrs_RESIDUAL_GATE_GRAD(op, (PlanAttrs_RESIDUAL_GATE_GRAD){.gate_col = at->lnmod.gate_col});
    needs_out2 = true;
    op->out2 = second_result(g, self); /* dmod */
    break;
  case OP_CFG_MIX: plan_set_attrs_CFG_MIX(op, (PlanAttrs_CFG_MIX){.guided_channels = at->cfg.guided}); break;
  case OP_DIFFUSION_STEP:
    plan_set_attrs_DIFFUSION_STEP(op, (PlanAttrs_DIFFUSION_STEP){.learn_sigma = at->step.learn_sigma});
    break;
  case OP_ATTENTION:
    plan_set_attrs_ATTENTION(op, (PlanAttrs_ATTENTION){.heads = at->attn.heads, .head_dim = at->attn.head_dim,
                                                       .scale = at->attn.scale});
    op->out2 = second_result(g, self); /* training: the log-sum-exp */
    break;
  case OP_ATTENTION_GRAD:
    plan_set_attrs_ATTENTION_GRAD(op, (PlanAttrs_ATTENTION_GRAD){.heads = at->attn.heads,
                                                                 .head_dim = at->attn.head_dim,
                                                                 .scale = at->attn.scale});
    break;
  case OP_Q_SAMPLE: plan_set_attrs_Q_SAMPLE(op, (PlanAttrs_Q_SAMPLE){.timesteps = at->qs.steps}); break;
  case OP_DIFFUSION_LOSS:
    plan_set_attrs_DIFFUSION_LOSS(op, (PlanAttrs_DIFFUSION_LOSS){.learn_sigma = at->step.learn_sigma,
                                                                 .timesteps = DIT_TRAIN_STEPS_IN_PLAN});
    break;
  case OP_LOSS_GRAD:
    plan_set_attrs_LOSS_GRAD(op, (PlanAttrs_LOSS_GRAD){.learn_sigma = at->step.learn_sigma,
                                                       .timesteps = DIT_TRAIN_STEPS_IN_PLAN});
    break;
  case OP_ZEROS: plan_set_attrs_ZEROS(op, (PlanAttrs_ZEROS){0}); break;
  case OP_ACT_GRAD: plan_set_attrs_ACT_GRAD(op, (PlanAttrs_ACT_GRAD){.act = (int64_t)at->act_grad.act}); break;
  case OP_LINEAR_GRAD_X: plan_set_attrs_LINEAR_GRAD_X(op, (PlanAttrs_LINEAR_GRAD_X){0}); break;
  case OP_LINEAR_GRAD_W:
    plan_set_attrs_LINEAR_GRAD_W(op, (PlanAttrs_LINEAR_GRAD_W){0});
    op->out2 = second_result(g, self); /* db */
    needs_out2 = true;
    break;
  case OP_EMBEDDING_GRAD: plan_set_attrs_EMBEDDING_GRAD(op, (PlanAttrs_EMBEDDING_GRAD){0}); break;
  case OP_SUM_ROWS: plan_set_attrs_SUM_ROWS(op, (PlanAttrs_SUM_ROWS){0}); break;
  case OP_GROUP_NORM:
    plan_set_attrs_GROUP_NORM(op, (PlanAttrs_GROUP_NORM){.groups = at->gnorm.groups, .eps = at->gnorm.eps,
                                                         .act = (int64_t)at->gnorm.act});
    break;
  case OP_CONV2D:
    plan_set_attrs_CONV2D(op, (PlanAttrs_CONV2D){.kernel = g->nodes[n->src[1]].type.dims[2], /* w [Cout,Cin,k,k] */
                                                 .stride = at->conv.stride, .pad_top = at->conv.pad[0],
                                                 .pad_left = at->conv.pad[1], .pad_bottom = at->conv.pad[2],
                                                 .pad_right = at->conv.pad[3], .upsample = at->conv.up,
                                                 .alpha = at->conv.alpha});
    break;
  case OP_TO_TOKENS: plan_set_attrs_TO_TOKENS(op, (PlanAttrs_TO_TOKENS){0}); break;
  case OP_FROM_TOKENS: plan_set_attrs_FROM_TOKENS(op, (PlanAttrs_FROM_TOKENS){0}); break;
  case OP_LATENT_SAMPLE:
    plan_set_attrs_LATENT_SAMPLE(op, (PlanAttrs_LATENT_SAMPLE){.scale = at->latent.scale});
    break;
  case OP_INPUT: case OP_PARAM: case OP_RESHAPE: case OP_PERMUTE: case OP_SLICE: case OP_MATMUL: case OP_BMM:
  case OP_SCALE: case OP_GELU_TANH: case OP_SOFTMAX: case OP_LAYERNORM: case OP_MODULATE:
  case OP_RESIDUAL_GATE: case OP_OUTPUT: case OP_PARAM_PACK: case OP_AUX: case OP_PARAM_GRAD: case OP_COUNT:
    return false; /* inputs, weights, views and markers: no plan op */
  }
  return !needs_out2 || op->out2 != DIT_PLAN_NONE;
}

/* Model, values, weights and ops: what inference and training plans share. */
static DitcStatus build_common(Arena *a, Diag *d, const Graph *g, const MemPlan *mp, PlanDType dtype,
                               Plan **out) {
  Plan *p = arena_alloc(a, sizeof *p);
  if (!p) return DITC_ERR_NOMEM;
  p->dtype = dtype;
  p->max_batch = (uint32_t)g->batch;
  DitcStatus st = fill_model(a, p, g->cfg);
  if (st) return st;
  p->n_values = g->n_nodes;
  p->values = arena_array(a, g->n_nodes, sizeof(PlanValue));
  p->ops = arena_array(a, g->n_nodes, sizeof(PlanOp));
  p->op_node = arena_array(a, g->n_nodes, sizeof(uint32_t));
  if (!p->values || !p->ops || !p->op_node) return DITC_ERR_NOMEM;
  size_t wcap = 0;
  for (size_t i = 0; i < g->n_nodes; i++) {
    const Node *n = &g->nodes[i];
    fill_value(&p->values[i], n, &mp->slots[i]);
    switch (n->op) {
    case OP_INPUT:
    case OP_OUTPUT:
    case OP_RESHAPE:
    case OP_AUX:
    case OP_PARAM_GRAD:
      break; /* inputs, markers, views, and results written by their source op */
    case OP_PARAM:
    case OP_PARAM_PACK:
      if (add_weights(a, p, n, &mp->slots[i], &wcap)) return DITC_ERR_NOMEM;
      break;
    case OP_PERMUTE: case OP_SLICE: case OP_PATCHIFY: case OP_UNPATCHIFY: case OP_MATMUL: case OP_BMM:
    case OP_ADD: case OP_SCALE: case OP_SILU: case OP_GELU_TANH: case OP_SOFTMAX: case OP_LAYERNORM:
    case OP_MODULATE: case OP_RESIDUAL_GATE: case OP_TIMESTEP_FREQ: case OP_EMBEDDING: case OP_LINEAR:
    case OP_LN_MODULATE: case OP_RES_GATE_LN_MODULATE: case OP_ATTENTION: case OP_CFG_MIX:
    case OP_DIFFUSION_STEP: case OP_Q_SAMPLE: case OP_DIFFUSION_LOSS: case OP_LOSS_GRAD: case OP_ZEROS:
    case OP_ACT_GRAD: case OP_LINEAR_GRAD_X: case OP_LINEAR_GRAD_W: case OP_LN_MODULATE_GRAD:
    case OP_RESIDUAL_GATE_GRAD: case OP_ATTENTION_GRAD: case OP_EMBEDDING_GRAD: case OP_UNPATCHIFY_GRAD:
    case OP_SUM_ROWS: case OP_GROUP_NORM: case OP_CONV2D: case OP_TO_TOKENS: case OP_FROM_TOKENS:
    case OP_LATENT_SAMPLE: case OP_COUNT:
      if (!to_plan_op(n, (ValueId)i, g, &p->ops[p->n_ops])) {
        diag_error(d, span_none(), "internal error: op %%%zu (%s) has no runtime implementation",
                   i, op_name(n->op));
        return DITC_ERR_INTERNAL;
      }
      p->op_node[p->n_ops++] = (uint32_t)i;
    }
  }
  *out = p;
  return DITC_OK;
}

/* The index of the first plan op of this kind, or n_ops. */
static uint32_t first_op(const Plan *p, uint32_t kind) {
  for (size_t k = 0; k < p->n_ops; k++)
    if (p->ops[k].kind == kind) return (uint32_t)k;
  return (uint32_t)p->n_ops;
}

/* Adds a named input or output (section PLAN_SEC_IO_NAMES). */
DitcStatus plan_add_io_name(Arena *a, Plan *p, const char *name, uint32_t value, PlanIoRole role) {
  if (p->n_io_names == sizeof p->io_names / sizeof p->io_names[0]) return DITC_ERR_INTERNAL;
  uint32_t s = plan_add_string(a, p, name);
  if (s == UINT32_MAX) return DITC_ERR_NOMEM;
  p->io_names[p->n_io_names++] = (PlanIoName){s, value, (uint32_t)role, 0};
  return DITC_OK;
}

static uint32_t input_named(const Graph *g, const char *name) {
  for (size_t i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].op == OP_INPUT && !strcmp(g->nodes[i].name, name)) return (uint32_t)i;
  return DIT_PLAN_NONE;
}

DitcStatus plan_build(Arena *a, Diag *d, const Graph *g, const MemPlan *mp, PlanDType dtype,
                      Plan **out) {
  Plan *p = NULL;
  DitcStatus st = build_common(a, d, g, mp, dtype, &p);
  if (st) return st;
  if (g->cfg->family->fill_plan_io) { /* a family with inputs and outputs of its own (the VAE) */
    st = g->cfg->family->fill_plan_io(a, d, g, mp, p);
    if (st) return st;
    *out = p;
    return DITC_OK;
  }
  p->io.x = input_named(g, "x");
  p->io.t = input_named(g, "t");
  p->io.y = input_named(g, "y");
  p->io.noise = input_named(g, "noise");
  p->io.out = p->io.x_next = DIT_PLAN_NONE;
  for (size_t i = 0; i < g->n_nodes; i++) {
    if (g->nodes[i].op != OP_OUTPUT) continue;
    /* the model output, then the sampler step's result */
    if (p->io.out == DIT_PLAN_NONE) p->io.out = (uint32_t)i;
    else p->io.x_next = (uint32_t)i;
  }
  p->io.n_forward_ops = first_op(p, PLAN_OP_CFG_MIX);
  if (p->io.x == DIT_PLAN_NONE || p->io.t == DIT_PLAN_NONE || p->io.y == DIT_PLAN_NONE ||
      p->io.out == DIT_PLAN_NONE || p->io.noise == DIT_PLAN_NONE || p->io.x_next == DIT_PLAN_NONE ||
      p->io.n_forward_ops == p->n_ops) {
    diag_error(d, span_none(), "internal error: the graph lacks an input or its output");
    return DITC_ERR_INTERNAL;
  }
  p->io.arena_bytes = (uint64_t)mp->arena_bytes;
  p->io.weight_bytes = (uint64_t)mp->weight_bytes;
  p->io.unplanned_bytes = (uint64_t)mp->unplanned_bytes;
  const struct { const char *name; uint32_t value; PlanIoRole role; } io[] = {
      {"x", p->io.x, PLAN_IO_INPUT},           {"t", p->io.t, PLAN_IO_INPUT},
      {"y", p->io.y, PLAN_IO_INPUT},           {"out", p->io.out, PLAN_IO_OUTPUT},
      {"noise", p->io.noise, PLAN_IO_STEP_INPUT}, {"x_next", p->io.x_next, PLAN_IO_STEP_OUTPUT},
      {"history", input_named(g, "history"), PLAN_IO_STEP_INPUT}};
  for (size_t i = 0; i < sizeof io / sizeof io[0] && !st; i++) st = plan_add_io_name(a, p, io[i].name, io[i].value, io[i].role);
  if (st) return st;
  *out = p;
  return DITC_OK;
}

DitcStatus plan_build_train(Arena *a, Diag *d, const Graph *g, const MemPlan *mp, PlanDType dtype,
                            PlanRecompute recompute, Plan **out) {
  Plan *p = NULL;
  DitcStatus st = build_common(a, d, g, mp, dtype, &p);
  if (st) return st;
  PlanTrain *tr = &p->train_io;
  p->train = true;
  tr->x0 = input_named(g, "x0");
  tr->t = input_named(g, "t");
  tr->y = input_named(g, "y");
  tr->noise = input_named(g, "noise");
  tr->x_t = tr->out = tr->loss = DIT_PLAN_NONE;
  for (size_t i = 0; i < g->n_nodes; i++) {
    const Node *n = &g->nodes[i];
    if (n->op == OP_Q_SAMPLE) tr->x_t = (uint32_t)i;
    if (n->op == OP_DIFFUSION_LOSS) {
      tr->loss = (uint32_t)i;
      tr->out = (uint32_t)n->src[2];
    }
  }
  tr->recompute = recompute;
  tr->n_loss_ops = first_op(p, PLAN_OP_DIFFUSION_LOSS) + 1;
  tr->timesteps = DIT_TRAIN_TIMESTEPS;
  if (tr->x0 == DIT_PLAN_NONE || tr->t == DIT_PLAN_NONE || tr->y == DIT_PLAN_NONE ||
      tr->noise == DIT_PLAN_NONE || tr->x_t == DIT_PLAN_NONE || tr->loss == DIT_PLAN_NONE ||
      tr->n_loss_ops > p->n_ops) {
    diag_error(d, span_none(), "internal error: the training graph lacks an input or its loss");
    return DITC_ERR_INTERNAL;
  }
  tr->arena_bytes = (uint64_t)mp->arena_bytes;
  tr->weight_bytes = (uint64_t)mp->weight_bytes;
  tr->grad_bytes = (uint64_t)mp->grad_bytes;
  tr->unplanned_bytes = (uint64_t)mp->unplanned_bytes;
  const struct { const char *name; uint32_t value; PlanIoRole role; } io[] = {
      {"x0", tr->x0, PLAN_IO_INPUT},       {"t", tr->t, PLAN_IO_INPUT},   {"y", tr->y, PLAN_IO_INPUT},
      {"noise", tr->noise, PLAN_IO_INPUT}, {"loss", tr->loss, PLAN_IO_OUTPUT}};
  for (size_t i = 0; i < sizeof io / sizeof io[0] && !st; i++) st = plan_add_io_name(a, p, io[i].name, io[i].value, io[i].role);
  if (st) return st;
  *out = p;
  return DITC_OK;
}
