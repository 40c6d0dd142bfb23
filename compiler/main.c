/* main.c: the ditc command line. Parses arguments into CompileOptions, runs
 * the pipeline and maps its status to an exit code. The only file that exits.
 *   exit 0: success   1: the spec or a file is bad   2: usage   3: internal */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"

#define DITC_VERSION "0.1.0"

static void usage(FILE *f) {
  fprintf(f,
          "usage: ditc SPEC [--info [--json] | --dump-ir] [--batch N] [-o FILE]\n"
          "\n"
          "Compiles a DiT spec (.dit) ahead of time.\n"
          "\n"
          "  --info       print the model report: parameters, Gflops, tokens, weight bytes\n"
          "  --json       with --info: print the report as one JSON object\n"
          "  --dump-ir    print the graph IR after the last pass (stable text)\n"
          "  --dump-after STAGE  with --dump-ir: print it after STAGE instead: lower, cse,\n"
          "               fuse-linear, fuse-attention, hoist-adaln, fuse-ln-modulate, fuse-residual\n"
          "  --batch N    rows of one forward pass (default 1, at most %d)\n"
          "  -o FILE      write the output to FILE (atomically) instead of stdout\n"
          "  --version    print the version\n"
          "  -h, --help   print this help\n"
          "\n"
          "Without an output option ditc prints the report. Writing plan.bin is not\n"
          "available yet; see docs/plan-format.md when it is.\n",
          DITC_MAX_BATCH);
}

static int parse_batch(const char *s, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < 1 || v > DITC_MAX_BATCH) return -1;
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  CompileOptions o = {.emit = EMIT_REPORT, .batch = 1};
  int info = 0, json = 0, dump_ir = 0;
  o.spec.allow_include = true;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(a, "--version")) {
      printf("ditc %s\n", DITC_VERSION);
      return 0;
    } else if (!strcmp(a, "--info")) {
      info = 1;
    } else if (!strcmp(a, "--json")) {
      json = 1;
    } else if (!strcmp(a, "--dump-ir")) {
      dump_ir = 1;
    } else if (!strcmp(a, "--batch") || !strcmp(a, "-o") || !strcmp(a, "--dump-after")) {
      if (i + 1 >= argc) {
        fprintf(stderr, "ditc: error: %s needs a value\n", a);
        return 2;
      }
      const char *v = argv[++i];
      if (a[1] == 'o') {
        o.out_path = v;
      } else if (!strcmp(a, "--dump-after")) {
        if (!pipeline_stage_exists(v)) {
          fprintf(stderr, "ditc: error: --dump-after: unknown stage '%s' (see ditc --help)\n", v);
          return 2;
        }
        o.dump_after = v;
        dump_ir = 1;
      } else if (parse_batch(v, &o.batch)) {
        fprintf(stderr, "ditc: error: --batch takes an integer from 1 to %d, got '%s'\n",
                DITC_MAX_BATCH, v);
        return 2;
      }
    } else if (a[0] == '-' && a[1] != '\0') {
      fprintf(stderr, "ditc: error: unknown option '%s' (see ditc --help)\n", a);
      return 2;
    } else if (o.spec.path) {
      fprintf(stderr, "ditc: error: more than one spec file given ('%s' and '%s')\n",
              o.spec.path, a);
      return 2;
    } else {
      o.spec.path = a;
    }
  }
  if (!o.spec.path) {
    fprintf(stderr, "ditc: error: no spec file given\n");
    usage(stderr);
    return 2;
  }
  if (json && !info) {
    fprintf(stderr, "ditc: error: --json goes with --info\n");
    return 2;
  }
  if (dump_ir && info) {
    fprintf(stderr, "ditc: error: choose one of --info and --dump-ir\n");
    return 2;
  }
  if (o.out_path && !info && !dump_ir) {
    fprintf(stderr, "ditc: error: writing plan.bin is not available yet; "
                    "-o currently takes the output of --info or --dump-ir\n");
    return 2;
  }
  o.emit = dump_ir ? EMIT_IR : (json ? EMIT_JSON : EMIT_REPORT);
  DitcStatus st = compile_pipeline(&o, stdout, stderr);
  switch (st) {
  case DITC_OK: return 0;
  case DITC_ERR_INTERNAL: return 3;
  case DITC_ERR_USAGE: return 2;
  default: return 1;
  }
}
