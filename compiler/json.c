/* json.c: the strict JSON reader (json.h). A recursive-descent parser over
 * the text of one source file: it stops at the first error, which it reports
 * at the offending bytes. Nothing here knows what a config means
 * (config_import.c maps diffusers' keys). */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct JsonParser {
  Arena *a;
  Diag *d;
  uint32_t file;
  const char *text;
  uint32_t len, pos;
  DitcStatus st; /* the first error; later calls do nothing */
} JsonParser;

static SrcSpan span(const JsonParser *P, uint32_t begin, uint32_t end) { return (SrcSpan){P->file, begin, end}; }

static bool fail_at(JsonParser *P, uint32_t begin, uint32_t end, const char *msg) {
  if (!P->st) {
    if (end <= begin) end = begin + 1 <= P->len ? begin + 1 : begin;
    diag_error(P->d, span(P, begin, end), "%s", msg);
    P->st = DITC_ERR_SPEC;
  }
  return false;
}

static bool oom(JsonParser *P) {
  if (!P->st) P->st = DITC_ERR_NOMEM;
  return false;
}

static void skip_ws(JsonParser *P) {
  while (P->pos < P->len) {
    char c = P->text[P->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    P->pos++;
  }
}

/* "expected X, got Y", Y what stands at pos. */
static bool expected(JsonParser *P, const char *what) {
  char msg[192], here[32];
  unsigned char c = P->pos < P->len ? (unsigned char)P->text[P->pos] : 0;
  if (P->pos >= P->len) snprintf(here, sizeof here, "the end of the file");
  else if (c >= 0x20 && c < 0x7f) snprintf(here, sizeof here, "'%c'", c);
  else snprintf(here, sizeof here, "byte 0x%02X", c);
  snprintf(msg, sizeof msg, "expected %s, got %s", what, here);
  return fail_at(P, P->pos, P->pos + 1, msg);
}

static int hex4(const char *s) {
  int v = 0;
  for (int i = 0; i < 4; i++) {
    char c = s[i];
    int h = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (h < 0) return -1;
    v = v * 16 + h;
  }
  return v;
}

static size_t put_utf8(char *out, uint32_t cp) {
  if (cp < 0x80) { out[0] = (char)cp; return 1; }
  if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* "...": pos at the opening quote. The source is valid UTF-8 already
 * (SourceMgr), so only escapes and control characters are checked here. */
static bool parse_string(JsonParser *P, const char **out, SrcSpan *loc) {
  uint32_t begin = P->pos++;
  char *buf = arena_alloc(P->a, (size_t)(P->len - P->pos) + 1); /* escapes only shrink */
  if (!buf) return oom(P);
  size_t n = 0;
  for (;;) {
    if (P->pos >= P->len) return fail_at(P, begin, P->pos, "unterminated string");
    unsigned char c = (unsigned char)P->text[P->pos];
    if (c == '"') break;
    if (c < 0x20) {
      return fail_at(P, P->pos, P->pos + 1,
                     c == '\n' ? "unterminated string (a newline in a string must be written \\n)"
                               : "a control character in a string must be escaped");
    }
    if (c != '\\') {
      buf[n++] = (char)c;
      P->pos++;
      continue;
    }
    uint32_t esc = P->pos;
    if (P->pos + 1 >= P->len) return fail_at(P, begin, P->pos, "unterminated string");
    char e = P->text[P->pos + 1];
    P->pos += 2;
    switch (e) {
    case '"': buf[n++] = '"'; break;
    case '\\': buf[n++] = '\\'; break;
    case '/': buf[n++] = '/'; break;
    case 'b': buf[n++] = '\b'; break;
    case 'f': buf[n++] = '\f'; break;
    case 'n': buf[n++] = '\n'; break;
    case 'r': buf[n++] = '\r'; break;
    case 't': buf[n++] = '\t'; break;
    case 'u': {
      int cp = P->pos + 4 <= P->len ? hex4(P->text + P->pos) : -1;
      if (cp < 0) return fail_at(P, esc, P->pos, "\\u must be followed by four hex digits");
      P->pos += 4;
      uint32_t code = (uint32_t)cp;
      if (code >= 0xD800 && code <= 0xDBFF) { /* a surrogate pair */
        int lo = P->pos + 6 <= P->len && P->text[P->pos] == '\\' && P->text[P->pos + 1] == 'u'
                     ? hex4(P->text + P->pos + 2) : -1;
        if (lo < 0xDC00 || lo > 0xDFFF) return fail_at(P, esc, P->pos, "a lone UTF-16 surrogate in \\u escapes");
        P->pos += 6;
        code = 0x10000 + ((code - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
      } else if (code >= 0xDC00 && code <= 0xDFFF) {
        return fail_at(P, esc, P->pos, "a lone UTF-16 surrogate in \\u escapes");
      }
      if (code == 0) return fail_at(P, esc, P->pos, "\\u0000 (a NUL character) is not allowed in a string");
      n += put_utf8(buf + n, code);
      break;
    }
    default: return fail_at(P, esc, P->pos, "unknown escape in string (JSON has \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)");
    }
  }
  P->pos++; /* the closing quote */
  buf[n] = '\0';
  *out = buf;
  *loc = span(P, begin, P->pos);
  return true;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool parse_number(JsonParser *P, JsonValue *v) {
  uint32_t begin = P->pos, p = P->pos;
  const char *t = P->text;
  bool is_int = true;
#define DIGIT(k) ((k) < P->len && t[k] >= '0' && t[k] <= '9')
  if (p < P->len && t[p] == '-') p++;
  if (!DIGIT(p)) return fail_at(P, begin, p + 1, "malformed number: expected a digit");
  if (t[p] == '0' && DIGIT(p + 1)) return fail_at(P, begin, p + 2, "malformed number: a leading zero");
  while (DIGIT(p)) p++;
  if (p < P->len && t[p] == '.') {
    is_int = false;
    if (!DIGIT(p + 1)) return fail_at(P, begin, p + 1, "malformed number: expected a digit after '.'");
    p++;
    while (DIGIT(p)) p++;
  }
  if (p < P->len && (t[p] == 'e' || t[p] == 'E')) {
    is_int = false;
    p++;
    if (p < P->len && (t[p] == '+' || t[p] == '-')) p++;
    if (!DIGIT(p)) return fail_at(P, begin, p, "malformed number: expected a digit in the exponent");
    while (DIGIT(p)) p++;
  }
#undef DIGIT
  char buf[64];
  uint32_t len = p - begin;
  if (len >= sizeof buf) return fail_at(P, begin, p, "number is too long (at most 63 characters)");
  memcpy(buf, t + begin, len);
  buf[len] = '\0';
  v->kind = JSON_NUMBER;
  v->loc = span(P, begin, p);
  errno = 0;
  v->num = strtod(buf, NULL);
  if (!isfinite(v->num)) return fail_at(P, begin, p, "number is out of range");
  if (is_int) {
    errno = 0;
    long long x = strtoll(buf, NULL, 10);
    v->is_int = errno != ERANGE;
    v->i = (int64_t)x;
  }
  P->pos = p;
  return true;
}

static bool parse_value(JsonParser *P, JsonValue *v, int depth);

/* Appends to a growing array of n items of size elem (cap in *cap). */
static bool grow(JsonParser *P, void **items, size_t *cap, size_t n, size_t elem, uint32_t at) {
  if (n >= JSON_MAX_ITEMS) {
    char msg[96];
    snprintf(msg, sizeof msg, "more than %d members or elements in one object or array", JSON_MAX_ITEMS);
    return fail_at(P, at, at + 1, msg);
  }
  if (arena_grow(P->a, items, cap, n + 1, elem)) return oom(P);
  return true;
}

static bool parse_array(JsonParser *P, JsonValue *v, int depth) {
  uint32_t begin = P->pos++;
  size_t cap = 0;
  v->kind = JSON_ARRAY;
  skip_ws(P);
  if (P->pos < P->len && P->text[P->pos] == ']') {
    P->pos++;
    v->loc = span(P, begin, P->pos);
    return true;
  }
  for (;;) {
    skip_ws(P);
    if (!grow(P, (void **)&v->items, &cap, v->n, sizeof *v->items, P->pos)) return false;
    memset(&v->items[v->n], 0, sizeof v->items[0]);
    if (!parse_value(P, &v->items[v->n], depth + 1)) return false;
    v->n++;
    skip_ws(P);
    if (P->pos < P->len && P->text[P->pos] == ',') {
      P->pos++;
      skip_ws(P);
      if (P->pos < P->len && P->text[P->pos] == ']') return fail_at(P, P->pos, P->pos + 1, "a trailing ',' before ']'");
      continue;
    }
    if (P->pos < P->len && P->text[P->pos] == ']') break;
    return expected(P, "',' or ']' in an array");
  }
  P->pos++;
  v->loc = span(P, begin, P->pos);
  return true;
}

static bool parse_object(JsonParser *P, JsonValue *v, int depth) {
  uint32_t begin = P->pos++;
  size_t cap_v = 0, cap_k = 0, cap_l = 0;
  v->kind = JSON_OBJECT;
  skip_ws(P);
  if (P->pos < P->len && P->text[P->pos] == '}') {
    P->pos++;
    v->loc = span(P, begin, P->pos);
    return true;
  }
  for (;;) {
    skip_ws(P);
    if (P->pos >= P->len || P->text[P->pos] != '"') return expected(P, "a member name (a string) in an object");
    const char *key;
    SrcSpan kloc;
    if (!parse_string(P, &key, &kloc)) return false;
    for (size_t i = 0; i < v->n; i++) {
      if (strcmp(v->keys[i], key) != 0) continue;
      char msg[160];
      snprintf(msg, sizeof msg, "duplicate member \"%.100s\" in an object", key);
      fail_at(P, kloc.begin, kloc.end, msg);
      diag_note(P->d, v->key_locs[i], "first written here");
      return false;
    }
    skip_ws(P);
    if (P->pos >= P->len || P->text[P->pos] != ':') return expected(P, "':' after a member name");
    P->pos++;
    skip_ws(P);
    if (!grow(P, (void **)&v->items, &cap_v, v->n, sizeof *v->items, kloc.begin) ||
        !grow(P, (void **)&v->keys, &cap_k, v->n, sizeof *v->keys, kloc.begin) ||
        !grow(P, (void **)&v->key_locs, &cap_l, v->n, sizeof *v->key_locs, kloc.begin))
      return false;
    memset(&v->items[v->n], 0, sizeof v->items[0]);
    v->keys[v->n] = key;
    v->key_locs[v->n] = kloc;
    if (!parse_value(P, &v->items[v->n], depth + 1)) return false;
    v->n++;
    skip_ws(P);
    if (P->pos < P->len && P->text[P->pos] == ',') {
      P->pos++;
      skip_ws(P);
      if (P->pos < P->len && P->text[P->pos] == '}') return fail_at(P, P->pos, P->pos + 1, "a trailing ',' before '}'");
      continue;
    }
    if (P->pos < P->len && P->text[P->pos] == '}') break;
    return expected(P, "',' or '}' in an object");
  }
  P->pos++;
  v->loc = span(P, begin, P->pos);
  return true;
}

/* A literal word: true, false or null. */
static bool parse_word(JsonParser *P, JsonValue *v, const char *word, JsonKind kind, bool b) {
  size_t n = strlen(word);
  if (P->len - P->pos < n || memcmp(P->text + P->pos, word, n) != 0) return expected(P, "a JSON value");
  v->kind = kind;
  v->b = b;
  v->loc = span(P, P->pos, P->pos + (uint32_t)n);
  P->pos += (uint32_t)n;
  return true;
}

static bool parse_value(JsonParser *P, JsonValue *v, int depth) {
  if (depth > JSON_MAX_DEPTH) {
    char msg[64];
    snprintf(msg, sizeof msg, "nested more than %d deep", JSON_MAX_DEPTH);
    return fail_at(P, P->pos, P->pos + 1, msg);
  }
  skip_ws(P);
  if (P->pos >= P->len) return expected(P, "a JSON value");
  char c = P->text[P->pos];
  switch (c) {
  case '{': return parse_object(P, v, depth);
  case '[': return parse_array(P, v, depth);
  case '"': v->kind = JSON_STRING; return parse_string(P, &v->s, &v->loc);
  case 't': return parse_word(P, v, "true", JSON_BOOL, true);
  case 'f': return parse_word(P, v, "false", JSON_BOOL, false);
  case 'n': return parse_word(P, v, "null", JSON_NULL, false);
  default:
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(P, v);
    return expected(P, "a JSON value (an object, array, string, number, true, false or null)");
  }
}

DitcStatus json_parse(Arena *a, Diag *d, uint32_t file, JsonValue **out) {
  const SourceFile *f = &d->sm->files[file];
  JsonParser P = {a, d, file, f->text, f->len_bytes, 0, DITC_OK};
  *out = NULL;
  JsonValue *v = arena_alloc(a, sizeof *v);
  if (!v) return DITC_ERR_NOMEM;
  memset(v, 0, sizeof *v);
  if (P.len >= 3 && !memcmp(P.text, "\xEF\xBB\xBF", 3)) P.pos = 3; /* a UTF-8 byte-order mark */
  if (parse_value(&P, v, 1)) {
    skip_ws(&P);
    if (P.pos < P.len) expected(&P, "the end of the file after the JSON value");
  }
  if (P.st) return P.st;
  *out = v;
  return DITC_OK;
}

const JsonValue *json_member(const JsonValue *o, const char *key) {
  for (size_t i = 0; o && o->kind == JSON_OBJECT && i < o->n; i++)
    if (!strcmp(o->keys[i], key)) return &o->items[i];
  return NULL;
}

const char *json_kind_name(JsonKind k) {
  switch (k) {
  case JSON_NULL: return "null";
  case JSON_BOOL: return "true or false";
  case JSON_NUMBER: return "a number";
  case JSON_STRING: return "a string";
  case JSON_ARRAY: return "an array";
  case JSON_OBJECT: return "an object";
  }
  return "a value";
}
