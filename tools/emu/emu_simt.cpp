// emu_simt.cpp: the SIMT executor (see emu_simt.h). A worker runs one block:
// its fibers wait in a ready queue; the worker switches to the first, which
// runs until it reaches a barrier or ends, and decides what the arrival
// releases. A block barrier releases when every thread is there; a warp
// operation when every lane of its mask has posted the same operation with
// the same mask, its results computed by the worker before any lane resumes.
// When the queue is empty and threads remain, the block is deadlocked.
#define _GNU_SOURCE 1
#include "emu_simt.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdarg.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "emu_fiber.h"

namespace emu {
namespace {

enum FState { READY, RUNNING, AT_BAR, AT_WARP, DONE, TRAPPED };

struct Post {
  int kind;
  unsigned mask;
  uint64_t value;
  int arg, width;
  const char *file;
  int line;
  DitEmuCollectiveFn fn;
  const void *in;
  void *out;
};

struct Fiber {
  EmuFiber ctx;
  DitEmuThread ids;
  FState state;
  Post post;       // AT_WARP: the operation; AT_BAR, TRAPPED: file and line
  uint64_t result;
  const char *what; // TRAPPED
  uint32_t prio;    // the random order's priority
};

struct Job;

// A warp's lanes: those waiting at a warp operation, those that have ended.
struct WarpState {
  unsigned posted = 0, exited = 0;
  int first = 0; // a posted lane, while posted != 0
};

// One worker thread's state: its fibers and their stacks, reused block after block.
struct Worker {
  std::vector<EmuFiberStack> stacks;
  std::vector<Fiber> fibers;
  EmuFiber sched{};
  int cur = 0, n = 0, done = 0, at_bar = 0, bar_first = 0;
  std::deque<int> ready; // FIFO; a max-heap by priority under the random order
  struct ByPrio {
    const std::vector<struct Fiber> *f;
    bool operator()(int a, int b) const { return (*f)[a].prio < (*f)[b].prio; }
  } by_prio{&fibers};
  std::vector<WarpState> warps;
  std::vector<int> order; // 0..n-1, shuffled in place by a random release
  std::vector<unsigned char> dynamic;
  const Job *job = nullptr;
  uint64_t rng = 0;
  std::string error;
  void *tls_module = nullptr; // the module whose TLS block range is cached
  unsigned char *tls_block = nullptr;
  size_t tls_bytes = 0;
};

thread_local Worker *tl_worker;

struct Job {
  SimtKernel k;
  SimtLaunch l;
  void *const *params;
  uint64_t blocks;
  std::atomic<uint64_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  std::string error;
  SimtOptions opts;
};

const char *base_name(const char *f) {
  const char *s = strrchr(f, '/');
  return s ? s + 1 : f;
}

std::string fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char *f, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, f);
  vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

const char *kind_name(int k) {
  static const char *const names[] = {"__shfl_sync", "__shfl_up_sync", "__shfl_down_sync", "__shfl_xor_sync",
                                      "__ballot_sync", "__any_sync", "__all_sync", "__syncwarp",
                                      "a warp-collective operation"};
  return k >= 0 && k <= DIT_EMU_COLLECTIVE ? names[k] : "?";
}

std::string thread_name(const Fiber &f) {
  return fmt("thread (%u,%u,%u)", f.ids.threadIdx.x, f.ids.threadIdx.y, f.ids.threadIdx.z);
}

// Ends the block with an error (the first one counts).
void fail(Worker *w, const std::string &msg) {
  if (w->error.empty()) {
    const DitEmuThread &t = w->fibers[0].ids;
    w->error = fmt("kernel %s, block (%u,%u,%u): ", w->job->k.k->name, t.blockIdx.x, t.blockIdx.y, t.blockIdx.z) + msg;
  }
}

uint64_t next_rand(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

// Queues the released fibers, in index order or shuffled.
void release(Worker *w, int *ids, int n, bool new_priorities) {
  if (w->job->opts.random_order)
    for (int i = n; i > 1; i--) std::swap(ids[i - 1], ids[next_rand(&w->rng) % i]);
  for (int i = 0; i < n; i++) {
    w->fibers[ids[i]].state = READY;
    if (w->job->opts.random_order && new_priorities) w->fibers[ids[i]].prio = (uint32_t)next_rand(&w->rng);
    w->ready.push_back(ids[i]);
    if (w->job->opts.random_order) std::push_heap(w->ready.begin(), w->ready.end(), w->by_prio);
  }
}

Fiber &current() { return tl_worker->fibers[tl_worker->cur]; }

void after(Worker *w, int i);

// The next fiber to run: the oldest ready one, or under the random order the
// ready one of the highest priority, drawn anew for each fiber at the block's
// start and at each __syncthreads: a fiber of low priority waits until every other one is blocked,
// so the others run far ahead of it, which a missing barrier does not survive.
int pick_ready(Worker *w) {
  if (w->job->opts.random_order) { /* the queue is a heap by priority */
    std::pop_heap(w->ready.begin(), w->ready.end(), w->by_prio);
    int j = w->ready.back();
    w->ready.pop_back();
    return j;
  }
  int j = w->ready.front();
  w->ready.pop_front();
  return j;
}

// The running fiber has stopped (at a barrier, or for good): what its stop
// releases is decided here, on its stack, and the next ready fiber runs,
// switched to directly (or this one goes on, when it is the next); the
// scheduler gets control back only when no fiber is ready or on an error.
void stop_here(Fiber &f, int exits) {
  Worker *w = tl_worker;
  int i = w->cur;
  after(w, i);
  if (!w->error.empty() || w->ready.empty()) {
    emu_fiber_switch(&f.ctx, &w->sched, exits);
    return;
  }
  int j = pick_ready(w);
  w->cur = j;
  w->fibers[j].state = RUNNING;
  if (j != i) emu_fiber_switch(&f.ctx, &w->fibers[j].ctx, exits);
}

void yield_to_scheduler(Fiber &f) { stop_here(f, 0); }

// --- the API the module calls ---

const DitEmuThread *api_self(void) { return &current().ids; }

void api_syncthreads(const char *file, int line) {
  Fiber &f = current();
  f.state = AT_BAR;
  f.post.file = file;
  f.post.line = line;
  yield_to_scheduler(f);
}

uint64_t api_warp(int kind, unsigned mask, uint64_t value, int arg, int width, const char *file, int line) {
  Fiber &f = current();
  f.state = AT_WARP;
  f.post = Post{kind, mask, value, arg, width, file, line, nullptr, nullptr, nullptr};
  yield_to_scheduler(f);
  return f.result;
}

void api_collective(unsigned mask, DitEmuCollectiveFn fn, const void *in, void *out, const char *file, int line) {
  Fiber &f = current();
  f.state = AT_WARP;
  f.post = Post{DIT_EMU_COLLECTIVE, mask, 0, 0, 32, file, line, fn, in, out};
  yield_to_scheduler(f);
}

void *api_dynamic_shared(void) { return tl_worker->dynamic.data(); }

void api_trap(const char *file, int line, const char *what) {
  Fiber &f = current();
  f.state = TRAPPED;
  f.post.file = file;
  f.post.line = line;
  f.what = what;
  yield_to_scheduler(f); // never resumed
}

const DitEmuApi the_api = {DIT_EMU_API_VERSION, api_self, api_syncthreads, api_warp, api_collective,
                           api_dynamic_shared, api_trap};

// --- the scheduler ---

void fiber_entry(void *arg) {
  Worker *w = static_cast<Worker *>(arg);
  Fiber &f = w->fibers[w->cur];
  EmuFiber from; // whichever fiber started this one: its stack is already known
  emu_fiber_started(&from);
  w->job->k.k->run(w->job->params);
  f.state = DONE;
  stop_here(f, 1);
}

std::string site(const Post &p) { return fmt("%s:%d", base_name(p.file), p.line); }

// The source lane of `lane` in a shuffle, or `lane` itself (its own value).
int shfl_source(const Post &p, int lane) {
  int seg = lane / p.width * p.width;
  switch (p.kind) {
  case DIT_EMU_SHFL_IDX: return seg + (p.arg & (p.width - 1));
  case DIT_EMU_SHFL_UP: return lane - p.arg >= seg ? lane - p.arg : lane;
  case DIT_EMU_SHFL_DOWN: return lane + p.arg < seg + p.width ? lane + p.arg : lane;
  case DIT_EMU_SHFL_XOR: return (lane ^ p.arg) < seg + p.width ? lane ^ p.arg : lane;
  }
  return lane;
}

bool same_op(const Post &a, const Post &b) {
  return a.kind == b.kind && a.mask == b.mask && a.width == b.width && (a.kind != DIT_EMU_COLLECTIVE || a.fn == b.fn);
}

// Lane `lane` of warp `base` (fibers base..base+31) has posted: checks it,
// and resolves the operation when every lane of its mask has posted it.
void warp_posted(Worker *w, int i) {
  int base = i / 32 * 32, lane = i % 32, lanes = std::min(32, w->n - base);
  WarpState &ws = w->warps[i / 32];
  Fiber &f = w->fibers[i];
  const Post &p = f.post;
  const char *op = kind_name(p.kind);
  if (!(p.mask >> lane & 1u))
    return fail(w, fmt("%s calls %s with mask 0x%08x, which excludes its own lane %d, at %s",
                       thread_name(f).c_str(), op, p.mask, lane, site(p).c_str()));
  if (lanes < 32 && (p.mask >> lanes) != 0)
    return fail(w, fmt("%s calls %s with mask 0x%08x, naming lanes beyond the block's last thread, at %s",
                       thread_name(f).c_str(), op, p.mask, site(p).c_str()));
  if (p.width < 1 || p.width > 32 || (p.width & (p.width - 1)))
    return fail(w, fmt("%s calls %s with width %d (a power of two up to 32), at %s", thread_name(f).c_str(), op,
                       p.width, site(p).c_str()));
  if (p.mask & ws.exited) {
    int j = __builtin_ctz(p.mask & ws.exited);
    return fail(w, fmt("%s calls %s with mask 0x%08x at %s, but lane %d (%s) has exited", thread_name(f).c_str(), op,
                       p.mask, site(p).c_str(), j, thread_name(w->fibers[base + j]).c_str()));
  }
  // a lane that waits for this one must wait for the same operation: usually
  // every waiting lane posted what the first did, and then there is nothing to check
  bool as_first = ws.posted && same_op(p, w->fibers[base + ws.first].post);
  if (!ws.posted) ws.first = lane;
  for (unsigned m = as_first ? 0u : ws.posted; m; m &= m - 1) {
    int j = __builtin_ctz(m);
    const Post &q = w->fibers[base + j].post;
    if ((q.mask >> lane & 1u) && !same_op(p, q))
      return fail(w, fmt("the lanes of a warp disagree: %s calls %s with mask 0x%08x at %s, lane %d (%s) calls "
                         "%s with mask 0x%08x at %s",
                         thread_name(f).c_str(), op, p.mask, site(p).c_str(), j, thread_name(w->fibers[base + j]).c_str(),
                         kind_name(q.kind), q.mask, site(q).c_str()));
  }
  ws.posted |= 1u << lane;
  if ((ws.posted & p.mask) != p.mask) return;
  for (unsigned m = p.mask; m; m &= m - 1)
    if (!same_op(p, w->fibers[base + __builtin_ctz(m)].post)) return; // another group: it completes on its own
  if (p.kind <= DIT_EMU_SHFL_XOR) {
    for (unsigned m = p.mask; m; m &= m - 1) {
      int j = __builtin_ctz(m), src = shfl_source(p, j);
      if (!(p.mask >> src & 1u))
        return fail(w, fmt("%s: lane %d reads lane %d, which is not in the mask 0x%08x, at %s", op, j, src, p.mask,
                           site(p).c_str()));
      w->fibers[base + j].result = w->fibers[base + src].post.value;
    }
  } else if (p.kind <= DIT_EMU_VOTE_ALL) {
    unsigned ballot = 0;
    for (unsigned m = p.mask; m; m &= m - 1)
      if (w->fibers[base + __builtin_ctz(m)].post.value & 1u) ballot |= 1u << __builtin_ctz(m);
    uint64_t r = p.kind == DIT_EMU_VOTE_BALLOT ? ballot : p.kind == DIT_EMU_VOTE_ANY ? ballot != 0 : ballot == p.mask;
    for (unsigned m = p.mask; m; m &= m - 1) w->fibers[base + __builtin_ctz(m)].result = r;
  } else if (p.kind == DIT_EMU_COLLECTIVE) {
    const void *in[32] = {};
    void *out[32] = {};
    for (unsigned m = p.mask; m; m &= m - 1) {
      int j = __builtin_ctz(m);
      in[j] = w->fibers[base + j].post.in, out[j] = w->fibers[base + j].post.out;
    }
    p.fn(in, out, p.mask);
  }
  ws.posted &= ~p.mask;
  if (ws.posted) ws.first = __builtin_ctz(ws.posted);
  int ids[32], n = 0;
  for (unsigned m = p.mask; m; m &= m - 1) ids[n++] = base + __builtin_ctz(m);
  release(w, ids, n, false); // the priorities hold until the next block barrier
}

// The states of the waiting threads, for a deadlock report (the first few).
std::string waiting(const Worker *w) {
  std::string s;
  int shown = 0;
  for (int i = 0; i < w->n && shown < 4; i++) {
    const Fiber &f = w->fibers[i];
    if (f.state == AT_BAR) {
      s += fmt("; %s waits at __syncthreads %s", thread_name(f).c_str(), site(f.post).c_str());
      shown++;
    } else if (f.state == AT_WARP) {
      s += fmt("; %s waits at %s (mask 0x%08x) %s", thread_name(f).c_str(), kind_name(f.post.kind), f.post.mask,
               site(f.post).c_str());
      shown++;
    }
  }
  return s;
}

// What fiber i's stop means for the block.
void after(Worker *w, int i) {
  Fiber &f = w->fibers[i];
  switch (f.state) {
  case DONE: {
    w->done++;
    WarpState &ws = w->warps[i / 32];
    ws.exited |= 1u << (i % 32);
    for (unsigned m = ws.posted; m; m &= m - 1) { // lanes waiting for it
      const Fiber &g = w->fibers[i / 32 * 32 + __builtin_ctz(m)];
      if (g.post.mask >> (i % 32) & 1u)
        return fail(w, fmt("%s exits while lane %d (%s) waits for it at %s (mask 0x%08x) %s", thread_name(f).c_str(),
                           __builtin_ctz(m), thread_name(g).c_str(), kind_name(g.post.kind), g.post.mask,
                           site(g.post).c_str()));
    }
    break;
  }
  case TRAPPED:
    return fail(w, fmt("%s: %s at %s", thread_name(f).c_str(), f.what, site(f.post).c_str()));
  case AT_BAR:
    if (w->at_bar == 0) {
      w->bar_first = i;
    } else {
      const Fiber &g = w->fibers[w->bar_first];
      if (g.post.line != f.post.line || strcmp(g.post.file, f.post.file) != 0)
        return fail(w, fmt("divergent __syncthreads: %s waits at %s, %s at %s", thread_name(f).c_str(),
                           site(f.post).c_str(), thread_name(g).c_str(), site(g.post).c_str()));
    }
    w->at_bar++;
    break;
  case AT_WARP:
    warp_posted(w, i);
    break;
  case READY:
  case RUNNING:
    break;
  }
  if (!w->error.empty() || w->at_bar == 0 || w->at_bar + w->done < w->n) return;
  if (w->done > 0) {
    int ex = 0;
    while (w->fibers[ex].state != DONE) ex++;
    int bar = 0;
    while (w->fibers[bar].state != AT_BAR) bar++;
    return fail(w, fmt("divergent __syncthreads: %d threads wait at %s, but %d have exited (%s among them)",
                       w->at_bar, site(w->fibers[bar].post).c_str(), w->done, thread_name(w->fibers[ex]).c_str()));
  }
  w->at_bar = 0;
  release(w, w->order.data(), w->n, true);
}

// NaN bytes over the module's static __shared__ arrays (its TLS block in this thread).
static int find_tls(struct dl_phdr_info *info, size_t, void *data) {
  Worker *w = static_cast<Worker *>(data);
  if ((void *)info->dlpi_addr != w->tls_module) return 0;
  for (int i = 0; i < info->dlpi_phnum; i++)
    if (info->dlpi_phdr[i].p_type == PT_TLS) {
      w->tls_block = static_cast<unsigned char *>(info->dlpi_tls_data);
      w->tls_bytes = info->dlpi_phdr[i].p_memsz;
    }
  return 1;
}

void poison_shared(Worker *w) {
  void *anchor = w->job->k.tls_touch(); // allocates this thread's TLS block of the module
  Dl_info di;
  if (!dladdr(reinterpret_cast<void *>(w->job->k.tls_touch), &di)) return;
  void *base = nullptr;
  struct link_map *lm = nullptr;
  if (dladdr1(reinterpret_cast<void *>(w->job->k.tls_touch), &di, reinterpret_cast<void **>(&lm), RTLD_DL_LINKMAP) && lm)
    base = reinterpret_cast<void *>(lm->l_addr);
  if (base != w->tls_module || !w->tls_block) {
    w->tls_module = base;
    w->tls_block = nullptr;
    w->tls_bytes = 0;
    dl_iterate_phdr(find_tls, w);
  }
  if (w->tls_block) memset(w->tls_block, 0xFF, w->tls_bytes);
  (void)anchor;
}

void run_block(Worker *w, uint64_t b) {
  const SimtLaunch &l = w->job->l;
  int n = (int)(l.block[0] * l.block[1] * l.block[2]);
  w->n = n;
  w->done = w->at_bar = 0;
  w->ready.clear();
  w->error.clear();
  if ((int)w->stacks.size() < n) {
    size_t have = w->stacks.size();
    w->stacks.resize(n);
    for (size_t s = have; s < (size_t)n; s++)
      if (emu_stack_alloc(&w->stacks[s], w->job->opts.stack_bytes) != 0) {
        w->stacks.resize(s);
        w->error = "cannot map the fibers' stacks";
        return;
      }
  }
  w->fibers.resize(std::max<size_t>(w->fibers.size(), n));
  DitEmuU3 bid = {(unsigned)(b % l.grid[0]), (unsigned)(b / l.grid[0] % l.grid[1]),
               (unsigned)(b / l.grid[0] / l.grid[1])};
  w->rng = w->job->opts.seed * 0x9E3779B97F4A7C15ull + b + 1;
  for (int i = 0; i < n; i++) {
    Fiber &f = w->fibers[i];
    f.ids.threadIdx = {(unsigned)(i % l.block[0]), (unsigned)(i / l.block[0] % l.block[1]),
                       (unsigned)(i / l.block[0] / l.block[1])};
    f.ids.blockIdx = bid;
    f.ids.blockDim = {l.block[0], l.block[1], l.block[2]};
    f.ids.gridDim = {l.grid[0], l.grid[1], l.grid[2]};
    f.state = READY;
    f.post = Post{};
    f.post.file = "";
    emu_fiber_init(&f.ctx, &w->stacks[i], fiber_entry, w);
  }
  w->warps.assign((n + 31) / 32, WarpState{});
  w->order.resize(n);
  for (int i = 0; i < n; i++) w->order[i] = i;
  release(w, w->order.data(), n, true);
  w->dynamic.assign(l.dynamic_smem + 16, w->job->opts.poison ? 0xFF : 0);
  if (w->job->opts.poison) poison_shared(w);
  while (!w->ready.empty() && w->error.empty()) {
    int i = pick_ready(w);
    w->cur = i;
    w->fibers[i].state = RUNNING;
    emu_fiber_switch(&w->sched, &w->fibers[i].ctx, 0); // back when none is ready, or on an error
  }
  if (w->error.empty() && w->done < n) fail(w, "deadlock" + waiting(w));
}

// --- the workers ---

struct Pool {
  std::mutex run_mu; // one grid at a time
  std::mutex mu;
  std::condition_variable go, finished;
  std::vector<std::thread> threads;
  Job *job = nullptr;
  uint64_t generation = 0;
  int busy = 0;
  SimtOptions opts;
  bool configured = false;

  ~Pool() {
    {
      std::lock_guard<std::mutex> g(mu);
      job = nullptr;
      generation = ~0ull;
    }
    go.notify_all();
    for (auto &t : threads) t.join();
  }
};

Pool &pool() {
  static Pool p;
  return p;
}

void work(Job *job, Worker *w) {
  w->job = job;
  tl_worker = w;
  for (;;) {
    if (job->failed.load()) break;
    uint64_t b = job->next.fetch_add(1);
    if (b >= job->blocks) break;
    run_block(w, b);
    if (!w->error.empty()) {
      std::lock_guard<std::mutex> g(job->mu);
      if (job->error.empty()) job->error = w->error;
      job->failed = true;
    }
  }
  tl_worker = nullptr;
}

void worker_main(Pool *p) {
  Worker w;
  pthread_attr_t attr; // this thread's stack, which the scheduler runs on (for ASan's fiber switches)
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void *bottom = nullptr;
    size_t size = 0;
    if (pthread_attr_getstack(&attr, &bottom, &size) == 0) w.sched.stack_bottom = bottom, w.sched.stack_size = size;
    pthread_attr_destroy(&attr);
  }
  uint64_t seen = 0;
  for (;;) {
    Job *job;
    {
      std::unique_lock<std::mutex> g(p->mu);
      p->go.wait(g, [&] { return p->generation != seen; });
      if (p->generation == ~0ull) break;
      seen = p->generation;
      job = p->job;
    }
    work(job, &w);
    {
      std::lock_guard<std::mutex> g(p->mu);
      if (--p->busy == 0) p->finished.notify_all();
    }
  }
  for (auto &s : w.stacks) emu_stack_free(&s);
}

}  // namespace

const DitEmuApi *simt_api() { return &the_api; }

void simt_configure(const SimtOptions &o) {
  Pool &p = pool();
  std::lock_guard<std::mutex> g(p.run_mu);
  p.opts = o;
  p.configured = true;
}

std::string simt_run(const SimtKernel &k, const SimtLaunch &l, void *const *params) {
  Pool &p = pool();
  std::lock_guard<std::mutex> run(p.run_mu);
  if (p.threads.empty()) {
    int n = std::max(1, p.opts.threads);
    for (int i = 0; i < n; i++) p.threads.emplace_back(worker_main, &p);
  }
  Job job;
  job.k = k;
  job.l = l;
  job.params = params;
  job.blocks = (uint64_t)l.grid[0] * l.grid[1] * l.grid[2];
  job.opts = p.opts;
  {
    std::lock_guard<std::mutex> g(p.mu);
    p.job = &job;
    p.busy = (int)p.threads.size();
    p.generation++;
  }
  p.go.notify_all();
  {
    std::unique_lock<std::mutex> g(p.mu);
    p.finished.wait(g, [&] { return p.busy == 0; });
    p.job = nullptr;
  }
  return job.error;
}

}  // namespace emu
