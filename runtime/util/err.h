/* err.h: the runtime's internal error record. A failing function fills a
 * DitErr with its status and a message that names what was wrong (the file,
 * the key, the offset), and returns the status; callers pass it upwards. */
#ifndef DIT_RUNTIME_ERR_H
#define DIT_RUNTIME_ERR_H

#include "dit/status.h"

typedef struct DitErr {
  DitStatus status;
  char msg[1024];
} DitErr;

/* Records st and the formatted message in e (when e is not NULL); returns st. */
DitStatus dit_err(DitErr *e, DitStatus st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prefixes the message already in e with "context: ". */
void dit_err_context(DitErr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
