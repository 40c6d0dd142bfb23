/* parse.c: drives the scanner and parser over one loaded file. */
#include "ast.h"
#include "parser.h"
#include "lexer.h"

DitcStatus parse_file(Arena *a, Diag *d, uint32_t file, AstFile **out) {
  DitcStatus st = DITC_OK;
  yyscan_t scanner = NULL;
  *out = NULL;
  SourceFile *f = &d->sm->files[file];
  ParseCtx ctx = {.arena = a, .diag = d, .file = file, .text = f->text};
  ctx.result = arena_alloc(a, sizeof(AstFile));
  if (!ctx.result) return DITC_ERR_NOMEM;
  ctx.result->file = file;
  if (yylex_init_extra(&ctx, &scanner) != 0) return DITC_ERR_NOMEM;
  YY_BUFFER_STATE buf = yy_scan_bytes(f->text, (int)f->len_bytes, scanner);
  if (!buf) {
    st = DITC_ERR_NOMEM;
    goto done;
  }
  int errors_before = d->n_errors;
  int rc = yyparse(scanner, &ctx);
  yy_delete_buffer(buf, scanner);
  if (ctx.oom || rc == 2) st = DITC_ERR_NOMEM;
  else if (rc != 0 || d->n_errors > errors_before) st = DITC_ERR_SPEC;
  *out = ctx.result;
done:
  yylex_destroy(scanner);
  return st;
}
