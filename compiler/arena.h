/* arena.h: bump allocator that owns every AST, IR and string object of one
 * compilation. There is no per-object free: destroy the arena once. */
#ifndef DIT_COMPILER_ARENA_H
#define DIT_COMPILER_ARENA_H

#include <stddef.h>

typedef struct ArenaChunk ArenaChunk;
typedef struct Arena {
  ArenaChunk *head;
  size_t used_bytes; /* total bytes handed out, for statistics */
} Arena;

Arena *arena_new(void);
void arena_free(Arena *a); /* accepts NULL */

/* Zeroed, 16-byte aligned memory; NULL when out of memory. */
void *arena_alloc(Arena *a, size_t n_bytes);
/* Zeroed array of n elements of elem_bytes each; NULL on overflow or OOM. */
void *arena_array(Arena *a, size_t n, size_t elem_bytes);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_strdup(Arena *a, const char *s);
char *arena_printf(Arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Grows *items (an arena array of *cap elements) so it holds at least need.
 * Old storage is abandoned to the arena. Returns 0 on success, -1 on OOM. */
int arena_grow(Arena *a, void **items, size_t *cap, size_t need, size_t elem_bytes);

#endif
