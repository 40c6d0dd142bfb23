// emu_stub_driver.cpp: a stand-in for the emulated driver (emu_stub_driver.h)
// so that a part of libdit_emu.so (emu_cublaslt.cpp) is tested alone: no
// fibers, modules or devices, only what emu_internal.h promises.
#include "emu_stub_driver.h"

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>

#include "emu_internal.h"

namespace {
std::map<uintptr_t, size_t> g_blocks;  // base -> bytes
std::string g_fail;
std::map<std::string, int> g_calls;
bool g_store = false;
std::vector<std::function<void()>> g_stored;
CUstream g_last_stream = nullptr;
std::vector<std::string> g_reports;
}  // namespace

namespace stub {
void add_device(const void *p, size_t bytes) { g_blocks[reinterpret_cast<uintptr_t>(p)] = bytes; }
void remove_device(const void *p) { g_blocks.erase(reinterpret_cast<uintptr_t>(p)); }
void fail_next(const char *name) { g_fail = name; }
int calls(const char *name) {
  auto it = g_calls.find(name);
  return it == g_calls.end() ? 0 : it->second;
}
void set_store(bool store) { g_store = store; }
std::vector<std::function<void()>> &stored() { return g_stored; }
CUstream last_stream() { return g_last_stream; }
std::vector<std::string> &reports() { return g_reports; }
}  // namespace stub

namespace emu {

bool api_call(const char *name) {
  g_calls[name]++;
  if (!g_fail.empty() && g_fail == name) {
    g_fail.clear();
    return true;
  }
  return false;
}

CUresult stream_submit(CUstream stream, std::function<void()> work) {
  g_last_stream = stream;
  if (g_store)
    g_stored.push_back(std::move(work));
  else
    work();
  return CUDA_SUCCESS;
}

bool device_range(CUdeviceptr p, size_t bytes) {
  auto it = g_blocks.upper_bound(static_cast<uintptr_t>(p));
  if (it == g_blocks.begin()) return false;
  --it;
  uintptr_t off = static_cast<uintptr_t>(p) - it->first;
  return off <= it->second && bytes <= it->second - off;
}

void report(const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  fprintf(stderr, "dit-emu: %s\n", buf);
  g_reports.push_back(buf);
}

}  // namespace emu
