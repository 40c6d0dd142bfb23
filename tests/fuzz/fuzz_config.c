/* fuzz_config.c: libFuzzer entry point for the config.json importer (json.c,
 * config_import.c) and everything after it. Any bytes are a diffusers
 * config.json: JSON, the class's keys mapped onto a family, sema, lowering,
 * report or plan, with diagnostics rendered into memory. The only acceptable outcomes are success or a clean
 * error status; a crash, a sanitizer report or a hang is a finding. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "pipeline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *out_buf = NULL, *err_buf = NULL;
  size_t out_len = 0, err_len = 0;
  FILE *out = open_memstream(&out_buf, &out_len);
  FILE *err = open_memstream(&err_buf, &err_len);
  if (!out || !err) abort();
  /* rotate between the report and the plan */
  static const EmitKind kinds[2] = {EMIT_JSON, EMIT_PLAN};
  CompileOptions o = {.emit = kinds[size % 2], .batch = 1};
  o.spec.path = "fuzz/config.json";
  o.spec.data = (const char *)data;
  o.spec.len_bytes = size;
  o.spec.allow_include = false;
  DitcStatus st = compile_pipeline(&o, out, err);
  fclose(out);
  fclose(err);
  /* Errors must come with a message; success must produce output. */
  if (st == DITC_OK && out_len == 0) abort();
  if (st != DITC_OK && st != DITC_ERR_NOMEM && err_len == 0) abort();
  if (st == DITC_ERR_INTERNAL) abort(); /* an invariant of ditc broke */
  free(out_buf);
  free(err_buf);
  return 0;
}
