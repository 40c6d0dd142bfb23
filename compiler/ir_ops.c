/* ir_ops.c: the type rule of every op in ops.def. The builder applies it to
 * each new node and the verifier re-applies it to every node after a pass. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ir.h"

static DitcStatus fail(char *err, size_t n, DitcStatus st, const Node *nd, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static DitcStatus fail(char *err, size_t n, DitcStatus st, const Node *nd, const char *fmt, ...) {
  int k = snprintf(err, n, "the %s ", op_name(nd->op));
  if (k < 0 || (size_t)k >= n) return st;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err + k, n - (size_t)k, fmt, ap);
  va_end(ap);
  return st;
}

#define FAIL(...) return fail(err, err_bytes, DITC_ERR_INTERNAL, n, __VA_ARGS__)

static bool same_dims(const TensorType *a, const TensorType *b) {
  if (a->rank != b->rank) return false;
  for (int i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i]) return false;
  return true;
}

DitcStatus ir_infer_type(const Graph *g, const Node *n, TensorType *out, char *err,
                         size_t err_bytes) {
  if (n->op >= OP_COUNT) FAIL("unknown op %d", (int)n->op);
  if (n->n_src > op_arity(n->op) || n->n_src < op_min_arity(n->op))
    FAIL("takes %d operands, got %d", op_arity(n->op), n->n_src);
  const TensorType *s[IR_MAX_SRC] = {0};
  for (int i = 0; i < n->n_src; i++) {
    if (n->src[i] < 0 || (size_t)n->src[i] >= g->n_nodes) FAIL("operand %d is undefined", i);
    s[i] = &g->nodes[n->src[i]].type;
    if (g->nodes[n->src[i]].op == OP_OUTPUT || g->nodes[n->src[i]].op == OP_PARAM_GRAD)
      FAIL("operand %d is an output marker", i);
  }
  TensorType t;
  memset(&t, 0, sizeof t);
  t.dtype = DT_F32;
  /* All ops but INPUT, PARAM, EMBEDDING's ids and TIMESTEP_FREQ take f32 operands. */
  switch (n->op) {
  case OP_INPUT:
  case OP_PARAM:
    if (!n->name || !n->name[0]) FAIL("has no name");
    if (n->type.rank < 1 || n->type.rank > IR_MAX_RANK) FAIL("bad rank %d", n->type.rank);
    if (n->op == OP_PARAM && !dtype_is_float(n->type.dtype)) FAIL("parameters are f32 or bf16");
    t = n->type;
    break;
  case OP_RESHAPE:
    t = n->type;
    t.dtype = s[0]->dtype;
    if (t.rank < 1 || t.rank > IR_MAX_RANK) FAIL("bad rank %d", t.rank);
    if (type_numel(&t) != type_numel(s[0])) FAIL("changes the element count");
    break;
  case OP_PERMUTE: {
    bool seen[IR_MAX_RANK] = {0};
    t = *s[0];
    for (int i = 0; i < t.rank; i++) {
      int p = n->attr.permute.perm[i];
      if (p < 0 || p >= t.rank || seen[p]) FAIL("perm is not a permutation of %d axes", t.rank);
      seen[p] = true;
      t.dims[i] = s[0]->dims[p];
    }
    break;
  }
  case OP_SLICE: {
    t = *s[0];
    int ax = n->attr.slice.axis < 0 ? n->attr.slice.axis + t.rank : n->attr.slice.axis;
    if (ax < 0 || ax >= t.rank) FAIL("axis %d out of range", n->attr.slice.axis);
    int64_t st = n->attr.slice.start, len = n->attr.slice.len;
    if (st < 0 || len < 1 || st > t.dims[ax] - len)
      FAIL("range [%lld, +%lld) exceeds dim %lld", (long long)st, (long long)len,
           (long long)t.dims[ax]);
    t.dims[ax] = len;
    break;
  }
  case OP_PATCHIFY: {
    int64_t p = n->attr.patch.p;
    if (s[0]->rank != 4) FAIL("expects [N,C,H,W]");
    if (p < 1 || s[0]->dims[2] % p || s[0]->dims[3] % p) FAIL("patch %lld does not tile", (long long)p);
    int64_t gh = s[0]->dims[2] / p, gw = s[0]->dims[3] / p, tok, pd;
    if (__builtin_mul_overflow(gh, gw, &tok) || __builtin_mul_overflow(s[0]->dims[1], p * p, &pd))
      return fail(err, err_bytes, DITC_ERR_LIMIT, n, "size overflows");
    t.rank = 3;
    t.dims[0] = s[0]->dims[0];
    t.dims[1] = tok;
    t.dims[2] = pd;
    break;
  }
  case OP_UNPATCHIFY: {
    int64_t p = n->attr.patch.p, c = n->attr.patch.channels, width, side;
    if (s[0]->rank != 3) FAIL("expects [N,T,p*p*C]");
    int64_t gside = (int64_t)sqrt((double)s[0]->dims[1]);
    while (gside * gside > s[0]->dims[1]) gside--;
    while ((gside + 1) * (gside + 1) <= s[0]->dims[1]) gside++;
    if (gside * gside != s[0]->dims[1]) FAIL("token count is not a square");
    if (p < 1 || c < 1 || __builtin_mul_overflow(p * p, c, &width) || s[0]->dims[2] != width ||
        __builtin_mul_overflow(gside, p, &side))
      FAIL("token width is not p*p*channels");
    t.rank = 4;
    t.dims[0] = s[0]->dims[0];
    t.dims[1] = c;
    t.dims[2] = t.dims[3] = side;
    break;
  }
  case OP_MATMUL: {
    const TensorType *x = s[0], *w = s[1];
    if (w->rank != 2) FAIL("weight must be [M,K]");
    if (x->dims[x->rank - 1] != w->dims[1])
      FAIL("inner dims differ: %lld vs %lld", (long long)x->dims[x->rank - 1], (long long)w->dims[1]);
    t = *x;
    t.dims[t.rank - 1] = w->dims[0];
    break;
  }
  case OP_BMM: {
    const TensorType *a = s[0], *b = s[1];
    int r = a->rank;
    if (r < 3 || b->rank != r) FAIL("expects operands of equal rank >= 3");
    for (int i = 0; i < r - 2; i++)
      if (a->dims[i] != b->dims[i]) FAIL("batch dims differ");
    bool tb = n->attr.bmm.trans_b;
    int64_t bk = tb ? b->dims[r - 1] : b->dims[r - 2], bn = tb ? b->dims[r - 2] : b->dims[r - 1];
    if (a->dims[r - 1] != bk) FAIL("inner dims differ");
    t = *a;
    t.dims[r - 1] = bn;
    break;
  }
  case OP_ADD: {
    const TensorType *a = s[0], *b = s[1];
    if (b->rank > a->rank) FAIL("second operand has higher rank");
    for (int i = 0; i < b->rank; i++) {
      int64_t ad = a->dims[a->rank - b->rank + i], bd = b->dims[i];
      if (bd != ad && bd != 1) FAIL("cannot broadcast dim %d (%lld to %lld)", i, (long long)bd, (long long)ad);
    }
    t = *a;
    break;
  }
  case OP_SCALE:
  case OP_SILU:
  case OP_GELU_TANH:
  case OP_SOFTMAX:
  case OP_LAYERNORM:
    t = *s[0];
    if (n->op == OP_LAYERNORM && !(n->attr.norm.eps > 0)) FAIL("eps must be positive");
    break;
  case OP_GROUP_NORM: {
    const TensorType *x = s[0];
    int64_t G = n->attr.gnorm.groups;
    if (x->rank != 4) FAIL("expects x [N,C,H,W]");
    if (s[1]->rank != 1 || s[2]->rank != 1 || s[1]->dims[0] != x->dims[1] || s[2]->dims[0] != x->dims[1])
      FAIL("gamma and beta must be [C] = [%lld]", (long long)x->dims[1]);
    if (G < 1 || x->dims[1] % G) FAIL("%lld groups do not divide %lld channels", (long long)G, (long long)x->dims[1]);
    if (!(n->attr.gnorm.eps > 0)) FAIL("eps must be positive");
    if (n->attr.gnorm.act != ACT_NONE && n->attr.gnorm.act != ACT_SILU) FAIL("activation must be none or silu");
    t = *x;
    break;
  }
  case OP_CONV2D: {
    /* (x [N,Cin,H,W], w [Cout,Cin,k,k], b [Cout]) */
    const TensorType *x = s[0], *w = s[1], *b = s[2];
    const int64_t *pad = n->attr.conv.pad, st = n->attr.conv.stride, up = n->attr.conv.up;
    if (x->rank != 4) FAIL("expects x [N,Cin,H,W]");
    if (w->rank != 4 || w->dims[1] != x->dims[1] || w->dims[2] != w->dims[3] || (w->dims[2] != 1 && w->dims[2] != 3))
      FAIL("weight must be [Cout,%lld,k,k] with k 1 or 3", (long long)x->dims[1]);
    if (b->rank != 1 || b->dims[0] != w->dims[0]) FAIL("bias must be [Cout] = [%lld]", (long long)w->dims[0]);
    if (st != 1 && st != 2) FAIL("stride must be 1 or 2");
    if (up != 1 && up != 2) FAIL("upsampling must be 1 or 2");
    for (int i = 0; i < 4; i++)
      if (pad[i] != 0 && pad[i] != 1) FAIL("padding must be 0 or 1 on each side");
    if (!isfinite(n->attr.conv.alpha)) FAIL("alpha must be finite");
    int64_t k = w->dims[2], hp, wp;
    if (__builtin_mul_overflow(x->dims[2], up, &hp) || __builtin_mul_overflow(x->dims[3], up, &wp))
      return fail(err, err_bytes, DITC_ERR_LIMIT, n, "size overflows");
    hp += pad[0] + pad[2];
    wp += pad[1] + pad[3];
    if (hp < k || wp < k) FAIL("a %lldx%lld kernel does not fit a %lldx%lld input", (long long)k, (long long)k,
                               (long long)hp, (long long)wp);
    t.rank = 4;
    t.dims[0] = x->dims[0];
    t.dims[1] = w->dims[0];
    t.dims[2] = (hp - k) / st + 1;
    t.dims[3] = (wp - k) / st + 1;
    break;
  }
  case OP_TO_TOKENS: {
    int64_t tok;
    if (s[0]->rank != 4) FAIL("expects x [N,C,H,W]");
    if (__builtin_mul_overflow(s[0]->dims[2], s[0]->dims[3], &tok))
      return fail(err, err_bytes, DITC_ERR_LIMIT, n, "size overflows");
    t.rank = 3;
    t.dims[0] = s[0]->dims[0];
    t.dims[1] = tok;
    t.dims[2] = s[0]->dims[1];
    break;
  }
  case OP_FROM_TOKENS: {
    /* (o [N,H*W,C], residual [N,C,H,W]) */
    const TensorType *o = s[0], *r = s[1];
    if (r->rank != 4) FAIL("expects a residual [N,C,H,W]");
    TensorType want = {DT_F32, 3, {r->dims[0], r->dims[2] * r->dims[3], r->dims[1], 0}};
    if (!same_dims(o, &want))
      FAIL("tokens must be [N,H*W,C] = [%lld,%lld,%lld]", (long long)want.dims[0], (long long)want.dims[1],
           (long long)want.dims[2]);
    t = *r;
    break;
  }
  case OP_LATENT_SAMPLE: {
    /* (moments [N,2C,h,w], noise [N,C,h,w]) */
    const TensorType *m = s[0], *z = s[1];
    if (m->rank != 4 || z->rank != 4) FAIL("expects moments [N,2C,h,w] and noise [N,C,h,w]");
    if (m->dims[0] != z->dims[0] || m->dims[1] != 2 * z->dims[1] || m->dims[2] != z->dims[2] ||
        m->dims[3] != z->dims[3])
      FAIL("moments must be [N,2C,h,w] for noise [N,C,h,w]");
    if (!isfinite(n->attr.latent.scale)) FAIL("scale must be finite");
    t = *z;
    break;
  }
  case OP_MODULATE:
  case OP_RESIDUAL_GATE: {
    /* MODULATE(x, shift, scale); RESIDUAL_GATE(x, gate, h) */
    const TensorType *x = s[0];
    if (x->rank != 3) FAIL("expects x [N,T,D]");
    TensorType row = {DT_F32, 2, {x->dims[0], x->dims[2], 0, 0}};
    if (!same_dims(s[1], &row)) FAIL("operand 1 must be [N,D]");
    if (n->op == OP_MODULATE && !same_dims(s[2], &row)) FAIL("operand 2 must be [N,D]");
    if (n->op == OP_RESIDUAL_GATE && !same_dims(s[2], x)) FAIL("operand 2 must match x");
    t = *x;
    break;
  }
  case OP_TIMESTEP_FREQ:
    if (s[0]->rank != 1 || s[0]->dtype != DT_I64) FAIL("expects i64 timesteps [N]");
    if (n->attr.tfreq.dim < 2 || n->attr.tfreq.dim % 2) FAIL("dim must be even");
    t.rank = 2;
    t.dims[0] = s[0]->dims[0];
    t.dims[1] = n->attr.tfreq.dim;
    break;
  case OP_EMBEDDING:
    if (s[0]->rank != 2) FAIL("table must be [V,D]");
    if (s[1]->rank != 1 || s[1]->dtype != DT_I64) FAIL("ids must be i64 [N]");
    t.rank = 2;
    t.dims[0] = s[1]->dims[0];
    t.dims[1] = s[0]->dims[1];
    break;
  case OP_OUTPUT:
    t = *s[0];
    break;
  case OP_LINEAR: {
    const TensorType *x = s[0], *w = s[1], *b = s[2];
    if (w->rank != 2) FAIL("weight must be [M,K]");
    if (x->dims[x->rank - 1] != w->dims[1])
      FAIL("inner dims differ: %lld vs %lld", (long long)x->dims[x->rank - 1], (long long)w->dims[1]);
    if (b->rank != 1 || b->dims[0] != w->dims[0]) FAIL("bias must be [M]");
    if (n->attr.linear.act > ACT_SILU) FAIL("bad activation");
    t = *x;
    t.dims[t.rank - 1] = w->dims[0];
    break;
  }
  case OP_PARAM_PACK: {
    int64_t rows = 0;
    t = n->type;
    if (t.rank < 1 || n->attr.pack.n_parts < 1 || !n->attr.pack.names || !n->attr.pack.rows)
      FAIL("needs parts");
    for (int i = 0; i < n->attr.pack.n_parts; i++) {
      if (!n->attr.pack.names[i] || n->attr.pack.rows[i] < 1) FAIL("bad part %d", i);
      rows += n->attr.pack.rows[i];
    }
    if (rows != t.dims[0]) FAIL("parts do not add up to %lld rows", (long long)t.dims[0]);
    break;
  }
  case OP_LN_MODULATE:
  case OP_RES_GATE_LN_MODULATE: {
    /* LN_MODULATE(x, mod); RES_GATE_LN_MODULATE(x, h, gmod, mod) */
    const TensorType *x = s[0];
    const TensorType *mod = s[n->n_src - 1];
    if (x->rank != 3) FAIL("expects x [N,T,D]");
    int64_t D = x->dims[2];
    if (mod->rank != 2 || mod->dims[0] != x->dims[0]) FAIL("mod must be [N,M]");
    const struct { int64_t col, width; } cols[2] = {{n->attr.lnmod.shift_col, mod->dims[1]},
                                                    {n->attr.lnmod.scale_col, mod->dims[1]}};
    for (int i = 0; i < 2; i++)
      if (cols[i].col < 0 || cols[i].col > cols[i].width - D) FAIL("modulation column out of range");
    if (n->op == OP_RES_GATE_LN_MODULATE) {
      const TensorType *gm = s[2];
      if (!same_dims(s[1], x)) FAIL("h must match x");
      if (gm->rank != 2 || gm->dims[0] != x->dims[0]) FAIL("gmod must be [N,M]");
      if (n->attr.lnmod.gate_col < 0 || n->attr.lnmod.gate_col > gm->dims[1] - D)
        FAIL("gate column out of range");
    }
    if (!(n->attr.lnmod.eps > 0)) FAIL("eps must be positive");
    t = *x;
    break;
  }
  case OP_CFG_MIX:
    if (s[0]->rank != 4 || n->attr.cfg.guided < 0 || n->attr.cfg.guided > s[0]->dims[1])
      FAIL("expects a model output [N,C,H,W] and guided <= C");
    t = *s[0];
    break;
  case OP_DIFFUSION_STEP: {
    /* (x [N,C,H,W], model output [N,C or 2C,H,W], noise [N,C,H,W], history [N,3C,H,W]) */
    int64_t C = n->attr.step.channels;
    if (s[3]->rank != 4 || s[3]->dims[0] != s[0]->dims[0] || s[3]->dims[1] != 3 * C ||
        s[3]->dims[2] != s[0]->dims[2] || s[3]->dims[3] != s[0]->dims[3])
      FAIL("the history must be [N, 3C, H, W]");
    if (!same_dims(s[0], s[2]) || s[0]->rank != 4 || s[0]->dims[1] != C || s[1]->rank != 4 ||
        s[1]->dims[0] != s[0]->dims[0] || s[1]->dims[2] != s[0]->dims[2] ||
        s[1]->dims[3] != s[0]->dims[3] || s[1]->dims[1] != (n->attr.step.learn_sigma ? 2 : 1) * C)
      FAIL("x, model output and noise shapes disagree");
    t = *s[0];
    break;
  }
  case OP_AUX: {
    const Node *f = &g->nodes[n->src[0]];
    switch (f->op) {
    case OP_RES_GATE_LN_MODULATE: t = *s[0]; break; /* the residual r */
    case OP_LINEAR:                                 /* the pre-activation z */
      if (f->attr.linear.act == ACT_NONE) FAIL("a linear without activation has no second result");
      t = *s[0];
      break;
    case OP_ATTENTION: /* the log-sum-exp of each query row, [N,H,T] */
      t.rank = 3;
      t.dims[0] = s[0]->dims[0];
      t.dims[1] = f->attr.attn.heads;
      t.dims[2] = s[0]->dims[1];
      break;
    case OP_LINEAR_GRAD_W: /* the bias gradient [M] */
      t.rank = 1;
      t.dims[0] = s[0]->dims[0];
      break;
    case OP_LN_MODULATE_GRAD:
    case OP_RESIDUAL_GATE_GRAD: t = g->nodes[f->src[3]].type; break; /* the updated dmod */
    case OP_INPUT: case OP_PARAM: case OP_RESHAPE: case OP_PERMUTE: case OP_SLICE: case OP_PATCHIFY:
    case OP_UNPATCHIFY: case OP_MATMUL: case OP_BMM: case OP_ADD: case OP_SCALE: case OP_SILU:
    case OP_GELU_TANH: case OP_SOFTMAX: case OP_LAYERNORM: case OP_MODULATE: case OP_RESIDUAL_GATE:
    case OP_TIMESTEP_FREQ: case OP_EMBEDDING: case OP_OUTPUT: case OP_PARAM_PACK: case OP_LN_MODULATE:
    case OP_AUX: case OP_CFG_MIX: case OP_DIFFUSION_STEP: case OP_Q_SAMPLE: case OP_DIFFUSION_LOSS:
    case OP_LOSS_GRAD: case OP_ZEROS: case OP_ACT_GRAD: case OP_LINEAR_GRAD_X: case OP_ATTENTION_GRAD:
    case OP_EMBEDDING_GRAD: case OP_UNPATCHIFY_GRAD: case OP_SUM_ROWS: case OP_PARAM_GRAD: case OP_GROUP_NORM:
    case OP_CONV2D: case OP_TO_TOKENS: case OP_FROM_TOKENS: case OP_LATENT_SAMPLE: case OP_COUNT:
      FAIL("source has no second result");
    }
    break;
  }
  case OP_ATTENTION: {
    const TensorType *q = s[0];
    int64_t H = n->attr.attn.heads, hd = n->attr.attn.head_dim;
    if (q->rank != 3) FAIL("expects qkv [N,T,3D]");
    if (H < 1 || hd < 1 || q->dims[2] != 3 * H * hd) FAIL("qkv width is not 3 * heads * head_dim");
    t = *q;
    t.dims[2] = H * hd;
    break;
  }
  case OP_Q_SAMPLE:
    if (s[0]->rank != 4 || !same_dims(s[0], s[1])) FAIL("expects x0 and noise [N,C,H,W]");
    if (s[2]->rank != 1 || s[2]->dtype != DT_I64 || s[2]->dims[0] != s[0]->dims[0]) FAIL("expects i64 t [N]");
    if (n->attr.qs.steps < 1) FAIL("needs a number of timesteps");
    t = *s[0];
    break;
  case OP_DIFFUSION_LOSS:
  case OP_LOSS_GRAD: {
    /* (x0, x_t, model output, noise, t) */
    const TensorType *x0 = s[0], *o = s[2];
    int64_t C = n->attr.step.channels;
    if (x0->rank != 4 || x0->dims[1] != C || !same_dims(x0, s[1]) || !same_dims(x0, s[3]))
      FAIL("x0, x_t and noise must be [N,C,H,W]");
    if (o->rank != 4 || o->dims[0] != x0->dims[0] || o->dims[2] != x0->dims[2] ||
        o->dims[3] != x0->dims[3] || o->dims[1] != (n->attr.step.learn_sigma ? 2 : 1) * C)
      FAIL("model output shape disagrees with x0");
    if (s[4]->rank != 1 || s[4]->dtype != DT_I64 || s[4]->dims[0] != x0->dims[0]) FAIL("expects i64 t [N]");
    if (n->op == OP_LOSS_GRAD) {
      t = *o;
    } else {
      t.rank = 1;
      t.dims[0] = x0->dims[0];
    }
    break;
  }
  case OP_ZEROS:
    if (n->type.rank < 1 || n->type.rank > IR_MAX_RANK || n->type.dtype != DT_F32) FAIL("bad type");
    t = n->type;
    break;
  case OP_ACT_GRAD:
    if (!same_dims(s[0], s[1])) FAIL("dy and z differ in shape");
    if (n->attr.act_grad.act != ACT_GELU_TANH && n->attr.act_grad.act != ACT_SILU) FAIL("bad activation");
    t = *s[0];
    break;
  case OP_LINEAR_GRAD_X: {
    const TensorType *dz = s[0], *w = s[1];
    if (w->rank != 2 || dz->dims[dz->rank - 1] != w->dims[0]) FAIL("dz and W disagree");
    t = *dz;
    t.dims[t.rank - 1] = w->dims[1];
    if (n->n_src == 3 && !same_dims(s[2], &t)) FAIL("accumulator must match dx");
    break;
  }
  case OP_LINEAR_GRAD_W: {
    const TensorType *dz = s[0], *x = s[1];
    if (dz->rank != x->rank) FAIL("dz and x differ in rank");
    for (int i = 0; i + 1 < dz->rank; i++)
      if (dz->dims[i] != x->dims[i]) FAIL("dz and x differ in leading dims");
    t.rank = 2;
    t.dims[0] = dz->dims[dz->rank - 1];
    t.dims[1] = x->dims[x->rank - 1];
    break;
  }
  case OP_LN_MODULATE_GRAD:
  case OP_RESIDUAL_GATE_GRAD: {
    /* LN_MODULATE_GRAD(dy, x, mod, dmod (, acc)); RESIDUAL_GATE_GRAD(dr, h, gmod, dmod) */
    const TensorType *x = s[1], *mod = s[2];
    if (x->rank != 3 || !same_dims(s[0], x)) FAIL("expects dy and x [N,T,D]");
    if (mod->rank != 2 || mod->dims[0] != x->dims[0] || !same_dims(s[3], mod)) FAIL("mod and dmod must be [N,M]");
    int64_t D = x->dims[2], M = mod->dims[1];
    const int64_t *cols[2] = {&n->attr.lnmod.shift_col, &n->attr.lnmod.scale_col};
    if (n->op == OP_RESIDUAL_GATE_GRAD) cols[0] = cols[1] = &n->attr.lnmod.gate_col;
    for (int i = 0; i < 2; i++)
      if (*cols[i] < 0 || *cols[i] > M - D) FAIL("modulation column out of range");
    if (n->op == OP_LN_MODULATE_GRAD && !(n->attr.lnmod.eps > 0)) FAIL("eps must be positive");
    if (n->n_src == 5 && !same_dims(s[4], x)) FAIL("accumulator must match x");
    t = *x;
    break;
  }
  case OP_ATTENTION_GRAD: {
    /* (dout [N,T,HD], qkv [N,T,3HD], out [N,T,HD], lse [N,H,T] (, acc)) */
    const TensorType *q = s[1];
    int64_t H = n->attr.attn.heads, hd = n->attr.attn.head_dim;
    if (q->rank != 3 || H < 1 || hd < 1 || q->dims[2] != 3 * H * hd) FAIL("qkv width is not 3 * heads * head_dim");
    TensorType o = {DT_F32, 3, {q->dims[0], q->dims[1], H * hd, 0}};
    TensorType l = {DT_F32, 3, {q->dims[0], H, q->dims[1], 0}};
    if (!same_dims(s[0], &o) || !same_dims(s[2], &o) || !same_dims(s[3], &l)) FAIL("operand shapes disagree");
    if (n->n_src == 5 && !same_dims(s[4], q)) FAIL("accumulator must match qkv");
    t = *q;
    break;
  }
  case OP_EMBEDDING_GRAD:
    if (s[0]->rank != 2 || s[1]->rank != 1 || s[1]->dtype != DT_I64 || s[1]->dims[0] != s[0]->dims[0])
      FAIL("expects dout [N,D] and i64 ids [N]");
    if (n->type.rank != 2 || n->type.dims[1] != s[0]->dims[1] || n->type.dims[0] < 1) FAIL("table must be [V,D]");
    t = n->type;
    t.dtype = DT_F32;
    break;
  case OP_UNPATCHIFY_GRAD: {
    int64_t p = n->attr.patch.p, c = n->attr.patch.channels;
    if (s[0]->rank != 4 || p < 1 || s[0]->dims[1] != c || s[0]->dims[2] % p || s[0]->dims[3] % p ||
        s[0]->dims[2] != s[0]->dims[3])
      FAIL("expects a square [N,C,H,W] tiled by the patch");
    int64_t gs = s[0]->dims[2] / p;
    t.rank = 3;
    t.dims[0] = s[0]->dims[0];
    t.dims[1] = gs * gs;
    t.dims[2] = p * p * c;
    break;
  }
  case OP_SUM_ROWS: {
    int64_t a = type_numel(s[0]), b = type_numel(&n->type);
    if (n->type.rank < 1 || n->type.rank > s[0]->rank || b < 1 || a % b) FAIL("target is not a broadcast shape");
    for (int i = 0; i < n->type.rank; i++)
      if (n->type.dims[n->type.rank - 1 - i] != s[0]->dims[s[0]->rank - 1 - i] &&
          n->type.dims[n->type.rank - 1 - i] != 1)
        FAIL("target is not a broadcast shape");
    t = n->type;
    t.dtype = DT_F32;
    break;
  }
  case OP_PARAM_GRAD: {
    const Node *pn = &g->nodes[n->src[1]];
    if ((pn->op != OP_PARAM && pn->op != OP_PARAM_PACK) || (pn->op == OP_PARAM && pn->attr.param.frozen))
      FAIL("operand 1 is not a trainable parameter");
    if (!same_dims(s[0], s[1])) FAIL("gradient shape differs from the parameter's");
    t = *s[1];
    break;
  }
  case OP_COUNT:
    FAIL("unknown op");
  }
  /* Operand dtypes: everything consumes f32 except the integer inputs above. */
  for (int i = 0; i < n->n_src; i++) {
    bool int_ok = (n->op == OP_TIMESTEP_FREQ && i == 0) || (n->op == OP_EMBEDDING && i == 1) ||
                  (n->op == OP_EMBEDDING_GRAD && i == 1) || (n->op == OP_Q_SAMPLE && i == 2) ||
                  ((n->op == OP_DIFFUSION_LOSS || n->op == OP_LOSS_GRAD) && i == 4) ||
                  n->op == OP_OUTPUT || n->op == OP_RESHAPE || n->op == OP_AUX;
    if (!int_ok && !dtype_is_float(s[i]->dtype)) FAIL("operand %d must be f32", i);
  }
  for (int i = 0; i < t.rank; i++)
    if (t.dims[i] <= 0) FAIL("result dim %d is %lld", i, (long long)t.dims[i]);
  if (type_numel(&t) < 0)
    return fail(err, err_bytes, DITC_ERR_LIMIT, n, "result would have more than 2^50 elements");
  /* A computed float result is f32 by rule (pass_bf16 may store it in bf16);
   * a view, a weight or an output marker is what its source or record is. */
  if (t.dtype == DT_BF16 && n->op != OP_RESHAPE && n->op != OP_PARAM && n->op != OP_PARAM_PACK &&
      n->op != OP_OUTPUT && n->op != OP_INPUT)
    t.dtype = DT_F32;
  *out = t;
  return DITC_OK;
}
