/* bind_problems.h: how a checkpoint binder (dit_weights.c, vae_weights.c)
 * reports what does not fit the plan, as PyTorch's strict load_state_dict
 * does: the first problem's message goes into the error, the later ones are
 * only counted, and the message ends with how many more there were. */
#ifndef DIT_RUNTIME_WEIGHTS_BIND_PROBLEMS_H
#define DIT_RUNTIME_WEIGHTS_BIND_PROBLEMS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct BindProblems {
  DitErr *err;
  DitStatus first;
  size_t count;
} BindProblems;

/* Records one problem (its message only when it is the first). */
void bind_problem(BindProblems *pr, DitStatus st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* "[a,b,c]" into buf. */
void bind_format_shape(char *buf, size_t size, int rank, const int64_t *shape);

/* DIT_OK when there was none; else the first's status, its message followed
 * by " (and N more problems)" when there were more. */
DitStatus bind_problems_end(BindProblems *pr);

#endif
