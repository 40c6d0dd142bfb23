/* family.c: the table of model families (family.h). Each family's entry is
 * its own module's (families/NAME/NAME_family.c); this file only lists them. */
#include "family.h"

#include <stdio.h>
#include <string.h>

#include "families/dit/dit_family.h"
#include "families/vae/vae_family.h"

/* The default family first: a spec that names none is a DiT. */
static const ModelFamily *(*const FAMILIES[])(void) = {
    dit_family,
    vae_family,
};
enum { N_FAMILIES = sizeof FAMILIES / sizeof FAMILIES[0] };

size_t model_family_count(void) { return N_FAMILIES; }

const ModelFamily *model_family_at(size_t i) { return i < N_FAMILIES ? FAMILIES[i]() : NULL; }

const ModelFamily *model_family_find(const char *name) {
  for (size_t i = 0; i < N_FAMILIES; i++)
    if (!strcmp(FAMILIES[i]()->name, name)) return FAMILIES[i]();
  return NULL;
}

const ModelFamily *model_family_default(void) { return FAMILIES[0](); }

void model_family_names(char *buf, size_t n) {
  size_t len = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < N_FAMILIES && len < n; i++)
    len += (size_t)snprintf(buf + len, n - len, "%s%s", i ? ", " : "", FAMILIES[i]()->name);
}
