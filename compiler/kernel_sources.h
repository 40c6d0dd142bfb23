/* kernel_sources.h: the kernel templates of kernels/, embedded into ditc at
 * build time (cmake/EmbedKernels.cmake writes the table). */
#ifndef DIT_COMPILER_KERNEL_SOURCES_H
#define DIT_COMPILER_KERNEL_SOURCES_H

typedef struct KernelSource {
  const char *name; /* "adaln_norm.cuh" */
  const char *text;
} KernelSource;

extern const KernelSource KERNEL_SOURCES[];
extern const int KERNEL_SOURCE_COUNT;

#endif
