/* family.c: the table of model families (family.h). */
#include "family.h"

#include <stdio.h>
#include <string.h>

#include "lower.h"

static const ModelFamily FAMILIES[] = {
    {"dit", "Diffusion Transformer (Peebles & Xie 2022): patchify, adaLN-Zero blocks, learned sigma",
     lower_forward, lower_train},
};

const ModelFamily *model_family_find(const char *name) {
  for (size_t i = 0; i < sizeof FAMILIES / sizeof FAMILIES[0]; i++)
    if (!strcmp(FAMILIES[i].name, name)) return &FAMILIES[i];
  return NULL;
}

const ModelFamily *model_family_default(void) { return &FAMILIES[0]; }

void model_family_names(char *buf, size_t n) {
  size_t len = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < sizeof FAMILIES / sizeof FAMILIES[0] && len < n; i++)
    len += (size_t)snprintf(buf + len, n - len, "%s%s", i ? ", " : "", FAMILIES[i].name);
}
