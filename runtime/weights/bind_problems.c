/* bind_problems.c: a binder's problem list (bind_problems.h). */
#include "bind_problems.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void bind_problem(BindProblems *pr, DitStatus st, const char *fmt, ...) {
  if (pr->count++ > 0) return;
  char msg[sizeof pr->err->msg];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  pr->first = dit_err(pr->err, st, "%s", msg);
}

void bind_format_shape(char *buf, size_t size, int rank, const int64_t *shape) {
  size_t k = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < rank && k < size; i++)
    k += (size_t)snprintf(buf + k, size - k, "%s%lld", i ? "," : "", (long long)shape[i]);
  if (k < size) snprintf(buf + k, size - k, "]");
}

DitStatus bind_problems_end(BindProblems *pr) {
  if (!pr->count) return DIT_OK;
  if (pr->count > 1 && pr->err) {
    size_t len = strlen(pr->err->msg);
    snprintf(pr->err->msg + len, sizeof pr->err->msg - len, " (and %zu more problem%s)", pr->count - 1,
             pr->count > 2 ? "s" : "");
  }
  return pr->first;
}
