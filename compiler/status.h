/* status.h: the status codes every fallible compiler function returns.
 * Messages go to a Diag; the code says only what kind of failure happened. */
#ifndef DIT_COMPILER_STATUS_H
#define DIT_COMPILER_STATUS_H

typedef enum {
  DITC_OK = 0,
  DITC_ERR_IO = 1,       /* a file could not be read or written */
  DITC_ERR_SPEC = 2,     /* the spec is malformed or describes an impossible model */
  DITC_ERR_LIMIT = 3,    /* a size or count exceeds what ditc supports */
  DITC_ERR_NOMEM = 4,    /* allocation failed */
  DITC_ERR_INTERNAL = 5, /* an invariant of ditc itself was broken (a bug) */
  DITC_ERR_USAGE = 6     /* bad command-line or API arguments */
} DitcStatus;

const char *ditc_status_str(DitcStatus s);

#endif
