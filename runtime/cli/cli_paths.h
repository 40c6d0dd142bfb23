/* cli_paths.h: the checks every dit command makes on its output paths before
 * it writes anything (cli_paths.c): no output names one of the command's
 * inputs or another output, and each can be written (not a folder, in a
 * folder that exists and is writable). Messages go to stderr. */
#ifndef DIT_RUNTIME_CLI_PATHS_H
#define DIT_RUNTIME_CLI_PATHS_H

#include <stddef.h>

/* 0 when all is well, else -1 after a message. NULL entries are skipped. */
int cli_check_outputs(const char *const *outputs, size_t n_out, const char *const *inputs, size_t n_in);

/* A folder that the command will create or fill (a run folder, a partial
 * set): its parent exists and is writable, and it is not a file. */
int cli_check_output_dir(const char *dir);

#endif
