/* compile_mem.c: run compile_pipeline with captured output (see compile_mem.h). */
#define _POSIX_C_SOURCE 200809L
#include "compile_mem.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

CompileResult compile_capture(const char *name, const char *text, EmitKind emit, int64_t batch) {
  CompileResult r = {0};
  size_t out_len = 0, err_len = 0;
  FILE *out = open_memstream(&r.out, &out_len);
  FILE *err = open_memstream(&r.err, &err_len);
  CompileOptions o = {.emit = emit, .batch = batch};
  o.spec.path = name;
  o.spec.data = text;
  o.spec.len_bytes = text ? strlen(text) : 0;
  o.spec.allow_include = text == NULL;
  r.status = compile_pipeline(&o, out, err);
  fclose(out);
  fclose(err);
  return r;
}

void compile_result_free(CompileResult *r) {
  free(r->out);
  free(r->err);
  r->out = r->err = NULL;
}

double json_number(const char *json, const char *key) {
  char pat[128];
  snprintf(pat, sizeof pat, "\"%s\":", key);
  const char *p = json ? strstr(json, pat) : NULL;
  if (!p) return NAN;
  return strtod(p + strlen(pat), NULL);
}
