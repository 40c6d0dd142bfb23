/* dit_family.h: the DiT family (Peebles & Xie 2022; family.h): its key
 * table, its checks and derived sizes, its plan-model fill. Its lowering is
 * compiler/lower.c. Only family.c and this family's files include this. */
#ifndef DIT_COMPILER_FAMILIES_DIT_FAMILY_H
#define DIT_COMPILER_FAMILIES_DIT_FAMILY_H

#include "family.h"

/* The index of each key in the DiT's key table (dit_keys.c). The first
 * eleven are the fixed flat form that other tools depend on, required in
 * every model; the rest are optional. */
typedef enum DitKey {
  DIT_KEY_IMAGE_SIZE,
  DIT_KEY_LATENT_SCALE,
  DIT_KEY_IN_CHANNELS,
  DIT_KEY_PATCH_SIZE,
  DIT_KEY_HIDDEN_SIZE,
  DIT_KEY_DEPTH,
  DIT_KEY_NUM_HEADS,
  DIT_KEY_MLP_RATIO,
  DIT_KEY_NUM_CLASSES,
  DIT_KEY_CLASS_DROPOUT,
  DIT_KEY_LEARN_SIGMA,
  DIT_KEY_LAYERNORM_EPS,
  DIT_KEY_GUIDED_CHANNELS,
  DIT_KEY_FREQ_EMBED_SIZE,
  DIT_KEY_MAX_PERIOD,
  DIT_N_KEYS
} DitKey;

/* The family's entry (dit_family.c). */
const ModelFamily *dit_family(void);

/* dit_keys.c: the table, in DitKey order (a constant, as kernel_sources.h's
 * table is, so that the family's static entry can point at it). */
extern const SpecKey DIT_KEYS[DIT_N_KEYS];

/* dit_check.c: the ModelFamily check and derive of the DiT. */
bool dit_check(Diag *d, struct Spec *spec, const bool *set, bool *have);
void dit_derive(ModelConfig *c);

#endif
