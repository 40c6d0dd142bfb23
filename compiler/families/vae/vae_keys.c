/* vae_keys.c: the VAE's key table (spec_keys.h, indices in vae_family.h):
 * diffusers' AutoencoderKL config.json keys with its defaults, then ditc's
 * own image_size and part. docs/spec-language.md lists the same table. */
#include <stddef.h>

#include "families/vae/vae_family.h"

#define F(field) offsetof(ModelConfig, vae.field)

const SpecKey VAE_KEYS[VAE_N_KEYS] = {
    /* index                              name                       type             req    def      drv    min  max      minx   maxx   field                        unit  def_str    min_len */
    [VAE_KEY_IN_CHANNELS]             = {"in_channels",             KEY_INT,         false, 3,       false, 1,   1024,    false, false, F(in_channels), "", NULL, 0},
    [VAE_KEY_OUT_CHANNELS]            = {"out_channels",            KEY_INT,         false, 3,       false, 1,   1024,    false, false, F(out_channels), "", NULL, 0},
    [VAE_KEY_LATENT_CHANNELS]         = {"latent_channels",         KEY_INT,         false, 4,       false, 1,   1024,    false, false, F(latent_channels), "", NULL, 0},
    [VAE_KEY_BLOCK_OUT_CHANNELS]      = {"block_out_channels",      KEY_INT_LIST,    true,  0,       false, 1,   8192,    false, false, F(block_out_channels), "", NULL, 1},
    [VAE_KEY_LAYERS_PER_BLOCK]        = {"layers_per_block",        KEY_INT,         false, 1,       false, 1,   64,      false, false, F(layers_per_block), "", NULL, 0},
    [VAE_KEY_NORM_NUM_GROUPS]         = {"norm_num_groups",         KEY_INT,         false, 32,      false, 1,   8192,    false, false, F(norm_num_groups), "", NULL, 0},
    [VAE_KEY_ACT_FN]                  = {"act_fn",                  KEY_STRING,      false, 0,       false, 0,   1,       false, false, F(act_fn), "", "silu", 0},
    [VAE_KEY_SAMPLE_SIZE]             = {"sample_size",             KEY_INT,         false, 32,      false, 1,   65536,   false, false, F(sample_size), "pixels", NULL, 0},
    [VAE_KEY_SCALING_FACTOR]          = {"scaling_factor",          KEY_FLOAT,       false, 0.18215, false, 0,   1e6,     true,  false, F(scaling_factor), "", NULL, 0},
    [VAE_KEY_DOWN_BLOCK_TYPES]        = {"down_block_types",        KEY_STRING_LIST, false, 0,       true,  0,   1,       false, false, F(down_block_types), "", NULL, 1},
    [VAE_KEY_UP_BLOCK_TYPES]          = {"up_block_types",          KEY_STRING_LIST, false, 0,       true,  0,   1,       false, false, F(up_block_types), "", NULL, 1},
    [VAE_KEY_MID_BLOCK_ADD_ATTENTION] = {"mid_block_add_attention", KEY_BOOL,        false, 1,       false, 0,   1,       false, false, F(mid_block_add_attention), "", NULL, 0},
    [VAE_KEY_USE_QUANT_CONV]          = {"use_quant_conv",          KEY_BOOL,        false, 1,       false, 0,   1,       false, false, F(use_quant_conv), "", NULL, 0},
    [VAE_KEY_USE_POST_QUANT_CONV]     = {"use_post_quant_conv",     KEY_BOOL,        false, 1,       false, 0,   1,       false, false, F(use_post_quant_conv), "", NULL, 0},
    [VAE_KEY_FORCE_UPCAST]            = {"force_upcast",            KEY_BOOL,        false, 1,       false, 0,   1,       false, false, F(force_upcast), "", NULL, 0},
    [VAE_KEY_IMAGE_SIZE]              = {"image_size",              KEY_INT,         false, 0,       true,  1,   65536,   false, false, F(image_size), "pixels", NULL, 0},
    [VAE_KEY_PART]                    = {"part",                    KEY_STRING,      false, 0,       false, 0,   1,       false, false, F(part), "", "decoder", 0},
};
