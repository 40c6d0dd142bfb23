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
  case KEY_STRING: return "a string";
  case KEY_INT_LIST: return "a list of integers";
  case KEY_STRING_LIST: return "a list of strings";
  }
  return "a value";
}

size_t spec_key_bytes(SpecKeyType t) {
  switch (t) {
  case KEY_INT: return sizeof(int64_t);
  case KEY_FLOAT: return sizeof(double);
  case KEY_BOOL: return sizeof(bool);
  case KEY_STRING: return sizeof(const char *);
  case KEY_INT_LIST: return sizeof(SpecIntList);
  case KEY_STRING_LIST: return sizeof(SpecStrList);
  }
  return 0;
}

bool spec_key_in_range(const SpecKey *k, double x) {
  bool low = k->min_exclusive ? !(x > k->min) : !(x >= k->min);
  bool high = k->max_exclusive ? !(x < k->max) : !(x <= k->max);
  return !low && !high;
}
