/* wt_arena.h: the bump allocator of the checkpoint readers. Everything a
 * Checkpoint owns (zip directory, pickle values, tensor names and records)
 * lives in one WtArena that is freed once by ckpt_close. The arena has a byte
 * cap, so hostile input cannot make it grow without bound. */
#ifndef DIT_RUNTIME_WEIGHTS_WT_ARENA_H
#define DIT_RUNTIME_WEIGHTS_WT_ARENA_H

#include <stddef.h>

typedef struct WtBlock WtBlock;

typedef struct WtArena {
  WtBlock *head;       /* newest block first */
  size_t used_bytes;   /* sum of block sizes allocated so far */
  size_t cap_bytes;    /* wt_arena_alloc fails once used_bytes would pass this */
} WtArena;

void wt_arena_init(WtArena *a, size_t cap_bytes);

/* n zeroed bytes aligned for any type; NULL when the cap is reached or malloc fails. */
void *wt_arena_alloc(WtArena *a, size_t n);

/* count * size zeroed bytes, with the multiplication overflow-checked. */
void *wt_arena_array(WtArena *a, size_t count, size_t size);

/* Grows *items (an array of elem_size elements with capacity *cap) to hold at
 * least need elements, doubling; the old block is abandoned in the arena.
 * Returns 0 on success, -1 when the arena is exhausted. */
int wt_arena_grow(WtArena *a, void **items, size_t *cap, size_t need, size_t elem_size);

/* A NUL-terminated copy of s[0..n). */
char *wt_arena_strndup(WtArena *a, const char *s, size_t n);

void wt_arena_free(WtArena *a);

#endif
