/* vae_check.c: the VAE's config checks (ModelFamily.check): the defaults
 * derived from other keys (image_size = sample_size, one block type per
 * level), the values ditc compiles (act_fn "silu", DownEncoderBlock2D and
 * UpDecoderBlock2D blocks, a part) and the cross-key rules, each reported at
 * its key; and the sizes derived from a valid config (ModelFamily.derive).
 * docs/spec-language.md, "The vae family", lists the same rules. */
#include <string.h>

#include "families/vae/vae_family.h"
#include "sema.h"

/* The default of a block-type list: one `type` per level. */
static void fill_types(SpecStrList *l, int64_t levels, const char *type) {
  l->n = levels;
  for (int64_t i = 0; i < levels && i < SPEC_MAX_LIST; i++) l->v[i] = type;
}

/* Every entry of a block-type list is `type`, one per level. */
static bool check_types(Diag *d, SrcSpan loc, const char *key, const SpecStrList *l, const char *type,
                        const SpecIntList *boc, SrcSpan boc_loc, bool have_boc) {
  for (int64_t i = 0; i < l->n; i++) {
    if (strcmp(l->v[i], type) != 0) {
      diag_error(d, loc, "%s: element %lld is \"%s\"; ditc compiles only %s blocks (AutoencoderKL's "
                 "Stable Diffusion VAE)", key, (long long)i + 1, l->v[i], type);
      return false;
    }
  }
  if (have_boc && l->n != boc->n) {
    diag_error(d, loc, "%s has %lld entries, but block_out_channels has %lld levels", key, (long long)l->n,
               (long long)boc->n);
    diag_note(d, boc_loc, "block_out_channels is set here");
    return false;
  }
  return true;
}

bool vae_check(Diag *d, Spec *sp, const bool *set, bool *have) {
  VaeConfig *v = &sp->cfg.vae;
  SrcSpan *loc = sp->key_loc;
  bool ok = true;
  bool boc = have[VAE_KEY_BLOCK_OUT_CHANNELS];
  if (!set[VAE_KEY_IMAGE_SIZE] && have[VAE_KEY_SAMPLE_SIZE]) {
    v->image_size = v->sample_size;
    have[VAE_KEY_IMAGE_SIZE] = true;
    loc[VAE_KEY_IMAGE_SIZE] = loc[VAE_KEY_SAMPLE_SIZE]; /* its messages point at sample_size */
  }
  if (boc && !set[VAE_KEY_DOWN_BLOCK_TYPES]) {
    fill_types(&v->down_block_types, v->block_out_channels.n, VAE_DOWN_BLOCK);
    have[VAE_KEY_DOWN_BLOCK_TYPES] = true;
  }
  if (boc && !set[VAE_KEY_UP_BLOCK_TYPES]) {
    fill_types(&v->up_block_types, v->block_out_channels.n, VAE_UP_BLOCK);
    have[VAE_KEY_UP_BLOCK_TYPES] = true;
  }
  if (have[VAE_KEY_ACT_FN] && strcmp(v->act_fn, "silu") != 0) {
    diag_error(d, loc[VAE_KEY_ACT_FN], "act_fn \"%s\" is not supported: ditc's VAE uses \"silu\"", v->act_fn);
    ok = false;
  }
  if (have[VAE_KEY_IN_CHANNELS] && have[VAE_KEY_OUT_CHANNELS] && v->in_channels != v->out_channels) {
    diag_error(d, loc[VAE_KEY_OUT_CHANNELS],
               "out_channels %lld differs from in_channels %lld: ditc's VAE plans decode to the images they encode",
               (long long)v->out_channels, (long long)v->in_channels);
    ok = false;
  }
  if (have[VAE_KEY_PART] && strcmp(v->part, "decoder") && strcmp(v->part, "encoder") && strcmp(v->part, "both")) {
    diag_error(d, loc[VAE_KEY_PART], "part \"%s\" is none of \"decoder\", \"encoder\" and \"both\"", v->part);
    ok = false;
  }
  if (have[VAE_KEY_DOWN_BLOCK_TYPES] &&
      !check_types(d, loc[VAE_KEY_DOWN_BLOCK_TYPES], "down_block_types", &v->down_block_types, VAE_DOWN_BLOCK,
                   &v->block_out_channels, loc[VAE_KEY_BLOCK_OUT_CHANNELS], boc))
    ok = false;
  if (have[VAE_KEY_UP_BLOCK_TYPES] &&
      !check_types(d, loc[VAE_KEY_UP_BLOCK_TYPES], "up_block_types", &v->up_block_types, VAE_UP_BLOCK,
                   &v->block_out_channels, loc[VAE_KEY_BLOCK_OUT_CHANNELS], boc))
    ok = false;
  if (boc && have[VAE_KEY_NORM_NUM_GROUPS]) {
    for (int64_t i = 0; i < v->block_out_channels.n; i++) {
      if (v->block_out_channels.v[i] % v->norm_num_groups == 0) continue;
      diag_error(d, loc[VAE_KEY_BLOCK_OUT_CHANNELS],
                 "block_out_channels: level %lld has %lld channels, not divisible by norm_num_groups %lld",
                 (long long)i, (long long)v->block_out_channels.v[i], (long long)v->norm_num_groups);
      if (set[VAE_KEY_NORM_NUM_GROUPS]) diag_note(d, loc[VAE_KEY_NORM_NUM_GROUPS], "norm_num_groups is set here");
      ok = false;
      break;
    }
  }
  if (boc && have[VAE_KEY_IMAGE_SIZE]) {
    int64_t scale = (int64_t)1 << (v->block_out_channels.n - 1);
    if (v->image_size % scale != 0) {
      diag_error(d, loc[VAE_KEY_IMAGE_SIZE],
                 "image_size %lld is not a multiple of %lld, the downsampling of %lld levels (2^%lld)",
                 (long long)v->image_size, (long long)scale, (long long)v->block_out_channels.n,
                 (long long)(v->block_out_channels.n - 1));
      diag_note(d, loc[VAE_KEY_BLOCK_OUT_CHANNELS], "block_out_channels is set here");
      ok = false;
    }
  }
  return ok;
}

void vae_derive(ModelConfig *c) {
  VaeConfig *v = &c->vae;
  v->levels = v->block_out_channels.n;
  v->latent_scale = (int64_t)1 << (v->levels - 1);
  v->latent_size = v->image_size / v->latent_scale;
  v->mid_channels = v->block_out_channels.v[v->levels - 1];
  v->parts = !strcmp(v->part, "both") ? PLAN_VAE_DECODER | PLAN_VAE_ENCODER
             : !strcmp(v->part, "encoder") ? PLAN_VAE_ENCODER : PLAN_VAE_DECODER;
}
