/* digest.h: a 64-bit content digest (not cryptographic) that tells whether
 * two runs used the same bytes: the plan, the weights, the labels of a
 * resumable sample set. Four independent multiply-rotate lanes over 64-bit
 * words, then an avalanche; several GB/s, so hashing DiT-XL/2's 2.7 GB of
 * weights costs about a second. */
#ifndef DIT_RUNTIME_DIGEST_H
#define DIT_RUNTIME_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

uint64_t digest64(const void *data, size_t n, uint64_t seed);
/* The digest of a whole file's bytes. */
DitStatus digest64_file(const char *path, uint64_t *out, DitErr *err);

#endif
