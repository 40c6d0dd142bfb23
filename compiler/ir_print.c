/* ir_print.c: stable, diffable text dump of a graph. One line per node:
 *   %12 = matmul %10, %11 : f32[2,16,1152]
 * Attributes go in braces; a `; blocks.N` line opens each DiT block. The
 * format only changes together with the golden files under tests/golden/. */
#include "ir_print.h"

void ir_print_type(const TensorType *t, FILE *out) {
  fprintf(out, "%s[", dtype_name(t->dtype));
  for (int i = 0; i < t->rank; i++) fprintf(out, "%s%lld", i ? "," : "", (long long)t->dims[i]);
  fputc(']', out);
}

static void print_attrs(const Node *n, FILE *out) {
  const NodeAttr *a = &n->attr;
  switch (n->op) {
  case OP_PERMUTE:
    fprintf(out, " {perm=");
    for (int i = 0; i < n->type.rank; i++) fprintf(out, "%s%d", i ? "," : "", a->permute.perm[i]);
    fputc('}', out);
    break;
  case OP_SLICE:
    fprintf(out, " {axis=%d, start=%lld, len=%lld}", a->slice.axis, (long long)a->slice.start,
            (long long)a->slice.len);
    break;
  case OP_PATCHIFY: fprintf(out, " {p=%lld}", (long long)a->patch.p); break;
  case OP_UNPATCHIFY:
  case OP_UNPATCHIFY_GRAD:
    fprintf(out, " {p=%lld, channels=%lld}", (long long)a->patch.p, (long long)a->patch.channels);
    break;
  case OP_BMM:
    if (a->bmm.trans_b) fprintf(out, " {trans_b}");
    break;
  case OP_SCALE: fprintf(out, " {value=%.9g}", a->scale.value); break;
  case OP_LAYERNORM: fprintf(out, " {eps=%.9g}", a->norm.eps); break;
  case OP_GROUP_NORM:
    fprintf(out, " {groups=%lld, eps=%.9g", (long long)a->gnorm.groups, a->gnorm.eps);
    if (a->gnorm.act != ACT_NONE) fprintf(out, ", act=%s", activation_name(a->gnorm.act));
    fputc('}', out);
    break;
  case OP_CONV2D:
    fprintf(out, " {stride=%lld, pad=%lld,%lld,%lld,%lld, up=%lld, alpha=%.9g}", (long long)a->conv.stride,
            (long long)a->conv.pad[0], (long long)a->conv.pad[1], (long long)a->conv.pad[2],
            (long long)a->conv.pad[3], (long long)a->conv.up, a->conv.alpha);
    break;
  case OP_LATENT_SAMPLE: fprintf(out, " {scale=%.9g}", a->latent.scale); break;
  case OP_TIMESTEP_FREQ:
    fprintf(out, " {dim=%lld, max_period=%.9g}", (long long)a->tfreq.dim, a->tfreq.max_period);
    break;
  case OP_LINEAR:
    if (a->linear.act != ACT_NONE) fprintf(out, " {act=%s}", activation_name(a->linear.act));
    break;
  case OP_LN_MODULATE:
  case OP_LN_MODULATE_GRAD:
    fprintf(out, " {eps=%.9g, shift=%lld, scale=%lld}", a->lnmod.eps, (long long)a->lnmod.shift_col,
            (long long)a->lnmod.scale_col);
    break;
  case OP_RES_GATE_LN_MODULATE:
    fprintf(out, " {eps=%.9g, gate=%lld, shift=%lld, scale=%lld}", a->lnmod.eps,
            (long long)a->lnmod.gate_col, (long long)a->lnmod.shift_col, (long long)a->lnmod.scale_col);
    break;
  case OP_ATTENTION:
  case OP_ATTENTION_GRAD:
    fprintf(out, " {heads=%lld, head_dim=%lld, scale=%.9g}", (long long)a->attn.heads,
            (long long)a->attn.head_dim, a->attn.scale);
    break;
  case OP_CFG_MIX: fprintf(out, " {guided=%lld}", (long long)a->cfg.guided); break;
  case OP_DIFFUSION_STEP:
  case OP_DIFFUSION_LOSS:
  case OP_LOSS_GRAD:
    fprintf(out, " {channels=%lld, learn_sigma=%d}", (long long)a->step.channels, a->step.learn_sigma);
    break;
  case OP_RESIDUAL_GATE_GRAD: fprintf(out, " {gate=%lld}", (long long)a->lnmod.gate_col); break;
  case OP_ACT_GRAD: fprintf(out, " {act=%s}", activation_name(a->act_grad.act)); break;
  case OP_Q_SAMPLE: fprintf(out, " {steps=%lld}", (long long)a->qs.steps); break;
  case OP_PARAM_PACK:
    fprintf(out, " {");
    for (int i = 0; i < a->pack.n_parts; i++)
      fprintf(out, "%s\"%s\"", i ? ", " : "", a->pack.names[i]);
    fputc('}', out);
    break;
  case OP_INPUT: case OP_PARAM: case OP_RESHAPE: case OP_MATMUL: case OP_ADD: case OP_SILU:
  case OP_GELU_TANH: case OP_SOFTMAX: case OP_MODULATE: case OP_RESIDUAL_GATE: case OP_EMBEDDING:
  case OP_OUTPUT: case OP_AUX: case OP_ZEROS: case OP_LINEAR_GRAD_X: case OP_LINEAR_GRAD_W:
  case OP_EMBEDDING_GRAD: case OP_SUM_ROWS: case OP_PARAM_GRAD: case OP_TO_TOKENS: case OP_FROM_TOKENS:
  case OP_COUNT: break;
  }
}

void ir_print(const Graph *g, FILE *out) {
  const ModelConfig *c = g->cfg;
  fprintf(out, "; ditc graph IR: model \"%s\", batch %lld, %zu nodes\n", c ? c->name : "?",
          (long long)g->batch, g->n_nodes);
  int block = IR_NO_BLOCK;
  for (size_t i = 0; i < g->n_nodes; i++) {
    const Node *n = &g->nodes[i];
    if (n->block != block) {
      block = n->block;
      if (block == IR_NO_BLOCK) fprintf(out, "; end of blocks\n");
      else fprintf(out, "; blocks.%d\n", block);
    }
    if (n->op == OP_OUTPUT) {
      fprintf(out, "output %%%d : ", n->src[0]);
      ir_print_type(&n->type, out);
      fputc('\n', out);
      continue;
    }
    fprintf(out, "%%%zu = %s", i, op_name(n->op));
    if (n->name) fprintf(out, " \"%s\"", n->name);
    for (int k = 0; k < n->n_src; k++) fprintf(out, "%s %%%d", k ? "," : "", n->src[k]);
    print_attrs(n, out);
    fprintf(out, " : ");
    ir_print_type(&n->type, out);
    if (n->op == OP_PARAM && n->attr.param.frozen) fprintf(out, " frozen");
    fputc('\n', out);
  }
}
