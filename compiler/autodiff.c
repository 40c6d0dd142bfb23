/* autodiff.c: reverse-mode differentiation of the fused training graph (see
 * autodiff.h). One rule per forward op, applied in reverse graph order; each
 * rule reads the gradient of the op's result and adds the gradients of its
 * operands. Gradients of a value with several consumers accumulate: ops that
 * can add into an existing gradient take it as an optional last operand (the
 * memory planner updates it in place), others are summed with an add. */
#include "autodiff.h"

#include <stdio.h>
#include <string.h>

typedef struct AD {
  Graph *g;
  size_t n_fwd;       /* forward nodes: [0, n_fwd) */
  ValueId *grad;      /* [n_fwd]: the gradient of each forward value so far, or -1 */
  bool *rg;           /* [n_fwd]: the value depends on a trainable parameter */
  ValueId *fwd;       /* [n_fwd]: the value rules read (a recomputed clone, or itself) */
  bool *owned;        /* [cap]: a gradient value nothing else reads: it may be updated in place */
  size_t cap;
  RecomputeMode recompute;
  char *err;
  size_t err_bytes;
} AD;

static DitcStatus fail(AD *ad, const char *what, const Node *n) {
  snprintf(ad->err, ad->err_bytes, "%s (%s)", what, n ? op_name(n->op) : "-");
  return DITC_ERR_INTERNAL;
}

/* Appends proto; the new value is owned (fresh bytes). */
static ValueId emit(AD *ad, const Node *proto) {
  ValueId v = ir_append(ad->g, proto);
  if (v >= 0 && (size_t)v < ad->cap) ad->owned[v] = true;
  if (v >= 0 && (size_t)v >= ad->cap) {
    ad->g->status = DITC_ERR_INTERNAL;
    snprintf(ad->g->error, sizeof ad->g->error, "backward graph larger than planned");
    return -1;
  }
  return v;
}

static ValueId emit1(AD *ad, OpKind op, ValueId a) {
  Node n = {.op = op, .n_src = 1, .src = {a}};
  return emit(ad, &n);
}

static ValueId zeros_like(AD *ad, ValueId v) {
  Node n = {.op = OP_ZEROS, .type = ad->g->nodes[v].type};
  n.type.dtype = DT_F32;
  return emit(ad, &n);
}

/* The second result of node v (which must come from a two-result op),
 * created on first use. */
static ValueId aux_of(AD *ad, ValueId v) {
  for (size_t j = (size_t)v + 1; j < ad->g->n_nodes; j++)
    if (ad->g->nodes[j].op == OP_AUX && ad->g->nodes[j].src[0] == v) return (ValueId)j;
  ValueId a = emit1(ad, OP_AUX, v);
  if (a >= 0) ad->owned[a] = false; /* a forward value, never a gradient */
  return a;
}

/* Adds contribution c to the gradient of forward value v. */
static void accumulate(AD *ad, ValueId v, ValueId c) {
  if (c < 0 || !ad->rg[v]) return;
  if (ad->grad[v] < 0) {
    ad->grad[v] = c;
    return;
  }
  Node n = {.op = OP_ADD, .n_src = 2, .src = {ad->grad[v], c}};
  ad->grad[v] = emit(ad, &n);
}

/* The gradient of v as the accumulator operand of an op that will replace
 * it, or -1 when the op should start fresh (no gradient yet, or one that
 * other values share). */
static ValueId take_acc(AD *ad, ValueId v) {
  ValueId a = ad->grad[v];
  if (a < 0 || !ad->owned[a]) return -1;
  ad->grad[v] = -1;
  return a;
}

/* The accumulator of a [N, M] modulation gradient that ops add columns to. */
static ValueId take_cols(AD *ad, ValueId v) {
  ValueId a = take_acc(ad, v);
  return a >= 0 ? a : zeros_like(ad, v);
}

/* After an op that took take_acc(v) == acc (or -1) produced r. */
static void settle(AD *ad, ValueId v, ValueId acc, ValueId r) {
  if (acc >= 0) ad->grad[v] = r;
  else accumulate(ad, v, r);
}

/* Appends clones of block b's forward nodes (parameters excepted), so that
 * its backward reads recomputed activations instead of saved ones. */
static void recompute_block(AD *ad, int b) {
  Graph *g = ad->g;
  for (size_t i = 0; i < ad->n_fwd; i++) {
    Node n = g->nodes[i];
    if (n.block != b || n.op == OP_PARAM || n.op == OP_PARAM_PACK || n.op == OP_OUTPUT) continue;
    for (int k = 0; k < n.n_src; k++) n.src[k] = ad->fwd[n.src[k]];
    ValueId c = emit(ad, &n);
    if (c < 0) return;
    ad->owned[c] = false;
    ad->fwd[i] = c;
  }
}

/* The rule of forward node i. */
static DitcStatus rule(AD *ad, ValueId i) {
  Graph *g = ad->g;
  const Node orig = g->nodes[i];
  const Node n = g->nodes[ad->fwd[i]]; /* operands already point at recomputed values */
  const ValueId *s = n.src;
  ValueId gy = ad->grad[i];
  g->cur_block = orig.block;
  switch (orig.op) {
  case OP_INPUT:
  case OP_PARAM:
  case OP_PARAM_PACK:
  case OP_OUTPUT:
  case OP_AUX: /* its gradient is consumed by its source's rule */
    return DITC_OK;
  case OP_DIFFUSION_LOSS: {
    if (!ad->rg[orig.src[2]]) return DITC_OK;
    Node lg = {.op = OP_LOSS_GRAD, .n_src = 5, .src = {s[0], s[1], s[2], s[3], s[4]}, .attr = n.attr};
    accumulate(ad, orig.src[2], emit(ad, &lg));
    return DITC_OK;
  }
  case OP_RESHAPE: case OP_PERMUTE: case OP_SLICE: case OP_PATCHIFY: case OP_UNPATCHIFY: case OP_MATMUL:
  case OP_BMM: case OP_ADD: case OP_SCALE: case OP_SILU: case OP_GELU_TANH: case OP_SOFTMAX:
  case OP_LAYERNORM: case OP_MODULATE: case OP_RESIDUAL_GATE: case OP_TIMESTEP_FREQ: case OP_EMBEDDING:
  case OP_LINEAR: case OP_LN_MODULATE: case OP_RES_GATE_LN_MODULATE: case OP_ATTENTION: case OP_CFG_MIX:
  case OP_DIFFUSION_STEP: case OP_Q_SAMPLE: case OP_LOSS_GRAD: case OP_ZEROS: case OP_ACT_GRAD:
  case OP_LINEAR_GRAD_X: case OP_LINEAR_GRAD_W: case OP_LN_MODULATE_GRAD: case OP_RESIDUAL_GATE_GRAD:
  case OP_ATTENTION_GRAD: case OP_EMBEDDING_GRAD: case OP_UNPATCHIFY_GRAD: case OP_SUM_ROWS:
  case OP_PARAM_GRAD: case OP_GROUP_NORM: case OP_CONV2D: case OP_TO_TOKENS: case OP_FROM_TOKENS:
  case OP_LATENT_SAMPLE: case OP_COUNT: break;
  }
  if (orig.op == OP_RES_GATE_LN_MODULATE) {
    /* r = x + gate*h (the aux), out = LN(r) modulated: dr = d(aux) + LN'(dout) */
    ValueId ra = aux_of(ad, i);
    if (ra < 0) return g->status;
    ValueId gr = (size_t)ra < ad->n_fwd ? ad->grad[ra] : -1;
    if (gy < 0 && gr < 0) return DITC_OK;
    ValueId dr = gr;
    if (gy >= 0) {
      ValueId acc = (size_t)ra < ad->n_fwd ? take_acc(ad, ra) : -1;
      ValueId dmod = take_cols(ad, orig.src[3]);
      ValueId r_val = (size_t)ra < ad->n_fwd ? ad->fwd[ra] : ra;
      Node ln = {.op = OP_LN_MODULATE_GRAD, .n_src = acc >= 0 ? 5 : 4,
                 .src = {gy, r_val, s[3], dmod, acc}, .attr = n.attr};
      dr = emit(ad, &ln);
      ad->grad[orig.src[3]] = emit1(ad, OP_AUX, dr);
      if (acc < 0 && gr >= 0) {
        Node add = {.op = OP_ADD, .n_src = 2, .src = {gr, dr}};
        dr = emit(ad, &add);
      }
    }
    ValueId dgm = take_cols(ad, orig.src[2]);
    Node rg = {.op = OP_RESIDUAL_GATE_GRAD, .n_src = 4, .src = {dr, s[1], s[2], dgm}, .attr = n.attr};
    ValueId dh = emit(ad, &rg);
    ad->grad[orig.src[2]] = emit1(ad, OP_AUX, dh);
    accumulate(ad, orig.src[1], dh);
    accumulate(ad, orig.src[0], dr); /* dx = dr */
    return g->status;
  }
  if (gy < 0) return DITC_OK;
  switch (orig.op) {
  case OP_UNPATCHIFY: {
    Node u = {.op = OP_UNPATCHIFY_GRAD, .n_src = 1, .src = {gy}, .attr = n.attr};
    accumulate(ad, orig.src[0], emit(ad, &u));
    break;
  }
  case OP_RESHAPE: {
    Node r = {.op = OP_RESHAPE, .n_src = 1, .src = {gy}, .type = g->nodes[s[0]].type};
    ValueId v = emit(ad, &r);
    if (v >= 0) ad->owned[v] = ad->owned[gy]; /* a view of gy */
    accumulate(ad, orig.src[0], v);
    break;
  }
  case OP_LINEAR: {
    ValueId dz = gy;
    if (n.attr.linear.act != ACT_NONE) {
      Node ag = {.op = OP_ACT_GRAD, .n_src = 2, .src = {gy, aux_of(ad, ad->fwd[i])}};
      ag.attr.act_grad.act = n.attr.linear.act;
      dz = emit(ad, &ag);
    }
    if (ad->rg[orig.src[1]] || ad->rg[orig.src[2]]) {
      Node gw = {.op = OP_LINEAR_GRAD_W, .n_src = 2, .src = {dz, s[0]}};
      ValueId dw = emit(ad, &gw);
      accumulate(ad, orig.src[1], dw);
      accumulate(ad, orig.src[2], emit1(ad, OP_AUX, dw));
    }
    if (ad->rg[orig.src[0]]) {
      ValueId acc = take_acc(ad, orig.src[0]);
      Node gx = {.op = OP_LINEAR_GRAD_X, .n_src = acc >= 0 ? 3 : 2, .src = {dz, s[1], acc}};
      settle(ad, orig.src[0], acc, emit(ad, &gx));
    }
    break;
  }
  case OP_ADD: {
    bool both = ad->rg[orig.src[0]] && ad->rg[orig.src[1]];
    if (both) ad->owned[gy] = false; /* shared by the two operands */
    accumulate(ad, orig.src[0], gy);
    if (ad->rg[orig.src[1]]) {
      const TensorType *bt = &g->nodes[s[1]].type;
      if (type_numel(bt) == type_numel(&g->nodes[gy].type)) {
        accumulate(ad, orig.src[1], gy);
      } else {
        Node sr = {.op = OP_SUM_ROWS, .n_src = 1, .src = {gy}, .type = *bt};
        accumulate(ad, orig.src[1], emit(ad, &sr));
      }
    }
    break;
  }
  case OP_SILU: {
    Node ag = {.op = OP_ACT_GRAD, .n_src = 2, .src = {gy, s[0]}};
    ag.attr.act_grad.act = ACT_SILU;
    accumulate(ad, orig.src[0], emit(ad, &ag));
    break;
  }
  case OP_EMBEDDING: {
    if (!ad->rg[orig.src[0]]) break;
    Node eg = {.op = OP_EMBEDDING_GRAD, .n_src = 2, .src = {gy, s[1]}, .type = g->nodes[s[0]].type};
    accumulate(ad, orig.src[0], emit(ad, &eg));
    break;
  }
  case OP_LN_MODULATE: {
    ValueId acc = take_acc(ad, orig.src[0]);
    ValueId dmod = take_cols(ad, orig.src[1]);
    Node ln = {.op = OP_LN_MODULATE_GRAD, .n_src = acc >= 0 ? 5 : 4,
               .src = {gy, s[0], s[1], dmod, acc}, .attr = n.attr};
    ValueId dx = emit(ad, &ln);
    ad->grad[orig.src[1]] = emit1(ad, OP_AUX, dx);
    settle(ad, orig.src[0], acc, dx);
    break;
  }
  case OP_ATTENTION: {
    ValueId lse = aux_of(ad, ad->fwd[i]);
    ValueId acc = take_acc(ad, orig.src[0]);
    Node ag = {.op = OP_ATTENTION_GRAD, .n_src = acc >= 0 ? 5 : 4,
               .src = {gy, s[0], ad->fwd[i], lse, acc}, .attr = n.attr};
    settle(ad, orig.src[0], acc, emit(ad, &ag));
    break;
  }
  case OP_INPUT: case OP_PARAM: case OP_PERMUTE: case OP_SLICE: case OP_PATCHIFY: case OP_MATMUL:
  case OP_BMM: case OP_SCALE: case OP_GELU_TANH: case OP_SOFTMAX: case OP_LAYERNORM: case OP_MODULATE:
  case OP_RESIDUAL_GATE: case OP_TIMESTEP_FREQ: case OP_OUTPUT: case OP_PARAM_PACK:
  case OP_RES_GATE_LN_MODULATE: case OP_AUX: case OP_CFG_MIX: case OP_DIFFUSION_STEP: case OP_Q_SAMPLE:
  case OP_DIFFUSION_LOSS: case OP_LOSS_GRAD: case OP_ZEROS: case OP_ACT_GRAD: case OP_LINEAR_GRAD_X:
  case OP_LINEAR_GRAD_W: case OP_LN_MODULATE_GRAD: case OP_RESIDUAL_GATE_GRAD: case OP_ATTENTION_GRAD:
  case OP_EMBEDDING_GRAD: case OP_UNPATCHIFY_GRAD: case OP_SUM_ROWS: case OP_PARAM_GRAD: case OP_GROUP_NORM:
  case OP_CONV2D: case OP_TO_TOKENS: case OP_FROM_TOKENS: case OP_LATENT_SAMPLE: case OP_COUNT:
    return fail(ad, "no gradient rule for a value that needs one", &orig);
  }
  return g->status;
}

DitcStatus autodiff(Graph *g, RecomputeMode recompute, char *err, size_t err_bytes) {
  size_t n = g->n_nodes;
  AD ad = {.g = g, .n_fwd = n, .recompute = recompute, .err = err, .err_bytes = err_bytes};
  ad.cap = 12 * n + 64;
  ad.grad = arena_array(g->arena, n, sizeof(ValueId));
  ad.fwd = arena_array(g->arena, n, sizeof(ValueId));
  ad.rg = arena_array(g->arena, n, sizeof(bool));
  ad.owned = arena_array(g->arena, ad.cap, sizeof(bool));
  if (!ad.grad || !ad.fwd || !ad.rg || !ad.owned) return DITC_ERR_NOMEM;

  /* Which values depend on a trainable parameter. */
  ValueId loss = -1;
  for (size_t i = 0; i < n; i++) {
    const Node *nd = &g->nodes[i];
    ad.grad[i] = -1;
    ad.fwd[i] = (ValueId)i;
    if (nd->op == OP_PARAM) ad.rg[i] = !nd->attr.param.frozen;
    else if (nd->op == OP_PARAM_PACK) ad.rg[i] = true;
    else if (op_differentiable(nd->op) || nd->op == OP_DIFFUSION_LOSS)
      for (int k = 0; k < nd->n_src; k++) ad.rg[i] = ad.rg[i] || ad.rg[nd->src[k]];
    if (nd->op == OP_DIFFUSION_LOSS) loss = (ValueId)i;
  }
  if (loss < 0) return fail(&ad, "the training graph has no loss", NULL);

  /* Reverse sweep from the loss. */
  int cur_block = IR_NO_BLOCK;
  for (size_t i = (size_t)loss + 1; i-- > 0;) {
    int b = g->nodes[i].block;
    if (recompute == RECOMPUTE_BLOCK && b != IR_NO_BLOCK && b != cur_block) {
      g->cur_block = b;
      recompute_block(&ad, b);
    }
    cur_block = b;
    DitcStatus st = rule(&ad, (ValueId)i);
    if (st) {
      if (g->status) snprintf(err, err_bytes, "%s", g->error);
      return st;
    }
  }
  /* Every trainable parameter's gradient goes to the gradient buffer. */
  g->cur_block = IR_NO_BLOCK;
  for (size_t i = 0; i < n; i++) {
    if (!ad.rg[i] || (g->nodes[i].op != OP_PARAM && g->nodes[i].op != OP_PARAM_PACK)) continue;
    if (ad.grad[i] < 0) return fail(&ad, "a trainable parameter got no gradient", &g->nodes[i]);
    Node pg = {.op = OP_PARAM_GRAD, .n_src = 2, .src = {ad.grad[i], (ValueId)i}};
    emit(&ad, &pg);
  }
  if (g->status) {
    snprintf(err, err_bytes, "%s", g->error);
    return g->status;
  }
  return DITC_OK;
}
