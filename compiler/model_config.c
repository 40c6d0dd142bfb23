/* model_config.c: sizes derived from a validated ModelConfig. */
#include "model_config.h"

void model_config_derive(ModelConfig *c) {
  c->latent_size = c->image_size / c->latent_scale;
  c->grid = c->latent_size / c->patch_size;
  c->tokens = c->grid * c->grid;
  c->head_dim = c->hidden_size / c->num_heads;
  c->mlp_hidden = (int64_t)(c->mlp_ratio * (double)c->hidden_size);
  c->out_channels = c->in_channels * (c->learn_sigma ? 2 : 1);
  c->label_rows = c->num_classes + (c->class_dropout > 0.0 ? 1 : 0);
  c->patch_dim = c->in_channels * c->patch_size * c->patch_size;
}
