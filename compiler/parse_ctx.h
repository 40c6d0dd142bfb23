/* parse_ctx.h: state shared by the reentrant scanner (lexer.l) and the pure
 * parser (parser.y) for one file. Internal to those two files and parse.c. */
#ifndef DIT_COMPILER_PARSE_CTX_H
#define DIT_COMPILER_PARSE_CTX_H

#include "ast.h"

typedef struct ParseCtx {
  Arena *arena;
  Diag *diag;
  uint32_t file;
  const char *text;
  uint32_t pos; /* byte offset of the next unread character */
  AstFile *result;
  AstAssign *body_head, *body_tail; /* statements of the block being parsed */
  int oom; /* set when an allocation failed */
} ParseCtx;

#endif
