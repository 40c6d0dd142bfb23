/* model_config.h: the validated hyper-parameters of one model, as sema produces
 * them from a spec, plus the sizes derived from them. Everything downstream
 * (lowering, reports, the plan's model section) reads this struct only.
 * Which fields a spec fills is its family's (family.h): its key table names
 * their offsets, its check fills the derived defaults and its derive() the
 * derived sizes. The fields at the top level are the DiT family's
 * (families/dit/); the VAE's (families/vae/) are in `vae`, its key table's
 * offsets pointing into it: the graph and the plan builder reach the model
 * only through this struct. */
#ifndef DIT_COMPILER_MODEL_CONFIG_H
#define DIT_COMPILER_MODEL_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "spec_keys.h"

/* The VAE family's config: diffusers' AutoencoderKL (its config.json's key
 * names) plus ditc's own image_size and part (docs/spec-language.md). */
typedef struct VaeConfig {
  int64_t in_channels;     /* image channels: 3 */
  int64_t out_channels;    /* the decoder's output channels: 3 */
  int64_t latent_channels; /* 4 */
  SpecIntList block_out_channels; /* [128, 256, 512, 512]: one level each */
  int64_t layers_per_block;       /* resnets per encoder level; the decoder has one more */
  int64_t norm_num_groups;        /* GroupNorm groups: 32 */
  const char *act_fn;             /* "silu" only */
  int64_t sample_size;            /* the config's image side */
  double scaling_factor;          /* DiT-space latent = scaling_factor * the VAE's: 0.18215 */
  SpecStrList down_block_types;   /* DownEncoderBlock2D each */
  SpecStrList up_block_types;     /* UpDecoderBlock2D each */
  bool mid_block_add_attention;
  bool use_quant_conv, use_post_quant_conv;
  bool force_upcast;              /* accepted, ignored (a half-precision hint) */
  int64_t image_size;             /* the plan's image side; default sample_size */
  const char *part;               /* "decoder", "encoder" or "both" */
  /* derived by vae_derive */
  int64_t parts;        /* PLAN_VAE_DECODER | PLAN_VAE_ENCODER */
  int64_t levels;       /* block_out_channels.n */
  int64_t latent_scale; /* 2^(levels-1) */
  int64_t latent_size;  /* image_size / latent_scale */
  int64_t mid_channels; /* block_out_channels[levels-1] */
} VaeConfig;

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

  VaeConfig vae; /* family "vae" only */
} ModelConfig;

#endif
