/* pipeline.h: the whole compiler as one call. */
#ifndef DIT_COMPILER_PIPELINE_H
#define DIT_COMPILER_PIPELINE_H

#include <stdio.h>

#include "diag.h"
#include "ir.h"
#include "options.h"

/* Runs every stage in order; results go to `out` (or opts->out_path) and
 * diagnostics to `err`. */
DitcStatus compile_pipeline(const CompileOptions *opts, FILE *out, FILE *err);

/* Runs every pass on *g in order, verifying after each; *dump receives the
 * graph after the stage named dump_after ("lower" = before the first pass). */
DitcStatus pipeline_run_passes(Graph **g, Diag *d, const char *dump_after, const Graph **dump);

/* Whether `name` is "lower" or the name of a pass (for --dump-after). */
bool pipeline_stage_exists(const char *name);

#endif
