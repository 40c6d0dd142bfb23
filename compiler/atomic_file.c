/* atomic_file.c: ditc's outputs go through the runtime's output-file policy
 * (runtime/util/atomic_write.h), so that ditc and dit write files one way;
 * this adapts its DitErr to ditc's diagnostics. */
#include "atomic_file.h"

#include <stdio.h>
#include <string.h>

#include "atomic_write.h"

DitcStatus atomic_write(Diag *d, const char *path, AtomicWriteFn fn, void *ctx) {
  DitErr err = {0};
  DitStatus st = atomic_write_file(path, fn, ctx, &err);
  if (st == DIT_OK) return DITC_OK;
  /* the runtime's messages read "PATH: cannot write: why" */
  size_t n = strlen(path);
  const char *why = !strncmp(err.msg, path, n) && !strncmp(err.msg + n, ": ", 2) ? err.msg + n + 2 : err.msg;
  diag_file_error(d, path, "%s", why[0] ? why : "cannot write output");
  return st == DIT_ERR_NOMEM ? DITC_ERR_NOMEM : DITC_ERR_IO;
}

DitcStatus atomic_write_quiet(const char *path, AtomicWriteFn fn, void *ctx, char *why, size_t cap) {
  DitErr err = {0};
  DitStatus st = atomic_write_file(path, fn, ctx, &err);
  if (st == DIT_OK) return DITC_OK;
  if (cap) snprintf(why, cap, "%s", err.msg[0] ? err.msg : "cannot write");
  return st == DIT_ERR_NOMEM ? DITC_ERR_NOMEM : DITC_ERR_IO;
}
