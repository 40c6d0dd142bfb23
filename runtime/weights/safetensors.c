/* safetensors.c: safetensors files. Layout: an 8-byte little-endian header
 * length N, N bytes of JSON (an object mapping tensor names to
 * {"dtype", "shape", "data_offsets": [begin, end)}, plus an optional
 * "__metadata__" string map), then the data buffer that the offsets index.
 * The JSON is parsed by a small strict parser of its own (objects, arrays,
 * strings with escapes, numbers, true/false/null): anything malformed is an
 * error that names the byte offset in the header. */
#include "ckpt_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum {
  ST_MAX_HEADER_BYTES = 100 * 1024 * 1024, /* the limit of the reference implementation */
  JSON_MAX_DEPTH = 64
};

typedef struct Json {
  const unsigned char *s;  /* the header text */
  size_t len, pos;
  WtArena *arena;
  DitErr *err;
} Json;

static DitStatus js_fail(Json *js, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static DitStatus js_fail(Json *js, const char *fmt, ...) {
  char what[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return dit_err(js->err, DIT_ERR_FORMAT, "safetensors header: %s at byte %zu of the JSON", what,
                 js->pos);
}

static void js_ws(Json *js) {
  while (js->pos < js->len) {
    unsigned char c = js->s[js->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    js->pos++;
  }
}

/* Skips whitespace; returns the next byte or -1 at the end. */
static int js_peek(Json *js) {
  js_ws(js);
  return js->pos < js->len ? js->s[js->pos] : -1;
}

static DitStatus js_expect(Json *js, char c) {
  if (js_peek(js) != (unsigned char)c) return js_fail(js, "expected '%c'", c);
  js->pos++;
  return DIT_OK;
}

static int hex_val(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static DitStatus js_hex4(Json *js, unsigned *cp) {
  if (js->len - js->pos < 4) return js_fail(js, "truncated \\u escape");
  *cp = 0;
  for (int i = 0; i < 4; i++) {
    int h = hex_val(js->s[js->pos + (size_t)i]);
    if (h < 0) return js_fail(js, "bad \\u escape");
    *cp = *cp * 16 + (unsigned)h;
  }
  js->pos += 4;
  return DIT_OK;
}

static size_t put_utf8(unsigned char *o, unsigned cp) {
  if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
  if (cp < 0x800) {
    o[0] = (unsigned char)(0xC0 | (cp >> 6));
    o[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (unsigned char)(0xE0 | (cp >> 12));
    o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (unsigned char)(0xF0 | (cp >> 18));
  o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Parses a string; when out is not NULL, stores the decoded, NUL-terminated
 * text in the arena (a \u0000 inside is rejected then). */
static DitStatus js_string(Json *js, const char **out, size_t *out_len) {
  DitStatus st = js_expect(js, '"');
  if (st) return st;
  /* Decoded text is never longer than the escaped text. */
  size_t start = js->pos, end = start;
  while (end < js->len && js->s[end] != '"') end += js->s[end] == '\\' ? 2 : 1;
  if (end >= js->len) return js_fail(js, "unterminated string");
  unsigned char *buf = NULL, *o = NULL;
  if (out) {
    buf = o = wt_arena_alloc(js->arena, end - start + 1);
    if (!buf) return dit_err(js->err, DIT_ERR_NOMEM, "safetensors header: out of memory");
  }
  unsigned char tmp[4];
  while (js->s[js->pos] != '"') {
    unsigned char c = js->s[js->pos];
    if (c < 0x20) return js_fail(js, "control character in a string");
    js->pos++;
    if (c != '\\') {
      if (o) *o++ = c;
      continue;
    }
    c = js->s[js->pos++]; /* in bounds: the scan above stopped at a closing quote after it */
    unsigned cp;
    switch (c) {
    case '"': case '\\': case '/': cp = c; break;
    case 'b': cp = '\b'; break;
    case 'f': cp = '\f'; break;
    case 'n': cp = '\n'; break;
    case 'r': cp = '\r'; break;
    case 't': cp = '\t'; break;
    case 'u':
      if ((st = js_hex4(js, &cp))) return st;
      if (cp >= 0xD800 && cp <= 0xDBFF) { /* a surrogate pair */
        unsigned lo;
        if (js->len - js->pos < 2 || js->s[js->pos] != '\\' || js->s[js->pos + 1] != 'u')
          return js_fail(js, "unpaired surrogate in \\u escape");
        js->pos += 2;
        if ((st = js_hex4(js, &lo))) return st;
        if (lo < 0xDC00 || lo > 0xDFFF) return js_fail(js, "unpaired surrogate in \\u escape");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        return js_fail(js, "unpaired surrogate in \\u escape");
      }
      if (cp == 0 && out) return js_fail(js, "NUL character in a name");
      break;
    default: return js_fail(js, "bad escape '\\%c'", c >= 0x20 && c < 0x7F ? c : '?');
    }
    size_t n = put_utf8(tmp, cp);
    if (o) {
      memcpy(o, tmp, n);
      o += n;
    }
    /* \uXXXX is 6 bytes and encodes to at most 3; a pair is 12 and encodes to 4. */
    if (js->pos > end) return js_fail(js, "unterminated string");
  }
  js->pos++;
  if (out) {
    *o = '\0';
    *out = (const char *)buf;
    if (out_len) *out_len = (size_t)(o - buf);
  }
  return DIT_OK;
}

/* Parses a JSON number; *is_int says whether it was a plain integer that fits int64. */
static DitStatus js_number(Json *js, int64_t *val, int *is_int) {
  size_t p = js->pos;
  int neg = 0, overflow = 0;
  uint64_t v = 0;
  if (p < js->len && js->s[p] == '-') { neg = 1; p++; }
  if (p >= js->len || js->s[p] < '0' || js->s[p] > '9') return js_fail(js, "bad number");
  if (js->s[p] == '0' && p + 1 < js->len && js->s[p + 1] >= '0' && js->s[p + 1] <= '9')
    return js_fail(js, "number with a leading zero");
  while (p < js->len && js->s[p] >= '0' && js->s[p] <= '9') {
    unsigned d = (unsigned)(js->s[p++] - '0');
    if (v > (UINT64_MAX - d) / 10) overflow = 1;
    else v = v * 10 + d;
  }
  *is_int = 1;
  if (p < js->len && js->s[p] == '.') {
    *is_int = 0;
    if (++p >= js->len || js->s[p] < '0' || js->s[p] > '9') return js_fail(js, "bad number");
    while (p < js->len && js->s[p] >= '0' && js->s[p] <= '9') p++;
  }
  if (p < js->len && (js->s[p] == 'e' || js->s[p] == 'E')) {
    *is_int = 0;
    p++;
    if (p < js->len && (js->s[p] == '+' || js->s[p] == '-')) p++;
    if (p >= js->len || js->s[p] < '0' || js->s[p] > '9') return js_fail(js, "bad number");
    while (p < js->len && js->s[p] >= '0' && js->s[p] <= '9') p++;
  }
  js->pos = p;
  if (overflow || v > (uint64_t)INT64_MAX) *is_int = 0;
  *val = *is_int ? (neg ? -(int64_t)v : (int64_t)v) : 0;
  return DIT_OK;
}

static DitStatus js_int(Json *js, const char *what, int64_t *val) {
  int is_int;
  int c = js_peek(js);
  if (c != '-' && (c < '0' || c > '9')) return js_fail(js, "%s is not a number", what);
  DitStatus st = js_number(js, val, &is_int);
  if (st) return st;
  if (!is_int || *val < 0) return js_fail(js, "%s is not a non-negative integer", what);
  return DIT_OK;
}

static DitStatus js_literal(Json *js, const char *word) {
  size_t n = strlen(word);
  if (js->len - js->pos < n || memcmp(js->s + js->pos, word, n) != 0)
    return js_fail(js, "unexpected character");
  js->pos += n;
  return DIT_OK;
}

/* Skips any JSON value. */
static DitStatus js_skip(Json *js, int depth) {
  if (depth > JSON_MAX_DEPTH) return js_fail(js, "nesting deeper than %d", JSON_MAX_DEPTH);
  int c = js_peek(js);
  DitStatus st;
  if (c == '"') return js_string(js, NULL, NULL);
  if (c == 't') return js_literal(js, "true");
  if (c == 'f') return js_literal(js, "false");
  if (c == 'n') return js_literal(js, "null");
  if (c == '-' || (c >= '0' && c <= '9')) {
    int64_t v;
    int is_int;
    return js_number(js, &v, &is_int);
  }
  if (c != '{' && c != '[') return js_fail(js, "expected a value");
  int obj = c == '{';
  js->pos++;
  if (js_peek(js) == (obj ? '}' : ']')) {
    js->pos++;
    return DIT_OK;
  }
  for (;;) {
    if (obj && ((st = js_string(js, NULL, NULL)) || (st = js_expect(js, ':')))) return st;
    if ((st = js_skip(js, depth + 1))) return st;
    c = js_peek(js);
    js->pos++;
    if (c == (obj ? '}' : ']')) return DIT_OK;
    if (c != ',') {
      js->pos--;
      return js_fail(js, "expected ',' or '%c'", obj ? '}' : ']');
    }
  }
}

/* Parses "[a, b, ...]" of non-negative integers into v[0..*n), at most max. */
static DitStatus js_int_array(Json *js, const char *what, int64_t *v, int max, int *n) {
  DitStatus st = js_expect(js, '[');
  if (st) return st;
  *n = 0;
  if (js_peek(js) == ']') {
    js->pos++;
    return DIT_OK;
  }
  for (;;) {
    int64_t x;
    if ((st = js_int(js, what, &x))) return st;
    if (*n >= max)
      return dit_err(js->err, DIT_ERR_UNSUPPORTED, "safetensors header: %s has more than %d "
                     "entries", what, max);
    v[(*n)++] = x;
    int c = js_peek(js);
    js->pos++;
    if (c == ']') return DIT_OK;
    if (c != ',') {
      js->pos--;
      return js_fail(js, "expected ',' or ']'");
    }
  }
}

typedef struct StDType {
  const char *name;
  CkptDType dtype;
  size_t bytes;
} StDType;

static const StDType ST_DTYPES[] = {
  {"F32", CK_F32, 4},       {"F16", CK_F16, 2},         {"BF16", CK_BF16, 2},
  {"F64", CK_F64, 8},       {"I64", CK_I64, 8},         {"I32", CK_I32, 4},
  {"I16", CK_OTHER, 2},     {"I8", CK_I8, 1},           {"U8", CK_U8, 1},
  {"BOOL", CK_BOOL, 1},     {"U16", CK_OTHER, 2},       {"U32", CK_OTHER, 4},
  {"U64", CK_OTHER, 8},     {"F8_E4M3", CK_OTHER, 1},   {"F8_E5M2", CK_OTHER, 1},
  {"C64", CK_OTHER, 8},
};

/* One tensor entry: {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}; other keys ignored. */
static DitStatus parse_tensor(Json *js, Checkpoint *ck, const char *name, const unsigned char *data,
                              uint64_t data_len) {
  DitStatus st = js_expect(js, '{');
  if (st) return st;
  const char *dtype = NULL;
  int64_t shape[CKPT_MAX_RANK], offs[2];
  int rank = -1, n_offs = -1;
  size_t at = js->pos;
  if (js_peek(js) != '}') {
    for (;;) {
      const char *field;
      if ((st = js_string(js, &field, NULL)) || (st = js_expect(js, ':'))) return st;
      if (strcmp(field, "dtype") == 0) {
        if (dtype) return js_fail(js, "'dtype' given twice for '%s'", name);
        if (js_peek(js) != '"') return js_fail(js, "dtype of '%s' is not a string", name);
        if ((st = js_string(js, &dtype, NULL))) return st;
      } else if (strcmp(field, "shape") == 0) {
        if (rank >= 0) return js_fail(js, "'shape' given twice for '%s'", name);
        if ((st = js_int_array(js, "a shape", shape, CKPT_MAX_RANK, &rank))) {
          dit_err_context(js->err, "tensor '%s'", name);
          return st;
        }
      } else if (strcmp(field, "data_offsets") == 0) {
        if (n_offs >= 0) return js_fail(js, "'data_offsets' given twice for '%s'", name);
        if ((st = js_int_array(js, "data_offsets", offs, 2, &n_offs))) return st;
      } else if ((st = js_skip(js, 1))) {
        return st;
      }
      int c = js_peek(js);
      js->pos++;
      if (c == '}') break;
      if (c != ',') {
        js->pos--;
        return js_fail(js, "expected ',' or '}'");
      }
    }
  } else {
    js->pos++;
  }
  if (!dtype || rank < 0 || n_offs < 0) {
    js->pos = at;
    return js_fail(js, "tensor '%s' lacks %s", name,
                   !dtype ? "'dtype'" : rank < 0 ? "'shape'" : "'data_offsets'");
  }
  if (n_offs != 2) return js_fail(js, "data_offsets of '%s' is not [begin, end]", name);
  const StDType *dt = NULL;
  for (size_t i = 0; i < sizeof ST_DTYPES / sizeof *ST_DTYPES; i++)
    if (strcmp(ST_DTYPES[i].name, dtype) == 0) dt = &ST_DTYPES[i];
  if (!dt)
    return dit_err(js->err, DIT_ERR_UNSUPPORTED, "safetensors: tensor '%s' has unknown dtype "
                   "'%.40s'", name, dtype);
  TensorRec rec;
  memset(&rec, 0, sizeof rec);
  rec.pub.name = name;
  rec.pub.dtype = dt->dtype;
  rec.pub.rank = rank;
  rec.dtype_name = dt->name;
  rec.elem_bytes = dt->bytes;
  memcpy(rec.pub.shape, shape, (size_t)rank * sizeof *shape);
  int64_t numel = ckpt_shape_numel(rank, shape);
  uint64_t bytes;
  if (numel < 0 || __builtin_mul_overflow((uint64_t)numel, (uint64_t)dt->bytes, &bytes))
    return dit_err(js->err, DIT_ERR_FORMAT, "safetensors: tensor '%s' has a shape whose size "
                   "overflows", name);
  rec.pub.numel = numel;
  int64_t stride = 1;
  for (int d = rank - 1; d >= 0; d--) {
    rec.pub.strides[d] = stride;
    /* Zero-sized dims count as 1, as in torch. Only an empty tensor can overflow here, and
     * its strides are never used. */
    if (__builtin_mul_overflow(stride, shape[d] ? shape[d] : 1, &stride)) stride = 0;
  }
  uint64_t b = (uint64_t)offs[0], e = (uint64_t)offs[1];
  if (b > e || e > data_len)
    return dit_err(js->err, DIT_ERR_FORMAT, "safetensors: tensor '%s' has data_offsets [%llu, "
                   "%llu) outside the data buffer of %llu bytes", name, (unsigned long long)b,
                   (unsigned long long)e, (unsigned long long)data_len);
  if (e - b != bytes) {
    char sh[128];
    ckpt_format_shape(sh, sizeof sh, rank, shape);
    return dit_err(js->err, DIT_ERR_FORMAT, "safetensors: tensor '%s' (%s %s) needs %llu bytes "
                   "but its data_offsets [%llu, %llu) span %llu", name, dt->name, sh,
                   (unsigned long long)bytes, (unsigned long long)b, (unsigned long long)e,
                   (unsigned long long)(e - b));
  }
  rec.pub.data = data + b;
  return ckpt_add_tensor(ck, &rec, js->err);
}

DitStatus ckpt_load_safetensors(Checkpoint *ck, DitErr *err) {
  const unsigned char *b = ck->bytes;
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = (n << 8) | b[i];
  if (n > ST_MAX_HEADER_BYTES)
    return dit_err(err, DIT_ERR_FORMAT, "safetensors: header length %llu is larger than the "
                   "limit of %d bytes", (unsigned long long)n, ST_MAX_HEADER_BYTES);
  if (n > ck->len - 8)
    return dit_err(err, DIT_ERR_FORMAT, "safetensors: truncated: the header needs %llu bytes, "
                   "the file has %zu after the length", (unsigned long long)n, ck->len - 8);
  Json js = {b + 8, (size_t)n, 0, &ck->arena, err};
  const unsigned char *data = b + 8 + n;
  uint64_t data_len = ck->len - 8 - n;
  snprintf(ck->describe, sizeof ck->describe, "safetensors");
  DitStatus st = js_expect(&js, '{');
  if (st) return st;
  int seen_meta = 0;
  if (js_peek(&js) == '}') {
    js.pos++;
  } else {
    for (;;) {
      const char *name;
      size_t name_len;
      if ((st = js_string(&js, &name, &name_len)) || (st = js_expect(&js, ':'))) return st;
      if (strcmp(name, "__metadata__") == 0) {
        if (seen_meta) return js_fail(&js, "'__metadata__' given twice");
        seen_meta = 1;
        if (js_peek(&js) != '{') return js_fail(&js, "'__metadata__' is not an object");
        if ((st = js_skip(&js, 1))) return st;
      } else if ((st = parse_tensor(&js, ck, name, data, data_len))) {
        return st;
      }
      int c = js_peek(&js);
      js.pos++;
      if (c == '}') break;
      if (c != ',') {
        js.pos--;
        return js_fail(&js, "expected ',' or '}'");
      }
    }
  }
  /* The writer pads the header with spaces to an 8-byte boundary. */
  if (js_peek(&js) != -1) return js_fail(&js, "trailing characters after the header object");
  return DIT_OK;
}
