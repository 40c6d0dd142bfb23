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

static bool is_f32(const PlanValue *v, uint32_t rank) {
  return v->dtype == PLAN_VDT_F32 && (rank == 0 || v->rank == rank);
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

static DitStatus check_shapes(const Check *c) {
  const PlanOp *op = c->op;
  const PlanValue *a = val(c, op->in[0]), *o = val(c, op->out);
  switch (op->kind) {
  case PLAN_OP_PATCHIFY: {
    int64_t p = op->i[0];
    if (!is_f32(a, 4) || !is_f32(o, 3) || p < 1 || a->dims[2] % p || a->dims[3] % p)
      return bad(c, "patchify shapes");
    if (o->dims[0] != a->dims[0] || o->dims[1] != mul3(a->dims[2] / p, a->dims[3] / p, 1) ||
        o->dims[2] != mul3(a->dims[1], p, p))
      return bad(c, "patchify output shape");
    return DIT_OK;
  }
  case PLAN_OP_UNPATCHIFY: {
    int64_t p = op->i[0], ch = op->i[1], g = (int64_t)llround(sqrt((double)a->dims[1]));
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
    if (w->dims[1] != K || b->dims[0] != M || o->dims[o->rank - 1] != M || op->i[0] < 0 ||
        op->i[0] > PLAN_ACT_SILU)
      return bad(c, "linear shapes");
    for (uint32_t k = 0; k + 1 < a->rank; k++)
      if (o->dims[k] != a->dims[k]) return bad(c, "linear output shape");
    if (!a->batch_major || !o->batch_major) return bad(c, "linear rows must be batch-major");
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
  case PLAN_OP_TIMESTEP_FREQ:
    if (a->dtype != PLAN_VDT_I64 || a->rank != 1 || !is_f32(o, 2) || o->dims[0] != a->dims[0] ||
        o->dims[1] != op->i[0] || op->i[0] < 2 || op->i[0] % 2 || !(op->f[0] > 1) ||
        !isfinite(op->f[0]))
      return bad(c, "timestep_freq shapes");
    return DIT_OK;
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
    if (op->i[0] < 0 || op->i[0] > mod->dims[1] - D || op->i[1] < 0 || op->i[1] > mod->dims[1] - D ||
        !(op->f[0] > 0) || !isfinite(op->f[0]))
      return bad(c, "ln_modulate columns or eps");
    if (res) {
      const PlanValue *h = val(c, op->in[1]), *g = val(c, op->in[2]), *r = val(c, op->out2);
      if (!dims_eq(h, a) || !dims_eq(r, a) || !is_f32(g, 2) || g->dims[0] != a->dims[0] ||
          op->i[2] < 0 || op->i[2] > g->dims[1] - D)
        return bad(c, "res_gate_ln_modulate shapes");
    }
    return DIT_OK;
  }
  case PLAN_OP_ATTENTION: {
    int64_t H = op->i[0], hd = op->i[1];
    if (!is_f32(a, 3) || !is_f32(o, 3) || H < 1 || hd < 1 || a->dims[2] != mul3(3, H, hd) ||
        o->dims[0] != a->dims[0] || o->dims[1] != a->dims[1] || o->dims[2] != mul3(H, hd, 1) ||
        !isfinite(op->f[0]))
      return bad(c, "attention shapes");
    /* the CPU backend keeps one T x T score matrix per thread */
    if (a->dims[1] > (1 << 20)) return bad(c, "attention over more than 2^20 tokens");
    return DIT_OK;
  }
  case PLAN_OP_CFG_MIX:
    if (!is_f32(a, 4) || !dims_eq(a, o) || op->i[0] < 0 || op->i[0] > a->dims[1])
      return bad(c, "cfg_mix shapes");
    return DIT_OK;
  case PLAN_OP_DIFFUSION_STEP: {
    const PlanValue *m = val(c, op->in[1]), *z = val(c, op->in[2]);
    if (!is_f32(a, 4) || !dims_eq(a, o) || !dims_eq(a, z) || !is_f32(m, 4) || op->i[0] < 0 ||
        op->i[0] > 1 || m->dims[0] != a->dims[0] || m->dims[1] != a->dims[1] * (op->i[0] ? 2 : 1) ||
        m->dims[2] != a->dims[2] || m->dims[3] != a->dims[3])
      return bad(c, "diffusion_step shapes");
    return DIT_OK;
  }
  default:
    return bad(c, "unknown op kind (the plan needs a newer runtime)");
  }
}

static uint32_t arity(uint32_t kind) {
  switch (kind) {
  case PLAN_OP_LINEAR: return 3;
  case PLAN_OP_ADD:
  case PLAN_OP_EMBEDDING:
  case PLAN_OP_LN_MODULATE: return 2;
  case PLAN_OP_RES_GATE_LN_MODULATE: return 4;
  case PLAN_OP_DIFFUSION_STEP: return 3;
  default: return 1;
  }
}

DitStatus plan_check_ops(const PlanView *pv, DitErr *err) {
  DitStatus st = DIT_OK;
  /* An op result may be read only after its op ran. Values no op writes
   * (weights, inputs, views of other values) are readable from the start. */
  bool *defined = calloc(pv->n_values ? pv->n_values : 1, sizeof(bool));
  if (!defined) return dit_err(err, DIT_ERR_NOMEM, "out of memory");
  for (size_t v = 0; v < pv->n_values; v++) defined[v] = true;
  for (size_t i = 0; i < pv->n_ops; i++) {
    uint32_t outs[2] = {pv->ops[i].out, pv->ops[i].out2};
    for (int k = 0; k < 2; k++)
      if (outs[k] < pv->n_values && pv->values[outs[k]].storage == PLAN_STORE_ARENA)
        defined[outs[k]] = false;
  }
  for (size_t i = 0; i < pv->n_ops; i++) {
    const PlanOp *op = &pv->ops[i];
    Check c = {pv, op, i, err};
    bool res = op->kind == PLAN_OP_RES_GATE_LN_MODULATE;
    bool sampler = op->kind == PLAN_OP_CFG_MIX || op->kind == PLAN_OP_DIFFUSION_STEP;
    if (sampler != (i >= pv->io->n_forward_ops)) {
      st = bad(&c, "a sampler op among the forward ops, or a forward op after them");
      goto done;
    }
    if (op->n_in != arity(op->kind) || op->out >= pv->n_values ||
        (res ? op->out2 >= pv->n_values : op->out2 != DIT_PLAN_NONE)) {
      st = bad(&c, "wrong operand count or result id");
      goto done;
    }
    const PlanValue *o = &pv->values[op->out];
    if (o->storage != PLAN_STORE_ARENA || (res && pv->values[op->out2].storage != PLAN_STORE_ARENA)) {
      st = bad(&c, "writes outside the activation arena");
      goto done;
    }
    for (uint32_t k = 0; k < op->n_in; k++) {
      if (op->in[k] >= pv->n_values || !defined[op->in[k]]) {
        st = bad(&c, "reads a value that is not defined before it");
        goto done;
      }
    }
    /* results never overlap operands, except the residual written in place over x */
    for (uint32_t k = 0; k < op->n_in; k++) {
      const PlanValue *in = &pv->values[op->in[k]];
      bool in_place = res && k == 0;
      if (overlaps(o, in) || (res && overlaps(&pv->values[op->out2], in) &&
                              !(in_place && pv->values[op->out2].offset == in->offset))) {
        st = bad(&c, "a result overlaps an operand");
        goto done;
      }
    }
    if (res && overlaps(o, &pv->values[op->out2])) {
      st = bad(&c, "the two results overlap");
      goto done;
    }
    st = check_shapes(&c);
    if (st) goto done;
    defined[op->out] = true;
    if (res) defined[op->out2] = true;
  }
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
