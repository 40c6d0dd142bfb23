/* atomic_write.h: how ditc and dit write every output file, so that a
 * failure or a kill never leaves a partial file and never replaces what
 * was not a regular file:
 *  - a regular file (or a new name) is written to a temporary
 *    ".NAME.tmp.PID.XXXXXX" in the same folder, fsync'ed and renamed over
 *    NAME; on failure the old file stays and the temporary goes;
 *  - a symbolic link is followed (a chain of at most 40): its final target
 *    is written that way, and the link stays a link;
 *  - a character device (/dev/null, /dev/stdout) or a FIFO is written
 *    through; a FIFO that no process reads fails at once, never hangs;
 *  - a folder, socket or block device is refused;
 *  - before writing NAME, temporaries of NAME whose writer is dead (kill -9,
 *    SIGXFSZ) are removed; a live writer's are left alone. */
#ifndef DIT_RUNTIME_ATOMIC_WRITE_H
#define DIT_RUNTIME_ATOMIC_WRITE_H

#include <stdio.h>

#include "err.h"

/* Writes the body; returns 0 on success. A body that fails for a reason of
 * its own records it in the DitErr the caller passed (its status non-zero). */
typedef int (*WriteBodyFn)(FILE *f, void *ctx);

DitStatus atomic_write_file(const char *path, WriteBodyFn fn, void *ctx, DitErr *err);

/* atomic_write_file of n bytes that are already in memory. */
DitStatus atomic_write_bytes(const char *path, const void *data, size_t n, DitErr *err);

/* Two outputs of one command, written together: the first is written to a
 * staged name (by any writer, atomic_write_file included) and renamed over
 * its path only once the second has been written, so that a failure leaves
 * neither. atomic_stage puts in staged (n bytes) a new empty temporary in the
 * folder of path's final target, or path itself for a device or FIFO (written
 * through, nothing to rename). atomic_commit renames it over the target;
 * atomic_unstage removes it. Both do nothing when staged is path. */
DitStatus atomic_stage(const char *path, char *staged, size_t n, DitErr *err);
DitStatus atomic_commit(const char *staged, const char *path, DitErr *err);
void atomic_unstage(const char *staged, const char *path);

/* Removes the temporaries of any name in dir whose writers are dead (a
 * run folder at the start of dit train). A missing dir is no error. */
DitStatus atomic_remove_stale(const char *dir, DitErr *err);

/* 1 when both paths exist and are the same file (links followed). */
int atomic_same_file(const char *a, const char *b);

#endif
