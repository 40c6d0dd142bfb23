/* report.h: `ditc --info`: the readable model report and its JSON form. */
#ifndef DIT_COMPILER_REPORT_H
#define DIT_COMPILER_REPORT_H

#include <stdio.h>

#include "cost.h"
#include "memplan.h"
#include "sema.h"

typedef struct ReportInput {
  const char *spec_path;
  const Spec *spec;
  const Graph *graph;
  const GraphCost *cost;
  const MemPlan *mem; /* of the fused graph, at the graph's batch */
} ReportInput;

void report_text(const ReportInput *r, FILE *out);
void report_json(const ReportInput *r, FILE *out);

#endif
