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
  const Graph *whole; /* the whole model at batch 1 when the graph holds part of it
                         (ModelFamily.lower_whole: the VAE), else NULL */
} ReportInput;

/* 675129632 -> "675,129,632" into buf; returns buf. */
const char *report_commas(long long v, char *buf, size_t n);
/* Shortest decimal that reads back as the same double. */
const char *report_shortest(double v, char *buf, size_t n);
/* s as a JSON string, quoted and escaped. */
void report_json_string(FILE *out, const char *s);

void report_text(const ReportInput *r, FILE *out);
void report_json(const ReportInput *r, FILE *out);

#endif
