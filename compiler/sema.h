/* sema.h: from spec files to a validated ModelConfig. Resolves includes and
 * `base` inheritance, finds the model's family, checks every key's name, type
 * and range against that family's key table, and has the family reject
 * impossible models, reporting every error with its location. Nothing here
 * knows a family's keys (family.h). */
#ifndef DIT_COMPILER_SEMA_H
#define DIT_COMPILER_SEMA_H

#include <stdbool.h>

#include "ast.h"
#include "model_config.h"
#include "spec_keys.h"

#define SEMA_MAX_INCLUDE_DEPTH 16

/* A key set on the command line (ditc --image-size 512, --part both): it
 * overrides the model's value, and is checked and reported like one, at
 * "<command line>". */
typedef struct SpecOverride {
  const char *option; /* "--image-size" */
  const char *key;    /* "image_size" */
  const char *value;  /* "512", as given */
  bool is_string;     /* the value is a string (part), else an integer */
} SpecOverride;

#define SPEC_MAX_OVERRIDES 4

typedef struct SpecOverrides {
  SpecOverride at[SPEC_MAX_OVERRIDES];
  size_t n;
} SpecOverrides;

typedef struct SpecSource {
  const char *path;   /* file to read, or the display name of `data` */
  const char *data;   /* NULL: read `path` from disk */
  size_t len_bytes;
  bool allow_include; /* false for in-memory specs (fuzzing) */
} SpecSource;

struct ModelFamily;

typedef struct Spec {
  const struct ModelFamily *family; /* `family = "..."`, else the DiT family (family.h) */
  SrcSpan family_loc;             /* where it was named; model_loc for the default */
  ModelConfig cfg;                /* cfg.family == family */
  SrcSpan model_loc;              /* the model's name in its model block */
  SrcSpan *key_loc;               /* [family->n_keys], by the index in its key table: where
                                     each key got its value; model_loc for defaults */
} Spec;

/* Loads, parses and checks a spec. Returns DITC_OK with *out set, or an error
 * status after reporting every problem found to d. */
DitcStatus spec_load(Arena *a, Diag *d, const SpecSource *src, Spec **out);
/* The same with keys set on the command line (NULL: none). */
DitcStatus spec_load_with(Arena *a, Diag *d, const SpecSource *src, const SpecOverrides *over, Spec **out);

#endif
