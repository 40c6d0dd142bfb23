/* cpu_knobs.h: the CPU backend's tuning knobs (cpu_knobs.c). */
#ifndef DIT_RUNTIME_CPU_KNOBS_H
#define DIT_RUNTIME_CPU_KNOBS_H

#include "executor.h"

enum { CPU_KNOBS_MAX = 64 };

typedef struct CpuKnobList {
  int count;
  int32_t knobs[CPU_KNOBS_MAX][4]; /* PlanCpuKnob; [0] all zero: the defaults */
  int64_t effect[CPU_KNOBS_MAX][3]; /* tile rows (or query block), tile cols, threads */
} CpuKnobList;

/* Op i's knob choices at n rows: the defaults first, then the settings
 * whose tiles or threads differ. */
void cpu_knob_choices(const Executor *e, size_t i, int64_t n, CpuKnobList *out);

#endif
