/* dit_check.c: the DiT's config checks (ModelFamily.check): the default of
 * guided_channels and the cross-key rules that make a DiT impossible, each
 * reported at its key; and the sizes derived from a valid config
 * (ModelFamily.derive). docs/spec-language.md, "A model is possible only if",
 * lists the same rules. */
#include "families/dit/dit_family.h"
#include "sema.h"

bool dit_check(Diag *d, Spec *sp, const bool *set, bool *have) {
  ModelConfig *c = &sp->cfg;
  const SrcSpan *loc = sp->key_loc;
  /* guided_channels defaults to what the official forward_with_cfg guides, model_out[:, :3]:
   * min(3, out_channels). It guides 3 of a latent model's 4 eps channels, and for a model of
   * fewer than 3 input channels with learned sigma the variance channels too. */
  if (!set[DIT_KEY_GUIDED_CHANNELS] && have[DIT_KEY_IN_CHANNELS] && have[DIT_KEY_LEARN_SIGMA]) {
    int64_t out_channels = c->in_channels * (c->learn_sigma ? 2 : 1);
    c->guided_channels = out_channels < 3 ? out_channels : 3;
    have[DIT_KEY_GUIDED_CHANNELS] = true;
  }
  bool ok = true;
  if (have[DIT_KEY_IMAGE_SIZE] && have[DIT_KEY_LATENT_SCALE] && c->image_size % c->latent_scale != 0) {
    diag_error(d, loc[DIT_KEY_IMAGE_SIZE], "image_size %lld is not divisible by latent_scale %lld",
               (long long)c->image_size, (long long)c->latent_scale);
    diag_note(d, loc[DIT_KEY_LATENT_SCALE], "latent_scale is set here");
    ok = false;
  } else if (have[DIT_KEY_IMAGE_SIZE] && have[DIT_KEY_LATENT_SCALE] && have[DIT_KEY_PATCH_SIZE] &&
             (c->image_size / c->latent_scale) % c->patch_size != 0) {
    diag_error(d, loc[DIT_KEY_PATCH_SIZE],
               "the latent side %lld (image_size %lld / latent_scale %lld) is not divisible by "
               "patch_size %lld",
               (long long)(c->image_size / c->latent_scale), (long long)c->image_size,
               (long long)c->latent_scale, (long long)c->patch_size);
    ok = false;
  }
  if (have[DIT_KEY_HIDDEN_SIZE] && have[DIT_KEY_NUM_HEADS] && c->hidden_size % c->num_heads != 0) {
    diag_error(d, loc[DIT_KEY_HIDDEN_SIZE], "hidden_size %lld is not divisible by num_heads %lld",
               (long long)c->hidden_size, (long long)c->num_heads);
    diag_note(d, loc[DIT_KEY_NUM_HEADS], "num_heads is set here");
    ok = false;
  }
  if (have[DIT_KEY_HIDDEN_SIZE] && c->hidden_size % 4 != 0) {
    diag_error(d, loc[DIT_KEY_HIDDEN_SIZE],
               "hidden_size %lld is not divisible by 4, which the 2-D sin-cos position "
               "embedding needs",
               (long long)c->hidden_size);
    ok = false;
  }
  if (have[DIT_KEY_HIDDEN_SIZE] && have[DIT_KEY_MLP_RATIO] && (int64_t)(c->mlp_ratio * (double)c->hidden_size) < 1) {
    diag_error(d, loc[DIT_KEY_MLP_RATIO], "mlp_ratio %g gives an MLP of width 0 for hidden_size %lld",
               c->mlp_ratio, (long long)c->hidden_size);
    ok = false;
  }
  int64_t out_channels = c->in_channels * (c->learn_sigma ? 2 : 1);
  if (have[DIT_KEY_GUIDED_CHANNELS] && have[DIT_KEY_IN_CHANNELS] && have[DIT_KEY_LEARN_SIGMA] &&
      c->guided_channels > out_channels) {
    diag_error(d, loc[DIT_KEY_GUIDED_CHANNELS], "guided_channels %lld exceeds the %lld output channels",
               (long long)c->guided_channels, (long long)out_channels);
    ok = false;
  }
  if (have[DIT_KEY_FREQ_EMBED_SIZE] && c->freq_embed_size % 2 != 0) {
    diag_error(d, loc[DIT_KEY_FREQ_EMBED_SIZE], "freq_embed_size %lld must be even",
               (long long)c->freq_embed_size);
    ok = false;
  }
  return ok;
}

void dit_derive(ModelConfig *c) {
  c->latent_size = c->image_size / c->latent_scale;
  c->grid = c->latent_size / c->patch_size;
  c->tokens = c->grid * c->grid;
  c->head_dim = c->hidden_size / c->num_heads;
  c->mlp_hidden = (int64_t)(c->mlp_ratio * (double)c->hidden_size);
  c->out_channels = c->in_channels * (c->learn_sigma ? 2 : 1);
  c->label_rows = c->num_classes + (c->class_dropout > 0.0 ? 1 : 0);
  c->patch_dim = c->in_channels * c->patch_size * c->patch_size;
}
