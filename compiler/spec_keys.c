/* spec_keys.c: lookups in a family's key table (see spec_keys.h). The tables
 * themselves belong to the families (families/dit/dit_keys.c). */
#include "spec_keys.h"

#include <string.h>

int spec_key_find(const SpecKey *keys, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(keys[i].name, name) == 0) return (int)i;
  return -1;
}

const char *spec_key_type_name(SpecKeyType t) {
  switch (t) {
  case KEY_INT: return "an integer";
  case KEY_FLOAT: return "a number";
  case KEY_BOOL: return "true or false";
  }
  return "a value";
}

bool spec_key_in_range(const SpecKey *k, double x) {
  bool low = k->min_exclusive ? !(x > k->min) : !(x >= k->min);
  bool high = k->max_exclusive ? !(x < k->max) : !(x <= k->max);
  return !low && !high;
}
