/* status.c: names of compiler status codes. */
#include "status.h"

const char *ditc_status_str(DitcStatus s) {
  switch (s) {
  case DITC_OK: return "ok";
  case DITC_ERR_IO: return "I/O error";
  case DITC_ERR_SPEC: return "invalid spec";
  case DITC_ERR_LIMIT: return "limit exceeded";
  case DITC_ERR_NOMEM: return "out of memory";
  case DITC_ERR_INTERNAL: return "internal error";
  case DITC_ERR_USAGE: return "usage error";
  }
  return "unknown status";
}
