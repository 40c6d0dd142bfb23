/* digest.c: the 64-bit content digest (digest.h). */
#include "digest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K1 0x9E3779B185EBCA87ull
#define K2 0xC2B2AE3D27D4EB4Full
#define K3 0x165667B19E3779F9ull

static uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static uint64_t mix(uint64_t acc, uint64_t w) { return rotl(acc + w * K2, 31) * K1; }

static uint64_t load64(const unsigned char *p) {
  uint64_t w;
  memcpy(&w, p, 8);
  return w;
}

static uint64_t avalanche(uint64_t h) {
  h ^= h >> 33;
  h *= K2;
  h ^= h >> 29;
  h *= K3;
  h ^= h >> 32;
  return h;
}

uint64_t digest64(const void *data, size_t n, uint64_t seed) {
  const unsigned char *p = data;
  uint64_t lane[4] = {seed + K1 + K2, seed + K2, seed, seed - K1};
  size_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int k = 0; k < 4; k++) lane[k] = mix(lane[k], load64(p + i + 8 * k));
  uint64_t h = rotl(lane[0], 1) + rotl(lane[1], 7) + rotl(lane[2], 12) + rotl(lane[3], 18) + (uint64_t)n;
  for (; i + 8 <= n; i += 8) h = rotl(h ^ mix(0, load64(p + i)), 27) * K1 + K3;
  for (; i < n; i++) h = rotl(h ^ (p[i] * K3), 11) * K1;
  return avalanche(h);
}

DitStatus digest64_file(const char *path, uint64_t *out, DitErr *err) {
  DitStatus st = DIT_OK;
  enum { CHUNK = 1 << 22 }; /* digests of chunks, chained: a file of any size in fixed memory */
  unsigned char *buf = malloc(CHUNK);
  FILE *f = fopen(path, "rb");
  uint64_t h = 0;
  if (!buf || !f) {
    st = !buf ? dit_err(err, DIT_ERR_NOMEM, "out of memory")
              : dit_err(err, DIT_ERR_IO, "%s: %s", path, strerror(errno));
    goto done;
  }
  for (size_t got; (got = fread(buf, 1, CHUNK, f)) > 0;) h = digest64(buf, got, h);
  if (ferror(f)) st = dit_err(err, DIT_ERR_IO, "%s: read error", path);
  *out = h;
done:
  if (f) fclose(f);
  free(buf);
  return st;
}
