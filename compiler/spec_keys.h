/* spec_keys.h: the table of keys a model block may set: type, whether it is
 * required, its default and its valid range. One source of truth for sema,
 * for "did you mean" suggestions and for docs/spec-language.md. */
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
  bool def_derived;   /* default computed from other keys (see sema.c) */
  double min, max;    /* valid range */
  bool min_exclusive; /* value must be > min rather than >= min */
  bool max_exclusive;
  size_t offset;      /* field in ModelConfig */
  const char *unit;   /* shown in messages and docs */
} SpecKey;

enum { N_SPEC_KEYS = 15 };

const SpecKey *spec_key_table(void); /* N_SPEC_KEYS entries */
int spec_key_index(const char *name); /* -1 when unknown */
const char *spec_key_type_name(SpecKeyType t);

#endif
