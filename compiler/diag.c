/* diag.c: rendering of located diagnostics (see diag.h). */
#include "diag.h"

#include <stdarg.h>
#include <string.h>

void diag_init(Diag *d, SourceMgr *sm, FILE *out) {
  memset(d, 0, sizeof *d);
  d->sm = sm;
  d->out = out;
}

SrcSpan span_none(void) { return (SrcSpan){SRC_NOFILE, 0, 0}; }

SrcSpan span_join(SrcSpan a, SrcSpan b) {
  if (a.file == SRC_NOFILE) return b;
  if (b.file != a.file) return a;
  SrcSpan s = a;
  if (b.begin < s.begin) s.begin = b.begin;
  if (b.end > s.end) s.end = b.end;
  return s;
}

static const char *level_name(DiagLevel l) {
  switch (l) {
  case DIAG_ERROR: return "error";
  case DIAG_WARNING: return "warning";
  case DIAG_NOTE: return "note";
  }
  return "error";
}

/* Prints the source line holding `at` and a caret/tilde marker under it. */
static void print_excerpt(Diag *d, SrcSpan at, uint32_t line) {
  SourceFile *f = &d->sm->files[at.file];
  uint32_t lb, le;
  srcmgr_line_range(d->sm, at.file, at.begin, &lb, &le);
  char gutter[16];
  int gw = snprintf(gutter, sizeof gutter, "%5u", line);
  fprintf(d->out, "%s | %.*s\n", gutter, (int)(le - lb), f->text + lb);
  fprintf(d->out, "%*s | ", gw, "");
  uint32_t begin = at.begin < lb ? lb : at.begin;
  if (begin > le) begin = le;
  for (uint32_t i = lb; i < begin; i++) fputc(f->text[i] == '\t' ? '\t' : ' ', d->out);
  fputc('^', d->out);
  uint32_t end = at.end > le ? le : at.end;
  for (uint32_t i = begin + 1; i < end; i++) {
    /* one marker per character: skip UTF-8 continuation bytes */
    if (((unsigned char)f->text[i] & 0xC0) != 0x80) fputc('~', d->out);
  }
  fputc('\n', d->out);
}

static void vreport(Diag *d, DiagLevel level, SrcSpan at, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static void vreport(Diag *d, DiagLevel level, SrcSpan at, const char *fmt, va_list ap) {
  if (level == DIAG_ERROR) {
    d->n_errors++;
    if (d->n_errors > DIAG_MAX_ERRORS) {
      d->suppressed++;
      return;
    }
  } else if (level == DIAG_WARNING) {
    d->n_warnings++;
  } else if (d->n_errors > DIAG_MAX_ERRORS) {
    return; /* notes of suppressed errors */
  }
  if (at.file == SRC_NOFILE || at.file >= d->sm->n_files) {
    fprintf(d->out, "ditc: %s: ", level_name(level));
    vfprintf(d->out, fmt, ap);
    fputc('\n', d->out);
    return;
  }
  uint32_t line, col;
  srcmgr_line_col(d->sm, at.file, at.begin, &line, &col);
  fprintf(d->out, "%s:%u:%u: %s: ", d->sm->files[at.file].path, line, col, level_name(level));
  vfprintf(d->out, fmt, ap);
  fputc('\n', d->out);
  print_excerpt(d, at, line);
}

void diag_report(Diag *d, DiagLevel level, SrcSpan at, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vreport(d, level, at, fmt, ap);
  va_end(ap);
}

void diag_error(Diag *d, SrcSpan at, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vreport(d, DIAG_ERROR, at, fmt, ap);
  va_end(ap);
}

void diag_note(Diag *d, SrcSpan at, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vreport(d, DIAG_NOTE, at, fmt, ap);
  va_end(ap);
}

void diag_file_error(Diag *d, const char *path, const char *fmt, ...) {
  d->n_errors++;
  if (d->n_errors > DIAG_MAX_ERRORS) {
    d->suppressed++;
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  fprintf(d->out, "%s: error: ", path);
  vfprintf(d->out, fmt, ap);
  fputc('\n', d->out);
  va_end(ap);
}

void diag_finish(Diag *d) {
  if (d->suppressed)
    fprintf(d->out, "ditc: note: %d more errors not shown\n", d->suppressed);
  if (d->n_errors)
    fprintf(d->out, "%d error%s generated.\n", d->n_errors, d->n_errors == 1 ? "" : "s");
  fflush(d->out);
}
