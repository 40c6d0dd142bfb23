/* plan_build.c: fused graph + memory plan -> Plan. Value ids in the plan are
 * the graph's node indices, so ops refer to values without any renumbering. */
#include <string.h>

#include "plan.h"

static uint32_t add_string(Arena *a, Plan *p, const char *s) {
  size_t n = strlen(s) + 1;
  if (arena_grow(a, (void **)&p->strings, &p->strings_cap, p->strings_bytes + n, 1)) return UINT32_MAX;
  uint32_t off = (uint32_t)p->strings_bytes;
  memcpy(p->strings + off, s, n);
  p->strings_bytes += n;
  return off;
}

static void fill_model(Arena *a, Plan *p, const ModelConfig *c) {
  PlanModel *m = &p->model;
  m->name = add_string(a, p, c->name);
  m->learn_sigma = c->learn_sigma;
  m->image_size = c->image_size;
  m->latent_scale = c->latent_scale;
  m->latent_size = c->latent_size;
  m->in_channels = c->in_channels;
  m->out_channels = c->out_channels;
  m->patch_size = c->patch_size;
  m->grid = c->grid;
  m->tokens = c->tokens;
  m->hidden_size = c->hidden_size;
  m->depth = c->depth;
  m->num_heads = c->num_heads;
  m->head_dim = c->head_dim;
  m->mlp_hidden = c->mlp_hidden;
  m->num_classes = c->num_classes;
  m->label_rows = c->label_rows;
  m->guided_channels = c->guided_channels;
  m->freq_embed_size = c->freq_embed_size;
  m->mlp_ratio = c->mlp_ratio;
  m->class_dropout = c->class_dropout;
  m->layernorm_eps = c->layernorm_eps;
  m->max_period = c->max_period;
}

static void fill_value(PlanValue *v, const Node *n, const MemSlot *s) {
  v->storage = s->kind == MEM_WEIGHTS ? PLAN_STORE_WEIGHTS : PLAN_STORE_ARENA;
  v->dtype = n->type.dtype == DT_I64 ? PLAN_VDT_I64 : PLAN_VDT_F32;
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
    w->name = add_string(a, p, n->op == OP_PARAM ? n->name : n->attr.pack.names[i]);
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

static bool to_plan_op(const Node *n, ValueId self, const Graph *g, PlanOp *op) {
  memset(op, 0, sizeof *op);
  op->n_in = (uint32_t)n->n_src;
  for (int k = 0; k < n->n_src; k++) op->in[k] = (uint32_t)n->src[k];
  op->out = (uint32_t)self;
  op->out2 = DIT_PLAN_NONE;
  switch (n->op) {
  case OP_PATCHIFY: op->kind = PLAN_OP_PATCHIFY; op->i[0] = n->attr.patch.p; break;
  case OP_UNPATCHIFY:
    op->kind = PLAN_OP_UNPATCHIFY;
    op->i[0] = n->attr.patch.p;
    op->i[1] = n->attr.patch.channels;
    break;
  case OP_LINEAR: op->kind = PLAN_OP_LINEAR; op->i[0] = (int64_t)n->attr.linear.act; break;
  case OP_ADD: op->kind = PLAN_OP_ADD; break;
  case OP_TIMESTEP_FREQ:
    op->kind = PLAN_OP_TIMESTEP_FREQ;
    op->i[0] = n->attr.tfreq.dim;
    op->f[0] = n->attr.tfreq.max_period;
    break;
  case OP_EMBEDDING: op->kind = PLAN_OP_EMBEDDING; break;
  case OP_SILU: op->kind = PLAN_OP_SILU; break;
  case OP_LN_MODULATE:
  case OP_RES_GATE_LN_MODULATE:
    op->kind = n->op == OP_LN_MODULATE ? PLAN_OP_LN_MODULATE : PLAN_OP_RES_GATE_LN_MODULATE;
    op->i[0] = n->attr.lnmod.shift_col;
    op->i[1] = n->attr.lnmod.scale_col;
    op->i[2] = n->attr.lnmod.gate_col;
    op->f[0] = n->attr.lnmod.eps;
    if (n->op == OP_RES_GATE_LN_MODULATE) {
      for (size_t j = (size_t)self + 1; j < g->n_nodes; j++)
        if (g->nodes[j].op == OP_AUX && g->nodes[j].src[0] == self) op->out2 = (uint32_t)j;
      if (op->out2 == DIT_PLAN_NONE) return false;
    }
    break;
  case OP_CFG_MIX: op->kind = PLAN_OP_CFG_MIX; op->i[0] = n->attr.cfg.guided; break;
  case OP_DIFFUSION_STEP: op->kind = PLAN_OP_DIFFUSION_STEP; op->i[0] = n->attr.step.learn_sigma; break;
  case OP_ATTENTION:
    op->kind = PLAN_OP_ATTENTION;
    op->i[0] = n->attr.attn.heads;
    op->i[1] = n->attr.attn.head_dim;
    op->f[0] = n->attr.attn.scale;
    break;
  default: return false;
  }
  return true;
}

DitcStatus plan_build(Arena *a, Diag *d, const Graph *g, const MemPlan *mp, PlanDType dtype,
                      Plan **out) {
  Plan *p = arena_alloc(a, sizeof *p);
  if (!p) return DITC_ERR_NOMEM;
  p->dtype = dtype;
  p->max_batch = (uint32_t)g->batch;
  fill_model(a, p, g->cfg);
  p->n_values = g->n_nodes;
  p->values = arena_array(a, g->n_nodes, sizeof(PlanValue));
  p->ops = arena_array(a, g->n_nodes, sizeof(PlanOp));
  if (!p->values || !p->ops) return DITC_ERR_NOMEM;
  size_t wcap = 0;
  p->io.x = p->io.t = p->io.y = p->io.out = p->io.noise = p->io.x_next = DIT_PLAN_NONE;
  p->io.n_forward_ops = DIT_PLAN_NONE;
  for (size_t i = 0; i < g->n_nodes; i++) {
    const Node *n = &g->nodes[i];
    const MemSlot *s = &mp->slots[i];
    fill_value(&p->values[i], n, s);
    switch (n->op) {
    case OP_INPUT:
      if (!strcmp(n->name, "x")) p->io.x = (uint32_t)i;
      if (!strcmp(n->name, "t")) p->io.t = (uint32_t)i;
      if (!strcmp(n->name, "y")) p->io.y = (uint32_t)i;
      if (!strcmp(n->name, "noise")) p->io.noise = (uint32_t)i;
      break;
    case OP_OUTPUT:
      /* the model output, then the sampler step's result */
      if (p->io.out == DIT_PLAN_NONE) p->io.out = (uint32_t)i;
      else p->io.x_next = (uint32_t)i;
      break;
    case OP_PARAM:
    case OP_PARAM_PACK:
      if (add_weights(a, p, n, s, &wcap)) return DITC_ERR_NOMEM;
      break;
    case OP_RESHAPE:
    case OP_AUX:
      break; /* views, and results written by their source op */
    default:
      if (n->op == OP_CFG_MIX && p->io.n_forward_ops == DIT_PLAN_NONE)
        p->io.n_forward_ops = (uint32_t)p->n_ops;
      if (!to_plan_op(n, (ValueId)i, g, &p->ops[p->n_ops])) {
        diag_error(d, span_none(), "internal error: op %%%zu (%s) has no runtime implementation",
                   i, op_name(n->op));
        return DITC_ERR_INTERNAL;
      }
      p->n_ops++;
    }
  }
  if (p->io.x == DIT_PLAN_NONE || p->io.t == DIT_PLAN_NONE || p->io.y == DIT_PLAN_NONE ||
      p->io.out == DIT_PLAN_NONE || p->io.noise == DIT_PLAN_NONE || p->io.x_next == DIT_PLAN_NONE ||
      p->io.n_forward_ops == DIT_PLAN_NONE) {
    diag_error(d, span_none(), "internal error: the graph lacks an input or its output");
    return DITC_ERR_INTERNAL;
  }
  p->io.arena_bytes = (uint64_t)mp->arena_bytes;
  p->io.weight_bytes = (uint64_t)mp->weight_bytes;
  p->io.unplanned_bytes = (uint64_t)mp->unplanned_bytes;
  *out = p;
  return DITC_OK;
}
