/* vae_family.h: the VAE family (family.h): the Stable Diffusion KL-f8
 * autoencoder that DiT's latents come from, diffusers' AutoencoderKL, with
 * its config.json's key names (dit-reference.md section 5). Its keys
 * (vae_keys.c), checks and derived sizes (vae_check.c), lowering
 * (vae_lower.c), plan sections (vae_family.c) and report (vae_report.c).
 * Only family.c, the config.json importer and this family's files include
 * this. */
#ifndef DIT_COMPILER_FAMILIES_VAE_FAMILY_H
#define DIT_COMPILER_FAMILIES_VAE_FAMILY_H

#include "../runtime/include/dit/plan_format.h" /* PLAN_VAE_DECODER, PLAN_VAE_ENCODER */
#include "family.h"

/* The index of each key in the VAE's key table (vae_keys.c). */
typedef enum VaeKey {
  VAE_KEY_IN_CHANNELS,
  VAE_KEY_OUT_CHANNELS,
  VAE_KEY_LATENT_CHANNELS,
  VAE_KEY_BLOCK_OUT_CHANNELS,
  VAE_KEY_LAYERS_PER_BLOCK,
  VAE_KEY_NORM_NUM_GROUPS,
  VAE_KEY_ACT_FN,
  VAE_KEY_SAMPLE_SIZE,
  VAE_KEY_SCALING_FACTOR,
  VAE_KEY_DOWN_BLOCK_TYPES,
  VAE_KEY_UP_BLOCK_TYPES,
  VAE_KEY_MID_BLOCK_ADD_ATTENTION,
  VAE_KEY_USE_QUANT_CONV,
  VAE_KEY_USE_POST_QUANT_CONV,
  VAE_KEY_FORCE_UPCAST,
  VAE_KEY_IMAGE_SIZE,
  VAE_KEY_PART,
  VAE_N_KEYS
} VaeKey;

/* GroupNorm's eps in every norm of AutoencoderKL (not a config key). */
#define VAE_NORM_EPS 1e-6
/* The only block types ditc compiles. */
#define VAE_DOWN_BLOCK "DownEncoderBlock2D"
#define VAE_UP_BLOCK "UpDecoderBlock2D"

const ModelFamily *vae_family(void);

extern const SpecKey VAE_KEYS[VAE_N_KEYS];

/* vae_check.c */
bool vae_check(Diag *d, struct Spec *spec, const bool *set, bool *have);
void vae_derive(ModelConfig *c);

/* vae_lower.c: the parts cfg->vae.parts names, the decoder's first. */
DitcStatus vae_lower_forward(Arena *a, Diag *d, const struct Spec *spec, int64_t batch, Graph **out);
DitcStatus vae_lower_train(Arena *a, Diag *d, const struct Spec *spec, int64_t batch, Graph **out);
DitcStatus vae_lower_whole(Arena *a, Diag *d, const struct Spec *spec, Graph **out);

/* vae_report.c */
void vae_report_text(const struct ReportInput *r, FILE *out);
void vae_report_json(const struct ReportInput *r, FILE *out);

#endif
