/* diag.h: the diagnostic sink. Every user-facing message of the compiler goes
 * through here, rendered as `file:line:col: error: msg`, the source line and a
 * caret under the range, so that tests can compare them byte for byte. */
#ifndef DIT_COMPILER_DIAG_H
#define DIT_COMPILER_DIAG_H

#include <stdio.h>

#include "source.h"

#define DIAG_MAX_ERRORS 40

typedef enum { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE } DiagLevel;

typedef struct Diag {
  SourceMgr *sm;
  FILE *out;         /* where messages go (stderr in the CLI) */
  int n_errors;
  int n_warnings;
  int suppressed;    /* errors beyond DIAG_MAX_ERRORS, counted but not printed */
} Diag;

void diag_init(Diag *d, SourceMgr *sm, FILE *out);

/* A span with file == SRC_NOFILE prints as `ditc: error: msg`. */
void diag_report(Diag *d, DiagLevel level, SrcSpan at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void diag_error(Diag *d, SrcSpan at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_note(Diag *d, SrcSpan at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* An error about a whole file, not a place in it: `path: error: msg`. */
void diag_file_error(Diag *d, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prints the closing `N errors generated.` line when there were errors. */
void diag_finish(Diag *d);

SrcSpan span_none(void);
SrcSpan span_join(SrcSpan a, SrcSpan b);

#endif
