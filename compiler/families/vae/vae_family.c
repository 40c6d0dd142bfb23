/* vae_family.c: the VAE family's entry (family.h): its keys (vae_keys.c),
 * checks (vae_check.c), lowering (vae_lower.c), report (vae_report.c) and
 * its plan sections, which this file fills: PlanModel's fields for a VAE and
 * the PlanIO and named inputs and outputs of its parts (docs/plan-format.md,
 * "Model" and "VAE plans"). */
#include <string.h>

#include "families/vae/vae_family.h"
#include "memplan.h"
#include "plan.h"

/* PlanModel of a VAE: the image and latent sizes, the channels of each side,
 * the mid block's width as hidden_size and head_dim (its attention's single
 * head over tokens = latent_size^2 positions); 0 in the DiT-only fields. */
static DitcStatus vae_fill_plan_model(Arena *a, Plan *p, const ModelConfig *c) {
  (void)a;
  const VaeConfig *v = &c->vae;
  PlanModel *m = &p->model;
  m->image_size = v->image_size;
  m->latent_scale = v->latent_scale;
  m->latent_size = v->latent_size;
  m->in_channels = v->in_channels;      /* image channels */
  m->out_channels = v->latent_channels; /* latent channels */
  m->hidden_size = v->mid_channels;
  m->depth = v->layers_per_block;
  m->num_heads = 1;
  m->head_dim = v->mid_channels;
  m->tokens = v->latent_size * v->latent_size;
  m->grid = v->latent_size;
  m->layernorm_eps = VAE_NORM_EPS;
  m->parts = v->parts;
  m->norm_groups = v->norm_num_groups;
  m->scaling_factor = v->scaling_factor;
  return DITC_OK;
}

static uint32_t node_named(const Graph *g, OpKind op, const char *name) {
  for (size_t i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].op == op && g->nodes[i].name && !strcmp(g->nodes[i].name, name)) return (uint32_t)i;
  return DIT_PLAN_NONE;
}

/* The i-th OUTPUT node (the decoder's first when the plan has both), or DIT_PLAN_NONE. */
static uint32_t output_at(const Graph *g, int i) {
  for (size_t k = 0; k < g->n_nodes; k++)
    if (g->nodes[k].op == OP_OUTPUT && i-- == 0) return (uint32_t)k;
  return DIT_PLAN_NONE;
}

/* PlanIO: x and out are the first part's input and output, n_forward_ops its
 * op count (the second part's ops, if any, are the rest); t, y, noise and
 * x_next are none. The names: z, decoded (decoder); image, noise, latent. */
static DitcStatus vae_fill_plan_io(Arena *a, Diag *d, const Graph *g, const MemPlan *mp, Plan *p) {
  const VaeConfig *v = &g->cfg->vae;
  bool dec = (v->parts & PLAN_VAE_DECODER) != 0, enc = (v->parts & PLAN_VAE_ENCODER) != 0;
  uint32_t z = node_named(g, OP_INPUT, "z"), image = node_named(g, OP_INPUT, "image");
  uint32_t noise = node_named(g, OP_INPUT, "noise");
  uint32_t decoded = dec ? output_at(g, 0) : DIT_PLAN_NONE;
  uint32_t latent = enc ? output_at(g, dec ? 1 : 0) : DIT_PLAN_NONE;
  if ((dec && (z == DIT_PLAN_NONE || decoded == DIT_PLAN_NONE)) ||
      (enc && (image == DIT_PLAN_NONE || noise == DIT_PLAN_NONE || latent == DIT_PLAN_NONE))) {
    diag_error(d, span_none(), "internal error: the VAE graph lacks an input or its output");
    return DITC_ERR_INTERNAL;
  }
  p->io.x = dec ? z : image;
  p->io.out = dec ? decoded : latent;
  p->io.t = p->io.y = p->io.noise = p->io.x_next = DIT_PLAN_NONE;
  /* the decoder's ops are those of the nodes before the encoder's input */
  uint32_t split = 0;
  while (split < p->n_ops && (!dec || !enc || p->op_node[split] < image)) split++;
  p->io.n_forward_ops = split;
  p->io.arena_bytes = (uint64_t)mp->arena_bytes;
  p->io.weight_bytes = (uint64_t)mp->weight_bytes;
  p->io.unplanned_bytes = (uint64_t)mp->unplanned_bytes;
  DitcStatus st = DITC_OK;
  if (dec) st = plan_add_io_name(a, p, "z", z, PLAN_IO_INPUT);
  if (dec && !st) st = plan_add_io_name(a, p, "decoded", decoded, PLAN_IO_OUTPUT);
  if (enc && !st) st = plan_add_io_name(a, p, "image", image, PLAN_IO_INPUT);
  if (enc && !st) st = plan_add_io_name(a, p, "noise", noise, PLAN_IO_INPUT);
  if (enc && !st) st = plan_add_io_name(a, p, "latent", latent, PLAN_IO_OUTPUT);
  return st;
}

static const ModelFamily VAE = {
    .name = "vae",
    .about = "Stable Diffusion KL-f8 autoencoder (diffusers' AutoencoderKL): the decoder and encoder of DiT's latents",
    .keys = VAE_KEYS,
    .n_keys = VAE_N_KEYS,
    .check = vae_check,
    .derive = vae_derive,
    .lower_forward = vae_lower_forward,
    .lower_train = vae_lower_train,
    .fill_plan_model = vae_fill_plan_model,
    .fill_plan_io = vae_fill_plan_io,
    .lower_whole = vae_lower_whole,
    .report_text = vae_report_text,
    .report_json = vae_report_json,
};

const ModelFamily *vae_family(void) { return &VAE; }
