/* hashset.c: open addressing with linear probing (see hashset.h). */
#include "hashset.h"

uint64_t hash_bytes(uint64_t h, const void *data, size_t n) {
  const unsigned char *p = data;
  if (h == 0) h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

int hashset_init(HashSet *h, Arena *a, size_t n) {
  size_t cap = 16;
  while (cap < 2 * n + 1) cap *= 2;
  h->keys = arena_array(a, cap, sizeof(uint64_t));
  h->ids = arena_array(a, cap, sizeof(int32_t));
  h->cap = cap;
  if (!h->keys || !h->ids) return -1;
  for (size_t i = 0; i < cap; i++) h->ids[i] = -1;
  return 0;
}

void hashset_put(HashSet *h, uint64_t key, int32_t id) {
  size_t i = (size_t)key & (h->cap - 1);
  while (h->ids[i] >= 0) i = (i + 1) & (h->cap - 1);
  h->keys[i] = key;
  h->ids[i] = id;
}

int32_t hashset_next(const HashSet *h, uint64_t key, size_t *slot) {
  size_t i = *slot ? *slot : ((size_t)key & (h->cap - 1)) + 1;
  /* slots are numbered from 1 so that 0 means "start" */
  for (size_t probes = 0; probes < h->cap; probes++) {
    size_t k = (i - 1) & (h->cap - 1);
    if (h->ids[k] < 0) return -1;
    i = ((k + 1) & (h->cap - 1)) + 1;
    if (h->keys[k] == key) {
      *slot = i;
      return h->ids[k];
    }
  }
  return -1;
}
