/* ir_print.h: the stable text form of a graph (`ditc --dump-ir`). */
#ifndef DIT_COMPILER_IR_PRINT_H
#define DIT_COMPILER_IR_PRINT_H

#include <stdio.h>

#include "ir.h"

void ir_print(const Graph *g, FILE *out);
void ir_print_type(const TensorType *t, FILE *out);

#endif
