/* report.c: the model report (`--info`) and its JSON form (`--info --json`).
 * Every number is read off the graph walk in cost.c, never a closed formula.
 * Costs are per image: the graph's totals divided by its batch. */
#include "report.h"

#include <stdlib.h>
#include <string.h>

#include "family.h"

const char *report_commas(long long v, char *buf, size_t n) {
  char tmp[32];
  int len = snprintf(tmp, sizeof tmp, "%lld", v < 0 ? -v : v);
  size_t k = 0;
  if (v < 0 && k + 1 < n) buf[k++] = '-';
  for (int i = 0; i < len && k + 2 < n; i++) {
    buf[k++] = tmp[i];
    int rest = len - 1 - i;
    if (rest > 0 && rest % 3 == 0) buf[k++] = ',';
  }
  buf[k] = '\0';
  return buf;
}

void report_json_string(FILE *out, const char *s) {
  fputc('"', out);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') fprintf(out, "\\%c", *p);
    else if (*p < 0x20) fprintf(out, "\\u%04x", *p);
    else fputc(*p, out);
  }
  fputc('"', out);
}

/* 0.1, not 0.10000000000000001 */
const char *report_shortest(double v, char *buf, size_t n) {
  if (v == (double)(long long)v && v > -1e15 && v < 1e15) {
    snprintf(buf, n, "%lld", (long long)v);
    return buf;
  }
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, n, "%.*g", prec, v);
    if (strtod(buf, NULL) == v) break;
  }
  return buf;
}

void report_text(const ReportInput *r, FILE *out) {
  const ModelConfig *c = &r->spec->cfg;
  if (c->family->report_text) {
    c->family->report_text(r, out);
    return;
  }
  const GraphCost *k = r->cost;
  double per = (double)r->graph->batch;
  char b1[32], b2[32], b3[32];
  fprintf(out, "%s  (%s)\n", c->name, r->spec_path);
  fprintf(out, "  image         %lldx%lld pixels, latent %lldx%lldx%lld (latent_scale %lld)\n",
          (long long)c->image_size, (long long)c->image_size, (long long)c->latent_size,
          (long long)c->latent_size, (long long)c->in_channels, (long long)c->latent_scale);
  fprintf(out, "  patches       %lldx%lld -> %lldx%lld grid = %lld tokens\n",
          (long long)c->patch_size, (long long)c->patch_size, (long long)c->grid,
          (long long)c->grid, (long long)c->tokens);
  fprintf(out, "  transformer   depth %lld, hidden %lld, %lld heads x %lld, MLP %lld\n",
          (long long)c->depth, (long long)c->hidden_size, (long long)c->num_heads,
          (long long)c->head_dim, (long long)c->mlp_hidden);
  fprintf(out, "  conditioning  %lld classes%s (class_dropout %s), %lld timestep features\n",
          (long long)c->num_classes, c->label_rows > c->num_classes ? " + null class" : "",
          report_shortest(c->class_dropout, b1, sizeof b1), (long long)c->freq_embed_size);
  fprintf(out, "  output        %lld channels%s; guidance mixes %lld\n",
          (long long)c->out_channels, c->learn_sigma ? " (eps + learned variance)" : " (eps)",
          (long long)c->guided_channels);
  fprintf(out, "  parameters    %s (%s frozen in pos_embed), %lld tensors\n",
          report_commas(k->params, b1, sizeof b1), report_commas(k->params_frozen, b2, sizeof b2),
          (long long)k->param_tensors);
  fprintf(out, "  weights       %s bytes fp32, %s bytes bf16\n",
          report_commas(k->params * 4, b1, sizeof b1), report_commas(k->params * 2, b3, sizeof b3));
  fprintf(out, "  forward       %.2f Gflops per image (multiply-accumulates, the paper's convention)\n",
          k->macs / per / 1e9);
  fprintf(out, "                %.2f GFLOP per image (2 per MAC + elementwise work)\n",
          k->flops / per / 1e9);
  fprintf(out, "  graph         %zu nodes at batch %lld\n", r->graph->n_nodes,
          (long long)r->graph->batch);
  fprintf(out, "  activations   %s bytes in the planned arena at batch %lld (%s bytes unplanned)\n",
          report_commas(r->mem->arena_bytes, b1, sizeof b1), (long long)r->graph->batch,
          report_commas(r->mem->unplanned_bytes, b2, sizeof b2));
  if (r->train) {
    const TrainMemory *t = r->train;
    char b4[32];
    fprintf(out, "  training      at batch %lld: weights, gradients, AdamW moments and EMA take %s bytes\n",
            (long long)r->graph->batch, report_commas(5 * t->weight_bytes, b1, sizeof b1));
    fprintf(out, "                activations %s bytes with --recompute none, %s with --recompute block\n",
                 report_commas(t->arena_bytes[0], b2, sizeof b2), report_commas(t->arena_bytes[1], b3, sizeof b3));
    fprintf(out, "                peak %s bytes (none), %s bytes (block)\n",
            report_commas(5 * t->weight_bytes + t->arena_bytes[0], b2, sizeof b2),
            report_commas(5 * t->weight_bytes + t->arena_bytes[1], b4, sizeof b4));
  }
  fprintf(out, "  by op         %-14s %6s %12s %12s\n", "op", "nodes", "GMACs/img", "GFLOP/img");
  for (int op = 0; op < OP_COUNT; op++) {
    if (!k->nodes_by_op[op] || (k->flops_by_op[op] == 0 && k->macs_by_op[op] == 0)) continue;
    fprintf(out, "                %-14s %6d %12.4f %12.4f\n", op_name((OpKind)op),
            k->nodes_by_op[op], k->macs_by_op[op] / per / 1e9, k->flops_by_op[op] / per / 1e9);
  }
}

void report_json(const ReportInput *r, FILE *out) {
  const ModelConfig *c = &r->spec->cfg;
  if (c->family->report_json) {
    c->family->report_json(r, out);
    return;
  }
  const GraphCost *k = r->cost;
  double per = (double)r->graph->batch;
  fprintf(out, "{\"model\":");
  report_json_string(out, c->name);
  fprintf(out, ",\"spec\":");
  report_json_string(out, r->spec_path);
  char f1[32], f2[32], f3[32], f4[32];
  fprintf(out,
          ",\"image_size\":%lld,\"latent_scale\":%lld,\"latent_size\":%lld"
          ",\"in_channels\":%lld,\"out_channels\":%lld,\"patch_size\":%lld"
          ",\"hidden_size\":%lld,\"depth\":%lld,\"num_heads\":%lld,\"head_dim\":%lld"
          ",\"mlp_ratio\":%s,\"mlp_hidden\":%lld,\"num_classes\":%lld"
          ",\"class_dropout\":%s,\"learn_sigma\":%s,\"layernorm_eps\":%s"
          ",\"guided_channels\":%lld,\"freq_embed_size\":%lld,\"max_period\":%s",
          (long long)c->image_size, (long long)c->latent_scale, (long long)c->latent_size,
          (long long)c->in_channels, (long long)c->out_channels, (long long)c->patch_size,
          (long long)c->hidden_size, (long long)c->depth, (long long)c->num_heads,
          (long long)c->head_dim, report_shortest(c->mlp_ratio, f1, sizeof f1), (long long)c->mlp_hidden,
          (long long)c->num_classes, report_shortest(c->class_dropout, f2, sizeof f2),
          c->learn_sigma ? "true" : "false", report_shortest(c->layernorm_eps, f3, sizeof f3),
          (long long)c->guided_channels, (long long)c->freq_embed_size,
          report_shortest(c->max_period, f4, sizeof f4));
  fprintf(out,
          ",\"tokens\":%lld,\"params\":%lld,\"params_frozen\":%lld,\"param_tensors\":%lld"
          ",\"gmacs\":%.6f,\"gflops\":%.6f,\"weight_bytes_fp32\":%lld,\"weight_bytes_bf16\":%lld"
          ",\"graph_nodes\":%zu,\"batch\":%lld,\"arena_bytes\":%lld,\"unplanned_bytes\":%lld",
          (long long)c->tokens, (long long)k->params, (long long)k->params_frozen,
          (long long)k->param_tensors, k->macs / per / 1e9, k->flops / per / 1e9,
          (long long)k->params * 4, (long long)k->params * 2, r->graph->n_nodes,
          (long long)r->graph->batch, (long long)r->mem->arena_bytes,
          (long long)r->mem->unplanned_bytes);
  if (r->train) {
    const TrainMemory *t = r->train;
    fprintf(out,
            ",\"train_state_bytes\":%lld,\"train_arena_bytes_none\":%lld,\"train_arena_bytes_block\":%lld"
            ",\"train_peak_bytes_none\":%lld,\"train_peak_bytes_block\":%lld",
            (long long)(5 * t->weight_bytes), (long long)t->arena_bytes[0], (long long)t->arena_bytes[1],
            (long long)(5 * t->weight_bytes + t->arena_bytes[0]),
            (long long)(5 * t->weight_bytes + t->arena_bytes[1]));
  }
  fprintf(out, "}\n");
}
