/* dit/status.h: status codes of the ditc runtime library (public). */
#ifndef DIT_STATUS_H
#define DIT_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum DitStatus {
  DIT_OK = 0,
  DIT_ERR_IO = 1,          /* a file could not be opened, read or written */
  DIT_ERR_FORMAT = 2,      /* a file is malformed, truncated or corrupt */
  DIT_ERR_VERSION = 3,     /* a file is of an unsupported version */
  DIT_ERR_WEIGHTS = 4,     /* a checkpoint does not fit the plan: missing, unexpected or mis-shaped keys */
  DIT_ERR_ARG = 5,         /* a bad argument to an API call or command */
  DIT_ERR_NOMEM = 6,       /* allocation failed */
  DIT_ERR_UNSUPPORTED = 7, /* valid input that this build cannot handle (dtype, compression, ...) */
  DIT_ERR_DEVICE = 8,      /* no usable device, or a device call failed */
  DIT_ERR_INTERNAL = 9,    /* an invariant of ditc broke: a bug */
  DIT_ERR_NONFINITE = 10   /* a result holds NaN or infinity (the message names the op or step) */
} DitStatus;

const char *dit_status_str(DitStatus s);

#ifdef __cplusplus
}
#endif

#endif
