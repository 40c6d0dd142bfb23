/* pipeline.c: the compiler's stages in order, one visible list:
 *   spec files --parse/sema--> Spec --lower--> Graph --passes--> Graph
 *   --cost--> report / IR dump, or --memplan--> plan build (--> GPU kernels
 *   with --arch) --> plan.bin
 * The verifier runs after lowering and after every pass. */
#include "pipeline.h"

#include <string.h>

#include "atomic_file.h"
#include "atomic_write.h"
#include "autodiff.h"
#include "cost.h"
#include "family.h"
#include "ir_print.h"
#include "ir_rewrite.h"
#include "kernel_plan.h"
#include "lower.h"
#include "memplan.h"
#include "passes.h"
#include "plan.h"
#include "report.h"

/* The graph-to-graph passes, in the order they run. */
typedef struct Pass {
  const char *name;
  DitcStatus (*run)(Graph **g);
} Pass;

static const Pass PASSES[] = {
    {"cse", pass_cse},
    {"fuse-linear", pass_fuse_linear},
    {"fuse-attention", pass_fuse_attention},
    {"hoist-adaln", pass_hoist_adaln},
    {"fuse-ln-modulate", pass_fuse_ln_modulate},
    {"fuse-residual", pass_fuse_residual},
    {NULL, NULL},
};

bool pipeline_stage_exists(const char *name) {
  if (strcmp(name, "lower") == 0) return true;
  for (const Pass *p = PASSES; p->name; p++)
    if (strcmp(p->name, name) == 0) return true;
  return false;
}

static DitcStatus verify(const Graph *g, Diag *d, const char *after);

DitcStatus pipeline_run_passes(Graph **g, Diag *d, const char *dump_after, const Graph **dump) {
  if (dump_after && dump && strcmp(dump_after, "lower") == 0) *dump = *g;
  for (const Pass *p = PASSES; p->name; p++) {
    DitcStatus st = p->run(g);
    if (st) {
      diag_error(d, span_none(), "internal error: pass %s failed: %s", p->name, ditc_status_str(st));
      return st;
    }
    st = verify(*g, d, p->name);
    if (st) return st;
    if (dump_after && dump && strcmp(dump_after, p->name) == 0) *dump = *g;
  }
  return DITC_OK;
}

static DitcStatus verify(const Graph *g, Diag *d, const char *after) {
  char why[256];
  DitcStatus st = ir_verify(g, why, sizeof why);
  if (st) diag_error(d, span_none(), "internal error: IR invalid after %s: %s", after, why);
  return st;
}

/* The backward stage of training graphs: autodiff, dead-node elimination
 * (a recomputed block's clones that no gradient reads, such as its last
 * linear), then the verifier. */
static DitcStatus run_autodiff(Graph **g, Diag *d, RecomputeMode mode) {
  char why[256];
  DitcStatus st = autodiff(*g, mode, why, sizeof why);
  if (st) {
    diag_error(d, span_none(), "internal error: autodiff failed: %s", why);
    return st;
  }
  st = ir_dce(g);
  if (st) {
    diag_error(d, span_none(), "internal error: dead-node elimination failed: %s", ditc_status_str(st));
    return st;
  }
  return verify(*g, d, "autodiff");
}

static DitcStatus plan_memory(const Graph *g, Diag *d, MemPlan *mp) {
  DitcStatus st = memplan_run(g, mp);
  if (st) {
    diag_error(d, span_none(), "internal error: memory planning failed: %s", ditc_status_str(st));
    return st;
  }
  char why[256];
  st = memplan_check(g, mp, why, sizeof why);
  if (st) diag_error(d, span_none(), "internal error: memory plan invalid: %s", why);
  return st;
}

/* The activation arena of the training graph under each recompute mode. */
static DitcStatus train_memory(Arena *a, Diag *d, const Spec *spec, int64_t batch, TrainMemory *tm) {
  for (int mode = 0; mode < 2; mode++) {
    Graph *g = NULL;
    MemPlan mp;
    DitcStatus st = lower_train(a, d, spec, batch, &g);
    if (!st) st = pipeline_run_passes(&g, d, NULL, NULL);
    if (!st) st = run_autodiff(&g, d, (RecomputeMode)mode);
    if (!st) st = plan_memory(g, d, &mp);
    if (st) return st;
    tm->arena_bytes[mode] = mp.arena_bytes;
    tm->weight_bytes = mp.weight_bytes;
  }
  return DITC_OK;
}

typedef struct Emit {
  const CompileOptions *opts;
  ReportInput report;
  const Graph *dump; /* the graph --dump-ir prints */
} Emit;

static int emit_to(FILE *f, void *ctx) {
  const Emit *e = ctx;
  switch (e->opts->emit) {
  case EMIT_REPORT: report_text(&e->report, f); break;
  case EMIT_JSON: report_json(&e->report, f); break;
  case EMIT_IR: ir_print(e->dump, f); break;
  case EMIT_CUDA: kernel_emit_source(e->dump, e->opts->spec.path, f); break;
  case EMIT_PLAN:
  case EMIT_KERNEL_REPORT: return -1; /* written elsewhere */
  }
  return ferror(f) ? -1 : 0;
}

/* -o must not name the spec or a file it includes or inherits from. */
static DitcStatus check_output_not_input(const SourceMgr *sm, Diag *d, const char *out_path) {
  for (size_t i = 0; out_path && i < sm->n_files; i++) {
    const char *in = sm->files[i].path;
    if (atomic_same_file(out_path, in) || !strcmp(out_path, in)) {
      diag_file_error(d, out_path, "-o names an input of this compilation (%s); choose another output path", in);
      return DITC_ERR_IO;
    }
  }
  return DITC_OK;
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
  st = spec_load_with(arena, &diag, &opts->spec, &opts->overrides, &spec);
  if (st) goto done;
  st = check_output_not_input(&sm, &diag, opts->out_path);
  if (st) goto done;
  st = opts->train ? spec->family->lower_train(arena, &diag, spec, opts->batch, &g)
                   : spec->family->lower_forward(arena, &diag, spec, opts->batch, &g);
  if (st) goto done;
  st = verify(g, &diag, "lower");
  if (st) goto done;
  /* The report describes the model, so it is computed on the unfused graph. */
  st = cost_graph(g, &cost);
  if (st) {
    diag_error(&diag, spec->model_loc, "model '%s' is too large: its parameter count overflows",
               spec->cfg.name);
    goto done;
  }
  const Graph *lowered = g, *dump = NULL;
  st = pipeline_run_passes(&g, &diag, opts->dump_after, &dump);
  if (st) goto done;
  if (opts->train) {
    st = run_autodiff(&g, &diag, opts->recompute);
    if (st) goto done;
  } else if (opts->dtype == PLAN_DT_BF16) {
    st = pass_bf16(&g, compile_gelu_kernel(opts));
    if (st) {
      diag_error(&diag, span_none(), "internal error: pass bf16 failed: %s", ditc_status_str(st));
      goto done;
    }
    st = verify(g, &diag, "bf16");
    if (st) goto done;
  }
  if (!dump) dump = g;

  MemPlan mp;
  st = plan_memory(g, &diag, &mp);
  if (st) goto done;
  TrainMemory tm = {0};
  if (opts->train && (opts->emit == EMIT_REPORT || opts->emit == EMIT_JSON)) {
    st = train_memory(arena, &diag, spec, opts->batch, &tm);
    if (st) goto done;
  }
  if (opts->emit == EMIT_KERNEL_REPORT) {
    st = kernel_report(g, opts->arch ? opts->arch : "sm_80,sm_90", opts->cache_dir, &diag, out);
    goto done;
  }
  if (opts->emit == EMIT_PLAN) {
    Plan *plan = NULL;
    st = opts->train ? plan_build_train(arena, &diag, g, &mp, opts->dtype,
                                        (PlanRecompute)opts->recompute, &plan)
                     : plan_build(arena, &diag, g, &mp, opts->dtype, &plan);
    KernelBuildOptions ko = {opts->arch, compile_gelu_kernel(opts),
                             opts->tune_candidates > 1 ? opts->tune_candidates : 1, opts->cache_dir};
    if (!st && opts->arch) st = kernel_plan_build(arena, &diag, g, plan, &ko);
    if (!st && opts->out_path) st = plan_write(&diag, plan, opts->out_path);
    else if (!st && plan_write_stream(plan, out) != 0) st = DITC_ERR_IO;
    goto done;
  }

  const Graph *whole = NULL; /* the whole model, for a report on part of it (the VAE's --part) */
  if ((opts->emit == EMIT_REPORT || opts->emit == EMIT_JSON) && spec->family->lower_whole) {
    Graph *w = NULL;
    st = spec->family->lower_whole(arena, &diag, spec, &w);
    if (st) goto done;
    whole = w;
  }
  Emit e = {opts, {opts->spec.path, spec, lowered, &cost, &mp, opts->train ? &tm : NULL, whole}, dump};
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
