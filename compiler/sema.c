/* sema.c: includes, inheritance, each block's family, key checking against
 * that family's table, and the family's model checks (see sema.h). */
#define _XOPEN_SOURCE 700
#include "sema.h"

#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "config_import.h"
#include "family.h"

typedef struct Sema {
  Arena *a;
  Diag *d;
  bool allow_include;
  bool syntax_errors;      /* some file failed to parse: skip completeness checks */
  AstDecl **blocks;        /* every model and base block of every file */
  size_t n_blocks, cap_blocks;
  const char **open_files; /* canonical paths on the include stack */
  int depth;
  const char **seen_files; /* canonical paths already loaded (include once) */
  size_t n_seen, cap_seen;
  size_t *block_parent;             /* [n_blocks]: the index of each block's parent, or SIZE_MAX */
  const ModelFamily **block_family; /* [n_blocks]: whose keys each block sets; NULL: unknown */
} Sema;

/* Blocks in an inheritance chain at most (model, parent, grandparent, ...). */
enum { MAX_CHAIN = 64 };

/* ---- helpers ---------------------------------------------------------- */

/* Edit distance with adjacent transpositions counted as one edit (depht -> depth). */
static size_t edit_distance(const char *s, const char *t) {
  enum { MAX_LEN = 64 };
  size_t n = strlen(s), m = strlen(t);
  if (n > MAX_LEN || m > MAX_LEN) return SIZE_MAX;
  size_t d[MAX_LEN + 1][MAX_LEN + 1];
  for (size_t i = 0; i <= n; i++) d[i][0] = i;
  for (size_t j = 0; j <= m; j++) d[0][j] = j;
  for (size_t i = 1; i <= n; i++) {
    for (size_t j = 1; j <= m; j++) {
      size_t best = d[i - 1][j - 1] + (s[i - 1] != t[j - 1]);
      if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
      if (i > 1 && j > 1 && s[i - 1] == t[j - 2] && s[i - 2] == t[j - 1] && d[i - 2][j - 2] + 1 < best)
        best = d[i - 2][j - 2] + 1;
      d[i][j] = best;
    }
  }
  return d[n][m];
}

/* The closest of n names to s, when it is close enough to be a typo. The
 * names are the strings at first, first + stride, ... (bytes): an array of
 * names, or the name fields of an array of records. */
static const char *suggest(const char *s, const void *first, size_t n, size_t stride) {
  const char *best = NULL;
  size_t best_d = SIZE_MAX;
  for (size_t i = 0; i < n; i++) {
    const char *name;
    memcpy(&name, (const char *)first + i * stride, sizeof name);
    size_t dist = edit_distance(s, name);
    if (dist < best_d) {
      best_d = dist;
      best = name;
    }
  }
  size_t len = strlen(s);
  size_t limit = len < 6 ? 1 : (len < 12 ? 2 : 3);
  return best_d <= limit ? best : NULL;
}

/* The source text of a span, for quoting a value back to the user. */
static const char *span_text(Sema *S, SrcSpan s) {
  const SourceFile *f = &S->d->sm->files[s.file];
  uint32_t len = s.end - s.begin;
  const char *nl = memchr(f->text + s.begin, '\n', len); /* a list over lines: its first line */
  if (nl) len = (uint32_t)(nl - (f->text + s.begin));
  if (len > 40) return arena_printf(S->a, "%.37s...", f->text + s.begin);
  if (nl) return arena_printf(S->a, "%.*s ...", (int)len, f->text + s.begin);
  return arena_strndup(S->a, f->text + s.begin, len);
}

static const char *block_kind(const AstDecl *b) { return b->kind == DECL_MODEL ? "model" : "base"; }

/* The index of the block of that name, or SIZE_MAX. */
static size_t find_block_index(const Sema *S, const char *name) {
  for (size_t i = 0; name && i < S->n_blocks; i++)
    if (strcmp(S->blocks[i]->name, name) == 0) return i;
  return SIZE_MAX;
}

static AstDecl *find_block(Sema *S, const char *name) {
  size_t i = find_block_index(S, name);
  return i == SIZE_MAX ? NULL : S->blocks[i];
}

/* ---- loading files and includes ---------------------------------------- */

static DitcStatus load_rec(Sema *S, const char *path, SrcSpan from, const SpecSource *mem,
                           AstFile **out_top);

/* Path of an included file: relative to the directory of the including file. */
static const char *include_path(Sema *S, uint32_t from_file, const char *inc) {
  if (inc[0] == '/') return inc;
  const char *base = S->d->sm->files[from_file].path;
  const char *slash = strrchr(base, '/');
  if (!slash) return inc;
  return arena_printf(S->a, "%.*s/%s", (int)(slash - base), base, inc);
}

static DitcStatus do_include(Sema *S, AstDecl *inc) {
  if (!S->allow_include) {
    diag_error(S->d, inc->name_loc, "include is not available for in-memory specs");
    return DITC_ERR_SPEC;
  }
  if (S->depth >= SEMA_MAX_INCLUDE_DEPTH) {
    diag_error(S->d, inc->name_loc, "includes nested more than %d deep",
               SEMA_MAX_INCLUDE_DEPTH);
    return DITC_ERR_LIMIT;
  }
  if (inc->name[0] == '\0') {
    diag_error(S->d, inc->name_loc, "include path is empty");
    return DITC_ERR_SPEC;
  }
  const char *path = include_path(S, inc->name_loc.file, inc->name);
  if (!path) return DITC_ERR_NOMEM;
  return load_rec(S, path, inc->name_loc, NULL, NULL);
}

static DitcStatus register_block(Sema *S, AstDecl *b) {
  AstDecl *prev = find_block(S, b->name);
  if (prev) {
    diag_error(S->d, b->name_loc, "%s '%s' is already defined", block_kind(b), b->name);
    diag_note(S->d, prev->name_loc, "previous definition is here");
    return DITC_ERR_SPEC;
  }
  if (arena_grow(S->a, (void **)&S->blocks, &S->cap_blocks, S->n_blocks + 1, sizeof(AstDecl *)))
    return DITC_ERR_NOMEM;
  S->blocks[S->n_blocks++] = b;
  return DITC_OK;
}

static DitcStatus load_rec(Sema *S, const char *path, SrcSpan from, const SpecSource *mem,
                           AstFile **out_top) {
  DitcStatus st = DITC_OK;
  uint32_t file;
  const char *canon;
  if (mem && mem->data) {
    st = srcmgr_add_buffer(S->d->sm, S->d, path, mem->data, mem->len_bytes, from, &file);
    if (st) return st;
    canon = path;
  } else {
    st = srcmgr_load_file(S->d->sm, S->d, path, from, &file);
    if (st) return st;
    char *real = realpath(path, NULL);
    canon = arena_strdup(S->a, real ? real : path);
    free(real);
    if (!canon) return DITC_ERR_NOMEM;
  }
  for (int i = 0; i < S->depth; i++) {
    if (strcmp(S->open_files[i], canon) == 0) {
      diag_error(S->d, from, "'%s' includes itself (include cycle)", path);
      return DITC_ERR_SPEC;
    }
  }
  for (size_t i = 0; i < S->n_seen; i++)
    if (strcmp(S->seen_files[i], canon) == 0) return DITC_OK; /* included once already */
  if (arena_grow(S->a, (void **)&S->seen_files, &S->cap_seen, S->n_seen + 1, sizeof(char *)))
    return DITC_ERR_NOMEM;
  S->seen_files[S->n_seen++] = canon;

  AstFile *ast = NULL;
  st = config_is_json(path) ? config_import(S->a, S->d, file, &ast) : parse_file(S->a, S->d, file, &ast);
  if (st == DITC_ERR_NOMEM || !ast) return DITC_ERR_NOMEM;
  if (st) S->syntax_errors = true;
  if (out_top) *out_top = ast;

  S->open_files[S->depth++] = canon;
  for (AstDecl *dcl = ast->decls; dcl; dcl = dcl->next) {
    DitcStatus s2 = dcl->kind == DECL_INCLUDE ? do_include(S, dcl) : register_block(S, dcl);
    if (s2 == DITC_ERR_NOMEM) {
      st = s2;
      break;
    }
    if (s2 && !st) st = s2;
  }
  S->depth--;
  return st;
}

/* ---- the family of each block --------------------------------------------- */

/* The first `family` assignment of block b, or NULL. */
static const AstAssign *own_family(const AstDecl *b) {
  for (const AstAssign *as = b->body; as; as = as->next)
    if (!strcmp(as->key, "family")) return as;
  return NULL;
}

/* The `family` assignment in force for block b, whose parent is block
 * S->blocks[parent] (SIZE_MAX: none): the first in the nearest block of its
 * chain that has one, as resolve_model reads keys; NULL where none has.
 * Silent: resolve_chain reports a broken chain. */
static const AstAssign *family_in_force(const Sema *S, const AstDecl *b, size_t parent) {
  const AstAssign *as = own_family(b);
  for (int depth = 1; !as && depth < MAX_CHAIN && parent != SIZE_MAX; depth++) {
    as = own_family(S->blocks[parent]);
    parent = S->block_parent[parent];
  }
  return as;
}

/* The family an assignment in force names: the default without one, NULL
 * when it names no known family (check_assign reports that). */
static const ModelFamily *family_named(const AstAssign *as) {
  if (!as) return model_family_default();
  return as->value.kind == VAL_STRING ? model_family_find(as->value.s) : NULL;
}

/* Whose keys each block sets (S->block_family): its own chain's family, but
 * the model's for the blocks the model inherits from, since they set the
 * model's keys. model: the model compiled, or NULL. */
static DitcStatus assign_families(Sema *S, const AstDecl *model) {
  size_t n = S->n_blocks;
  S->block_parent = arena_array(S->a, n + 1, sizeof *S->block_parent);
  S->block_family = arena_array(S->a, n + 1, sizeof *S->block_family);
  if (!S->block_parent || !S->block_family) return DITC_ERR_NOMEM;
  for (size_t i = 0; i < n; i++) S->block_parent[i] = find_block_index(S, S->blocks[i]->parent);
  for (size_t i = 0; i < n; i++)
    S->block_family[i] = family_named(family_in_force(S, S->blocks[i], S->block_parent[i]));
  if (!model) return DITC_OK;
  size_t parent = find_block_index(S, model->parent);
  const ModelFamily *fam = family_named(family_in_force(S, model, parent));
  for (size_t i = 0; i < n; i++)
    if (S->blocks[i] == model) S->block_family[i] = fam;
  for (int depth = 1; depth < MAX_CHAIN && parent != SIZE_MAX; depth++) {
    S->block_family[parent] = fam;
    parent = S->block_parent[parent];
  }
  return DITC_OK;
}

/* ---- checking assignments ---------------------------------------------- */

/* "an integer", "a string": what one element of a list is, for messages. */
static const char *value_kind_name(ValueKind k) {
  switch (k) {
  case VAL_INT: return "an integer";
  case VAL_FLOAT: return "a number";
  case VAL_BOOL: return "true or false";
  case VAL_STRING: return "a string";
  case VAL_IDENT: return "an identifier";
  case VAL_LIST: return "a list";
  case VAL_BAD: return "a bad literal";
  }
  return "a value";
}

static const char *value_kind_plural(ValueKind k) {
  switch (k) {
  case VAL_INT: return "integers";
  case VAL_FLOAT: return "numbers";
  case VAL_BOOL: return "true or false";
  case VAL_STRING: return "strings";
  case VAL_IDENT: return "identifiers";
  case VAL_LIST: return "lists";
  case VAL_BAD: return "bad literals";
  }
  return "values";
}

/* A list value's own rules, whatever its key: at most SPEC_MAX_LIST
 * elements, all of one type (an integer among numbers is a number).
 * Reports the first problem; false when there is one. */
static bool check_list(Sema *S, const SpecKey *k, const AstValue *v) {
  size_t n = v->list ? v->list->n : 0;
  if (n > SPEC_MAX_LIST) {
    diag_error(S->d, v->loc, "'%s' has %zu elements; a list holds at most %d", k->name, n, SPEC_MAX_LIST);
    return false;
  }
  for (size_t i = 0; i < n; i++)
    if (v->list->items[i].kind == VAL_BAD) return false; /* the lexer reported it */
  ValueKind first = n ? v->list->items[0].kind : VAL_BAD;
  for (size_t i = 1; i < n; i++) {
    ValueKind e = v->list->items[i].kind;
    bool numbers = (e == VAL_INT || e == VAL_FLOAT) && (first == VAL_INT || first == VAL_FLOAT);
    if (e == first || numbers) continue;
    diag_error(S->d, v->list->items[i].loc,
               "the elements of a list must have one type: element 1 of '%s' is %s, element %zu %s", k->name,
               value_kind_name(first), i + 1, value_kind_name(e));
    return false;
  }
  return true;
}

/* key_index of `family`, which names the model family (family.h) rather than a ModelConfig field */
enum { FAMILY_KEY = -2 };

/* Checks one assignment's key, against the table of family fam, and its value
 * type; marks it invalid if not usable. fam NULL: the block's family is not
 * known (its `family` is reported), so only a `family` key is checked. */
static void check_assign(Sema *S, const ModelFamily *fam, AstAssign *as) {
  if (!strcmp(as->key, "family")) {
    as->key_index = FAMILY_KEY;
    if (as->value.kind == VAL_BAD) {
      as->invalid = true;
      return;
    }
    char names[128];
    model_family_names(names, sizeof names);
    if (as->value.kind != VAL_STRING) {
      diag_error(S->d, as->value.loc, "'family' expects a string naming a model family (%s), got '%s'", names,
                 span_text(S, as->value.loc));
      as->invalid = true;
    } else if (!model_family_find(as->value.s)) {
      diag_error(S->d, as->value.loc, "unknown model family \"%s\" (known: %s)", as->value.s, names);
      as->invalid = true;
    }
    return;
  }
  if (!fam) {
    as->key_index = -1;
    as->invalid = true;
    return;
  }
  const SpecKey *keys = fam->keys;
  as->key_index = spec_key_find(keys, fam->n_keys, as->key);
  if (as->key_index < 0) {
    const char *hint = suggest(as->key, (const char *)keys + offsetof(SpecKey, name), fam->n_keys, sizeof *keys);
    if (hint)
      diag_error(S->d, as->key_loc, "unknown key '%s'; did you mean '%s'?", as->key, hint);
    else
      diag_error(S->d, as->key_loc, "unknown key '%s'", as->key);
    as->invalid = true;
    return;
  }
  const SpecKey *k = &keys[as->key_index];
  const AstValue *v = &as->value;
  if (v->kind == VAL_BAD || (v->kind == VAL_LIST && !check_list(S, k, v))) {
    as->invalid = true; /* the lexer reported it, or check_list */
    return;
  }
  size_t n_items = v->kind == VAL_LIST && v->list ? v->list->n : 0;
  ValueKind elem = n_items ? v->list->items[0].kind : VAL_BAD;
  bool ok = (k->type == KEY_INT && v->kind == VAL_INT) ||
            (k->type == KEY_FLOAT && (v->kind == VAL_INT || v->kind == VAL_FLOAT)) ||
            (k->type == KEY_BOOL && v->kind == VAL_BOOL) ||
            (k->type == KEY_STRING && v->kind == VAL_STRING) ||
            (k->type == KEY_INT_LIST && v->kind == VAL_LIST && (!n_items || elem == VAL_INT)) ||
            (k->type == KEY_STRING_LIST && v->kind == VAL_LIST && (!n_items || elem == VAL_STRING));
  if (ok) return;
  as->invalid = true;
  const char *got = span_text(S, v->loc);
  if (v->kind == VAL_LIST && (k->type == KEY_INT_LIST || k->type == KEY_STRING_LIST))
    diag_error(S->d, v->list->items[0].loc, "'%s' expects %s, but its elements are %s", k->name,
               spec_key_type_name(k->type), value_kind_plural(elem));
  else if (v->kind == VAL_LIST)
    diag_error(S->d, v->loc, "'%s' expects %s, got the list %s", k->name, spec_key_type_name(k->type), got);
  else if (v->kind == VAL_STRING)
    diag_error(S->d, v->loc, "'%s' expects %s, got the string %s", k->name,
               spec_key_type_name(k->type), got);
  else if (v->kind == VAL_IDENT)
    diag_error(S->d, v->loc, "'%s' expects %s, got the identifier '%s'", k->name,
               spec_key_type_name(k->type), got);
  else
    diag_error(S->d, v->loc, "'%s' expects %s, got '%s'", k->name, spec_key_type_name(k->type),
               got);
}

static void check_block(Sema *S, const ModelFamily *fam, AstDecl *b) {
  for (AstAssign *as = b->body; as; as = as->next) {
    check_assign(S, fam, as);
    if (as->key_index == -1) continue; /* unknown: reported */
    for (AstAssign *prev = b->body; prev != as; prev = prev->next) {
      if (prev->key_index == as->key_index) {
        diag_error(S->d, as->key_loc, "duplicate key '%s' in %s '%s'", as->key, block_kind(b),
                   b->name);
        diag_note(S->d, prev->key_loc, "first set here");
        as->invalid = true;
        break;
      }
    }
  }
}

/* ---- resolving the model ------------------------------------------------ */

/* The chain model, parent, grandparent, ... into chain[]; returns its length or -1. */
static int resolve_chain(Sema *S, AstDecl *model, AstDecl **chain, int max) {
  int n = 0;
  for (AstDecl *b = model; b;) {
    for (int i = 0; i < n; i++) {
      if (chain[i] == b) {
        diag_error(S->d, chain[n - 1]->parent_loc, "inheritance cycle: '%s' inherits from itself",
                   b->name);
        return -1;
      }
    }
    if (n == max) {
      diag_error(S->d, b->name_loc, "inheritance chain is deeper than %d", max);
      return -1;
    }
    chain[n++] = b;
    if (!b->parent) break;
    AstDecl *p = find_block(S, b->parent);
    if (!p) {
      const char **names = arena_array(S->a, S->n_blocks + 1, sizeof(char *));
      if (!names) return -1;
      for (size_t i = 0; i < S->n_blocks; i++) names[i] = S->blocks[i]->name;
      const char *hint = suggest(b->parent, names, S->n_blocks, sizeof *names);
      if (hint)
        diag_error(S->d, b->parent_loc, "unknown base '%s'; did you mean '%s'?", b->parent, hint);
      else
        diag_error(S->d, b->parent_loc, "unknown base '%s'", b->parent);
      return -1;
    }
    b = p;
  }
  return n;
}

/* Writes a value (v: NULL for the key's default) into k's field of c. */
static void set_field(ModelConfig *c, const SpecKey *k, const AstValue *v) {
  char *p = (char *)c + k->offset;
  double f = !v ? k->def : v->kind == VAL_FLOAT ? v->f : (double)v->i;
  int64_t i = v ? v->i : (int64_t)k->def;
  bool b = v ? v->b : k->def != 0;
  const char *str = v ? v->s : k->def_str;
  size_t n = v && v->list ? v->list->n : 0;
  switch (k->type) {
  case KEY_INT: memcpy(p, &i, sizeof i); break;
  case KEY_FLOAT: memcpy(p, &f, sizeof f); break;
  case KEY_BOOL: memcpy(p, &b, sizeof b); break;
  case KEY_STRING: memcpy(p, &str, sizeof str); break;
  case KEY_INT_LIST: {
    SpecIntList l = {.n = (int64_t)n};
    for (size_t j = 0; j < n && j < SPEC_MAX_LIST; j++) l.v[j] = v->list->items[j].i;
    memcpy(p, &l, sizeof l);
    break;
  }
  case KEY_STRING_LIST: {
    SpecStrList l = {.n = (int64_t)n};
    for (size_t j = 0; j < n && j < SPEC_MAX_LIST; j++) l.v[j] = v->list->items[j].s;
    memcpy(p, &l, sizeof l);
    break;
  }
  }
}

/* Range check of one number, the value of k or its element elem (from 1;
 * 0: a scalar); reports and returns false when out of range. */
static bool check_number(Sema *S, const SpecKey *k, const AstValue *v, size_t elem) {
  double x = k->type == KEY_FLOAT && v->kind == VAL_FLOAT ? v->f : (double)v->i;
  const char *txt = span_text(S, v->loc);
  const char *what = elem ? arena_printf(S->a, "element %zu of '%s'", elem, k->name)
                          : arena_printf(S->a, "'%s'", k->name);
  if (!what) what = k->name;
  bool low = k->min_exclusive ? !(x > k->min) : !(x >= k->min);
  bool high = k->max_exclusive ? !(x < k->max) : !(x <= k->max);
  bool is_int = k->type == KEY_INT || k->type == KEY_INT_LIST;
  if (low) {
    if ((k->min == 0 && k->min_exclusive) || (k->min == 1 && is_int && x <= 0))
      diag_error(S->d, v->loc, "%s must be positive, got %s", what, txt);
    else
      diag_error(S->d, v->loc, "%s must be %s %g, got %s", what,
                 k->min_exclusive ? "greater than" : "at least", k->min, txt);
    return false;
  }
  if (high) {
    diag_error(S->d, v->loc, "%s is too large: %s (%s %g)", what, txt,
               k->max_exclusive ? "must be less than" : "at most", k->max);
    return false;
  }
  return true;
}

/* Range check of one effective value; reports and returns false when out of
 * range: a number, each element of a list of integers, a list's length. */
static bool check_range(Sema *S, const SpecKey *k, const AstValue *v) {
  switch (k->type) {
  case KEY_BOOL: case KEY_STRING: return true;
  case KEY_INT: case KEY_FLOAT: return check_number(S, k, v, 0);
  case KEY_INT_LIST: case KEY_STRING_LIST: break;
  }
  size_t n = v->list ? v->list->n : 0;
  if ((int64_t)n < k->min_len) {
    if (n == 0)
      diag_error(S->d, v->loc, "'%s' must not be an empty list", k->name);
    else
      diag_error(S->d, v->loc, "'%s' needs at least %lld elements, got %zu", k->name, (long long)k->min_len, n);
    return false;
  }
  bool ok = true;
  for (size_t i = 0; k->type == KEY_INT_LIST && i < n; i++)
    if (!check_number(S, k, &v->list->items[i], i + 1)) ok = false;
  return ok;
}

/* The command line's overrides as assignments of a buffer "<command line>"
 * (so that a message shows the option), checked against family fam; each
 * becomes the effective assignment of its key in eff. */
static DitcStatus apply_overrides(Sema *S, const SpecOverrides *over, const ModelFamily *fam, const AstDecl *model,
                                  AstAssign **eff) {
  for (size_t i = 0; over && i < over->n; i++) {
    const SpecOverride *o = &over->at[i];
    const char *text = arena_printf(S->a, "%s %s", o->option, o->value);
    AstAssign *as = arena_alloc(S->a, sizeof *as);
    if (!text || !as) return DITC_ERR_NOMEM;
    uint32_t file;
    DitcStatus st = srcmgr_add_buffer(S->d->sm, S->d, "<command line>", text, strlen(text), span_none(), &file);
    if (st) return st;
    memset(as, 0, sizeof *as);
    uint32_t begin = (uint32_t)strlen(o->option) + 1, end = (uint32_t)strlen(text);
    as->key = o->key;
    as->key_loc = (SrcSpan){file, 0, begin - 1};
    as->value = (AstValue){.kind = o->is_string ? VAL_STRING : VAL_INT, .s = o->value, .loc = {file, begin, end}};
    if (!o->is_string) {
      char *stop;
      as->value.i = strtoll(o->value, &stop, 10);
      if (*stop || !*o->value) as->value.kind = VAL_IDENT; /* reported as "expects an integer" */
    }
    as->key_index = spec_key_find(fam->keys, fam->n_keys, o->key);
    if (as->key_index < 0) {
      diag_error(S->d, as->key_loc, "%s does not apply to model '%s', a model of the family \"%s\"", o->option,
                 model->name, fam->name);
      return DITC_ERR_SPEC;
    }
    check_assign(S, fam, as);
    eff[as->key_index] = as;
  }
  return DITC_OK;
}

static DitcStatus resolve_model(Sema *S, AstDecl *model, Spec *sp, const SpecOverrides *over) {
  AstDecl *chain[MAX_CHAIN];
  int n = resolve_chain(S, model, chain, MAX_CHAIN);
  if (n < 0) return DITC_ERR_SPEC;

  const AstAssign *family = family_in_force(S, model, find_block_index(S, model->parent));
  const ModelFamily *fam = family_named(family);
  memset(sp, 0, sizeof *sp);
  sp->cfg.name = model->name;
  sp->model_loc = model->name_loc;
  sp->family = fam ? fam : model_family_default();
  sp->family_loc = family ? family->value.loc : model->name_loc;
  sp->cfg.family = sp->family;
  if (!fam) return DITC_ERR_SPEC; /* reported where it is named */
  const SpecKey *keys = fam->keys;
  size_t nk = fam->n_keys;

  /* Effective assignment of each key: the one nearest to the model wins. */
  AstAssign **eff = arena_array(S->a, nk + 1, sizeof *eff);
  bool *set_here = arena_array(S->a, nk + 1, sizeof *set_here);
  bool *set = arena_array(S->a, nk + 1, sizeof *set);
  bool *have = arena_array(S->a, nk + 1, sizeof *have);
  const char **missing = arena_array(S->a, nk + 1, sizeof *missing);
  sp->key_loc = arena_array(S->a, nk + 1, sizeof *sp->key_loc);
  if (!eff || !set_here || !set || !have || !missing || !sp->key_loc) return DITC_ERR_NOMEM;
  for (int i = n - 1; i >= 0; i--) {
    memset(set_here, 0, nk * sizeof *set_here);
    for (AstAssign *as = chain[i]->body; as; as = as->next) {
      if (as->key_index < 0 || set_here[as->key_index]) continue; /* unknown or duplicate */
      set_here[as->key_index] = true;
      eff[as->key_index] = as;
    }
  }

  DitcStatus st_over = apply_overrides(S, over, fam, model, eff);
  if (st_over) return st_over;

  bool ok = true;
  size_t n_missing = 0;
  for (size_t k = 0; k < nk; k++) {
    sp->key_loc[k] = model->name_loc;
    AstAssign *as = eff[k];
    set[k] = as != NULL;
    if (as) {
      sp->key_loc[k] = as->value.loc;
      if (as->invalid) {
        ok = false;
        continue;
      }
      if (!check_range(S, &keys[k], &as->value)) {
        ok = false;
        continue;
      }
      set_field(&sp->cfg, &keys[k], &as->value);
      have[k] = true;
    } else if (keys[k].required) {
      ok = false;
      missing[n_missing++] = keys[k].name;
    } else if (!keys[k].def_derived) {
      set_field(&sp->cfg, &keys[k], NULL);
      have[k] = true;
    }
  }
  if (n_missing && !S->syntax_errors) {
    char list[512];
    size_t len = 0;
    for (size_t i = 0; i < n_missing && len < sizeof list; i++)
      len += (size_t)snprintf(list + len, sizeof list - len, "%s'%s'",
                              i == 0 ? "" : (i == n_missing - 1 ? " and " : ", "), missing[i]);
    diag_error(S->d, model->name_loc, "model '%s' does not set the required key%s %s",
               model->name, n_missing > 1 ? "s" : "", list);
  }
  /* the family's derived defaults and its checks of the whole model */
  if (!S->syntax_errors && !fam->check(S->d, sp, set, have)) ok = false;
  if (!ok || S->syntax_errors) return DITC_ERR_SPEC;
  fam->derive(&sp->cfg);
  return DITC_OK;
}

/* ---- entry point --------------------------------------------------------- */

DitcStatus spec_load(Arena *a, Diag *d, const SpecSource *src, Spec **out) {
  return spec_load_with(a, d, src, NULL, out);
}

DitcStatus spec_load_with(Arena *a, Diag *d, const SpecSource *src, const SpecOverrides *over, Spec **out) {
  DitcStatus st;
  Sema S = {.a = a, .d = d, .allow_include = src->allow_include};
  const char *open_files[SEMA_MAX_INCLUDE_DEPTH + 1];
  S.open_files = open_files;
  *out = NULL;

  AstFile *top = NULL;
  st = load_rec(&S, src->path, span_none(), src, &top);
  if (st == DITC_ERR_NOMEM || !top) return st ? st : DITC_ERR_IO;

  /* The file given on the command line defines the model that is compiled:
   * its first model (a second is reported below). Its family decides the keys
   * of the blocks it inherits from; every block's keys are checked against
   * its family's table. */
  AstDecl *model = NULL;
  for (AstDecl *dcl = top->decls; dcl && !model; dcl = dcl->next)
    if (dcl->kind == DECL_MODEL) model = dcl;
  DitcStatus st_fam = assign_families(&S, model);
  if (st_fam) return st_fam;
  for (size_t i = 0; i < S.n_blocks; i++) check_block(&S, S.block_family[i], S.blocks[i]);

  int n_models = 0;
  for (AstDecl *dcl = top->decls; dcl; dcl = dcl->next) {
    if (dcl->kind != DECL_MODEL) continue;
    if (++n_models > 1) {
      diag_error(d, dcl->name_loc,
                 "a spec file defines one model, but this is the second ('%s')", dcl->name);
      diag_note(d, model->name_loc, "first model is here; use 'base' for templates");
    }
  }
  if (!model) {
    if (!S.syntax_errors && d->n_errors == 0)
      diag_file_error(d, d->sm->files[top->file].path,
                      "defines no model; expected a block like: model \"DiT-XL/2\" { ... }");
    return DITC_ERR_SPEC;
  }
  Spec *sp = arena_alloc(a, sizeof *sp);
  if (!sp) return DITC_ERR_NOMEM;
  DitcStatus st2 = resolve_model(&S, model, sp, over);
  if (st2) return st2;
  if (st || n_models > 1 || d->n_errors) return st ? st : DITC_ERR_SPEC;
  *out = sp;
  return DITC_OK;
}
