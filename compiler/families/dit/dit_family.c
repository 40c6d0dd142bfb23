/* dit_family.c: the DiT family's entry (family.h): its keys (dit_keys.c),
 * checks (dit_check.c), lowering (compiler/lower.c) and its part of the
 * plan's model section, which this file fills. */
#include "families/dit/dit_family.h"
#include "lower.h"
#include "plan.h"

/* PlanModel's DiT fields (runtime/include/dit/plan_format.h). */
static DitcStatus dit_fill_plan_model(Arena *a, Plan *p, const ModelConfig *c) {
  (void)a; /* the DiT adds no strings of its own */
  PlanModel *m = &p->model;
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
  return DITC_OK;
}

static const ModelFamily DIT = {
    .name = "dit",
    .about = "Diffusion Transformer (Peebles & Xie 2022): patchify, adaLN-Zero blocks, learned sigma",
    .keys = DIT_KEYS,
    .n_keys = DIT_N_KEYS,
    .check = dit_check,
    .derive = dit_derive,
    .lower_forward = lower_forward,
    .lower_train = lower_train,
    .fill_plan_model = dit_fill_plan_model,
};

const ModelFamily *dit_family(void) { return &DIT; }
