/* pipeline.h: the whole compiler as one call. */
#ifndef DIT_COMPILER_PIPELINE_H
#define DIT_COMPILER_PIPELINE_H

#include <stdio.h>

#include "options.h"

/* Runs every stage in order; results go to `out` (or opts->out_path) and
 * diagnostics to `err`. */
DitcStatus compile_pipeline(const CompileOptions *opts, FILE *out, FILE *err);

/* Whether `name` is "lower" or the name of a pass (for --dump-after). */
bool pipeline_stage_exists(const char *name);

#endif
