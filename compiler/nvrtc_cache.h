/* nvrtc_cache.h: NVRTC results cached by content hash in a directory (as
 * jitify does), so that compiling the same kernels again costs a file read.
 * An entry's name is the SHA-256 of everything that decides the result:
 * the NVRTC version, the compile options, the arch, the program source,
 * the embedded kernel headers (kernel_sources.h) and the name expressions.
 * It holds what nvrtc_compile_many returns: the module's cubin and PTX, and
 * per kernel its lowered name and resources. Entries are written
 * atomically and validated on read (magic, version, key, lengths, a digest
 * of the contents): a missing, truncated, damaged or mismatched one is
 * recompiled and overwritten, never trusted. A directory that cannot be
 * created or written turns caching off with one note; it never fails a
 * compilation. */
#ifndef DIT_COMPILER_NVRTC_CACHE_H
#define DIT_COMPILER_NVRTC_CACHE_H

#include <stdbool.h>

#include "nvrtc.h"

typedef struct NvrtcCache {
  char dir[4096];
  bool reads, writes; /* whether entries are looked up and stored */
  int hits, misses;   /* compiles served from entries, and by NVRTC */
} NvrtcCache;

/* dir NULL: no caching (every compile a miss). Otherwise creates dir (and
 * its parents) when missing; when it cannot, notes so in d and caches
 * nothing. */
void nvrtc_cache_init(NvrtcCache *c, const char *dir, Diag *d);

/* nvrtc_compile_many through the cache: the same results, from the entry
 * of this compile when a valid one exists, else from NVRTC (then stored). */
DitcStatus nvrtc_cache_compile(NvrtcCache *c, Nvrtc *nv, Diag *d, const char *source,
                               const char *const *name_exprs, int n, const char *arch, KernelModule *mod,
                               KernelImage *kernels);

#endif
