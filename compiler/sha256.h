/* sha256.h: SHA-256 (FIPS 180-4), incremental: the content hash of ditc's
 * NVRTC cache keys and entries (nvrtc_cache.c). */
#ifndef DIT_COMPILER_SHA256_H
#define DIT_COMPILER_SHA256_H

#include <stddef.h>
#include <stdint.h>

enum { SHA256_BYTES = 32 };

typedef struct Sha256 {
  uint32_t h[8];
  uint64_t total;          /* bytes hashed so far */
  unsigned char buf[64];   /* a partial block */
  size_t used;
} Sha256;

void sha256_init(Sha256 *s);
void sha256_update(Sha256 *s, const void *data, size_t n);
void sha256_final(Sha256 *s, unsigned char out[SHA256_BYTES]);
/* The digest of one buffer. */
void sha256(const void *data, size_t n, unsigned char out[SHA256_BYTES]);

#endif
