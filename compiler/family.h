/* family.h: model families. A spec names its family with the key
 * `family = "..."` (a spec without one is a DiT); the family decides how the
 * checked spec becomes a graph: its lowering for inference and for training.
 * The DiT family is the one today (lower.c, its keys in spec_keys.c); the
 * compiled VAE (#10) is the next. */
#ifndef DIT_COMPILER_FAMILY_H
#define DIT_COMPILER_FAMILY_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "diag.h"
#include "ir.h"
#include "status.h"

struct Spec;

typedef struct ModelFamily {
  const char *name;  /* as specs name it: "dit" */
  const char *about; /* one line for messages and docs */
  /* The forward (with its sampler step) and the training graph of a spec. */
  DitcStatus (*lower_forward)(Arena *a, Diag *d, const struct Spec *spec, int64_t batch, Graph **out);
  DitcStatus (*lower_train)(Arena *a, Diag *d, const struct Spec *spec, int64_t batch, Graph **out);
} ModelFamily;

/* The family of that name, or NULL. */
const ModelFamily *model_family_find(const char *name);
/* The default family of a spec that names none: dit. */
const ModelFamily *model_family_default(void);
/* The known names, comma-separated ("dit"), into buf, for messages. */
void model_family_names(char *buf, size_t n);

#endif
