/* atomic_file.h: writing ditc's output files by the runtime's policy
 * (runtime/util/atomic_write.h): readers only ever see the old file or the
 * complete new one, links are followed, devices and FIFOs written through,
 * and a failed write leaves the old file untouched and no temp behind. */
#ifndef DIT_COMPILER_ATOMIC_FILE_H
#define DIT_COMPILER_ATOMIC_FILE_H

#include <stdio.h>

#include "diag.h"

/* Fills the file; returns 0 on success. */
typedef int (*AtomicWriteFn)(FILE *f, void *ctx);

DitcStatus atomic_write(Diag *d, const char *path, AtomicWriteFn fn, void *ctx);

/* The same, reporting nothing: on failure why (cap bytes) says why. For
 * files whose failure is not an error (the NVRTC cache's entries). */
DitcStatus atomic_write_quiet(const char *path, AtomicWriteFn fn, void *ctx, char *why, size_t cap);

#endif
