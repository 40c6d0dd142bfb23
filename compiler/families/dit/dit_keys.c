/* dit_keys.c: the DiT's key table (spec_keys.h, indices in dit_family.h).
 * The first eleven keys are the fixed flat form that other tools depend on;
 * the rest are optional. docs/spec-language.md lists the same table. */
#include <stddef.h>

#include "families/dit/dit_family.h"

#define F(field) offsetof(ModelConfig, field)

const SpecKey DIT_KEYS[DIT_N_KEYS] = {
    /* index                     name             type       req   def     drv    min    max      minx   maxx   field */
    [DIT_KEY_IMAGE_SIZE]      = {"image_size",     KEY_INT,   true, 0,      false, 1,     65536,   false, false, F(image_size), "pixels"},
    [DIT_KEY_LATENT_SCALE]    = {"latent_scale",   KEY_INT,   true, 0,      false, 1,     64,      false, false, F(latent_scale), ""},
    [DIT_KEY_IN_CHANNELS]     = {"in_channels",    KEY_INT,   true, 0,      false, 1,     1024,    false, false, F(in_channels), ""},
    [DIT_KEY_PATCH_SIZE]      = {"patch_size",     KEY_INT,   true, 0,      false, 1,     256,     false, false, F(patch_size), ""},
    [DIT_KEY_HIDDEN_SIZE]     = {"hidden_size",    KEY_INT,   true, 0,      false, 1,     65536,   false, false, F(hidden_size), ""},
    [DIT_KEY_DEPTH]           = {"depth",          KEY_INT,   true, 0,      false, 1,     1024,    false, false, F(depth), ""},
    [DIT_KEY_NUM_HEADS]       = {"num_heads",      KEY_INT,   true, 0,      false, 1,     1024,    false, false, F(num_heads), ""},
    [DIT_KEY_MLP_RATIO]       = {"mlp_ratio",      KEY_FLOAT, true, 0,      false, 0,     64,      true,  false, F(mlp_ratio), ""},
    [DIT_KEY_NUM_CLASSES]     = {"num_classes",    KEY_INT,   true, 0,      false, 1,     1000000, false, false, F(num_classes), ""},
    [DIT_KEY_CLASS_DROPOUT]   = {"class_dropout",  KEY_FLOAT, true, 0,      false, 0,     1,       false, true,  F(class_dropout), ""},
    [DIT_KEY_LEARN_SIGMA]     = {"learn_sigma",    KEY_BOOL,  true, 0,      false, 0,     1,       false, false, F(learn_sigma), ""},
    [DIT_KEY_LAYERNORM_EPS]   = {"layernorm_eps",  KEY_FLOAT, false, 1e-6,  false, 0,     1,       true,  false, F(layernorm_eps), ""},
    [DIT_KEY_GUIDED_CHANNELS] = {"guided_channels",KEY_INT,   false, 0,     true,  1,     1024,    false, false, F(guided_channels), ""},
    [DIT_KEY_FREQ_EMBED_SIZE] = {"freq_embed_size",KEY_INT,   false, 256,   false, 2,     65536,   false, false, F(freq_embed_size), ""},
    [DIT_KEY_MAX_PERIOD]      = {"max_period",     KEY_FLOAT, false, 10000, false, 1,     1e12,    false, false, F(max_period), ""},
};
