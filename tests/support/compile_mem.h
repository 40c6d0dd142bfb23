/* compile_mem.h: test helper running the compiler pipeline on an in-memory
 * spec or a file, with stdout and stderr captured in strings. */
#ifndef DIT_TESTS_COMPILE_MEM_H
#define DIT_TESTS_COMPILE_MEM_H

#include "pipeline.h"

typedef struct CompileResult {
  DitcStatus status;
  char *out; /* what the pipeline printed (report, JSON or IR) */
  char *err; /* diagnostics */
} CompileResult;

/* text != NULL: compile the buffer (named name); else read file `name`. */
CompileResult compile_capture(const char *name, const char *text, EmitKind emit, int64_t batch);
void compile_result_free(CompileResult *r);

/* Value of "key":<number> in a flat JSON object; NAN when absent. */
double json_number(const char *json, const char *key);

#endif
