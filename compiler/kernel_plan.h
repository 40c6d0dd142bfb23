/* kernel_plan.h: which GPU kernel template, with which compile-time
 * constants, runs each op of a fused graph, and compiling them with NVRTC
 * for a list of architectures (`ditc --kernel-report`). The cuBLASLt GEMMs
 * (linear) need no kernel; ops whose templates do not exist yet are listed
 * as such. Embedding the images into plan.bin comes with the CUDA backend. */
#ifndef DIT_COMPILER_KERNEL_PLAN_H
#define DIT_COMPILER_KERNEL_PLAN_H

#include <stdio.h>

#include "diag.h"
#include "ir.h"

/* Compiles every kernel the graph needs for each arch in the comma list and
 * prints a resource table to out. Fails when NVRTC is missing, a kernel does
 * not compile, or a kernel spills registers or exceeds 48 KiB of static
 * shared memory. */
DitcStatus kernel_report(const Graph *g, const char *arch_list, Diag *d, FILE *out);

#endif
