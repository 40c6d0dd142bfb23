/* pipeline.c: the compiler's stages in order, one visible list:
 *   spec files --parse/sema--> Spec --lower--> Graph --passes--> Graph
 *   --cost--> report / IR dump (plan.bin comes with the plan stages)
 * The verifier runs after lowering and after every pass. */
#include "pipeline.h"

#include "atomic_file.h"
#include "cost.h"
#include "ir_print.h"
#include "lower.h"
#include "report.h"

/* A graph-to-graph pass. The list is empty until the fusion passes land. */
typedef struct Pass {
  const char *name;
  DitcStatus (*run)(Graph *g, Diag *d);
} Pass;

static const Pass PASSES[] = {{NULL, NULL}};

static DitcStatus verify(const Graph *g, Diag *d, const char *after) {
  char why[256];
  DitcStatus st = ir_verify(g, why, sizeof why);
  if (st) diag_error(d, span_none(), "internal error: IR invalid after %s: %s", after, why);
  return st;
}

typedef struct Emit {
  const CompileOptions *opts;
  ReportInput report;
} Emit;

static int emit_to(FILE *f, void *ctx) {
  const Emit *e = ctx;
  switch (e->opts->emit) {
  case EMIT_REPORT: report_text(&e->report, f); break;
  case EMIT_JSON: report_json(&e->report, f); break;
  case EMIT_IR: ir_print(e->report.graph, f); break;
  }
  return ferror(f) ? -1 : 0;
}

DitcStatus compile_pipeline(const CompileOptions *opts, FILE *out, FILE *err) {
  DitcStatus st;
  Arena *arena = arena_new();
  if (!arena) return DITC_ERR_NOMEM;
  SourceMgr sm;
  Diag diag;
  srcmgr_init(&sm, arena);
  diag_init(&diag, &sm, err);

  Spec *spec = NULL;
  Graph *g = NULL;
  GraphCost cost;
  st = spec_load(arena, &diag, &opts->spec, &spec);
  if (st) goto done;
  st = lower_forward(arena, &diag, spec, opts->batch, &g);
  if (st) goto done;
  st = verify(g, &diag, "lowering");
  if (st) goto done;
  for (const Pass *p = PASSES; p->name; p++) {
    st = p->run(g, &diag);
    if (st) goto done;
    st = verify(g, &diag, p->name);
    if (st) goto done;
  }
  st = cost_graph(g, &cost);
  if (st) {
    diag_error(&diag, spec->model_loc, "model '%s' is too large: its parameter count overflows",
               spec->cfg.name);
    goto done;
  }

  Emit e = {opts, {opts->spec.path, spec, g, &cost}};
  if (opts->out_path) {
    st = atomic_write(&diag, opts->out_path, emit_to, &e);
  } else if (emit_to(out, &e) != 0 || fflush(out) != 0) {
    diag_error(&diag, span_none(), "cannot write to standard output");
    st = DITC_ERR_IO;
  }
done:
  diag_finish(&diag);
  arena_free(arena);
  return st;
}
