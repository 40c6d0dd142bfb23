/* ast.h: the syntax tree of one .dit file, exactly as written.
 * The parser builds it; sema.c resolves includes and inheritance on top of it.
 * Every node keeps the byte span it came from for diagnostics. */
#ifndef DIT_COMPILER_AST_H
#define DIT_COMPILER_AST_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "diag.h"

typedef enum {
  VAL_INT,    /* 28, -3 */
  VAL_FLOAT,  /* 4.0, 1e-6 */
  VAL_BOOL,   /* true, false */
  VAL_STRING, /* "DiT-XL/2" */
  VAL_IDENT,  /* a bare word where a value belongs: yes; sema rejects it */
  VAL_LIST,   /* [128, 256, 512, 512], ["DownEncoderBlock2D", ...]: scalars only, no nesting */
  VAL_BAD     /* a literal the lexer already reported (out of range) */
} ValueKind;

struct AstList;

typedef struct AstValue {
  ValueKind kind;
  int64_t i;
  double f;
  bool b;
  const char *s; /* string contents (escapes resolved) or identifier */
  const struct AstList *list; /* VAL_LIST: its elements, in order (empty: n 0) */
  SrcSpan loc;   /* of the whole value: a list's from '[' to ']' */
} AstValue;

/* The elements of a list value, as written; sema checks their number
 * (SPEC_MAX_LIST), that they share one type and each one's range. */
typedef struct AstList {
  AstValue *items;
  size_t n, cap;
} AstList;

/* hidden_size = 1152 */
typedef struct AstAssign {
  const char *key;
  SrcSpan key_loc;
  AstValue value;
  struct AstAssign *next;
  /* annotations added by sema */
  int key_index; /* into its block's family's key table (family.h), -1 when unknown */
  bool invalid;  /* unknown key, duplicate, wrong type or out of range: already reported */
} AstAssign;

typedef enum {
  DECL_INCLUDE, /* include "families.dit" */
  DECL_MODEL,   /* model "DiT-XL/2" [: "parent"] { ... } */
  DECL_BASE     /* base "DiT-XL" [: "parent"] { ... }: may be incomplete, never compiled */
} DeclKind;

typedef struct AstDecl {
  DeclKind kind;
  const char *name; /* model/base name, or the include path */
  SrcSpan name_loc;
  const char *parent; /* NULL when the block inherits nothing */
  SrcSpan parent_loc;
  AstAssign *body;
  SrcSpan loc; /* the keyword */
  struct AstDecl *next;
} AstDecl;

typedef struct AstFile {
  uint32_t file;
  AstDecl *decls;
  int n_syntax_errors;
} AstFile;

/* Parses one loaded source file. Syntax errors are reported to d; parsing
 * recovers at statement level so that all of them are reported. *out is set
 * to the (possibly partial) tree unless memory ran out. */
DitcStatus parse_file(Arena *a, Diag *d, uint32_t file, AstFile **out);

#endif
