/* spec_keys.c: the key table (see spec_keys.h). The first eleven keys are the
 * fixed flat form that other tools depend on; the rest are optional. */
#include "spec_keys.h"

#include <stddef.h>
#include <string.h>

#include "model_config.h"

#define F(field) offsetof(ModelConfig, field)

static const SpecKey KEYS[N_SPEC_KEYS] = {
    /* name            type       req   def     drv    min    max      minx   maxx   field */
    {"image_size",     KEY_INT,   true, 0,      false, 1,     65536,   false, false, F(image_size), "pixels"},
    {"latent_scale",   KEY_INT,   true, 0,      false, 1,     64,      false, false, F(latent_scale), ""},
    {"in_channels",    KEY_INT,   true, 0,      false, 1,     1024,    false, false, F(in_channels), ""},
    {"patch_size",     KEY_INT,   true, 0,      false, 1,     256,     false, false, F(patch_size), ""},
    {"hidden_size",    KEY_INT,   true, 0,      false, 1,     65536,   false, false, F(hidden_size), ""},
    {"depth",          KEY_INT,   true, 0,      false, 1,     1024,    false, false, F(depth), ""},
    {"num_heads",      KEY_INT,   true, 0,      false, 1,     1024,    false, false, F(num_heads), ""},
    {"mlp_ratio",      KEY_FLOAT, true, 0,      false, 0,     64,      true,  false, F(mlp_ratio), ""},
    {"num_classes",    KEY_INT,   true, 0,      false, 1,     1000000, false, false, F(num_classes), ""},
    {"class_dropout",  KEY_FLOAT, true, 0,      false, 0,     1,       false, true,  F(class_dropout), ""},
    {"learn_sigma",    KEY_BOOL,  true, 0,      false, 0,     1,       false, false, F(learn_sigma), ""},
    {"layernorm_eps",  KEY_FLOAT, false, 1e-6,  false, 0,     1,       true,  false, F(layernorm_eps), ""},
    {"guided_channels",KEY_INT,   false, 0,     true,  1,     1024,    false, false, F(guided_channels), ""},
    {"freq_embed_size",KEY_INT,   false, 256,   false, 2,     65536,   false, false, F(freq_embed_size), ""},
    {"max_period",     KEY_FLOAT, false, 10000, false, 1,     1e12,    false, false, F(max_period), ""},
};

const SpecKey *spec_key_table(void) { return KEYS; }

int spec_key_index(const char *name) {
  for (int i = 0; i < N_SPEC_KEYS; i++)
    if (strcmp(KEYS[i].name, name) == 0) return i;
  return -1;
}

const char *spec_key_type_name(SpecKeyType t) {
  switch (t) {
  case KEY_INT: return "an integer";
  case KEY_FLOAT: return "a number";
  case KEY_BOOL: return "true or false";
  }
  return "a value";
}
