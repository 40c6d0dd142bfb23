// emu_simt.h: the SIMT executor of the emulated device (README.md): runs a
// kernel's grid, each CUDA thread a fiber (emu_fiber.h), each block on one
// worker thread from start to end, blocks spread over DIT_EMU_THREADS
// workers. A block's fibers run until each barrier: __syncthreads for the
// block, the warp-collective operations for the lanes of their mask. What a
// GPU would leave undefined and this executor can see is an error naming the
// block, the thread and the source line: a divergent __syncthreads, lanes of
// a warp operation that disagree on it, a lane that has exited, a deadlock.
#pragma once

#define DIT_EMU_TYPES_ONLY
#include "cuda_emu.h"

#include <string>

namespace emu {

struct SimtOptions {
  int threads = 1;          // worker threads
  bool random_order = false; // resume a barrier's threads in a random order
  uint64_t seed = 1;
  bool poison = false;      // shared memory NaN-filled at each block's start
  size_t stack_bytes = 64 << 10;
};

// A kernel of a loaded module (emu_module.cpp).
struct SimtKernel {
  const dit_emu::Kernel *k;
  void *(*tls_touch)(void); // the module's: its TLS block holds the static __shared__ arrays
};

struct SimtLaunch {
  unsigned grid[3], block[3];
  size_t dynamic_smem;
};

// The executor's table for modules (dit_emu_module_init).
const DitEmuApi *simt_api();

// Sets the options (before the first launch; later calls change the order,
// seed and poison only).
void simt_configure(const SimtOptions &o);

// Runs the whole grid; params[i] points at parameter i. Returns "" or the
// first error.
std::string simt_run(const SimtKernel &k, const SimtLaunch &l, void *const *params);

}  // namespace emu
