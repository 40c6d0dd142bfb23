/* hashset.h: a small open-addressing table of int32 ids keyed by a 64-bit
 * hash, for the passes and the verifier that would otherwise compare every
 * node with every other. The caller compares candidates itself: lookups
 * yield every id stored under a hash. Memory comes from the arena. */
#ifndef DIT_COMPILER_HASHSET_H
#define DIT_COMPILER_HASHSET_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"

typedef struct HashSet {
  uint64_t *keys;
  int32_t *ids; /* -1 = empty */
  size_t cap;   /* a power of two */
} HashSet;

/* Room for n entries at load <= 1/2. Returns 0, or -1 when out of memory. */
int hashset_init(HashSet *h, Arena *a, size_t n);
void hashset_put(HashSet *h, uint64_t key, int32_t id);
/* Iterates the ids stored under key: *slot starts at 0; returns -1 when done. */
int32_t hashset_next(const HashSet *h, uint64_t key, size_t *slot);

uint64_t hash_bytes(uint64_t h, const void *data, size_t n); /* FNV-1a, h = 0 to start */

#endif
