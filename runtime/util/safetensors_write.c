/* safetensors_write.c: see safetensors_write.h. The header lists tensors in
 * the caller's order; the data follows in the same order, each tensor's
 * bytes contiguous. The header is padded with spaces to a multiple of 8. */
#include "safetensors_write.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_write.h"

typedef struct Buf {
  char *p;
  size_t n, cap;
  int oom;
} Buf;

static void put(Buf *b, const char *s, size_t k) {
  if (b->oom) return;
  if (b->n + k + 1 > b->cap) {
    size_t cap = (b->n + k + 1) * 2;
    char *q = realloc(b->p, cap);
    if (!q) {
      b->oom = 1;
      return;
    }
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, k);
  b->n += k;
  b->p[b->n] = '\0';
}

static void puts_(Buf *b, const char *s) { put(b, s, strlen(s)); }

/* a JSON string: names are plain state-dict keys, but escape anyway */
static void put_json(Buf *b, const char *s) {
  puts_(b, "\"");
  for (; *s; s++) {
    char esc[8];
    if (*s == '"' || *s == '\\') {
      esc[0] = '\\';
      esc[1] = *s;
      put(b, esc, 2);
    } else if ((unsigned char)*s < 0x20) {
      snprintf(esc, sizeof esc, "\\u%04x", (unsigned)(unsigned char)*s);
      puts_(b, esc);
    } else {
      put(b, s, 1);
    }
  }
  puts_(b, "\"");
}

typedef struct Ctx {
  const Buf *header;
  const StTensor *t;
  int64_t n;
} Ctx;

static int write_body(FILE *f, void *vctx) {
  const Ctx *c = vctx;
  uint64_t len = c->header->n;
  unsigned char le[8];
  for (int i = 0; i < 8; i++) le[i] = (unsigned char)(len >> (8 * i));
  if (fwrite(le, 1, 8, f) != 8 || fwrite(c->header->p, 1, len, f) != len) return -1;
  for (int64_t i = 0; i < c->n; i++)
    if (c->t[i].bytes && fwrite(c->t[i].data, 1, c->t[i].bytes, f) != c->t[i].bytes) return -1;
  return 0;
}

DitStatus st_write(const char *path, const StTensor *t, int64_t n, const char *const *meta_kv,
                   int n_meta, DitErr *err) {
  Buf b = {0};
  DitStatus st;
  char num[64];
  uint64_t off = 0;
  puts_(&b, "{");
  if (n_meta > 0) {
    puts_(&b, "\"__metadata__\":{");
    for (int i = 0; i < n_meta; i++) {
      if (i) puts_(&b, ",");
      put_json(&b, meta_kv[2 * i]);
      puts_(&b, ":");
      put_json(&b, meta_kv[2 * i + 1]);
    }
    puts_(&b, "}");
  }
  for (int64_t i = 0; i < n; i++) {
    if (i || n_meta > 0) puts_(&b, ",");
    put_json(&b, t[i].name);
    puts_(&b, ":{\"dtype\":");
    put_json(&b, t[i].dtype);
    puts_(&b, ",\"shape\":[");
    for (int k = 0; k < t[i].rank; k++) {
      snprintf(num, sizeof num, "%s%lld", k ? "," : "", (long long)t[i].shape[k]);
      puts_(&b, num);
    }
    snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
             (unsigned long long)(off + t[i].bytes));
    puts_(&b, num);
    off += t[i].bytes;
  }
  puts_(&b, "}");
  while (!b.oom && b.n % 8) puts_(&b, " ");
  if (b.oom) {
    st = dit_err(err, DIT_ERR_NOMEM, "%s: out of memory", path);
    goto done;
  }
  Ctx c = {&b, t, n};
  st = atomic_write_file(path, write_body, &c, err);
done:
  free(b.p);
  return st;
}
