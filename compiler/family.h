/* family.h: model families. A spec names its family with the key
 * `family = "..."` (a spec without one is a DiT); the family owns everything
 * about the model that is not the spec language itself: the keys a model
 * block may set, the checks that make a model possible, its lowering for
 * inference and for training, and its part of the plan's model section.
 * The families: the DiT (families/dit/) and the VAE (families/vae/). docs/spec-language.md, "Adding a model family", is the checklist. */
#ifndef DIT_COMPILER_FAMILY_H
#define DIT_COMPILER_FAMILY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "arena.h"
#include "diag.h"
#include "ir.h"
#include "model_config.h"
#include "spec_keys.h"
#include "status.h"

struct Spec;
struct Plan;
struct MemPlan;
struct ReportInput;

typedef struct ModelFamily {
  const char *name;  /* as specs name it: "dit" */
  const char *about; /* one line for messages and docs */
  /* The keys its model blocks may set, keys[0..n_keys): sema checks names,
   * types and ranges against them and writes each value at its offset in
   * spec->cfg. `family` itself is no entry (sema reads it first). */
  const SpecKey *keys;
  size_t n_keys;
  /* After every key of the spec holds its value or its default: fills the
   * defaults derived from other keys (def_derived keys the spec left unset),
   * then rejects impossible models, each error at the location of the key
   * (spec->key_loc[k]). set[k]: the spec set key k; have[k]: key k holds a
   * valid value, and the check sets it for each default it derives. Returns
   * false when it reported an error. Runs only on specs without syntax errors. */
  bool (*check)(Diag *d, struct Spec *spec, const bool *set, bool *have);
  /* The sizes derived from a spec that passed every check (ModelConfig's
   * derived fields). */
  void (*derive)(ModelConfig *cfg);
  /* The forward (with its sampler step) and the training graph of a spec. */
  DitcStatus (*lower_forward)(Arena *a, Diag *d, const struct Spec *spec, int64_t batch, Graph **out);
  DitcStatus (*lower_train)(Arena *a, Diag *d, const struct Spec *spec, int64_t batch, Graph **out);
  /* Its part of the plan's model section (PlanModel): every field but the
   * model's name and family, which plan_build adds first. */
  DitcStatus (*fill_plan_model)(Arena *a, struct Plan *p, const ModelConfig *cfg);
  /* Optional (NULL: the DiT's, in plan_build.c): the plan's PlanIO and its
   * named inputs and outputs, from the inference graph g and its plan p. */
  DitcStatus (*fill_plan_io)(Arena *a, Diag *d, const Graph *g, const struct MemPlan *mp, struct Plan *p);
  /* Optional: the whole model, for a report when a spec compiles part of it
   * (the VAE's --part): lowered at batch 1, never planned. */
  DitcStatus (*lower_whole)(Arena *a, Diag *d, const struct Spec *spec, Graph **out);
  /* Optional (NULL: the DiT's, report.c): its --info report and its JSON. */
  void (*report_text)(const struct ReportInput *r, FILE *out);
  void (*report_json)(const struct ReportInput *r, FILE *out);
} ModelFamily;

/* The family of that name, or NULL. */
const ModelFamily *model_family_find(const char *name);
/* The default family of a spec that names none: dit. */
const ModelFamily *model_family_default(void);
/* The known families, in a fixed order: their count, and the i-th. */
size_t model_family_count(void);
const ModelFamily *model_family_at(size_t i);
/* The known names, comma-separated ("dit"), into buf, for messages. */
void model_family_names(char *buf, size_t n);

#endif
