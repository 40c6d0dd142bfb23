/* source.h: the source files of one compilation and locations within them.
 * A location is a byte range in a file; line and column are computed only
 * when a diagnostic is printed. Loading validates that a file is a spec-sized
 * regular text file before any byte of it reaches the lexer. */
#ifndef DIT_COMPILER_SOURCE_H
#define DIT_COMPILER_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "status.h"

#define SRC_NOFILE UINT32_MAX
#define SRC_MAX_FILE_BYTES (1u << 20) /* a spec is at most 1 MiB */
#define SRC_MAX_FILES 256u

typedef struct SrcSpan {
  uint32_t file;  /* index into SourceMgr.files, or SRC_NOFILE */
  uint32_t begin; /* byte offset of the first byte */
  uint32_t end;   /* byte offset one past the last byte */
} SrcSpan;

typedef struct SourceFile {
  const char *path;     /* as given (relative paths stay relative) */
  const char *text;     /* NUL-terminated copy; contains no other NUL */
  uint32_t len_bytes;
  uint32_t *line_starts; /* byte offset of each line; computed lazily */
  uint32_t n_lines;
} SourceFile;

typedef struct SourceMgr {
  Arena *arena;
  SourceFile *files;
  size_t n_files, cap_files;
} SourceMgr;

struct Diag;

void srcmgr_init(SourceMgr *sm, Arena *arena);

/* Reads and validates a file. `from` is the span of the include directive that
 * asked for it, or a span with file == SRC_NOFILE for the top-level file.
 * On failure a diagnostic is written and DITC_ERR_IO/DITC_ERR_SPEC returned. */
DitcStatus srcmgr_load_file(SourceMgr *sm, struct Diag *d, const char *path, SrcSpan from,
                            uint32_t *out_file);

/* Same validation for an in-memory buffer (tests, fuzzing). */
DitcStatus srcmgr_add_buffer(SourceMgr *sm, struct Diag *d, const char *name, const char *data,
                             size_t len_bytes, SrcSpan from, uint32_t *out_file);

/* 1-based line and column (in bytes) of a byte offset. */
void srcmgr_line_col(SourceMgr *sm, uint32_t file, uint32_t offset, uint32_t *line,
                     uint32_t *col);

/* Byte range [*begin, *end) of the line that contains offset, without the newline. */
void srcmgr_line_range(SourceMgr *sm, uint32_t file, uint32_t offset, uint32_t *begin,
                       uint32_t *end);

#endif
