/* parser.y: pure, reentrant grammar of the .dit spec language -> AST.
 * Errors recover at the statement (line) level so one run reports them all.
 * See docs/spec-language.md for the language. */
%require "3.8"
%define api.pure full
%define api.location.type {SrcSpan}
%define parse.error custom
%define parse.lac full
%locations
%expect 0

%code requires {
#include "parse_ctx.h"
typedef void *yyscan_t;
}

%code provides {
int yylex(YYSTYPE *yylval, YYLTYPE *yylloc, yyscan_t scanner);
}

%param {yyscan_t scanner}
%parse-param {ParseCtx *ctx}

%code {
#define YYLLOC_DEFAULT(Cur, Rhs, N)                                    \
  do {                                                                 \
    if (N) {                                                           \
      (Cur).file = YYRHSLOC(Rhs, 1).file;                              \
      (Cur).begin = YYRHSLOC(Rhs, 1).begin;                            \
      (Cur).end = YYRHSLOC(Rhs, N).end;                                \
    } else {                                                           \
      (Cur).file = YYRHSLOC(Rhs, 0).file;                              \
      (Cur).begin = (Cur).end = YYRHSLOC(Rhs, 0).end;                  \
    }                                                                  \
  } while (0)

static void yyerror(SrcSpan *loc, yyscan_t scanner, ParseCtx *ctx, const char *msg) {
  (void)scanner;
  diag_error(ctx->diag, *loc, "%s", msg);
  ctx->result->n_syntax_errors++;
}

static void *new_node(ParseCtx *ctx, size_t n) {
  void *p = arena_alloc(ctx->arena, n);
  if (!p) ctx->oom = 1;
  return p;
}

static void append_decl(ParseCtx *ctx, AstDecl *d) {
  if (!d) return;
  AstDecl **tail = &ctx->result->decls;
  while (*tail) tail = &(*tail)->next;
  *tail = d;
}

/* Statements are collected in ctx, not in semantic values, so that error
 * recovery, which pops parser states, cannot drop the statements before it. */
static void begin_body(ParseCtx *ctx) { ctx->body_head = ctx->body_tail = NULL; }

static void add_stmt(ParseCtx *ctx, AstAssign *as) {
  if (!as) return;
  if (ctx->body_tail) ctx->body_tail->next = as;
  else ctx->body_head = as;
  ctx->body_tail = as;
}

/* list: the list value being built, or a fresh one (kind VAL_LIST) when
 * NULL; appends item to it. The list and its items live in the arena. */
static AstValue list_add(ParseCtx *ctx, const AstValue *list, AstValue item) {
  AstValue v = list ? *list : (AstValue){.kind = VAL_LIST};
  AstList *l = (AstList *)v.list;
  if (!l) {
    l = new_node(ctx, sizeof *l);
    if (!l) return v;
    v.list = l;
  }
  if (arena_grow(ctx->arena, (void **)&l->items, &l->cap, l->n + 1, sizeof *l->items)) {
    ctx->oom = 1;
    return v;
  }
  l->items[l->n++] = item;
  return v;
}

static AstDecl *make_block(ParseCtx *ctx, DeclKind kind, SrcSpan kw, AstValue name,
                           AstValue *parent, AstAssign *body) {
  AstDecl *d = new_node(ctx, sizeof *d);
  if (!d) return NULL;
  d->kind = kind;
  d->loc = kw;
  d->name = name.s ? name.s : "";
  d->name_loc = name.loc;
  if (parent) {
    d->parent = parent->s ? parent->s : "";
    d->parent_loc = parent->loc;
  }
  d->body = body;
  return d;
}
}

%union {
  AstValue val;
}

%token NEWLINE "end of line"
%token KW_MODEL "'model'" KW_BASE "'base'" KW_INCLUDE "'include'"
%token <val> KW_TRUE "'true'" KW_FALSE "'false'"
%token <val> IDENT "identifier" INT "integer" FLOAT "number" STRING "string"

%type <val> value scalar items parent_opt

%%

/* A file is a sequence of declarations, each on its own line(s). */
file
  : seps_opt decls
  ;

decls
  : %empty
  | decls decl seps_opt
  ;

decl
  /* include "families/dit.dit" */
  : KW_INCLUDE STRING {
      AstDecl *d = new_node(ctx, sizeof *d);
      if (d) {
        d->kind = DECL_INCLUDE;
        d->loc = @1;
        d->name = $2.s ? $2.s : "";
        d->name_loc = $2.loc;
        append_decl(ctx, d);
      }
    }
  /* model "DiT-XL/2" { ... }    or    model "DiT-XL/2" : "DiT-XL" { ... } */
  | KW_MODEL STRING parent_opt '{' { begin_body(ctx); } body '}' {
      append_decl(ctx, make_block(ctx, DECL_MODEL, @1, $2, $3.kind == VAL_STRING ? &$3 : NULL, ctx->body_head));
      begin_body(ctx);
    }
  /* base "DiT-XL" : "DiT" { hidden_size = 1152 ... } */
  | KW_BASE STRING parent_opt '{' { begin_body(ctx); } body '}' {
      append_decl(ctx, make_block(ctx, DECL_BASE, @1, $2, $3.kind == VAL_STRING ? &$3 : NULL, ctx->body_head));
      begin_body(ctx);
    }
  | error
  ;

parent_opt
  : %empty       { $$ = (AstValue){.kind = VAL_BAD}; }
  | ':' STRING   { $$ = $2; $$.kind = VAL_STRING; }
  ;

body
  : seps_opt
  | seps_opt stmts seps_opt
  ;

stmts
  : stmt
  | stmts seps stmt
  ;

/* hidden_size = 1152 */
stmt
  : IDENT '=' value {
      AstAssign *as = new_node(ctx, sizeof *as);
      if (as) {
        as->key = $1.s;
        as->key_loc = @1;
        as->value = $3;
        add_stmt(ctx, as);
      }
    }
  | error
  ;

value
  : scalar       { $$ = $1; }
  /* block_out_channels = [128, 256, 512, 512]; a list may span lines */
  | '[' nls_opt ']' {
      $$ = (AstValue){.kind = VAL_LIST, .loc = @$};
      $$.list = new_node(ctx, sizeof(AstList));
    }
  | '[' nls_opt items nls_opt ']' { $$ = $3; $$.loc = @$; }
  ;

/* 128, 256 or "DownEncoderBlock2D", "DownEncoderBlock2D" */
items
  : scalar                           { $$ = list_add(ctx, NULL, $1); }
  | items nls_opt ',' nls_opt scalar { $$ = list_add(ctx, &$1, $5); }
  ;

scalar
  : INT          { $$ = $1; }
  | FLOAT        { $$ = $1; }
  | '-' INT      { $$ = $2; $$.i = -$2.i; $$.loc = @$; }
  | '-' FLOAT    { $$ = $2; $$.f = -$2.f; $$.loc = @$; }
  | KW_TRUE      { $$ = $1; }
  | KW_FALSE     { $$ = $1; }
  | STRING       { $$ = $1; }
  | IDENT        { $$ = $1; }
  ;

seps_opt
  : %empty
  | seps
  ;

nls_opt
  : %empty
  | nls_opt NEWLINE
  ;

seps
  : sep
  | seps sep
  ;

sep
  : NEWLINE
  | ';'
  ;

%%

/* "unexpected integer '1'; expected end of line, ';' or '}'" */
int yyreport_syntax_error(const yypcontext_t *pc, yyscan_t scanner, ParseCtx *ctx) {
  (void)scanner;
  enum { MAX_EXPECTED = 6 };
  yysymbol_kind_t exp[MAX_EXPECTED];
  int n = yypcontext_expected_tokens(pc, exp, MAX_EXPECTED);
  yysymbol_kind_t tok = yypcontext_token(pc);
  const SrcSpan *loc = yypcontext_location(pc);
  char msg[256];
  int k = snprintf(msg, sizeof msg, "unexpected %s", yysymbol_name(tok));
  bool quote = tok == YYSYMBOL_IDENT || tok == YYSYMBOL_INT || tok == YYSYMBOL_FLOAT;
  if (quote && loc->end > loc->begin && loc->end - loc->begin <= 24)
    k += snprintf(msg + k, sizeof msg - (size_t)k, " '%.*s'", (int)(loc->end - loc->begin),
                  ctx->text + loc->begin);
  for (int i = 0; n > 0 && i < n && k > 0 && (size_t)k < sizeof msg; i++)
    k += snprintf(msg + k, sizeof msg - (size_t)k, "%s%s", i == 0 ? "; expected " : (i == n - 1 ? " or " : ", "),
                  yysymbol_name(exp[i]));
  diag_error(ctx->diag, *loc, "%s", msg);
  ctx->result->n_syntax_errors++;
  return 0;
}
