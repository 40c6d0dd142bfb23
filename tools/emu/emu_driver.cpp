// emu_driver.cpp: the CUDA driver API of the emulated device, exactly the
// functions runtime/cuda/cuda_driver.h lists, with <cuda.h>'s prototypes and
// ABI names (cuMemAlloc is cuMemAlloc_v2). One device, one primary context.
// Device memory is host memory, each allocation checked by every copy. A
// stream runs its work in order: at once (the default) or on its own thread,
// late (DIT_EMU_ASYNC=1), so that a missing synchronisation shows. Capture
// records a stream's work into a graph; a graph launch submits it again. A
// kernel that fails (emu_simt.h) makes the context's error sticky, as on a
// GPU: the next synchronising call returns CUDA_ERROR_LAUNCH_FAILED.
// Events are emu_event.cpp's. Every call is counted (DIT_EMU_CALLS) and can be made to fail
// (DIT_EMU_FAIL=fn:N). At exit, what was never freed is reported.
#define _GNU_SOURCE 1
#include <stdarg.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "emu_internal.h"

namespace emu {
namespace {

enum : uint32_t { STREAM_MAGIC = 0x5354524du, GRAPH_MAGIC = 0x47525048u,
                  EXEC_MAGIC = 0x47455845u, CTX_MAGIC = 0x43545854u };

struct Graph {
  uint32_t magic = GRAPH_MAGIC;
  std::vector<std::function<void()>> nodes;
};

struct GraphExec {
  uint32_t magic = EXEC_MAGIC;
  std::vector<std::function<void()>> nodes;
};

struct Stream {
  uint32_t magic = STREAM_MAGIC;
  Graph *capture = nullptr; // the graph being captured
  bool capture_broken = false;
  // DIT_EMU_ASYNC: the stream's thread and queue
  std::thread thread;
  std::mutex mu;
  std::condition_variable wake, idle;
  std::deque<std::function<void()>> queue;
  bool running = false, stop = false;
};

struct Context {
  uint32_t magic = CTX_MAGIC;
  int refs = 0;
};

struct Driver {
  std::mutex mu;
  bool inited = false;
  std::map<uintptr_t, size_t> device; // allocations: address -> bytes
  size_t used = 0, total = 16ull << 30;
  std::set<void *> host;
  std::set<Stream *> streams;
  std::set<Graph *> graphs;
  std::set<GraphExec *> execs;
  std::set<Module *> modules;
  Context ctx;
  Stream null_stream;
  std::atomic<int> sticky{CUDA_SUCCESS};
  std::map<std::string, long> calls;
  std::string fail_fn, calls_file;
  long fail_n = 0;
  bool async = false;

  ~Driver();
};

Driver &drv() {
  static Driver d;
  return d;
}

void stream_thread(Stream *s) {
  std::unique_lock<std::mutex> g(s->mu);
  for (;;) {
    s->wake.wait(g, [&] { return s->stop || !s->queue.empty(); });
    if (s->queue.empty()) break;
    std::function<void()> w = std::move(s->queue.front());
    s->queue.pop_front();
    s->running = true;
    g.unlock();
    usleep(200); // late: the host runs ahead
    if (drv().sticky == CUDA_SUCCESS) w();
    g.lock();
    s->running = false;
    if (s->queue.empty()) s->idle.notify_all();
  }
}

void stream_drain(Stream *s) {
  if (!s->thread.joinable()) return;
  std::unique_lock<std::mutex> g(s->mu);
  s->idle.wait(g, [&] { return s->queue.empty() && !s->running; });
}

// Every stream's work done (before memory or a module goes away).
void drain_all() {
  Driver &d = drv();
  std::vector<Stream *> all;
  {
    std::lock_guard<std::mutex> g(d.mu);
    all.assign(d.streams.begin(), d.streams.end());
  }
  stream_drain(&d.null_stream);
  for (Stream *s : all) stream_drain(s);
}

void stream_stop(Stream *s) {
  if (!s->thread.joinable()) return;
  {
    std::lock_guard<std::mutex> g(s->mu);
    s->stop = true;
  }
  s->wake.notify_all();
  s->thread.join();
}

void stream_start(Stream *s) {
  if (drv().async) s->thread = std::thread(stream_thread, s);
}

Driver::~Driver() {
  if (!calls_file.empty()) {
    FILE *f = fopen(calls_file.c_str(), "w");
    if (f) {
      for (auto &c : calls) fprintf(f, "%s %ld\n", c.first.c_str(), c.second);
      fclose(f);
    }
  }
  stream_stop(&null_stream);
  size_t bytes = 0;
  for (auto &a : device) bytes += a.second;
  if (!device.empty()) report("at exit: %zu device allocations (%zu bytes) were never freed", device.size(), bytes);
  if (!host.empty()) report("at exit: %zu pinned host allocations were never freed", host.size());
  const size_t events = events_live();
  if (!streams.empty() || events || !graphs.empty() || !execs.empty() || !modules.empty())
    report("at exit: never destroyed: %zu streams, %zu events, %zu graphs, %zu graph executables, %zu modules",
           streams.size(), events, graphs.size(), execs.size(), modules.size());
  // as the real driver does when the process ends: what was left is torn down (and was reported above)
  for (auto &a : device) free(reinterpret_cast<void *>(a.first));
  for (void *p : host) free(p);
  events_teardown();
  for (Graph *g : graphs) delete g;
  for (GraphExec *x : execs) delete x;
  for (Stream *st : streams) {
    stream_stop(st);
    delete st->capture;
    delete st;
  }
  for (Module *m : modules) module_unload(m);
}

long env_long(const char *name, long fallback) {
  const char *v = getenv(name);
  return v && *v ? strtol(v, nullptr, 10) : fallback;
}

// The options, read once by cuInit.
void configure(Driver &d) {
  SimtOptions o;
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  o.threads = (int)env_long("DIT_EMU_THREADS", cores > 0 ? cores : 1);
  if (o.threads < 1) o.threads = 1;
  const char *order = getenv("DIT_EMU_ORDER");
  if (order && strncmp(order, "random", 6) == 0) {
    o.random_order = true;
    o.seed = order[6] == ':' ? strtoull(order + 7, nullptr, 10) : 1;
  }
  o.poison = env_long("DIT_EMU_POISON", 0) != 0;
#if defined(DIT_EMU_SANITIZE)
  o.stack_bytes = 512 << 10; // ASan's redzones
#endif
  o.stack_bytes = (size_t)env_long("DIT_EMU_STACK_KB", (long)(o.stack_bytes >> 10)) << 10;
  simt_configure(o);
  d.async = env_long("DIT_EMU_ASYNC", 0) != 0;
  d.total = (size_t)env_long("DIT_EMU_MEMORY_MB", 16 << 10) << 20;
  const char *fail = getenv("DIT_EMU_FAIL");
  if (fail && *fail) {
    const char *colon = strchr(fail, ':');
    d.fail_fn = colon ? std::string(fail, colon) : fail;
    d.fail_n = colon ? strtol(colon + 1, nullptr, 10) : 1;
  }
  const char *calls = getenv("DIT_EMU_CALLS");
  if (calls && *calls) d.calls_file = calls;
}

Stream *stream_of(CUstream h) {
  Driver &d = drv();
  if (!h || h == CU_STREAM_LEGACY || h == CU_STREAM_PER_THREAD) return &d.null_stream;
  Stream *s = reinterpret_cast<Stream *>(h);
  std::lock_guard<std::mutex> g(d.mu);
  return d.streams.count(s) ? s : nullptr;
}

CUresult sticky() { return static_cast<CUresult>(drv().sticky.load()); }

// A kernel failed: its error becomes the context's.
void kernel_failed(const std::string &msg) {
  int expected = CUDA_SUCCESS;
  if (drv().sticky.compare_exchange_strong(expected, CUDA_ERROR_LAUNCH_FAILED)) report("%s", msg.c_str());
}

#define ENTER(name, fail_rc)                       \
  do {                                             \
    if (!drv().inited && strcmp(name, "cuInit")) return CUDA_ERROR_NOT_INITIALIZED; \
    if (api_call(name)) return fail_rc;            \
  } while (0)

}  // namespace

bool api_call(const char *name) {
  Driver &d = drv();
  std::lock_guard<std::mutex> g(d.mu);
  long n = ++d.calls[name];
  if (d.fail_n > 0 && n == d.fail_n && d.fail_fn == name) {
    report("injected failure: call %ld of %s", n, name);
    return true;
  }
  return false;
}

bool driver_inited() { return drv().inited; }
CUresult sticky_error() { return sticky(); }

CUresult stream_submit(CUstream h, std::function<void()> work) {
  Stream *s = stream_of(h);
  if (!s) return CUDA_ERROR_INVALID_HANDLE;
  if (s->capture) {
    s->capture->nodes.push_back(std::move(work));
    return CUDA_SUCCESS;
  }
  if (sticky() != CUDA_SUCCESS) return sticky();
  if (s->thread.joinable()) {
    {
      std::lock_guard<std::mutex> g(s->mu);
      s->queue.push_back(std::move(work));
    }
    s->wake.notify_all();
    return CUDA_SUCCESS;
  }
  work();
  return CUDA_SUCCESS;
}

bool device_range(CUdeviceptr p, size_t bytes) {
  Driver &d = drv();
  std::lock_guard<std::mutex> g(d.mu);
  auto it = d.device.upper_bound((uintptr_t)p);
  if (it == d.device.begin()) return false;
  --it;
  return (uintptr_t)p >= it->first && bytes <= it->second && (uintptr_t)p - it->first <= it->second - bytes;
}

void report(const char *f, ...) {
  char buf[2048];
  va_list ap;
  va_start(ap, f);
  vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  fprintf(stderr, "dit-emu: %s\n", buf);
}

}  // namespace emu

using namespace emu;

#define EMU_API extern "C" __attribute__((visibility("default")))

// --- errors ---

namespace {
struct ErrName {
  CUresult rc;
  const char *name, *text;
};
const ErrName ERRORS[] = {
    {CUDA_SUCCESS, "CUDA_SUCCESS", "no error"},
    {CUDA_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {CUDA_ERROR_OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {CUDA_ERROR_NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {CUDA_ERROR_INVALID_DEVICE, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {CUDA_ERROR_INVALID_IMAGE, "CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
    {CUDA_ERROR_INVALID_CONTEXT, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {CUDA_ERROR_INVALID_HANDLE, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
    {CUDA_ERROR_NOT_READY, "CUDA_ERROR_NOT_READY", "device not ready"},
    {CUDA_ERROR_NOT_FOUND, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {CUDA_ERROR_LAUNCH_FAILED, "CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"},
    {CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", "too many resources requested for launch"},
    {CUDA_ERROR_NOT_SUPPORTED, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
    {CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED", "operation not permitted when stream is capturing"},
    {CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED", "operation failed due to a previous error during capture"},
    {CUDA_ERROR_ILLEGAL_STATE, "CUDA_ERROR_ILLEGAL_STATE", "the operation is not permitted in this state"},
    {CUDA_ERROR_UNKNOWN, "CUDA_ERROR_UNKNOWN", "unknown error"},
};
const ErrName *err_of(CUresult rc) {
  for (const auto &e : ERRORS)
    if (e.rc == rc) return &e;
  return nullptr;
}
}  // namespace

EMU_API CUresult cuGetErrorName(CUresult rc, const char **s) {
  const ErrName *e = err_of(rc);
  if (!s) return CUDA_ERROR_INVALID_VALUE;
  *s = e ? e->name : nullptr;
  return e ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

EMU_API CUresult cuGetErrorString(CUresult rc, const char **s) {
  const ErrName *e = err_of(rc);
  if (!s) return CUDA_ERROR_INVALID_VALUE;
  *s = e ? e->text : nullptr;
  return e ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

// --- init, devices, context ---

EMU_API CUresult cuInit(unsigned int flags) {
  ENTER("cuInit", CUDA_ERROR_UNKNOWN);
  if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
  Driver &d = drv();
  std::lock_guard<std::mutex> g(d.mu);
  if (!d.inited) {
    configure(d);
    stream_start(&d.null_stream);
    d.inited = true;
  }
  return CUDA_SUCCESS;
}

EMU_API CUresult cuDriverGetVersion(int *v) {
  ENTER("cuDriverGetVersion", CUDA_ERROR_UNKNOWN);
  if (!v) return CUDA_ERROR_INVALID_VALUE;
  *v = CUDA_VERSION;
  return CUDA_SUCCESS;
}

EMU_API CUresult cuDeviceGetCount(int *n) {
  ENTER("cuDeviceGetCount", CUDA_ERROR_UNKNOWN);
  if (!n) return CUDA_ERROR_INVALID_VALUE;
  *n = 1;
  return CUDA_SUCCESS;
}

EMU_API CUresult cuDeviceGet(CUdevice *dev, int ordinal) {
  ENTER("cuDeviceGet", CUDA_ERROR_UNKNOWN);
  if (!dev) return CUDA_ERROR_INVALID_VALUE;
  if (ordinal != 0) return CUDA_ERROR_INVALID_DEVICE;
  *dev = 0;
  return CUDA_SUCCESS;
}

EMU_API CUresult cuDeviceGetName(char *name, int len, CUdevice dev) {
  ENTER("cuDeviceGetName", CUDA_ERROR_UNKNOWN);
  if (!name || len < 1) return CUDA_ERROR_INVALID_VALUE;
  if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
  snprintf(name, (size_t)len, "dit emulated device");
  return CUDA_SUCCESS;
}

EMU_API CUresult cuDeviceGetAttribute(int *v, CUdevice_attribute a, CUdevice dev) {
  ENTER("cuDeviceGetAttribute", CUDA_ERROR_UNKNOWN);
  if (!v) return CUDA_ERROR_INVALID_VALUE;
  if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
  switch (a) {
  case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *v = 8; break;
  case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *v = 0; break;
  case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *v = 1024; break;
  case CU_DEVICE_ATTRIBUTE_WARP_SIZE: *v = 32; break;
  case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *v = (int)env_long("DIT_EMU_THREADS", 1); break;
  case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK: *v = 48 * 1024; break;
  case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: *v = 227 * 1024; break;
  default:
    report("cuDeviceGetAttribute: attribute %d is not emulated", (int)a);
    return CUDA_ERROR_NOT_SUPPORTED;
  }
  return CUDA_SUCCESS;
}

EMU_API CUresult cuDevicePrimaryCtxRetain(CUcontext *ctx, CUdevice dev) {
  ENTER("cuDevicePrimaryCtxRetain", CUDA_ERROR_OUT_OF_MEMORY);
  if (!ctx) return CUDA_ERROR_INVALID_VALUE;
  if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
  Driver &d = drv();
  std::lock_guard<std::mutex> g(d.mu);
  d.ctx.refs++;
  *ctx = reinterpret_cast<CUcontext>(&d.ctx);
  return CUDA_SUCCESS;
}

EMU_API CUresult cuDevicePrimaryCtxRelease(CUdevice dev) {
  ENTER("cuDevicePrimaryCtxRelease", CUDA_ERROR_UNKNOWN);
  if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
  Driver &d = drv();
  std::lock_guard<std::mutex> g(d.mu);
  if (d.ctx.refs < 1) return CUDA_ERROR_INVALID_CONTEXT;
  d.ctx.refs--;
  return CUDA_SUCCESS;
}

EMU_API CUresult cuCtxSetCurrent(CUcontext ctx) {
  ENTER("cuCtxSetCurrent", CUDA_ERROR_UNKNOWN);
  Driver &d = drv();
  if (ctx && (reinterpret_cast<Context *>(ctx) != &d.ctx || d.ctx.refs < 1)) return CUDA_ERROR_INVALID_CONTEXT;
  return CUDA_SUCCESS;
}

// --- memory ---

EMU_API CUresult cuMemAlloc(CUdeviceptr *p, size_t bytes) {
  ENTER("cuMemAlloc", CUDA_ERROR_OUT_OF_MEMORY);
  if (!p || bytes == 0) return CUDA_ERROR_INVALID_VALUE;
  Driver &d = drv();
  std::lock_guard<std::mutex> g(d.mu);
  if (bytes > d.total - d.used) return CUDA_ERROR_OUT_OF_MEMORY;
  void *m = aligned_alloc(256, (bytes + 255) / 256 * 256); // cudaMalloc's alignment
  if (!m) return CUDA_ERROR_OUT_OF_MEMORY;
  d.device[(uintptr_t)m] = bytes;
  d.used += bytes;
  *p = (CUdeviceptr)(uintptr_t)m;
  return CUDA_SUCCESS;
}

EMU_API CUresult cuMemFree(CUdeviceptr p) {
  ENTER("cuMemFree", CUDA_ERROR_UNKNOWN);
  Driver &d = drv();
  drain_all();
  std::lock_guard<std::mutex> g(d.mu);
  auto it = d.device.find((uintptr_t)p);
  if (it == d.device.end()) {
    report("cuMemFree of %#llx, which is not an allocation", (unsigned long long)p);
    return CUDA_ERROR_INVALID_VALUE;
  }
  d.used -= it->second;
  free(reinterpret_cast<void *>(it->first));
  d.device.erase(it);
  return CUDA_SUCCESS;
}

EMU_API CUresult cuMemAllocHost(void **p, size_t bytes) {
  ENTER("cuMemAllocHost", CUDA_ERROR_OUT_OF_MEMORY);
  if (!p || bytes == 0) return CUDA_ERROR_INVALID_VALUE;
  void *m = aligned_alloc(4096, (bytes + 4095) / 4096 * 4096);
  if (!m) return CUDA_ERROR_OUT_OF_MEMORY;
  Driver &d = drv();
  std::lock_guard<std::mutex> g(d.mu);
  d.host.insert(m);
  *p = m;
  return CUDA_SUCCESS;
}

EMU_API CUresult cuMemFreeHost(void *p) {
  ENTER("cuMemFreeHost", CUDA_ERROR_UNKNOWN);
  Driver &d = drv();
  std::lock_guard<std::mutex> g(d.mu);
  if (!d.host.erase(p)) return CUDA_ERROR_INVALID_VALUE;
  free(p);
  return CUDA_SUCCESS;
}

EMU_API CUresult cuMemGetInfo(size_t *free_bytes, size_t *total) {
  ENTER("cuMemGetInfo", CUDA_ERROR_UNKNOWN);
  if (!free_bytes || !total) return CUDA_ERROR_INVALID_VALUE;
  Driver &d = drv();
  std::lock_guard<std::mutex> g(d.mu);
  *free_bytes = d.total - d.used;
  *total = d.total;
  return CUDA_SUCCESS;
}

namespace {
// A copy's device side must lie inside one allocation.
CUresult check_range(const char *fn, CUdeviceptr p, size_t bytes) {
  if (bytes == 0 || device_range(p, bytes)) return CUDA_SUCCESS;
  report("%s: [%#llx, +%zu) is not inside one device allocation", fn, (unsigned long long)p, bytes);
  return CUDA_ERROR_INVALID_VALUE;
}
}  // namespace

EMU_API CUresult cuMemcpyHtoDAsync(CUdeviceptr dst, const void *src, size_t bytes, CUstream s) {
  ENTER("cuMemcpyHtoDAsync", CUDA_ERROR_UNKNOWN);
  CUresult rc = check_range("cuMemcpyHtoDAsync", dst, bytes);
  if (rc || !bytes) return rc;
  if (!src) return CUDA_ERROR_INVALID_VALUE;
  return stream_submit(s, [=] { memcpy(reinterpret_cast<void *>(dst), src, bytes); });
}

EMU_API CUresult cuMemcpyDtoHAsync(void *dst, CUdeviceptr src, size_t bytes, CUstream s) {
  ENTER("cuMemcpyDtoHAsync", CUDA_ERROR_UNKNOWN);
  CUresult rc = check_range("cuMemcpyDtoHAsync", src, bytes);
  if (rc || !bytes) return rc;
  if (!dst) return CUDA_ERROR_INVALID_VALUE;
  return stream_submit(s, [=] { memcpy(dst, reinterpret_cast<const void *>(src), bytes); });
}

EMU_API CUresult cuMemcpyDtoDAsync(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream s) {
  ENTER("cuMemcpyDtoDAsync", CUDA_ERROR_UNKNOWN);
  CUresult rc = check_range("cuMemcpyDtoDAsync", dst, bytes);
  if (!rc) rc = check_range("cuMemcpyDtoDAsync", src, bytes);
  if (rc || !bytes) return rc;
  return stream_submit(s, [=] { memmove(reinterpret_cast<void *>(dst), reinterpret_cast<const void *>(src), bytes); });
}

EMU_API CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char v, size_t n, CUstream s) {
  ENTER("cuMemsetD8Async", CUDA_ERROR_UNKNOWN);
  CUresult rc = check_range("cuMemsetD8Async", dst, n);
  if (rc || !n) return rc;
  return stream_submit(s, [=] { memset(reinterpret_cast<void *>(dst), v, n); });
}

// --- streams and events ---

EMU_API CUresult cuStreamCreate(CUstream *h, unsigned int flags) {
  ENTER("cuStreamCreate", CUDA_ERROR_OUT_OF_MEMORY);
  if (!h || (flags & ~CU_STREAM_NON_BLOCKING)) return CUDA_ERROR_INVALID_VALUE;
  Stream *s = new Stream;
  stream_start(s);
  Driver &d = drv();
  std::lock_guard<std::mutex> g(d.mu);
  d.streams.insert(s);
  *h = reinterpret_cast<CUstream>(s);
  return CUDA_SUCCESS;
}

EMU_API CUresult cuStreamDestroy(CUstream h) {
  ENTER("cuStreamDestroy", CUDA_ERROR_UNKNOWN);
  Stream *s = h ? stream_of(h) : nullptr;
  if (!s || s == &drv().null_stream) return CUDA_ERROR_INVALID_HANDLE;
  stream_drain(s);
  stream_stop(s);
  Driver &d = drv();
  {
    std::lock_guard<std::mutex> g(d.mu);
    d.streams.erase(s);
  }
  delete s->capture;
  s->magic = 0;
  delete s;
  return CUDA_SUCCESS;
}

EMU_API CUresult cuStreamSynchronize(CUstream h) {
  ENTER("cuStreamSynchronize", CUDA_ERROR_UNKNOWN);
  Stream *s = stream_of(h);
  if (!s) return CUDA_ERROR_INVALID_HANDLE;
  if (s->capture) { // not permitted while capturing: the capture is broken
    s->capture_broken = true;
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  }
  stream_drain(s);
  return sticky();
}

// the events: emu_event.cpp

// --- modules and launches ---

EMU_API CUresult cuModuleLoadDataEx(CUmodule *m, const void *image, unsigned int n, CUjit_option *opts, void **vals) {
  ENTER("cuModuleLoadDataEx", CUDA_ERROR_INVALID_IMAGE);
  if (!m || !image || (n && (!opts || !vals))) return CUDA_ERROR_INVALID_VALUE;
  char *log = nullptr;
  size_t log_size = 0;
  for (unsigned i = 0; i < n; i++) {
    if (opts[i] == CU_JIT_ERROR_LOG_BUFFER) {
      log = static_cast<char *>(vals[i]);
    } else if (opts[i] == CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES) {
      log_size = (size_t)(uintptr_t)vals[i];
    } else {
      report("cuModuleLoadDataEx: JIT option %d is not emulated", (int)opts[i]);
      return CUDA_ERROR_NOT_SUPPORTED;
    }
  }
  CUresult rc;
  std::string why;
  Module *mod = module_load(image, &rc, &why);
  if (!mod) {
    if (log && log_size) snprintf(log, log_size, "%s", why.c_str());
    else report("cuModuleLoadDataEx: %s", why.c_str());
    return rc;
  }
  Driver &d = drv();
  std::lock_guard<std::mutex> g(d.mu);
  d.modules.insert(mod);
  *m = reinterpret_cast<CUmodule>(mod);
  return CUDA_SUCCESS;
}

namespace {
Module *module_of(CUmodule h) {
  Driver &d = drv();
  std::lock_guard<std::mutex> g(d.mu);
  Module *m = reinterpret_cast<Module *>(h);
  return d.modules.count(m) ? m : nullptr;
}
}  // namespace

EMU_API CUresult cuModuleUnload(CUmodule h) {
  ENTER("cuModuleUnload", CUDA_ERROR_UNKNOWN);
  Module *m = module_of(h);
  if (!m) return CUDA_ERROR_INVALID_HANDLE;
  Driver &d = drv();
  drain_all();
  {
    std::lock_guard<std::mutex> g(d.mu);
    d.modules.erase(m);
  }
  module_unload(m);
  return CUDA_SUCCESS;
}

EMU_API CUresult cuModuleGetFunction(CUfunction *f, CUmodule h, const char *name) {
  ENTER("cuModuleGetFunction", CUDA_ERROR_NOT_FOUND);
  Module *m = module_of(h);
  if (!m) return CUDA_ERROR_INVALID_HANDLE;
  if (!f || !name) return CUDA_ERROR_INVALID_VALUE;
  CUresult rc;
  Function *fn = module_function(m, name, &rc);
  if (fn) *f = reinterpret_cast<CUfunction>(fn);
  return rc;
}

EMU_API CUresult cuFuncSetAttribute(CUfunction h, CUfunction_attribute a, int v) {
  ENTER("cuFuncSetAttribute", CUDA_ERROR_UNKNOWN);
  Function *f = reinterpret_cast<Function *>(h);
  if (!f || f->magic != FUNCTION_MAGIC) return CUDA_ERROR_INVALID_HANDLE;
  if (a != CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES) {
    report("cuFuncSetAttribute: attribute %d is not emulated", (int)a);
    return CUDA_ERROR_NOT_SUPPORTED;
  }
  if (v < 0 || v > 227 * 1024) return CUDA_ERROR_INVALID_VALUE;
  f->max_dynamic_smem = v;
  return CUDA_SUCCESS;
}

EMU_API CUresult cuLaunchKernel(CUfunction h, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                                unsigned bz, unsigned smem, CUstream s, void **params, void **extra) {
  ENTER("cuLaunchKernel", CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES);
  Function *f = reinterpret_cast<Function *>(h);
  if (!f || f->magic != FUNCTION_MAGIC) return CUDA_ERROR_INVALID_HANDLE;
  const dit_emu::Kernel *k = f->kernel.k;
  if (extra) {
    report("cuLaunchKernel: the 'extra' parameter form is not emulated (%s)", k->name);
    return CUDA_ERROR_NOT_SUPPORTED;
  }
  if (!gx || !gy || !gz || !bx || !by || !bz || gx > 0x7fffffffu || gy > 65535 || gz > 65535 || bx > 1024 ||
      by > 1024 || bz > 64 || (uint64_t)bx * by * bz > 1024) {
    report("cuLaunchKernel %s: grid (%u,%u,%u), block (%u,%u,%u) is out of range", k->name, gx, gy, gz, bx, by, bz);
    return CUDA_ERROR_INVALID_VALUE;
  }
  if (smem > (unsigned)std::max(48 * 1024, f->max_dynamic_smem)) {
    report("cuLaunchKernel %s: %u bytes of dynamic shared memory, above the function's limit", k->name, smem);
    return CUDA_ERROR_INVALID_VALUE;
  }
  if (k->n_params && !params) return CUDA_ERROR_INVALID_VALUE;
  // the parameters are copied now, as the driver does
  std::vector<size_t> offset(k->n_params);
  size_t total = 0;
  for (int i = 0; i < k->n_params; i++) {
    total = (total + 15) / 16 * 16;
    offset[i] = total;
    total += k->param_sizes[i];
  }
  auto buf = std::make_shared<std::vector<unsigned char>>(total + 16);
  for (int i = 0; i < k->n_params; i++) {
    if (!params[i]) return CUDA_ERROR_INVALID_VALUE;
    memcpy(buf->data() + offset[i], params[i], k->param_sizes[i]);
  }
  SimtKernel kern = f->kernel;
  SimtLaunch l = {{gx, gy, gz}, {bx, by, bz}, smem};
  return stream_submit(s, [kern, l, buf, offset] {
    std::vector<void *> p(offset.size());
    for (size_t i = 0; i < offset.size(); i++) p[i] = buf->data() + offset[i];
    std::string err = simt_run(kern, l, p.data());
    if (!err.empty()) kernel_failed(err);
  });
}

// --- graphs ---

EMU_API CUresult cuStreamBeginCapture(CUstream h, CUstreamCaptureMode mode) {
  ENTER("cuStreamBeginCapture", CUDA_ERROR_UNKNOWN);
  (void)mode;
  Stream *s = stream_of(h);
  if (!s) return CUDA_ERROR_INVALID_HANDLE;
  if (s == &drv().null_stream) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  if (s->capture) return CUDA_ERROR_ILLEGAL_STATE;
  s->capture = new Graph;
  s->capture_broken = false;
  return CUDA_SUCCESS;
}

EMU_API CUresult cuStreamEndCapture(CUstream h, CUgraph *graph) {
  ENTER("cuStreamEndCapture", CUDA_ERROR_UNKNOWN);
  Stream *s = stream_of(h);
  if (!s) return CUDA_ERROR_INVALID_HANDLE;
  if (!s->capture) return CUDA_ERROR_ILLEGAL_STATE;
  Graph *g = s->capture;
  s->capture = nullptr;
  if (s->capture_broken || !graph) {
    delete g;
    if (graph) *graph = nullptr;
    return graph ? CUDA_ERROR_STREAM_CAPTURE_INVALIDATED : CUDA_ERROR_INVALID_VALUE;
  }
  Driver &d = drv();
  std::lock_guard<std::mutex> lk(d.mu);
  d.graphs.insert(g);
  *graph = reinterpret_cast<CUgraph>(g);
  return CUDA_SUCCESS;
}

EMU_API CUresult cuGraphInstantiate(CUgraphExec *exec, CUgraph h, unsigned long long flags) {
  ENTER("cuGraphInstantiate", CUDA_ERROR_OUT_OF_MEMORY);
  Driver &d = drv();
  std::lock_guard<std::mutex> lk(d.mu);
  Graph *g = reinterpret_cast<Graph *>(h);
  if (!exec || !d.graphs.count(g)) return CUDA_ERROR_INVALID_VALUE;
  if (flags != 0) {
    report("cuGraphInstantiate: flags %#llx are not emulated", flags);
    return CUDA_ERROR_NOT_SUPPORTED;
  }
  GraphExec *e = new GraphExec;
  e->nodes = g->nodes;
  d.execs.insert(e);
  *exec = reinterpret_cast<CUgraphExec>(e);
  return CUDA_SUCCESS;
}

EMU_API CUresult cuGraphLaunch(CUgraphExec h, CUstream s) {
  ENTER("cuGraphLaunch", CUDA_ERROR_UNKNOWN);
  GraphExec *e = reinterpret_cast<GraphExec *>(h);
  {
    Driver &d = drv();
    std::lock_guard<std::mutex> lk(d.mu);
    if (!d.execs.count(e)) return CUDA_ERROR_INVALID_HANDLE;
  }
  for (const auto &w : e->nodes) {
    CUresult rc = stream_submit(s, w);
    if (rc) return rc;
  }
  return CUDA_SUCCESS;
}

EMU_API CUresult cuGraphExecDestroy(CUgraphExec h) {
  ENTER("cuGraphExecDestroy", CUDA_ERROR_UNKNOWN);
  Driver &d = drv();
  std::lock_guard<std::mutex> lk(d.mu);
  GraphExec *e = reinterpret_cast<GraphExec *>(h);
  if (!d.execs.erase(e)) return CUDA_ERROR_INVALID_VALUE;
  e->magic = 0;
  delete e;
  return CUDA_SUCCESS;
}

EMU_API CUresult cuGraphDestroy(CUgraph h) {
  ENTER("cuGraphDestroy", CUDA_ERROR_UNKNOWN);
  Driver &d = drv();
  std::lock_guard<std::mutex> lk(d.mu);
  Graph *g = reinterpret_cast<Graph *>(h);
  if (!d.graphs.erase(g)) return CUDA_ERROR_INVALID_VALUE;
  g->magic = 0;
  delete g;
  return CUDA_SUCCESS;
}
