/* wt_arena.c: the checkpoint readers' bump allocator (see wt_arena.h). */
#include "wt_arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { WT_BLOCK_BYTES = 64 * 1024 };

struct WtBlock {
  WtBlock *next;
  size_t size, used;
  max_align_t data[]; /* size bytes */
};

void wt_arena_init(WtArena *a, size_t cap_bytes) {
  a->head = NULL;
  a->used_bytes = 0;
  a->cap_bytes = cap_bytes;
}

void *wt_arena_alloc(WtArena *a, size_t n) {
  const size_t align = sizeof(max_align_t);
  if (n == 0) n = 1;
  if (n > SIZE_MAX - align) return NULL;
  n = (n + align - 1) / align * align;
  WtBlock *b = a->head;
  if (!b || b->size - b->used < n) {
    size_t size = n > WT_BLOCK_BYTES ? n : WT_BLOCK_BYTES;
    if (size > a->cap_bytes || a->used_bytes > a->cap_bytes - size) return NULL;
    b = malloc(sizeof *b + size);
    if (!b) return NULL;
    b->size = size;
    b->used = 0;
    b->next = a->head;
    a->head = b;
    a->used_bytes += size;
  }
  void *p = (unsigned char *)b->data + b->used;
  b->used += n;
  memset(p, 0, n);
  return p;
}

void *wt_arena_array(WtArena *a, size_t count, size_t size) {
  if (size != 0 && count > SIZE_MAX / size) return NULL;
  return wt_arena_alloc(a, count * size);
}

int wt_arena_grow(WtArena *a, void **items, size_t *cap, size_t need, size_t elem_size) {
  if (need <= *cap) return 0;
  size_t ncap = *cap ? *cap : 4;
  while (ncap < need) {
    if (ncap > SIZE_MAX / 2) return -1;
    ncap *= 2;
  }
  void *p = wt_arena_array(a, ncap, elem_size);
  if (!p) return -1;
  if (*items && *cap) memcpy(p, *items, *cap * elem_size);
  *items = p;
  *cap = ncap;
  return 0;
}

char *wt_arena_strndup(WtArena *a, const char *s, size_t n) {
  if (n == SIZE_MAX) return NULL;
  char *p = wt_arena_alloc(a, n + 1);
  if (!p) return NULL;
  if (n) memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

void wt_arena_free(WtArena *a) {
  WtBlock *b = a->head;
  while (b) {
    WtBlock *next = b->next;
    free(b);
    b = next;
  }
  a->head = NULL;
  a->used_bytes = 0;
}
