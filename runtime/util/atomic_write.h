/* atomic_write.h: output files that readers see whole or not at all: a temp
 * file in the same directory, fsync, rename. On failure the old file stays
 * and no temp file is left behind. */
#ifndef DIT_RUNTIME_ATOMIC_WRITE_H
#define DIT_RUNTIME_ATOMIC_WRITE_H

#include <stdio.h>

#include "err.h"

/* Writes the body; returns 0 on success. A body that fails for a reason of
 * its own records it in the DitErr the caller passed (its status non-zero). */
typedef int (*WriteBodyFn)(FILE *f, void *ctx);

DitStatus atomic_write_file(const char *path, WriteBodyFn fn, void *ctx, DitErr *err);

#endif
