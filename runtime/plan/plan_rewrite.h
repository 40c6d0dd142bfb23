/* plan_rewrite.h: writing a loaded plan back with new tunings
 * (plan_rewrite.c), for dit tune. */
#ifndef DIT_RUNTIME_PLAN_REWRITE_H
#define DIT_RUNTIME_PLAN_REWRITE_H

#include "plan_view.h"

/* Writes pv's plan to path atomically: every section as it is, except
 * that the tuning section becomes tunings[0..n_tunings) with their choices
 * (none: no tuning section). */
DitStatus plan_write_with_tunings(const PlanView *pv, const PlanTuning *tunings, size_t n_tunings,
                                  const PlanTuneChoice *choices, size_t n_choices, const char *path, DitErr *err);

#endif
