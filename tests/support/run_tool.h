/* run_tool.h: test helper that runs a command-line tool in a directory and
 * captures its exit code, stdout and stderr. */
#ifndef DIT_TESTS_RUN_TOOL_H
#define DIT_TESTS_RUN_TOOL_H

#include <stddef.h>

typedef struct ToolResult {
  int exit_code;  /* -1 when the tool died from a signal */
  int signal;     /* the signal that killed it, else 0 */
  char *out;      /* captured stdout, NUL-terminated (free with tool_result_free) */
  char *err;      /* captured stderr */
} ToolResult;

typedef struct ToolOptions {
  const char *cwd;   /* NULL: the current directory */
  int run_as_nobody; /* drop root privileges first (for permission tests) */
} ToolOptions;

/* argv[0] is the tool's path; argv is NULL-terminated. Returns 0 when the tool ran. */
int run_tool(const char *const *argv, const ToolOptions *opt, ToolResult *res);
void tool_result_free(ToolResult *res);

/* Reads a whole file into a NUL-terminated buffer; NULL on failure. */
char *read_text_file(const char *path, size_t *len_out);

#endif
