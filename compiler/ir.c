/* ir.c: graph construction (see ir.h): node append with type inference and
 * the sticky error that lets lowering code read as straight-line code. */
#include "ir.h"

#include <stdio.h>
#include <string.h>

static const char *const OP_NAMES[] = {
#define OP(id, name, n_src, grad, acc, flops) name,
#include "ops.def"
#undef OP
};
static const int OP_ARITY[] = {
#define OP(id, name, n_src, grad, acc, flops) n_src,
#include "ops.def"
#undef OP
};
static const int OP_ACC[] = { /* 1: an optional accumulator as the last operand */
#define OP(id, name, n_src, grad, acc, flops) acc,
#include "ops.def"
#undef OP
};
static const double OP_FLOPS[] = { /* elementwise flops per output element */
#define OP(id, name, n_src, grad, acc, flops) flops,
#include "ops.def"
#undef OP
};
static const bool OP_GRAD[] = {
#define OP(id, name, n_src, grad, acc, flops) grad,
#include "ops.def"
#undef OP
};
_Static_assert(sizeof OP_NAMES / sizeof OP_NAMES[0] == OP_COUNT, "ops.def table size");

const char *op_name(OpKind op) { return op < OP_COUNT ? OP_NAMES[op] : "?"; }
int op_arity(OpKind op) { return op < OP_COUNT ? OP_ARITY[op] : -1; }
int op_min_arity(OpKind op) { return op < OP_COUNT ? OP_ARITY[op] - OP_ACC[op] : -1; }
bool op_differentiable(OpKind op) { return op < OP_COUNT && OP_GRAD[op]; }
double op_elementwise_flops(OpKind op) { return op < OP_COUNT ? OP_FLOPS[op] : 0; }

const char *activation_name(Activation a) {
  switch (a) {
  case ACT_NONE: return "none";
  case ACT_GELU_TANH: return "gelu_tanh";
  case ACT_SILU: return "silu";
  }
  return "?";
}

const char *dtype_name(DType t) {
  switch (t) {
  case DT_F32: return "f32";
  case DT_I64: return "i64";
  case DT_BF16: return "bf16";
  }
  return "?";
}

Graph *graph_new(Arena *a, const ModelConfig *cfg, int64_t batch) {
  Graph *g = arena_alloc(a, sizeof *g);
  if (!g) return NULL;
  g->arena = a;
  g->cfg = cfg;
  g->batch = batch;
  g->cur_block = IR_NO_BLOCK;
  return g;
}

int64_t type_numel(const TensorType *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) {
    if (t->dims[i] <= 0) return -1;
    if (__builtin_mul_overflow(n, t->dims[i], &n) || n > IR_MAX_ELEMS) return -1;
  }
  return n;
}

ValueId ir_append(Graph *g, const Node *proto) {
  if (g->status) return -1;
  for (int i = 0; i < proto->n_src; i++)
    if (proto->src[i] < 0) return -1; /* an earlier failure, already recorded */
  Node n = *proto;
  n.block = g->cur_block;
  DitcStatus st = ir_infer_type(g, &n, &n.type, g->error, sizeof g->error);
  if (st) {
    g->status = st;
    return -1;
  }
  if (g->n_nodes >= INT32_MAX ||
      arena_grow(g->arena, (void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof(Node))) {
    g->status = DITC_ERR_NOMEM;
    snprintf(g->error, sizeof g->error, "out of memory building the graph");
    return -1;
  }
  g->nodes[g->n_nodes] = n;
  return (ValueId)g->n_nodes++;
}

static Node proto_of(OpKind op, int n_src, ValueId a, ValueId b, ValueId c) {
  Node n;
  memset(&n, 0, sizeof n);
  n.op = op;
  n.n_src = n_src;
  n.src[0] = a;
  n.src[1] = b;
  n.src[2] = c;
  return n;
}

static void set_dims(TensorType *t, DType dt, int rank, const int64_t *dims) {
  t->dtype = dt;
  t->rank = rank;
  for (int i = 0; i < rank && i < IR_MAX_RANK; i++) t->dims[i] = dims[i];
}

ValueId ir_input(Graph *g, const char *name, DType dt, int rank, const int64_t *dims) {
  Node n = proto_of(OP_INPUT, 0, 0, 0, 0);
  n.name = name;
  set_dims(&n.type, dt, rank, dims);
  return ir_append(g, &n);
}

ValueId ir_param(Graph *g, const char *name, int rank, const int64_t *dims, bool frozen) {
  Node n = proto_of(OP_PARAM, 0, 0, 0, 0);
  n.name = name;
  n.attr.param.frozen = frozen;
  set_dims(&n.type, DT_F32, rank, dims);
  return ir_append(g, &n);
}

ValueId ir_unary(Graph *g, OpKind op, ValueId x) {
  Node n = proto_of(op, 1, x, 0, 0);
  return ir_append(g, &n);
}

ValueId ir_binary(Graph *g, OpKind op, ValueId a, ValueId b) {
  Node n = proto_of(op, 2, a, b, 0);
  return ir_append(g, &n);
}

ValueId ir_ternary(Graph *g, OpKind op, ValueId a, ValueId b, ValueId c) {
  Node n = proto_of(op, 3, a, b, c);
  return ir_append(g, &n);
}

ValueId ir_reshape(Graph *g, ValueId x, int rank, const int64_t *dims) {
  Node n = proto_of(OP_RESHAPE, 1, x, 0, 0);
  set_dims(&n.type, DT_F32, rank, dims);
  return ir_append(g, &n);
}

ValueId ir_permute(Graph *g, ValueId x, const int *perm) {
  Node n = proto_of(OP_PERMUTE, 1, x, 0, 0);
  for (int i = 0; i < IR_MAX_RANK; i++) n.attr.permute.perm[i] = perm[i];
  return ir_append(g, &n);
}

ValueId ir_slice(Graph *g, ValueId x, int axis, int64_t start, int64_t len) {
  Node n = proto_of(OP_SLICE, 1, x, 0, 0);
  n.attr.slice.axis = axis;
  n.attr.slice.start = start;
  n.attr.slice.len = len;
  return ir_append(g, &n);
}

ValueId ir_scale(Graph *g, ValueId x, double value) {
  Node n = proto_of(OP_SCALE, 1, x, 0, 0);
  n.attr.scale.value = value;
  return ir_append(g, &n);
}

ValueId ir_layernorm(Graph *g, ValueId x, double eps) {
  Node n = proto_of(OP_LAYERNORM, 1, x, 0, 0);
  n.attr.norm.eps = eps;
  return ir_append(g, &n);
}

ValueId ir_group_norm(Graph *g, ValueId x, ValueId gamma, ValueId beta, int64_t groups, double eps) {
  return ir_group_norm_act(g, x, gamma, beta, groups, eps, ACT_NONE);
}

ValueId ir_group_norm_act(Graph *g, ValueId x, ValueId gamma, ValueId beta, int64_t groups, double eps,
                          Activation act) {
  Node n = proto_of(OP_GROUP_NORM, 3, x, gamma, beta);
  n.attr.gnorm.groups = groups;
  n.attr.gnorm.eps = eps;
  n.attr.gnorm.act = act;
  return ir_append(g, &n);
}

ValueId ir_conv2d(Graph *g, ValueId x, ValueId w, ValueId b, int64_t stride, const int64_t pad[4], int64_t up,
                  double alpha) {
  Node n = proto_of(OP_CONV2D, 3, x, w, b);
  n.attr.conv.stride = stride;
  for (int i = 0; i < 4; i++) n.attr.conv.pad[i] = pad[i];
  n.attr.conv.up = up;
  n.attr.conv.alpha = alpha;
  return ir_append(g, &n);
}

ValueId ir_to_tokens(Graph *g, ValueId x) {
  Node n = proto_of(OP_TO_TOKENS, 1, x, 0, 0);
  return ir_append(g, &n);
}

ValueId ir_from_tokens(Graph *g, ValueId o, ValueId residual) {
  Node n = proto_of(OP_FROM_TOKENS, 2, o, residual, 0);
  return ir_append(g, &n);
}

ValueId ir_latent_sample(Graph *g, ValueId moments, ValueId noise, double scale) {
  Node n = proto_of(OP_LATENT_SAMPLE, 2, moments, noise, 0);
  n.attr.latent.scale = scale;
  return ir_append(g, &n);
}

ValueId ir_bmm(Graph *g, ValueId a, ValueId b, bool trans_b) {
  Node n = proto_of(OP_BMM, 2, a, b, 0);
  n.attr.bmm.trans_b = trans_b;
  return ir_append(g, &n);
}

ValueId ir_patchify(Graph *g, ValueId x, int64_t p) {
  Node n = proto_of(OP_PATCHIFY, 1, x, 0, 0);
  n.attr.patch.p = p;
  return ir_append(g, &n);
}

ValueId ir_unpatchify(Graph *g, ValueId x, int64_t p, int64_t channels) {
  Node n = proto_of(OP_UNPATCHIFY, 1, x, 0, 0);
  n.attr.patch.p = p;
  n.attr.patch.channels = channels;
  return ir_append(g, &n);
}

ValueId ir_timestep_freq(Graph *g, ValueId t, int64_t dim, double max_period) {
  Node n = proto_of(OP_TIMESTEP_FREQ, 1, t, 0, 0);
  n.attr.tfreq.dim = dim;
  n.attr.tfreq.max_period = max_period;
  return ir_append(g, &n);
}
