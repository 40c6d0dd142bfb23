// emu_internal.h: what the parts of libdit_emu.so share (README.md): the
// emulated driver (emu_driver.cpp, its events in emu_event.cpp) offers streams, the call counter and
// fault injector, and the check of device ranges; the emulated cuBLASLt
// (emu_cublaslt.cpp) and the module loader (emu_module.cpp) use them.
// Nothing outside tools/emu includes it.
#pragma once

#include <cuda.h>

#include <cstddef>
#include <functional>
#include <string>

#include "emu_simt.h"

namespace emu {

// Called first by every exported API function with its exported name
// ("cuMemAlloc_v2" is counted as "cuMemAlloc"; cuBLASLt names as they are).
// Counts the call (DIT_EMU_CALLS) and returns true when the fault injector
// (DIT_EMU_FAIL=name:N) makes this call fail.
bool api_call(const char *name);

// Device work on a stream, in order: run now (the default), later on the
// stream's own thread (DIT_EMU_ASYNC=1), or recorded into the graph the
// stream is capturing. `work` must own copies of everything it reads from
// the caller (descriptors, parameters): a graph replays it later.
// Returns CUDA_ERROR_INVALID_HANDLE for an unknown stream.
CUresult stream_submit(CUstream stream, std::function<void()> work);

// Whether [p, p + bytes) lies inside one live device allocation.
bool device_range(CUdeviceptr p, size_t bytes);

// Whether cuInit has run; the context's sticky error (CUDA_SUCCESS while
// no kernel has failed). For the parts of the driver in other files.
bool driver_inited();
CUresult sticky_error();

// --- events (emu_event.cpp) ---

// Events never destroyed (the driver's report at exit), and freeing them.
size_t events_live();
void events_teardown();

// A diagnostic on stderr: "dit-emu: <message>\n".
void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// --- kernel modules (emu_module.cpp) ---

struct Module;

// A kernel of a module: what cuModuleGetFunction returns.
struct Function {
  uint32_t magic;          // FUNCTION_MAGIC while alive
  Module *module;
  SimtKernel kernel;
  int max_dynamic_smem;    // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
};
enum : uint32_t { FUNCTION_MAGIC = 0x46554e43u };

// Parses an emu image (README.md), compiles it into the cache unless it is
// there, and loads it. NULL on failure, with *rc and the reason (and the
// compiler's output) in *log.
Module *module_load(const void *image, CUresult *rc, std::string *log);
void module_unload(Module *m);
// The kernel of the NVRTC lowered name, or NULL (*rc says why, reported).
Function *module_function(Module *m, const char *name, CUresult *rc);

}  // namespace emu
