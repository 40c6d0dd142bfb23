/* spec_keys.h: what a key table says about each key a model block may set:
 * its type, whether it is required, its default and its valid range. Each
 * model family brings its own table (family.h; the DiT's is
 * families/dit/dit_keys.c); sema checks a spec's keys against its family's
 * table, suggests "did you mean" from it, and docs/spec-language.md lists it.
 * Besides scalars a key may hold a string (the VAE's act_fn) or a list of at
 * most SPEC_MAX_LIST integers or strings (block_out_channels,
 * down_block_types), stored as a SpecIntList or SpecStrList field. The
 * switches over the type have no default, so -Wswitch-enum names every place
 * that must handle a new one. */
#ifndef DIT_COMPILER_SPEC_KEYS_H
#define DIT_COMPILER_SPEC_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest list a spec may write. */
#define SPEC_MAX_LIST 8

typedef enum {
  KEY_INT,         /* int64_t */
  KEY_FLOAT,       /* double */
  KEY_BOOL,        /* bool */
  KEY_STRING,      /* const char *: "silu" */
  KEY_INT_LIST,    /* SpecIntList: [128, 256, 512, 512] */
  KEY_STRING_LIST  /* SpecStrList: ["DownEncoderBlock2D", ...] */
} SpecKeyType;

typedef struct SpecIntList {
  int64_t n;
  int64_t v[SPEC_MAX_LIST];
} SpecIntList;

typedef struct SpecStrList {
  int64_t n;
  const char *v[SPEC_MAX_LIST];
} SpecStrList;

typedef struct SpecKey {
  const char *name;
  SpecKeyType type;
  bool required;
  double def;         /* default when not required (ints and bools as 0/1) */
  bool def_derived;   /* default computed from other keys (by the family's check) */
  double min, max;    /* valid range; of each element for a list, unused for a string */
  bool min_exclusive; /* value must be > min rather than >= min */
  bool max_exclusive;
  size_t offset;      /* field in ModelConfig */
  const char *unit;   /* shown in messages and docs */
  const char *def_str; /* KEY_STRING: the default of an optional key */
  int64_t min_len;     /* lists: the fewest elements (1: not empty) */
} SpecKey;

/* The index of the key of that name in keys[0..n), or -1 when unknown. */
int spec_key_find(const SpecKey *keys, size_t n, const char *name);
/* "an integer", "a number", "true or false", "a list of integers": what a
 * key of type t expects. */
const char *spec_key_type_name(SpecKeyType t);
/* Whether x lies in k's range (min, max and their exclusivity). */
bool spec_key_in_range(const SpecKey *k, double x);
/* The bytes of a field of type t in ModelConfig. */
size_t spec_key_bytes(SpecKeyType t);

#endif
