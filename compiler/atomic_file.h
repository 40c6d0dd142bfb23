/* atomic_file.h: writing an output file so that readers only ever see the
 * old file or the complete new one: temp file in the same directory, fsync,
 * rename. A failed write leaves the old file untouched and no temp behind. */
#ifndef DIT_COMPILER_ATOMIC_FILE_H
#define DIT_COMPILER_ATOMIC_FILE_H

#include <stdio.h>

#include "diag.h"

/* Fills the file; returns 0 on success. */
typedef int (*AtomicWriteFn)(FILE *f, void *ctx);

DitcStatus atomic_write(Diag *d, const char *path, AtomicWriteFn fn, void *ctx);

#endif
