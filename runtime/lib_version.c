/* lib_version.c: the version of libditrt (dit_version in dit/dit.h). */
#include "dit/dit.h"

const char *dit_version(void) { return "ditrt 0.1.0"; }
