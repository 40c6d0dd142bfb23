/* spec_keys.h: what a key table says about each key a model block may set:
 * its type, whether it is required, its default and its valid range. Each
 * model family brings its own table (family.h; the DiT's is
 * families/dit/dit_keys.c); sema checks a spec's keys against its family's
 * table, suggests "did you mean" from it, and docs/spec-language.md lists it.
 * A list-valued key (the VAE's block_out_channels) would be a new SpecKeyType
 * with a field for its longest list: the switches over the type have no
 * default, so -Wswitch-enum names every place that must handle it. */
#ifndef DIT_COMPILER_SPEC_KEYS_H
#define DIT_COMPILER_SPEC_KEYS_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { KEY_INT, KEY_FLOAT, KEY_BOOL } SpecKeyType;

typedef struct SpecKey {
  const char *name;
  SpecKeyType type;
  bool required;
  double def;         /* default when not required (ints and bools as 0/1) */
  bool def_derived;   /* default computed from other keys (by the family's check) */
  double min, max;    /* valid range */
  bool min_exclusive; /* value must be > min rather than >= min */
  bool max_exclusive;
  size_t offset;      /* field in ModelConfig */
  const char *unit;   /* shown in messages and docs */
} SpecKey;

/* The index of the key of that name in keys[0..n), or -1 when unknown. */
int spec_key_find(const SpecKey *keys, size_t n, const char *name);
/* "an integer", "a number", "true or false": what a key of type t expects. */
const char *spec_key_type_name(SpecKeyType t);
/* Whether x lies in k's range (min, max and their exclusivity). */
bool spec_key_in_range(const SpecKey *k, double x);

#endif
