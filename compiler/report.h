/* report.h: `ditc --info`: the readable model report and its JSON form. */
#ifndef DIT_COMPILER_REPORT_H
#define DIT_COMPILER_REPORT_H

#include <stdio.h>

#include "cost.h"
#include "memplan.h"
#include "sema.h"

/* Training memory at the graph's batch, per recompute mode (autodiff.h). */
typedef struct TrainMemory {
  int64_t arena_bytes[2]; /* activations: [RECOMPUTE_NONE], [RECOMPUTE_BLOCK] */
  int64_t weight_bytes;   /* one copy of the weights; training holds 5: weights,
                             gradients, AdamW's two moments, EMA */
} TrainMemory;

typedef struct ReportInput {
  const char *spec_path;
  const Spec *spec;
  const Graph *graph;
  const GraphCost *cost;
  const MemPlan *mem; /* of the fused graph, at the graph's batch */
  const TrainMemory *train; /* --mode train: training memory, else NULL */
} ReportInput;

void report_text(const ReportInput *r, FILE *out);
void report_json(const ReportInput *r, FILE *out);

#endif
