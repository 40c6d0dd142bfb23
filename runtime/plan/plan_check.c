/* plan_check.c: every op of a plan against the contract of its kernel
 * (shapes, dtypes, attributes, where its result may be written), so that no
 * kernel can read or write outside a buffer however the file was made. */
#include <math.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>

#include "plan_view.h"

typedef struct Check {
  const PlanView *pv;
  const PlanOp *op;
  size_t index;
  DitErr *err;
} Check;

static DitStatus bad(const Check *c, const char *what) {
  return dit_err(c->err, DIT_ERR_FORMAT, "op %zu (kind %u): %s", c->index, c->op->kind, what);
}

static const PlanValue *val(const Check *c, uint32_t id) { return &c->pv->values[id]; }

static bool dims_eq(const PlanValue *a, const PlanValue *b) {
  if (a->rank != b->rank) return false;
  for (uint32_t i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i]) return false;
  return true;
}

/* A float value (f32, or stored in bf16 in a bf16 plan) of that rank (0: any). */
static bool is_f32(const PlanValue *v, uint32_t rank) {
  return (v->dtype == PLAN_VDT_F32 || v->dtype == PLAN_VDT_BF16) && (rank == 0 || v->rank == rank);
}

/* a * b * c without overflow, or -1 */
static int64_t mul3(int64_t a, int64_t b, int64_t c) {
  int64_t r;
  if (a < 0 || b < 0 || c < 0 || __builtin_mul_overflow(a, b, &r) || __builtin_mul_overflow(r, c, &r))
    return -1;
  return r;
}

static bool overlaps(const PlanValue *a, const PlanValue *b) {
  return a->storage == b->storage && a->offset < b->offset + b->bytes && b->offset < a->offset + a->bytes;
}

/* exactly the same bytes: an in-place result and its operand */
static bool same_place(const PlanValue *a, const PlanValue *b) {
  return a->storage == b->storage && a->offset == b->offset && a->bytes == b->bytes;
}

/* b broadcasts over a: b without its leading 1s equals a's trailing dims */
static bool broadcasts(const PlanValue *a, const PlanValue *b) {
  if (b->rank > a->rank) return false;
  uint32_t lead = 0;
  while (lead < b->rank && b->dims[lead] == 1) lead++;
  for (uint32_t k = lead; k < b->rank; k++)
    if (b->dims[k] != a->dims[a->rank - b->rank + k]) return false;
  return true;
}

/* The operand an op adds its result to, in place, or -1 (plan_ops.h). */
static int acc_operand(const PlanOp *op) {
  const PlanOpInfo *k = plan_op_info(op->kind);
  return k && k->acc >= 0 && op->n_in == k->inputs ? k->acc : -1;
}

static DitStatus check_train_shapes(const Check *c);

/* conv2d: x [N,Cin,H,W], w [Cout,Cin,k,k], b [Cout] -> [N,Cout,Ho,Wo], with
 * Ho = (H*up + pad_top + pad_bottom - k) / stride + 1 (likewise Wo); the
 * GEMM dimensions must fit an int (cblas). */
static DitStatus check_conv2d(const Check *c) {
  const PlanOp *op = c->op;
  const PlanValue *x = val(c, op->in[0]), *w = val(c, op->in[1]), *b = val(c, op->in[2]), *o = val(c, op->out);
  PlanAttrs_CONV2D at = plan_attrs_CONV2D(op);
  int64_t k = at.kernel, s = at.stride, up = at.upsample;
  bool pads_ok = true;
  const int64_t pad[4] = {at.pad_top, at.pad_left, at.pad_bottom, at.pad_right};
  for (int i = 0; i < 4; i++) pads_ok = pads_ok && (pad[i] == 0 || pad[i] == 1);
  if ((k != 1 && k != 3) || (s != 1 && s != 2) || (up != 1 && up != 2) || !pads_ok || !isfinite(at.alpha))
    return bad(c, "conv2d attributes");
  if (!is_f32(x, 4) || !is_f32(w, 4) || !is_f32(b, 1) || !is_f32(o, 4) || !x->batch_major || !o->batch_major)
    return bad(c, "conv2d operand types");
  int64_t hp = mul3(x->dims[2], up, 1), wp = mul3(x->dims[3], up, 1);
  if (hp < 0 || wp < 0 || hp > INT32_MAX || wp > INT32_MAX) return bad(c, "conv2d shapes");
  hp += pad[0] + pad[2];
  wp += pad[1] + pad[3];
  int64_t cin = x->dims[1], cout = w->dims[0];
  if (w->dims[1] != cin || w->dims[2] != k || w->dims[3] != k || b->dims[0] != cout || o->dims[0] != x->dims[0] ||
      o->dims[1] != cout || hp < k || wp < k || o->dims[2] != (hp - k) / s + 1 || o->dims[3] != (wp - k) / s + 1)
    return bad(c, "conv2d shapes");
  int64_t kk = mul3(cin, k, k), pix = mul3(o->dims[2], o->dims[3], 1);
  if (kk < 0 || kk > INT32_MAX || cout > INT32_MAX || pix < 0 || pix > INT32_MAX)
    return bad(c, "conv2d too large for the CPU backend's GEMMs");
  return DIT_OK;
}

static DitStatus check_shapes(const Check *c) {
  const PlanOp *op = c->op;
  const PlanValue *o = val(c, op->out), *a = op->n_in ? val(c, op->in[0]) : o;
  switch ((PlanOpKind)op->kind) {
  case PLAN_OP_PATCHIFY: {
    int64_t p = plan_attrs_PATCHIFY(op).patch;
    if (!is_f32(a, 4) || !is_f32(o, 3) || p < 1 || a->dims[2] % p || a->dims[3] % p)
      return bad(c, "patchify shapes");
    if (o->dims[0] != a->dims[0] || o->dims[1] != mul3(a->dims[2] / p, a->dims[3] / p, 1) ||
        o->dims[2] != mul3(a->dims[1], p, p))
      return bad(c, "patchify output shape");
    return DIT_OK;
  }
  case PLAN_OP_UNPATCHIFY: {
    PlanAttrs_UNPATCHIFY at = plan_attrs_UNPATCHIFY(op);
    int64_t p = at.patch, ch = at.channels, g = (int64_t)llround(sqrt((double)a->dims[1]));
    if (!is_f32(a, 3) || !is_f32(o, 4) || p < 1 || ch < 1 || g * g != a->dims[1] ||
        a->dims[2] != mul3(p, p, ch) || o->dims[0] != a->dims[0] || o->dims[1] != ch ||
        o->dims[2] != mul3(g, p, 1) || o->dims[3] != mul3(g, p, 1))
      return bad(c, "unpatchify shapes");
    return DIT_OK;
  }
  case PLAN_OP_LINEAR: {
    const PlanValue *w = val(c, op->in[1]), *b = val(c, op->in[2]);
    if (!is_f32(a, 0) || a->rank < 2 || !is_f32(w, 2) || !is_f32(b, 1) || !is_f32(o, a->rank))
      return bad(c, "linear operand types");
    int64_t K = a->dims[a->rank - 1], M = w->dims[0];
    int64_t act = plan_attrs_LINEAR(op).act;
    if (w->dims[1] != K || b->dims[0] != M || o->dims[o->rank - 1] != M || act < 0 || act > PLAN_ACT_SILU)
      return bad(c, "linear shapes");
    for (uint32_t k = 0; k + 1 < a->rank; k++)
      if (o->dims[k] != a->dims[k]) return bad(c, "linear output shape");
    if (!a->batch_major || !o->batch_major) return bad(c, "linear rows must be batch-major");
    if (op->out2 != DIT_PLAN_NONE && (act == PLAN_ACT_NONE || !dims_eq(val(c, op->out2), o)))
      return bad(c, "linear pre-activation shape");
    return DIT_OK;
  }
  case PLAN_OP_ADD: {
    const PlanValue *b = val(c, op->in[1]);
    if (!is_f32(a, 0) || !is_f32(b, 0) || !dims_eq(a, o) || b->rank > a->rank)
      return bad(c, "add operand types");
    /* b, without its leading 1s, must equal a's trailing dims: then b repeats with period numel(b) */
    uint32_t lead = 0;
    while (lead < b->rank && b->dims[lead] == 1) lead++;
    for (uint32_t k = lead; k < b->rank; k++)
      if (b->dims[k] != a->dims[a->rank - b->rank + k]) return bad(c, "add broadcast shape");
    if (b->batch_major && !dims_eq(a, b)) return bad(c, "add of batch-major operands of different shapes");
    return DIT_OK;
  }
  case PLAN_OP_SILU:
    if (!is_f32(a, 0) || !dims_eq(a, o)) return bad(c, "silu shapes");
    return DIT_OK;
  case PLAN_OP_TIMESTEP_FREQ: {
    PlanAttrs_TIMESTEP_FREQ at = plan_attrs_TIMESTEP_FREQ(op);
    if (a->dtype != PLAN_VDT_I64 || a->rank != 1 || !is_f32(o, 2) || o->dims[0] != a->dims[0] ||
        o->dims[1] != at.freq_dim || at.freq_dim < 2 || at.freq_dim % 2 || !(at.max_period > 1) ||
        !isfinite(at.max_period))
      return bad(c, "timestep_freq shapes");
    return DIT_OK;
  }
  case PLAN_OP_EMBEDDING: {
    const PlanValue *ids = val(c, op->in[1]);
    if (!is_f32(a, 2) || ids->dtype != PLAN_VDT_I64 || ids->rank != 1 || !is_f32(o, 2) ||
        o->dims[0] != ids->dims[0] || o->dims[1] != a->dims[1])
      return bad(c, "embedding shapes");
    return DIT_OK;
  }
  case PLAN_OP_LN_MODULATE:
  case PLAN_OP_RES_GATE_LN_MODULATE: {
    bool res = op->kind == PLAN_OP_RES_GATE_LN_MODULATE;
    const PlanValue *mod = val(c, op->in[res ? 3 : 1]);
    if (!is_f32(a, 3) || !dims_eq(a, o) || !is_f32(mod, 2) || mod->dims[0] != a->dims[0])
      return bad(c, "ln_modulate shapes");
    int64_t D = a->dims[2];
    PlanAttrs_LN_MODULATE ln = plan_attrs_LN_MODULATE(op); /* the residual kind's first attributes too */
    if (ln.shift_col < 0 || ln.shift_col > mod->dims[1] - D || ln.scale_col < 0 || ln.scale_col > mod->dims[1] - D ||
        !(ln.eps > 0) || !isfinite(ln.eps))
      return bad(c, "ln_modulate columns or eps");
    if (res) {
      const PlanValue *h = val(c, op->in[1]), *g = val(c, op->in[2]), *r = val(c, op->out2);
      int64_t gate = plan_attrs_RES_GATE_LN_MODULATE(op).gate_col;
      if (!dims_eq(h, a) || !dims_eq(r, a) || !is_f32(g, 2) || g->dims[0] != a->dims[0] ||
          gate < 0 || gate > g->dims[1] - D)
        return bad(c, "res_gate_ln_modulate shapes");
    }
    return DIT_OK;
  }
  case PLAN_OP_ATTENTION: {
    PlanAttrs_ATTENTION at = plan_attrs_ATTENTION(op);
    int64_t H = at.heads, hd = at.head_dim;
    if (!is_f32(a, 3) || !is_f32(o, 3) || H < 1 || hd < 1 || a->dims[2] != mul3(3, H, hd) ||
        o->dims[0] != a->dims[0] || o->dims[1] != a->dims[1] || o->dims[2] != mul3(H, hd, 1) ||
        !isfinite(at.scale))
      return bad(c, "attention shapes");
    /* the CPU backend keeps one T x T score matrix per thread */
    if (a->dims[1] > (1 << 20)) return bad(c, "attention over more than 2^20 tokens");
    if (op->out2 != DIT_PLAN_NONE) {
      const PlanValue *l = val(c, op->out2);
      if (!is_f32(l, 3) || l->dims[0] != a->dims[0] || l->dims[1] != H || l->dims[2] != a->dims[1])
        return bad(c, "attention log-sum-exp shape");
    }
    return DIT_OK;
  }
  case PLAN_OP_CFG_MIX:
    if (!is_f32(a, 4) || !dims_eq(a, o) || plan_attrs_CFG_MIX(op).guided_channels < 0 ||
        plan_attrs_CFG_MIX(op).guided_channels > a->dims[1])
      return bad(c, "cfg_mix shapes");
    return DIT_OK;
  case PLAN_OP_DIFFUSION_STEP: {
    const PlanValue *m = val(c, op->in[1]), *z = val(c, op->in[2]);
    int64_t sig = plan_attrs_DIFFUSION_STEP(op).learn_sigma;
    if (!is_f32(a, 4) || !dims_eq(a, o) || !dims_eq(a, z) || !is_f32(m, 4) || sig < 0 || sig > 1 ||
        m->dims[0] != a->dims[0] || m->dims[1] != a->dims[1] * (sig ? 2 : 1) ||
        m->dims[2] != a->dims[2] || m->dims[3] != a->dims[3])
      return bad(c, "diffusion_step shapes");
    return DIT_OK;
  }
  case PLAN_OP_GROUP_NORM: {
    const PlanValue *gam = val(c, op->in[1]), *bet = val(c, op->in[2]);
    PlanAttrs_GROUP_NORM at = plan_attrs_GROUP_NORM(op);
    if (!is_f32(a, 4) || !dims_eq(a, o) || !is_f32(gam, 1) || !is_f32(bet, 1) || gam->dims[0] != a->dims[1] ||
        bet->dims[0] != a->dims[1] || at.groups < 1 || a->dims[1] % at.groups || !(at.eps > 0) ||
        !isfinite(at.eps) || (at.act != PLAN_ACT_NONE && at.act != PLAN_ACT_SILU) || !a->batch_major ||
        !o->batch_major)
      return bad(c, "group_norm shapes, groups, eps or activation");
    return DIT_OK;
  }
  case PLAN_OP_CONV2D: return check_conv2d(c);
  case PLAN_OP_TO_TOKENS:
    /* [N,C,H,W] -> [N,H*W,C] */
    if (!is_f32(a, 4) || !is_f32(o, 3) || o->dims[0] != a->dims[0] || o->dims[1] != mul3(a->dims[2], a->dims[3], 1) ||
        o->dims[2] != a->dims[1] || !a->batch_major || !o->batch_major)
      return bad(c, "to_tokens shapes");
    return DIT_OK;
  case PLAN_OP_FROM_TOKENS: {
    /* o [N,H*W,C], residual [N,C,H,W] -> [N,C,H,W] */
    const PlanValue *r = val(c, op->in[1]);
    if (!is_f32(a, 3) || !is_f32(r, 4) || !dims_eq(r, o) || a->dims[0] != r->dims[0] ||
        a->dims[1] != mul3(r->dims[2], r->dims[3], 1) || a->dims[2] != r->dims[1] || !a->batch_major ||
        !r->batch_major || !o->batch_major)
      return bad(c, "from_tokens shapes");
    return DIT_OK;
  }
  case PLAN_OP_LATENT_SAMPLE: {
    /* moments [N,2C,h,w], noise [N,C,h,w] -> [N,C,h,w] */
    const PlanValue *z = val(c, op->in[1]);
    if (!is_f32(a, 4) || !is_f32(z, 4) || !dims_eq(z, o) || a->dims[0] != z->dims[0] ||
        a->dims[1] != mul3(z->dims[1], 2, 1) || a->dims[2] != z->dims[2] || a->dims[3] != z->dims[3] ||
        !isfinite(plan_attrs_LATENT_SAMPLE(op).scale) || !a->batch_major || !z->batch_major || !o->batch_major)
      return bad(c, "latent_sample shapes");
    return DIT_OK;
  }
  case PLAN_OP_Q_SAMPLE: case PLAN_OP_DIFFUSION_LOSS: case PLAN_OP_LOSS_GRAD: case PLAN_OP_ZEROS:
  case PLAN_OP_ACT_GRAD: case PLAN_OP_LINEAR_GRAD_X: case PLAN_OP_LINEAR_GRAD_W: case PLAN_OP_LN_MODULATE_GRAD:
  case PLAN_OP_RESIDUAL_GATE_GRAD: case PLAN_OP_ATTENTION_GRAD: case PLAN_OP_EMBEDDING_GRAD:
  case PLAN_OP_UNPATCHIFY_GRAD: case PLAN_OP_SUM_ROWS:
    return check_train_shapes(c);
  }
  return bad(c, "unknown op kind (the plan needs a newer runtime)");
}

/* The training ops' contracts. */
static DitStatus check_train_shapes(const Check *c) {
  const PlanOp *op = c->op;
  const PlanView *pv = c->pv;
  const PlanValue *o = val(c, op->out), *a = op->n_in ? val(c, op->in[0]) : o;
  if (!pv->train) return bad(c, "unknown op kind (the plan needs a newer runtime)");
  int acc = acc_operand(op);
  if (acc >= 0 && (!same_place(val(c, op->in[acc]), o) || !dims_eq(val(c, op->in[acc]), o)))
    return bad(c, "an accumulator that is not the result's own bytes");
  int ip = plan_op_info(op->kind)->out2_over;
  if (ip >= 0 && (!same_place(val(c, op->in[ip]), val(c, op->out2)) || !dims_eq(val(c, op->in[ip]), val(c, op->out2))))
    return bad(c, "dmod is not updated in place");
  switch ((PlanOpKind)op->kind) {
  case PLAN_OP_Q_SAMPLE: {
    const PlanValue *z = val(c, op->in[1]), *t = val(c, op->in[2]);
    if (!is_f32(a, 4) || !dims_eq(a, z) || !dims_eq(a, o) || t->dtype != PLAN_VDT_I64 || t->rank != 1 ||
        t->dims[0] != a->dims[0] || plan_attrs_Q_SAMPLE(op).timesteps != pv->train->timesteps || !a->batch_major ||
        !t->batch_major || !o->batch_major)
      return bad(c, "q_sample shapes");
    return DIT_OK;
  }
  case PLAN_OP_DIFFUSION_LOSS:
  case PLAN_OP_LOSS_GRAD: {
    const PlanValue *xt = val(c, op->in[1]), *m = val(c, op->in[2]), *z = val(c, op->in[3]);
    const PlanValue *t = val(c, op->in[4]);
    PlanAttrs_DIFFUSION_LOSS l = plan_attrs_DIFFUSION_LOSS(op); /* loss_grad's are the same */
    if (!is_f32(a, 4) || !dims_eq(a, xt) || !dims_eq(a, z) || !is_f32(m, 4) || l.learn_sigma < 0 ||
        l.learn_sigma > 1 || m->dims[0] != a->dims[0] || m->dims[1] != a->dims[1] * (l.learn_sigma ? 2 : 1) ||
        m->dims[2] != a->dims[2] || m->dims[3] != a->dims[3] || t->dtype != PLAN_VDT_I64 ||
        t->rank != 1 || t->dims[0] != a->dims[0] || l.timesteps != pv->train->timesteps ||
        !a->batch_major || !xt->batch_major || !m->batch_major || !z->batch_major || !t->batch_major)
      return bad(c, "diffusion loss shapes");
    bool ok = op->kind == PLAN_OP_LOSS_GRAD ? dims_eq(o, m) && o->dtype == PLAN_VDT_F32
                                            : is_f32(o, 1) && o->dims[0] == a->dims[0];
    if (!ok || !o->batch_major) return bad(c, "diffusion loss result shape");
    return DIT_OK;
  }
  case PLAN_OP_ZEROS:
    if (o->dtype != PLAN_VDT_F32) return bad(c, "zeros type");
    return DIT_OK;
  case PLAN_OP_ACT_GRAD:
    if (!is_f32(a, 0) || !dims_eq(a, val(c, op->in[1])) || !dims_eq(a, o) ||
        (plan_attrs_ACT_GRAD(op).act != PLAN_ACT_GELU_TANH && plan_attrs_ACT_GRAD(op).act != PLAN_ACT_SILU) ||
        a->batch_major != o->batch_major)
      return bad(c, "act_grad shapes");
    return DIT_OK;
  case PLAN_OP_LINEAR_GRAD_X:
  case PLAN_OP_LINEAR_GRAD_W: {
    const PlanValue *b = val(c, op->in[1]);
    bool gx = op->kind == PLAN_OP_LINEAR_GRAD_X;
    if (!is_f32(a, 0) || a->rank < 2 || !a->batch_major || !is_f32(b, 0)) return bad(c, "linear gradient operand types");
    int64_t M = a->dims[a->rank - 1];
    if (gx) {
      if (b->rank != 2 || b->dims[0] != M || !is_f32(o, a->rank) || !o->batch_major ||
          o->dims[o->rank - 1] != b->dims[1])
        return bad(c, "linear_grad_x shapes");
      for (uint32_t k = 0; k + 1 < a->rank; k++)
        if (o->dims[k] != a->dims[k]) return bad(c, "linear_grad_x shapes");
    } else {
      const PlanValue *db = val(c, op->out2);
      if (b->rank != a->rank || !b->batch_major || !is_f32(o, 2) || o->batch_major || o->dims[0] != M ||
          o->dims[1] != b->dims[b->rank - 1] || !is_f32(db, 1) || db->batch_major || db->dims[0] != M)
        return bad(c, "linear_grad_w shapes");
      for (uint32_t k = 0; k + 1 < a->rank; k++)
        if (b->dims[k] != a->dims[k]) return bad(c, "linear_grad_w shapes");
    }
    return DIT_OK;
  }
  case PLAN_OP_LN_MODULATE_GRAD:
  case PLAN_OP_RESIDUAL_GATE_GRAD: {
    const PlanValue *x = val(c, op->in[1]), *mod = val(c, op->in[2]), *dmod = val(c, op->in[3]);
    if (!is_f32(a, 3) || !dims_eq(a, x) || !dims_eq(a, o) || !is_f32(mod, 2) ||
        mod->dims[0] != a->dims[0] || !dims_eq(mod, dmod) || !a->batch_major || !mod->batch_major ||
        !dmod->batch_major || !o->batch_major)
      return bad(c, "modulation gradient shapes");
    int64_t D = a->dims[2], M = mod->dims[1];
    bool ln = op->kind == PLAN_OP_LN_MODULATE_GRAD;
    PlanAttrs_LN_MODULATE_GRAD lg = plan_attrs_LN_MODULATE_GRAD(op);
    int64_t gate = plan_attrs_RESIDUAL_GATE_GRAD(op).gate_col;
    int64_t c0 = ln ? lg.shift_col : gate, c1 = ln ? lg.scale_col : gate;
    if (c0 < 0 || c0 > M - D || c1 < 0 || c1 > M - D || (ln && (!(lg.eps > 0) || !isfinite(lg.eps))))
      return bad(c, "modulation gradient columns or eps");
    return DIT_OK;
  }
  case PLAN_OP_ATTENTION_GRAD: {
    const PlanValue *q = val(c, op->in[1]), *out = val(c, op->in[2]), *l = val(c, op->in[3]);
    PlanAttrs_ATTENTION_GRAD at = plan_attrs_ATTENTION_GRAD(op);
    int64_t H = at.heads, hd = at.head_dim;
    if (!is_f32(q, 3) || H < 1 || hd < 1 || q->dims[2] != mul3(3, H, hd) || !dims_eq(o, q) ||
        !is_f32(a, 3) || a->dims[0] != q->dims[0] || a->dims[1] != q->dims[1] ||
        a->dims[2] != mul3(H, hd, 1) || !dims_eq(a, out) || !is_f32(l, 3) || l->dims[0] != q->dims[0] ||
        l->dims[1] != H || l->dims[2] != q->dims[1] || !isfinite(at.scale) ||
        q->dims[1] > (1 << 20) ||
        !a->batch_major || !q->batch_major || !out->batch_major || !l->batch_major || !o->batch_major)
      return bad(c, "attention_grad shapes");
    return DIT_OK;
  }
  case PLAN_OP_EMBEDDING_GRAD: {
    const PlanValue *ids = val(c, op->in[1]);
    /* the ids are the plan's labels, which the runtime checks against the table */
    if (!is_f32(a, 2) || op->in[1] != pv->train->y || ids->dims[0] != a->dims[0] || !is_f32(o, 2) ||
        o->dims[0] != pv->model->label_rows || o->dims[1] != a->dims[1] || o->batch_major || !a->batch_major)
      return bad(c, "embedding_grad shapes");
    return DIT_OK;
  }
  case PLAN_OP_UNPATCHIFY_GRAD: {
    int64_t p = plan_attrs_UNPATCHIFY_GRAD(op).patch, ch = plan_attrs_UNPATCHIFY_GRAD(op).channels;
    if (!is_f32(a, 4) || !is_f32(o, 3) || p < 1 || ch < 1 || a->dims[1] != ch || a->dims[2] != a->dims[3] ||
        a->dims[2] % p || o->dims[0] != a->dims[0] || o->dims[1] != mul3(a->dims[2] / p, a->dims[2] / p, 1) ||
        o->dims[2] != mul3(p, p, ch) || !a->batch_major || !o->batch_major)
      return bad(c, "unpatchify_grad shapes");
    return DIT_OK;
  }
  case PLAN_OP_SUM_ROWS:
    if (!is_f32(a, 0) || !is_f32(o, 0) || o->batch_major || !broadcasts(a, o)) return bad(c, "sum_rows shapes");
    return DIT_OK;
  case PLAN_OP_PATCHIFY: case PLAN_OP_LINEAR: case PLAN_OP_ADD: case PLAN_OP_TIMESTEP_FREQ: case PLAN_OP_EMBEDDING:
  case PLAN_OP_SILU: case PLAN_OP_LN_MODULATE: case PLAN_OP_RES_GATE_LN_MODULATE: case PLAN_OP_ATTENTION:
  case PLAN_OP_UNPATCHIFY: case PLAN_OP_CFG_MIX: case PLAN_OP_DIFFUSION_STEP: case PLAN_OP_GROUP_NORM:
  case PLAN_OP_CONV2D: case PLAN_OP_TO_TOKENS: case PLAN_OP_FROM_TOKENS: case PLAN_OP_LATENT_SAMPLE:
    break; /* check_shapes' */
  }
  return bad(c, "unknown op kind (the plan needs a newer runtime)");
}

/* n_in is the kind's operand count, or one fewer where the last is an
 * optional accumulator. */
static bool arity_ok(const PlanOp *op) {
  const PlanOpInfo *k = plan_op_info(op->kind);
  return k && (op->n_in == k->inputs || (k->acc >= 0 && op->n_in + 1 == k->inputs));
}

/* Whether an op kind writes a second result: 2 always, 1 optionally (training plans), 0 never. */
static int second_result(const PlanOpInfo *k, bool train) {
  return k->out2 == PLAN_OUT2_ALWAYS ? 2 : k->out2 == PLAN_OUT2_TRAIN && train ? 1 : 0;
}

DitStatus plan_check_ops(const PlanView *pv, DitErr *err) {
  DitStatus st = DIT_OK;
  /* An op result may be read only after its op ran. Values no op writes
   * (weights, inputs, views of other values) are readable from the start. */
  bool *defined = calloc(pv->n_values ? pv->n_values : 1, sizeof(bool));
  if (!defined) return dit_err(err, DIT_ERR_NOMEM, "out of memory");
  for (size_t v = 0; v < pv->n_values; v++) defined[v] = true;
  bool train = pv->train != NULL;
  for (size_t i = 0; i < pv->n_ops; i++) {
    uint32_t outs[2] = {pv->ops[i].out, pv->ops[i].out2};
    for (int k = 0; k < 2; k++)
      if (outs[k] < pv->n_values && pv->values[outs[k]].storage != PLAN_STORE_WEIGHTS)
        defined[outs[k]] = false;
  }
  for (size_t i = 0; i < pv->n_ops; i++) {
    const PlanOp *op = &pv->ops[i];
    Check c = {pv, op, i, err};
    const PlanOpInfo *info = plan_op_info(op->kind);
    if (!info) {
      st = bad(&c, "unknown op kind (the plan needs a newer runtime)");
      goto done;
    }
    bool sampler = info->phase == PLAN_PHASE_SAMPLER;
    /* a VAE plan of both parts: the encoder's forward ops after the decoder's, no sampler ops */
    bool vae = pv->model->parts != 0;
    bool misplaced = train ? sampler || ((op->kind == PLAN_OP_DIFFUSION_LOSS) != (i + 1 == pv->train->n_loss_ops))
                     : vae ? info->phase != PLAN_PHASE_FORWARD
                           : info->phase == PLAN_PHASE_TRAIN || sampler != (i >= pv->io->n_forward_ops);
    if (misplaced) {
      st = bad(&c, train ? "a sampler op in a training plan, or the loss out of place"
                         : "a training op in an inference plan, a sampler op among the forward ops, or a "
                           "forward op after them");
      goto done;
    }
    int two = second_result(info, train);
    bool has2 = op->out2 != DIT_PLAN_NONE;
    if (!arity_ok(op) || op->out >= pv->n_values || (has2 && op->out2 >= pv->n_values) ||
        (two == 2 && !has2) || (two == 0 && has2)) {
      st = bad(&c, "wrong operand count or result id");
      goto done;
    }
    const PlanValue *o = &pv->values[op->out], *o2 = has2 ? &pv->values[op->out2] : NULL;
    bool where_ok = o->storage == PLAN_STORE_ARENA || (train && o->storage == PLAN_STORE_GRADS);
    if (o2) where_ok = where_ok && (o2->storage == PLAN_STORE_ARENA || (train && o2->storage == PLAN_STORE_GRADS));
    if (!where_ok) {
      st = bad(&c, "writes outside the activation arena");
      goto done;
    }
    for (uint32_t k = 0; k < op->n_in; k++) {
      if (op->in[k] >= pv->n_values || !defined[op->in[k]]) {
        st = bad(&c, "reads a value that is not defined before it");
        goto done;
      }
    }
    /* Results never overlap operands, except in place: the residual over x,
     * a gradient over its accumulator, dmod over itself (the exact bytes,
     * which check_shapes verifies). */
    int acc = acc_operand(op), ip = info->out2_over;
    for (uint32_t k = 0; k < op->n_in; k++) {
      const PlanValue *in = &pv->values[op->in[k]];
      bool o_ok = (int)k == acc && same_place(o, in);
      bool o2_ok = (int)k == ip && o2 && o2->offset == in->offset;
      if ((overlaps(o, in) && !o_ok) || (o2 && overlaps(o2, in) && !o2_ok)) {
        st = bad(&c, "a result overlaps an operand");
        goto done;
      }
    }
    if (o2 && overlaps(o, o2)) {
      st = bad(&c, "the two results overlap");
      goto done;
    }
    st = check_shapes(&c);
    if (st) goto done;
    defined[op->out] = true;
    if (o2) defined[op->out2] = true;
  }
  if (train) goto done; /* check_train names the loss, which the loss op writes */
  /* the output is an op result or a view of one */
  bool written = false;
  const PlanValue *out = &pv->values[pv->io->out];
  for (size_t i = 0; i < pv->n_ops && !written; i++) {
    const PlanValue *r = &pv->values[pv->ops[i].out];
    written = r->storage == out->storage && r->offset == out->offset && r->bytes == out->bytes;
  }
  if (!written) st = dit_err(err, DIT_ERR_FORMAT, "no op writes the plan's output");
done:
  free(defined);
  return st;
}

const char *plan_op_name(uint32_t kind) {
  const PlanOpInfo *k = plan_op_info(kind);
  return k ? k->name : "?";
}
