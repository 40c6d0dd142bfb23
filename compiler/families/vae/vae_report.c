/* vae_report.c: the VAE's --info report and its JSON (ModelFamily.
 * report_text/report_json). Parameters are counted off the graphs by name:
 * the decoder side is decoder.* and post_quant_conv.*, the encoder side
 * encoder.* and quant_conv.*; each part's and the whole model's counts come
 * from ReportInput.whole (the whole model, whatever --part compiles), the
 * weights, Gflops and arena from the graph of the part compiled. */
#include <string.h>

#include "families/vae/vae_family.h"
#include "report.h"

typedef struct VaeParams {
  int64_t decoder, encoder, all, tensors;
} VaeParams;

static bool has_prefix(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }

static void count_one(VaeParams *c, const char *name, int64_t k) {
  c->all += k;
  c->tensors++;
  if (has_prefix(name, "decoder.") || has_prefix(name, "post_quant_conv.")) c->decoder += k;
  if (has_prefix(name, "encoder.") || has_prefix(name, "quant_conv.")) c->encoder += k;
}

/* The parameters of g by part: PARAMs and each part of a PARAM_PACK (the
 * attention's packed q, k, v). */
static VaeParams count_params(const Graph *g) {
  VaeParams c = {0};
  for (size_t i = 0; g && i < g->n_nodes; i++) {
    const Node *n = &g->nodes[i];
    int64_t numel = type_numel(&n->type);
    if (numel < 0) continue;
    if (n->op == OP_PARAM) count_one(&c, n->name, numel);
    if (n->op != OP_PARAM_PACK) continue;
    int64_t per_row = numel / n->type.dims[0];
    for (int p = 0; p < n->attr.pack.n_parts; p++) count_one(&c, n->attr.pack.names[p], per_row * n->attr.pack.rows[p]);
  }
  return c;
}

static const char *part_name(int64_t parts) {
  return parts == (PLAN_VAE_DECODER | PLAN_VAE_ENCODER) ? "both" : parts == PLAN_VAE_ENCODER ? "encoder" : "decoder";
}

void vae_report_text(const ReportInput *r, FILE *out) {
  const ModelConfig *c = &r->spec->cfg;
  const VaeConfig *v = &c->vae;
  const GraphCost *k = r->cost;
  VaeParams whole = count_params(r->whole ? r->whole : r->graph), part = count_params(r->graph);
  double per = (double)r->graph->batch;
  char b1[32], b2[32], b3[32], f1[32];
  fprintf(out, "%s  (%s)\n", c->name, r->spec_path);
  fprintf(out, "  family        vae (AutoencoderKL), part %s\n", part_name(v->parts));
  fprintf(out, "  image         %lldx%lldx%lld pixels <-> latent %lldx%lldx%lld (downsampling %lld, scaling_factor %s)\n",
          (long long)v->image_size, (long long)v->image_size, (long long)v->in_channels, (long long)v->latent_size,
          (long long)v->latent_size, (long long)v->latent_channels, (long long)v->latent_scale,
          report_shortest(v->scaling_factor, f1, sizeof f1));
  fprintf(out, "  levels        block_out_channels [");
  for (int64_t i = 0; i < v->levels; i++) fprintf(out, "%s%lld", i ? ", " : "", (long long)v->block_out_channels.v[i]);
  fprintf(out, "], %lld resnets per level (decoder %lld), GroupNorm %lld groups, out channels %lld\n",
          (long long)v->layers_per_block, (long long)v->layers_per_block + 1, (long long)v->norm_num_groups,
          (long long)v->out_channels);
  if (v->mid_block_add_attention)
    fprintf(out, "  attention     mid block: 1 head x %lld over %lld tokens\n", (long long)v->mid_channels,
            (long long)(v->latent_size * v->latent_size));
  fprintf(out, "  parameters    %s decoder (with post_quant_conv), %s encoder (with quant_conv), %s in all\n",
          report_commas(whole.decoder, b1, sizeof b1), report_commas(whole.encoder, b2, sizeof b2),
          report_commas(whole.all, b3, sizeof b3));
  fprintf(out, "  compiled      %s: %s parameters, %lld tensors\n", part_name(v->parts),
          report_commas(part.all, b1, sizeof b1), (long long)part.tensors);
  fprintf(out, "  weights       %s bytes fp32, %s bytes bf16\n", report_commas(part.all * 4, b1, sizeof b1),
          report_commas(part.all * 2, b2, sizeof b2));
  fprintf(out, "  forward       %.2f GMACs per image, %.2f GFLOP per image (2 per MAC + elementwise work)\n",
          k->macs / per / 1e9, k->flops / per / 1e9);
  fprintf(out, "  graph         %zu nodes at batch %lld\n", r->graph->n_nodes, (long long)r->graph->batch);
  fprintf(out, "  activations   %s bytes in the planned arena at batch %lld (%s bytes unplanned)\n",
          report_commas(r->mem->arena_bytes, b1, sizeof b1), (long long)r->graph->batch,
          report_commas(r->mem->unplanned_bytes, b2, sizeof b2));
  fprintf(out, "  by op         %-14s %6s %12s %12s\n", "op", "nodes", "GMACs/img", "GFLOP/img");
  for (int op = 0; op < OP_COUNT; op++) {
    if (!k->nodes_by_op[op] || (k->flops_by_op[op] == 0 && k->macs_by_op[op] == 0)) continue;
    fprintf(out, "                %-14s %6d %12.4f %12.4f\n", op_name((OpKind)op), k->nodes_by_op[op],
            k->macs_by_op[op] / per / 1e9, k->flops_by_op[op] / per / 1e9);
  }
}

void vae_report_json(const ReportInput *r, FILE *out) {
  const ModelConfig *c = &r->spec->cfg;
  const VaeConfig *v = &c->vae;
  const GraphCost *k = r->cost;
  VaeParams whole = count_params(r->whole ? r->whole : r->graph), part = count_params(r->graph);
  double per = (double)r->graph->batch;
  char f1[32];
  fprintf(out, "{\"model\":");
  report_json_string(out, c->name);
  fprintf(out, ",\"spec\":");
  report_json_string(out, r->spec_path);
  fprintf(out, ",\"family\":\"vae\",\"part\":\"%s\"", part_name(v->parts));
  fprintf(out,
          ",\"image_size\":%lld,\"latent_scale\":%lld,\"latent_size\":%lld,\"in_channels\":%lld"
          ",\"out_channels\":%lld,\"latent_channels\":%lld,\"block_out_channels\":[",
          (long long)v->image_size, (long long)v->latent_scale, (long long)v->latent_size, (long long)v->in_channels,
          (long long)v->out_channels, (long long)v->latent_channels);
  for (int64_t i = 0; i < v->levels; i++) fprintf(out, "%s%lld", i ? "," : "", (long long)v->block_out_channels.v[i]);
  fprintf(out,
          "],\"layers_per_block\":%lld,\"norm_num_groups\":%lld,\"scaling_factor\":%s"
          ",\"mid_block_add_attention\":%s,\"use_quant_conv\":%s,\"use_post_quant_conv\":%s,\"tokens\":%lld",
          (long long)v->layers_per_block, (long long)v->norm_num_groups,
          report_shortest(v->scaling_factor, f1, sizeof f1), v->mid_block_add_attention ? "true" : "false",
          v->use_quant_conv ? "true" : "false", v->use_post_quant_conv ? "true" : "false",
          (long long)(v->latent_size * v->latent_size));
  fprintf(out,
          ",\"params\":%lld,\"params_decoder\":%lld,\"params_encoder\":%lld,\"params_all\":%lld"
          ",\"param_tensors\":%lld,\"gmacs\":%.6f,\"gflops\":%.6f,\"weight_bytes_fp32\":%lld"
          ",\"weight_bytes_bf16\":%lld,\"graph_nodes\":%zu,\"batch\":%lld,\"arena_bytes\":%lld"
          ",\"unplanned_bytes\":%lld}\n",
          (long long)part.all, (long long)whole.decoder, (long long)whole.encoder, (long long)whole.all,
          (long long)part.tensors, k->macs / per / 1e9, k->flops / per / 1e9, (long long)part.all * 4,
          (long long)part.all * 2, r->graph->n_nodes, (long long)r->graph->batch, (long long)r->mem->arena_bytes,
          (long long)r->mem->unplanned_bytes);
}
