/* config_import.c: diffusers config.json -> the AST of one model block
 * (config_import.h). The keys of AutoencoderKL are the vae family's own; the
 * DiT's are computed from DiTTransformer2DModel's. Type and range checks are
 * sema's: a member becomes an assignment located at its bytes. */
#include "config_import.h"

#include <string.h>

#include "json.h"

typedef struct Import {
  Arena *a;
  Diag *d;
  AstDecl *model;
  AstAssign **tail;
  bool ok;
} Import;

bool config_is_json(const char *path) {
  size_t n = strlen(path);
  return n >= 5 && !strcmp(path + n - 5, ".json");
}

static bool add(Import *I, const char *key, SrcSpan key_loc, AstValue v) {
  AstAssign *as = arena_alloc(I->a, sizeof *as);
  if (!as) return false;
  memset(as, 0, sizeof *as);
  as->key = key;
  as->key_loc = key_loc;
  as->value = v;
  *I->tail = as;
  I->tail = &as->next;
  return true;
}

static AstValue int_value(int64_t i, SrcSpan loc) { return (AstValue){.kind = VAL_INT, .i = i, .f = (double)i, .loc = loc}; }

/* A JSON scalar as a spec value; false (reported) for what a spec cannot hold. */
static bool scalar_value(Import *I, const char *key, const JsonValue *j, AstValue *v) {
  *v = (AstValue){.loc = j->loc};
  switch (j->kind) {
  case JSON_BOOL: v->kind = VAL_BOOL; v->b = j->b; return true;
  case JSON_STRING: v->kind = VAL_STRING; v->s = j->s; return true;
  case JSON_NUMBER:
    if (j->is_int) *v = int_value(j->i, j->loc);
    else { v->kind = VAL_FLOAT; v->f = j->num; }
    return true;
  case JSON_NULL: case JSON_ARRAY: case JSON_OBJECT: break;
  }
  diag_error(I->d, j->loc, "'%s': %s is not a value ditc reads here", key, json_kind_name(j->kind));
  return false;
}

/* A member's value: a scalar, or an array of scalars (a list). */
static bool member_value(Import *I, const char *key, const JsonValue *j, AstValue *v) {
  if (j->kind == JSON_OBJECT) {
    diag_error(I->d, j->loc, "'%s' is an object; ditc expects a number, string, boolean or array here", key);
    return false;
  }
  if (j->kind != JSON_ARRAY) return scalar_value(I, key, j, v);
  AstList *l = arena_alloc(I->a, sizeof *l);
  AstValue *items = j->n ? arena_array(I->a, j->n, sizeof *items) : NULL;
  if (!l || (j->n && !items)) return false;
  for (size_t i = 0; i < j->n; i++) {
    if (j->items[i].kind == JSON_ARRAY || j->items[i].kind == JSON_OBJECT || j->items[i].kind == JSON_NULL) {
      diag_error(I->d, j->items[i].loc, "'%s': element %zu is %s; a list holds numbers, strings or booleans", key,
                 i + 1, json_kind_name(j->items[i].kind));
      return false;
    }
    if (!scalar_value(I, key, &j->items[i], &items[i])) return false;
  }
  *l = (AstList){items, j->n, j->n};
  *v = (AstValue){.kind = VAL_LIST, .list = l, .loc = j->loc};
  return true;
}

/* AutoencoderKL: every member but the bookkeeping maps onto the vae key of
 * its name (an unknown one is sema's "unknown key"). */
static bool import_vae(Import *I, const JsonValue *o) {
  /* members of newer VAEs (SD3, Flux) that the SD VAE leaves null */
  static const char *const NULL_ONLY[] = {"latents_mean", "latents_std", "shift_factor"};
  for (size_t i = 0; i < o->n; i++) {
    const char *key = o->keys[i];
    const JsonValue *j = &o->items[i];
    if (key[0] == '_' || j->kind == JSON_NULL) continue;
    bool null_only = false;
    for (size_t k = 0; k < sizeof NULL_ONLY / sizeof NULL_ONLY[0]; k++) null_only |= !strcmp(key, NULL_ONLY[k]);
    if (null_only) {
      diag_error(I->d, j->loc, "'%s' is not supported: ditc compiles the Stable Diffusion VAE, whose %s is null", key, key);
      I->ok = false;
      continue;
    }
    AstValue v;
    if (!member_value(I, key, j, &v)) {
      I->ok = false;
      continue;
    }
    if (!add(I, key, o->key_locs[i], v)) return false;
  }
  return true;
}

/* DiTTransformer2DModel (dit-reference.md 2.5) -> the official DiT's keys:
 * hidden_size = num_attention_heads * attention_head_dim, depth = num_layers,
 * image_size = 8 * sample_size (sample_size is the latent side), learn_sigma
 * when out_channels = 2 * in_channels, num_classes = num_embeds_ada_norm;
 * mlp_ratio 4 and class_dropout 0.1 as the official model's. ditc computes
 * the official model: norm_eps and the other members are not read. */
static bool import_dit(Import *I, const JsonValue *o) {
  static const char *const NEED[] = {"num_attention_heads", "attention_head_dim", "in_channels", "num_layers",
                                     "sample_size", "patch_size", "num_embeds_ada_norm"};
  const JsonValue *m[7];
  for (int k = 0; k < 7; k++) {
    m[k] = json_member(o, NEED[k]);
    if (!m[k] || m[k]->kind != JSON_NUMBER || !m[k]->is_int || m[k]->i < 1 || m[k]->i > 1000000) {
      diag_error(I->d, m[k] ? m[k]->loc : o->loc, "'%s' must be a positive integer%s", NEED[k],
                 m[k] ? "" : ": the config has none");
      I->ok = false;
    }
  }
  const JsonValue *outc = json_member(o, "out_channels"), *norm = json_member(o, "norm_type");
  if (norm && (norm->kind != JSON_STRING || strcmp(norm->s, "ada_norm_zero"))) {
    diag_error(I->d, norm->loc, "'norm_type' must be \"ada_norm_zero\" (DiT's adaLN-Zero)");
    I->ok = false;
  }
  if (!I->ok) return true;
  int64_t in = m[2]->i;
  bool sigma = false;
  if (outc && outc->kind != JSON_NULL) {
    if (outc->kind != JSON_NUMBER || !outc->is_int || (outc->i != in && outc->i != 2 * in)) {
      diag_error(I->d, outc->loc, "'out_channels' must be in_channels (%lld) or twice it (learned sigma)", (long long)in);
      I->ok = false;
      return true;
    }
    sigma = outc->i == 2 * in;
  }
  SrcSpan at = o->loc;
  AstValue f = {.kind = VAL_FLOAT, .loc = at};
  AstValue b = {.kind = VAL_BOOL, .b = sigma, .loc = outc ? outc->loc : at};
  AstValue fam = {.kind = VAL_STRING, .s = "dit", .loc = at};
  int64_t heads = m[0]->i, hd = m[1]->i;
  bool ok = add(I, "family", at, fam) &&
            add(I, "image_size", m[4]->loc, int_value(m[4]->i * 8, m[4]->loc)) &&
            add(I, "latent_scale", at, int_value(8, at)) && add(I, "in_channels", m[2]->loc, int_value(in, m[2]->loc)) &&
            add(I, "patch_size", m[5]->loc, int_value(m[5]->i, m[5]->loc)) &&
            add(I, "hidden_size", m[0]->loc, int_value(heads * hd, m[0]->loc)) &&
            add(I, "depth", m[3]->loc, int_value(m[3]->i, m[3]->loc)) &&
            add(I, "num_heads", m[0]->loc, int_value(heads, m[0]->loc)) &&
            add(I, "num_classes", m[6]->loc, int_value(m[6]->i, m[6]->loc));
  f.f = 4.0;
  ok = ok && add(I, "mlp_ratio", at, f);
  f.f = 0.1;
  ok = ok && add(I, "class_dropout", at, f) && add(I, "learn_sigma", b.loc, b);
  return ok;
}

/* The model's name: the last part of _name_or_path, else the folder of the
 * config, else its class. */
static const char *model_name(Arena *a, const JsonValue *o, const char *path, const char *cls) {
  const JsonValue *n = json_member(o, "_name_or_path");
  if (n && n->kind == JSON_STRING && n->s[0]) {
    size_t len = strlen(n->s);
    while (len > 1 && n->s[len - 1] == '/') len--;
    size_t b = len;
    while (b > 0 && n->s[b - 1] != '/') b--;
    if (len > b) return arena_strndup(a, n->s + b, len - b);
  }
  const char *slash = strrchr(path, '/');
  if (slash && slash > path) {
    const char *b = slash;
    while (b > path && b[-1] != '/') b--;
    if (slash > b && !(slash - b == 1 && b[0] == '.')) return arena_strndup(a, b, (size_t)(slash - b));
  }
  return cls;
}

DitcStatus config_import(Arena *a, Diag *d, uint32_t file, AstFile **out) {
  *out = NULL;
  AstFile *f = arena_alloc(a, sizeof *f);
  AstDecl *m = arena_alloc(a, sizeof *m);
  if (!f || !m) return DITC_ERR_NOMEM;
  memset(f, 0, sizeof *f);
  memset(m, 0, sizeof *m);
  f->file = file;
  *out = f;
  JsonValue *root = NULL;
  DitcStatus st = json_parse(a, d, file, &root);
  if (st == DITC_ERR_SPEC) f->n_syntax_errors++;
  if (st) return st;
  if (root->kind != JSON_OBJECT) {
    diag_error(d, root->loc, "a config.json holds one object, not %s", json_kind_name(root->kind));
    f->n_syntax_errors++;
    return DITC_ERR_SPEC;
  }
  const JsonValue *cls = json_member(root, "_class_name");
  if (!cls || cls->kind != JSON_STRING) {
    diag_error(d, cls ? cls->loc : root->loc, "a diffusers config.json names its class in \"_class_name\" (a string): "
               "ditc reads AutoencoderKL and DiTTransformer2DModel");
    f->n_syntax_errors++;
    return DITC_ERR_SPEC;
  }
  Import I = {a, d, m, &m->body, true};
  bool vae = !strcmp(cls->s, "AutoencoderKL");
  bool dit = !strcmp(cls->s, "DiTTransformer2DModel") || !strcmp(cls->s, "Transformer2DModel");
  if (!vae && !dit) {
    diag_error(d, cls->loc, "class \"%s\" is not one ditc compiles (AutoencoderKL, DiTTransformer2DModel)", cls->s);
    f->n_syntax_errors++;
    return DITC_ERR_SPEC;
  }
  m->kind = DECL_MODEL;
  m->loc = m->name_loc = cls->loc;
  m->name = model_name(a, root, d->sm->files[file].path, cls->s);
  if (!m->name) return DITC_ERR_NOMEM;
  f->decls = m;
  if (vae) {
    AstValue fam = {.kind = VAL_STRING, .s = "vae", .loc = cls->loc};
    if (!add(&I, "family", cls->loc, fam) || !import_vae(&I, root)) return DITC_ERR_NOMEM;
  } else if (!import_dit(&I, root)) {
    return DITC_ERR_NOMEM;
  }
  if (!I.ok) f->n_syntax_errors++; /* reported: sema skips the whole-model checks */
  return I.ok ? DITC_OK : DITC_ERR_SPEC;
}
