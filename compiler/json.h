/* json.h: a small, strict JSON reader (RFC 8259) for diffusers' config.json
 * files: objects, arrays, strings with every escape, numbers, true, false and
 * null, each value with its byte span in the source file so that errors are
 * reported as file:line:column with the line shown. Limits: nesting at most
 * JSON_MAX_DEPTH, at most JSON_MAX_ITEMS members or elements per object or
 * array; the file itself is the SourceMgr's (at most 1 MiB of UTF-8). */
#ifndef DIT_COMPILER_JSON_H
#define DIT_COMPILER_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "diag.h"

#define JSON_MAX_DEPTH 32
#define JSON_MAX_ITEMS 65536

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } JsonKind;

typedef struct JsonValue {
  JsonKind kind;
  bool b;           /* JSON_BOOL */
  double num;       /* JSON_NUMBER */
  bool is_int;      /* JSON_NUMBER written without fraction or exponent, fitting int64 */
  int64_t i;        /* its value when is_int */
  const char *s;    /* JSON_STRING: escapes resolved, UTF-8, no NUL inside */
  struct JsonValue *items; /* JSON_ARRAY elements, JSON_OBJECT member values */
  const char **keys;       /* JSON_OBJECT member names, [n] */
  SrcSpan *key_locs;       /* JSON_OBJECT: where each name is written, [n] */
  size_t n;
  SrcSpan loc;      /* the whole value */
} JsonValue;

/* Parses the whole of source file `file` as one JSON value (whitespace
 * around it only). Reports the first error to d at its location and returns
 * DITC_ERR_SPEC; DITC_ERR_NOMEM when memory runs out. */
DitcStatus json_parse(Arena *a, Diag *d, uint32_t file, JsonValue **out);

/* The member of object o named key, or NULL. */
const JsonValue *json_member(const JsonValue *o, const char *key);

/* "an object", "a string", ...: what a value is, for messages. */
const char *json_kind_name(JsonKind k);

#endif
