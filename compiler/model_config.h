/* model_config.h: the validated hyper-parameters of one model, as sema produces
 * them from a spec, plus the sizes derived from them. Everything downstream
 * (lowering, reports, the plan's model section) reads this struct only.
 * Which fields a spec fills is its family's (family.h): its key table names
 * their offsets, its check fills the derived defaults and its derive() the
 * derived sizes. The fields below are the DiT family's (families/dit/). A
 * VAE's config (#10: block_out_channels, layers_per_block, latent_channels,
 * norm_num_groups, scaling_factor) goes here too, as a struct VaeConfig
 * beside the DiT's fields (or the two in a union keyed by `family`), its key
 * table's offsets pointing into it: the graph and the plan builder reach the
 * model only through this struct. */
#ifndef DIT_COMPILER_MODEL_CONFIG_H
#define DIT_COMPILER_MODEL_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

typedef struct ModelConfig {
  const char *name; /* "DiT-XL/2" */
  const struct ModelFamily *family; /* that filled the rest: the spec's (Spec.family) */
  /* keys of the spec language (docs/spec-language.md) */
  int64_t image_size;   /* pixels */
  int64_t latent_scale; /* VAE downsampling; 1 = pixel space */
  int64_t in_channels;
  int64_t patch_size;
  int64_t hidden_size;
  int64_t depth;
  int64_t num_heads;
  double mlp_ratio;
  int64_t num_classes;
  double class_dropout;
  bool learn_sigma;
  double layernorm_eps;
  int64_t guided_channels; /* channels that classifier-free guidance mixes */
  int64_t freq_embed_size; /* sinusoidal timestep features */
  double max_period;       /* of the timestep sinusoids */

  /* derived by the DiT family's derive() (dit_derive) */
  int64_t latent_size;  /* image_size / latent_scale: side of the model's input */
  int64_t grid;         /* latent_size / patch_size: tokens per side */
  int64_t tokens;       /* grid^2 */
  int64_t head_dim;     /* hidden_size / num_heads */
  int64_t mlp_hidden;   /* int(mlp_ratio * hidden_size), truncated as Python's int() */
  int64_t out_channels; /* in_channels * (learn_sigma ? 2 : 1) */
  int64_t label_rows;   /* num_classes + 1 when class_dropout > 0 (the null class) */
  int64_t patch_dim;    /* in_channels * patch_size^2 */
} ModelConfig;

#endif
