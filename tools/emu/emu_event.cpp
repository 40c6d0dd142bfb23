// emu_event.cpp: the events of the emulated driver (emu_driver.cpp owns the
// rest): cuEventCreate, Destroy, Record, Query, Synchronize and
// ElapsedTime, with <cuda.h>'s prototypes and ABI names (cuEventElapsedTime
// is cuEventElapsedTime_v2). A record is work on its stream: when the stream
// runs it, the event completes and takes the wall clock's time
// (steady_clock), so cuEventElapsedTime gives the real time between the
// moments the stream executed the two records. Emulated timings say nothing
// about a GPU's; their rules are the driver's: an event never recorded, or
// created with CU_EVENT_DISABLE_TIMING, is CUDA_ERROR_INVALID_HANDLE; one
// whose last record has not run yet is CUDA_ERROR_NOT_READY.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <new>
#include <set>

#include "emu_internal.h"

namespace emu {
namespace {

enum : uint32_t { EVENT_MAGIC = 0x45564e54u };

struct Event {
  uint32_t magic = EVENT_MAGIC;
  unsigned flags = 0;
  std::atomic<uint64_t> recorded{0}, completed{0}; // records made; the last one the stream ran
  std::atomic<int64_t> at_ns{0};                   // steady_clock when it ran
};

struct Events {
  std::mutex mu;
  std::set<Event *> live;
};

// Never destroyed: the driver's exit report reads it from its own destructor.
Events &events() {
  static Events *e = new Events;
  return *e;
}

Event *event_of(CUevent h) {
  Events &ev = events();
  std::lock_guard<std::mutex> g(ev.mu);
  Event *e = reinterpret_cast<Event *>(h);
  return h && ev.live.count(e) ? e : nullptr;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

#define ENTER(name, fail_rc)                                             \
  do {                                                                   \
    if (!driver_inited()) return CUDA_ERROR_NOT_INITIALIZED;             \
    if (api_call(name)) return fail_rc;                                  \
  } while (0)

}  // namespace

size_t events_live() {
  Events &ev = events();
  std::lock_guard<std::mutex> g(ev.mu);
  return ev.live.size();
}

void events_teardown() {
  Events &ev = events();
  std::lock_guard<std::mutex> g(ev.mu);
  for (Event *e : ev.live) delete e;
  ev.live.clear();
}

}  // namespace emu

using namespace emu;

#define EMU_API extern "C" __attribute__((visibility("default")))

EMU_API CUresult cuEventCreate(CUevent *h, unsigned int flags) {
  ENTER("cuEventCreate", CUDA_ERROR_OUT_OF_MEMORY);
  if (!h || (flags & ~(CU_EVENT_DISABLE_TIMING | CU_EVENT_BLOCKING_SYNC))) return CUDA_ERROR_INVALID_VALUE;
  Event *e = new (std::nothrow) Event;
  if (!e) return CUDA_ERROR_OUT_OF_MEMORY;
  e->flags = flags;
  Events &ev = events();
  std::lock_guard<std::mutex> g(ev.mu);
  ev.live.insert(e);
  *h = reinterpret_cast<CUevent>(e);
  return CUDA_SUCCESS;
}

EMU_API CUresult cuEventDestroy(CUevent h) {
  ENTER("cuEventDestroy", CUDA_ERROR_UNKNOWN);
  Events &ev = events();
  std::lock_guard<std::mutex> g(ev.mu);
  Event *e = reinterpret_cast<Event *>(h);
  if (!h || !ev.live.count(e)) return CUDA_ERROR_INVALID_HANDLE;
  ev.live.erase(e);
  e->magic = 0;
  delete e;
  return CUDA_SUCCESS;
}

EMU_API CUresult cuEventRecord(CUevent h, CUstream s) {
  ENTER("cuEventRecord", CUDA_ERROR_UNKNOWN);
  Event *e = event_of(h);
  if (!e) return CUDA_ERROR_INVALID_HANDLE;
  uint64_t mark = ++e->recorded;
  return stream_submit(s, [e, mark] {
    e->at_ns.store(now_ns());
    uint64_t c = e->completed.load();
    while (c < mark && !e->completed.compare_exchange_weak(c, mark)) {
    }
  });
}

EMU_API CUresult cuEventQuery(CUevent h) {
  ENTER("cuEventQuery", CUDA_ERROR_UNKNOWN);
  Event *e = event_of(h);
  if (!e) return CUDA_ERROR_INVALID_HANDLE;
  if (sticky_error() != CUDA_SUCCESS) return sticky_error();
  return e->completed.load() >= e->recorded.load() ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

EMU_API CUresult cuEventSynchronize(CUevent h) {
  ENTER("cuEventSynchronize", CUDA_ERROR_UNKNOWN);
  Event *e = event_of(h);
  if (!e) return CUDA_ERROR_INVALID_HANDLE;
  uint64_t mark = e->recorded.load();
  while (e->completed.load() < mark && sticky_error() == CUDA_SUCCESS) usleep(50);
  return sticky_error();
}

EMU_API CUresult cuEventElapsedTime(float *ms, CUevent start, CUevent end) {
  ENTER("cuEventElapsedTime", CUDA_ERROR_UNKNOWN);
  if (!ms) return CUDA_ERROR_INVALID_VALUE;
  Event *a = event_of(start), *b = event_of(end);
  if (!a || !b) return CUDA_ERROR_INVALID_HANDLE;
  if ((a->flags | b->flags) & CU_EVENT_DISABLE_TIMING) return CUDA_ERROR_INVALID_HANDLE;
  if (!a->recorded.load() || !b->recorded.load()) return CUDA_ERROR_INVALID_HANDLE; // never recorded
  if (a->completed.load() < a->recorded.load() || b->completed.load() < b->recorded.load())
    return CUDA_ERROR_NOT_READY;
  *ms = static_cast<float>(static_cast<double>(b->at_ns.load() - a->at_ns.load()) / 1e6);
  return CUDA_SUCCESS;
}

// The ABI before CUDA 12.8 (cuda.h now maps the name to _v2): the same call.
#undef cuEventElapsedTime
EMU_API CUresult cuEventElapsedTime(float *ms, CUevent start, CUevent end);
CUresult cuEventElapsedTime(float *ms, CUevent start, CUevent end) { return cuEventElapsedTime_v2(ms, start, end); }
