// emu_stub_driver.h: controls of the stand-in for the emulated driver
// (emu_stub_driver.cpp) that tests of tools/emu parts link in place of
// emu_driver.cpp: the four functions of tools/emu/emu_internal.h, trivially.
#pragma once

#include <cuda.h>

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace stub {

// emu::device_range accepts ranges inside these blocks.
void add_device(const void *p, size_t bytes);
void remove_device(const void *p);

// The next emu::api_call(name) returns true (the call fails); "" for none.
void fail_next(const char *name);
// How often emu::api_call(name) was called.
int calls(const char *name);

// false (the default): emu::stream_submit runs the work at once; true: it
// keeps it in stored() and returns CUDA_SUCCESS.
void set_store(bool store);
std::vector<std::function<void()>> &stored();
CUstream last_stream();  // the stream of the last emu::stream_submit

// The messages of emu::report, in order (they are also printed on stderr).
std::vector<std::string> &reports();

}  // namespace stub
