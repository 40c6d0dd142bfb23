/* err.c: DitErr helpers and status names. */
#define _POSIX_C_SOURCE 200809L
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

DitStatus dit_err(DitErr *e, DitStatus st, const char *fmt, ...) {
  if (!e) return st;
  e->status = st;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof e->msg, fmt, ap);
  va_end(ap);
  return st;
}

void dit_err_context(DitErr *e, const char *fmt, ...) {
  if (!e) return;
  char prefix[512], old[sizeof e->msg];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(old, e->msg, sizeof old);
  size_t n = strlen(prefix);
  if (n + 2 >= sizeof e->msg) n = sizeof e->msg - 3;
  memcpy(e->msg, prefix, n);
  memcpy(e->msg + n, ": ", 2);
  size_t rest = sizeof e->msg - n - 3;
  size_t m = strnlen(old, rest);
  memcpy(e->msg + n + 2, old, m);
  e->msg[n + 2 + m] = '\0';
}

const char *dit_status_str(DitStatus s) {
  switch (s) {
  case DIT_OK: return "ok";
  case DIT_ERR_IO: return "I/O error";
  case DIT_ERR_FORMAT: return "malformed file";
  case DIT_ERR_VERSION: return "unsupported version";
  case DIT_ERR_WEIGHTS: return "weights do not match the plan";
  case DIT_ERR_ARG: return "bad argument";
  case DIT_ERR_NOMEM: return "out of memory";
  case DIT_ERR_UNSUPPORTED: return "unsupported";
  case DIT_ERR_DEVICE: return "device error";
  case DIT_ERR_INTERNAL: return "internal error";
  case DIT_ERR_NONFINITE: return "non-finite result";
  }
  return "unknown status";
}
