/* arena.c: chunked bump allocator (see arena.h). */
#include "arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ArenaChunk {
  ArenaChunk *next;
  size_t cap_bytes;
  size_t used_bytes;
  _Alignas(16) unsigned char data[];
};

enum { ARENA_CHUNK_BYTES = 64 * 1024, ARENA_ALIGN = 16 };

Arena *arena_new(void) { return calloc(1, sizeof(Arena)); }

void arena_free(Arena *a) {
  if (!a) return;
  ArenaChunk *c = a->head;
  while (c) {
    ArenaChunk *next = c->next;
    free(c);
    c = next;
  }
  free(a);
}

void *arena_alloc(Arena *a, size_t n_bytes) {
  if (n_bytes == 0) n_bytes = 1;
  if (n_bytes > SIZE_MAX / 2) return NULL;
  size_t need = (n_bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
  ArenaChunk *c = a->head;
  if (!c || c->cap_bytes - c->used_bytes < need) {
    size_t cap = need > ARENA_CHUNK_BYTES ? need : ARENA_CHUNK_BYTES;
    c = malloc(sizeof(ArenaChunk) + cap);
    if (!c) return NULL;
    c->cap_bytes = cap;
    c->used_bytes = 0;
    c->next = a->head;
    a->head = c;
  }
  void *p = c->data + c->used_bytes;
  c->used_bytes += need;
  a->used_bytes += need;
  memset(p, 0, n_bytes);
  return p;
}

void *arena_array(Arena *a, size_t n, size_t elem_bytes) {
  if (elem_bytes && n > SIZE_MAX / elem_bytes) return NULL;
  return arena_alloc(a, n * elem_bytes);
}

char *arena_strndup(Arena *a, const char *s, size_t n) {
  char *p = arena_alloc(a, n + 1);
  if (!p) return NULL;
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

char *arena_strdup(Arena *a, const char *s) { return arena_strndup(a, s, strlen(s)); }

char *arena_printf(Arena *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return NULL;
  char *p = arena_alloc(a, (size_t)n + 1);
  if (!p) return NULL;
  va_start(ap, fmt);
  vsnprintf(p, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return p;
}

int arena_grow(Arena *a, void **items, size_t *cap, size_t need, size_t elem_bytes) {
  if (need <= *cap) return 0;
  size_t ncap = *cap ? *cap : 8;
  while (ncap < need) {
    if (ncap > SIZE_MAX / 2) return -1;
    ncap *= 2;
  }
  void *p = arena_array(a, ncap, elem_bytes);
  if (!p) return -1;
  if (*items && *cap) memcpy(p, *items, *cap * elem_bytes);
  *items = p;
  *cap = ncap;
  return 0;
}
