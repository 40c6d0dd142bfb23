/* source.c: loading and validating spec files; line/column lookup. */
#define _POSIX_C_SOURCE 200809L
#include "source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diag.h"

void srcmgr_init(SourceMgr *sm, Arena *arena) {
  memset(sm, 0, sizeof *sm);
  sm->arena = arena;
}

/* Reports a whole-file problem, at the include directive when there is one. */
static void file_error(Diag *d, const char *path, SrcSpan from, const char *what) {
  if (from.file != SRC_NOFILE)
    diag_error(d, from, "cannot include '%s': %s", path, what);
  else
    diag_file_error(d, path, "%s", what);
}

/* Length of the UTF-8 sequence starting at p (at most n bytes), 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *p, size_t n) {
  unsigned c = p[0];
  size_t len;
  unsigned min;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) { len = 2; min = 0x80; }
  else if (c >= 0xE0 && c <= 0xEF) { len = 3; min = 0x800; }
  else if (c >= 0xF0 && c <= 0xF4) { len = 4; min = 0x10000; }
  else return 0;
  if (n < len) return 0;
  unsigned cp = c & (0x7Fu >> len);
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3Fu);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

DitcStatus srcmgr_add_buffer(SourceMgr *sm, Diag *d, const char *name, const char *data,
                             size_t len_bytes, SrcSpan from, uint32_t *out_file) {
  char what[160];
  if (len_bytes > SRC_MAX_FILE_BYTES) {
    snprintf(what, sizeof what, "file is too large (%zu bytes; a spec may be at most %u bytes)",
             len_bytes, SRC_MAX_FILE_BYTES);
    file_error(d, name, from, what);
    return DITC_ERR_SPEC;
  }
  if (len_bytes == 0) {
    file_error(d, name, from, "file is empty; expected a model definition");
    return DITC_ERR_SPEC;
  }
  const unsigned char *p = (const unsigned char *)data;
  for (size_t i = 0; i < len_bytes;) {
    if (p[i] == 0) {
      snprintf(what, sizeof what, "not a text file (NUL byte at offset %zu)", i);
      file_error(d, name, from, what);
      return DITC_ERR_SPEC;
    }
    size_t n = utf8_seq_len(p + i, len_bytes - i);
    if (n == 0) {
      snprintf(what, sizeof what, "not a text file (invalid UTF-8 at offset %zu)", i);
      file_error(d, name, from, what);
      return DITC_ERR_SPEC;
    }
    i += n;
  }
  if (sm->n_files >= SRC_MAX_FILES) {
    snprintf(what, sizeof what, "too many source files (at most %u)", SRC_MAX_FILES);
    file_error(d, name, from, what);
    return DITC_ERR_LIMIT;
  }
  if (arena_grow(sm->arena, (void **)&sm->files, &sm->cap_files, sm->n_files + 1,
                 sizeof(SourceFile)))
    return DITC_ERR_NOMEM;
  SourceFile *f = &sm->files[sm->n_files];
  memset(f, 0, sizeof *f);
  f->path = arena_strdup(sm->arena, name);
  f->text = arena_strndup(sm->arena, data, len_bytes);
  if (!f->path || !f->text) return DITC_ERR_NOMEM;
  f->len_bytes = (uint32_t)len_bytes;
  *out_file = (uint32_t)sm->n_files++;
  return DITC_OK;
}

DitcStatus srcmgr_load_file(SourceMgr *sm, Diag *d, const char *path, SrcSpan from,
                            uint32_t *out_file) {
  DitcStatus st = DITC_ERR_IO;
  char *buf = NULL;
  char what[200];
  /* O_NONBLOCK: opening a FIFO must not hang; fstat rejects it right after. */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    snprintf(what, sizeof what, "cannot open file: %s", strerror(errno));
    file_error(d, path, from, what);
    goto done;
  }
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    snprintf(what, sizeof what, "cannot stat file: %s", strerror(errno));
    file_error(d, path, from, what);
    goto done;
  }
  if (S_ISDIR(sb.st_mode)) {
    file_error(d, path, from, "is a directory, not a spec file");
    goto done;
  }
  if (!S_ISREG(sb.st_mode)) {
    file_error(d, path, from, "is not a regular file");
    goto done;
  }
  if ((uintmax_t)sb.st_size > SRC_MAX_FILE_BYTES) {
    snprintf(what, sizeof what, "file is too large (%jd bytes; a spec may be at most %u bytes)",
             (intmax_t)sb.st_size, SRC_MAX_FILE_BYTES);
    file_error(d, path, from, what);
    st = DITC_ERR_SPEC;
    goto done;
  }
  /* Read up to one byte past the limit, in case the file grew after fstat. */
  size_t cap = SRC_MAX_FILE_BYTES + 1, len = 0;
  buf = malloc(cap);
  if (!buf) { st = DITC_ERR_NOMEM; goto done; }
  for (;;) {
    ssize_t n = read(fd, buf + len, cap - len);
    if (n < 0) {
      if (errno == EINTR) continue;
      snprintf(what, sizeof what, "cannot read file: %s", strerror(errno));
      file_error(d, path, from, what);
      goto done;
    }
    if (n == 0) break;
    len += (size_t)n;
    if (len == cap) break;
  }
  st = srcmgr_add_buffer(sm, d, path, buf, len, from, out_file);
done:
  free(buf);
  if (fd >= 0) close(fd);
  return st;
}

static void compute_lines(SourceMgr *sm, SourceFile *f) {
  uint32_t n = 1;
  for (uint32_t i = 0; i < f->len_bytes; i++)
    if (f->text[i] == '\n') n++;
  f->line_starts = arena_array(sm->arena, n, sizeof(uint32_t));
  if (!f->line_starts) return;
  f->line_starts[0] = 0;
  uint32_t k = 1;
  for (uint32_t i = 0; i < f->len_bytes; i++)
    if (f->text[i] == '\n') f->line_starts[k++] = i + 1;
  f->n_lines = n;
}

/* Index of the line containing offset (binary search over line starts). */
static uint32_t line_index(SourceMgr *sm, SourceFile *f, uint32_t offset) {
  if (!f->line_starts) compute_lines(sm, f);
  if (!f->line_starts) return 0;
  uint32_t lo = 0, hi = f->n_lines;
  while (hi - lo > 1) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (f->line_starts[mid] <= offset) lo = mid;
    else hi = mid;
  }
  return lo;
}

void srcmgr_line_col(SourceMgr *sm, uint32_t file, uint32_t offset, uint32_t *line,
                     uint32_t *col) {
  SourceFile *f = &sm->files[file];
  if (offset > f->len_bytes) offset = f->len_bytes;
  uint32_t li = line_index(sm, f, offset);
  uint32_t start = f->line_starts ? f->line_starts[li] : 0;
  *line = li + 1;
  *col = offset - start + 1;
}

void srcmgr_line_range(SourceMgr *sm, uint32_t file, uint32_t offset, uint32_t *begin,
                       uint32_t *end) {
  SourceFile *f = &sm->files[file];
  if (offset > f->len_bytes) offset = f->len_bytes;
  uint32_t li = line_index(sm, f, offset);
  uint32_t b = f->line_starts ? f->line_starts[li] : 0;
  uint32_t e = b;
  while (e < f->len_bytes && f->text[e] != '\n') e++;
  if (e > b && f->text[e - 1] == '\r') e--;
  *begin = b;
  *end = e;
}
