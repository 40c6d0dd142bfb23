// emu_module.cpp: the emulated device's kernel modules (README.md, "The
// kernel image"): an image's files are written into a cache folder named by
// the hash of the image, the emulation header and the compiler command,
// compiled there once with the host C++ compiler into a shared object, and
// loaded; the module's table maps NVRTC's lowered names to the kernels and
// their parameter trampolines. Concurrent processes compile into private
// temporary folders and rename them into place: one wins, the others use it.
#define _GNU_SOURCE 1
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "emu_internal.h"
#include "kernel_sources.h"

extern char **environ;

namespace emu {

struct Module {
  void *dl = nullptr;
  const dit_emu::Kernel *table = nullptr;
  void *(*tls_touch)(void) = nullptr;
  std::vector<std::unique_ptr<Function>> functions;
};

namespace {

const char MAGIC[] = "DITEMU1\n";

struct File {
  std::string name, text;
};

// The records of an image; false with a reason when it is malformed.
bool parse_image(const char *img, std::vector<File> *files, File *main_tu, std::string *why) {
  size_t len = strlen(img), pos = sizeof MAGIC - 1;
  if (len < pos || memcmp(img, MAGIC, pos) != 0) return *why = "not an emulated-device image (no DITEMU1 line)", false;
  bool have_main = false;
  while (pos < len) {
    const char *nl = static_cast<const char *>(memchr(img + pos, '\n', len - pos));
    if (!nl) return *why = "a record line without its end", false;
    std::string line(img + pos, nl);
    pos = (size_t)(nl - img) + 1;
    if (line == "end") return have_main ? true : (*why = "no main record", false);
    char kind[8], name[128];
    unsigned long long bytes = 0;
    if (sscanf(line.c_str(), "%7s %127s %llu", kind, name, &bytes) != 3 || (strcmp(kind, "file") && strcmp(kind, "main")) ||
        strchr(name, '/') || name[0] == '.' || bytes > len - pos || bytes + 1 > len - pos || img[pos + bytes] != '\n')
      return *why = "a malformed record: '" + line.substr(0, 80) + "'", false;
    File f{name, std::string(img + pos, bytes)};
    pos += bytes + 1;
    if (kind[0] == 'm') {
      if (have_main) return *why = "two main records", false;
      *main_tu = f;
      have_main = true;
    } else {
      files->push_back(f);
    }
  }
  return *why = "no end record", false;
}

uint64_t fnv1a(uint64_t h, const std::string &s) {
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return (h ^ 0xff) * 0x100000001b3ull; // a separator: ("ab","c") != ("a","bc")
}

std::string cache_root() {
  const char *e = getenv("DIT_EMU_CACHE");
  if (e && *e) return e;
  const char *x = getenv("XDG_CACHE_HOME");
  if (x && *x) return std::string(x) + "/ditc/emu";
  const char *home = getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/.cache/ditc/emu";
}

bool mkdirs(const std::string &path) {
  for (size_t i = 1; i <= path.size(); i++) {
    if (i < path.size() && path[i] != '/') continue;
    std::string p = path.substr(0, i);
    if (mkdir(p.c_str(), 0755) != 0 && errno != EEXIST) return false;
  }
  return true;
}

bool write_file(const std::string &path, const std::string &text) {
  FILE *f = fopen(path.c_str(), "wb");
  if (!f) return false;
  bool ok = fwrite(text.data(), 1, text.size(), f) == text.size();
  return fclose(f) == 0 && ok;
}

std::string read_file(const std::string &path) {
  std::string s;
  FILE *f = fopen(path.c_str(), "rb");
  if (!f) return s;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  fclose(f);
  return s;
}

void remove_tree(const std::string &dir) {
  DIR *d = opendir(dir.c_str());
  if (d) {
    while (struct dirent *e = readdir(d))
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlink((dir + "/" + e->d_name).c_str());
    closedir(d);
  }
  rmdir(dir.c_str());
}

// The compiler command: $DIT_EMU_CXX (words) or c++, and the fixed flags.
std::vector<std::string> compiler_words() {
  std::vector<std::string> w;
  const char *cxx = getenv("DIT_EMU_CXX");
  std::string s = cxx && *cxx ? cxx : "c++";
  for (size_t i = 0; i < s.size();) {
    size_t j = s.find(' ', i);
    if (j == std::string::npos) j = s.size();
    if (j > i) w.push_back(s.substr(i, j - i));
    i = j + 1;
  }
  for (const char *f : {"-std=c++17", "-O2", "-ffp-contract=off", "-fno-strict-aliasing", "-fPIC", "-shared", "-w",
                        "-g1"})
    w.push_back(f);
#if defined(DIT_EMU_SANITIZE)
  w.push_back("-fsanitize=" DIT_EMU_SANITIZE); // the process carries the sanitizers' runtime
  w.push_back("-fno-omit-frame-pointer");
#endif
  return w;
}

// Runs the compiler in dir; its output goes to dir/compile.log.
bool compile(const std::string &dir, std::string *log) {
  std::vector<std::string> words = compiler_words();
  for (const char *a : {"-include", "cuda_emu.h", "-I.", "-x", "c++", "kernels.cu", "-o", "module.so"}) words.push_back(a);
  std::string cmd;
  std::vector<char *> argv;
  for (auto &w : words) {
    argv.push_back(const_cast<char *>(w.c_str()));
    cmd += (cmd.empty() ? "" : " ") + w;
  }
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  std::string logp = dir + "/compile.log";
  posix_spawn_file_actions_addopen(&fa, 1, logp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawn_file_actions_addchdir_np(&fa, dir.c_str());
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return *log = "cannot run the host compiler '" + words[0] + "': " + strerror(rc) + " (set DIT_EMU_CXX)", false;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
  *log = "the host compiler failed to build the kernels (in " + dir + "): " + cmd + "\n" + read_file(logp);
  return false;
}

// The folder of the compiled module: made unless it exists.
bool build(const std::vector<File> &files, const File &main_tu, std::string *dir, std::string *log) {
  const KernelSource &hdr = KERNEL_SOURCES[0]; // cuda_emu.h, embedded by CMake
  uint64_t h = 0xcbf29ce484222325ull;
  h = fnv1a(h, hdr.text);
  for (const auto &w : compiler_words()) h = fnv1a(h, w);
  for (const auto &f : files) h = fnv1a(fnv1a(h, f.name), f.text);
  h = fnv1a(h, main_tu.text);
  char hex[17];
  snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
  std::string root = cache_root(), final_dir = root + "/" + hex;
  *dir = final_dir;
  if (access((final_dir + "/module.so").c_str(), R_OK) == 0) return true;
  if (!mkdirs(root)) return *log = "cannot create the kernel cache " + root + ": " + strerror(errno), false;
  char tmpl[64];
  snprintf(tmpl, sizeof tmpl, "/tmp.%s.XXXXXX", hex);
  std::string tmp = root + tmpl;
  std::vector<char> t(tmp.begin(), tmp.end());
  t.push_back('\0');
  if (!mkdtemp(t.data())) return *log = "cannot create a folder in the kernel cache " + root + ": " + strerror(errno), false;
  tmp = t.data();
  bool ok = write_file(tmp + "/" + hdr.name, hdr.text) && write_file(tmp + "/kernels.cu", main_tu.text);
  for (const auto &f : files) ok = ok && write_file(tmp + "/" + f.name, f.text);
  if (!ok) {
    *log = "cannot write the kernels into " + tmp;
    remove_tree(tmp);
    return false;
  }
  if (!compile(tmp, log)) {
    if (getenv("DIT_EMU_KEEP")) return false; // the folder stays for a look
    remove_tree(tmp);
    return false;
  }
  if (rename(tmp.c_str(), final_dir.c_str()) != 0) remove_tree(tmp); // another process was first
  if (access((final_dir + "/module.so").c_str(), R_OK) != 0)
    return *log = "the compiled kernels did not reach " + final_dir, false;
  return true;
}

}  // namespace

Module *module_load(const void *image, CUresult *rc, std::string *log) {
  std::vector<File> files;
  File main_tu;
  std::string dir;
  *rc = CUDA_ERROR_INVALID_IMAGE;
  if (!image || !parse_image(static_cast<const char *>(image), &files, &main_tu, log)) return nullptr;
  static std::mutex build_mu; // one compile at a time in this process
  {
    std::lock_guard<std::mutex> g(build_mu);
    if (!build(files, main_tu, &dir, log)) return nullptr;
  }
  std::unique_ptr<Module> m(new Module);
  m->dl = dlopen((dir + "/module.so").c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!m->dl) {
    const char *e = dlerror();
    *log = std::string("cannot load the compiled kernels: ") + (e ? e : "?");
    return nullptr;
  }
  auto init = reinterpret_cast<void (*)(const DitEmuApi *)>(dlsym(m->dl, "dit_emu_module_init"));
  m->table = static_cast<const dit_emu::Kernel *>(dlsym(m->dl, "dit_emu_kernels"));
  m->tls_touch = reinterpret_cast<void *(*)(void)>(dlsym(m->dl, "dit_emu_tls_touch"));
  if (!init || !m->table || !m->tls_touch) {
    *log = "the compiled kernels lack the emulator's table (DIT_EMU_KERNELS_BEGIN)";
    dlclose(m->dl);
    return nullptr;
  }
  init(simt_api());
  *rc = CUDA_SUCCESS;
  return m.release();
}

void module_unload(Module *m) {
  if (!m) return;
  for (auto &f : m->functions) f->magic = 0;
  dlclose(m->dl);
  delete m;
}

Function *module_function(Module *m, const char *name, CUresult *rc) {
  for (auto &f : m->functions)
    if (strcmp(f->kernel.k->name, name) == 0) return *rc = CUDA_SUCCESS, f.get();
  const dit_emu::Kernel *k = m->table;
  while (k->name && strcmp(k->name, name) != 0) k++;
  void *sym = dlsym(m->dl, name);
  if (!k->name) {
    report("cuModuleGetFunction: the module has no kernel %s", name);
    return *rc = CUDA_ERROR_NOT_FOUND, nullptr;
  }
  if (sym != k->fn) { // the host compiler's mangling must be NVRTC's
    report("cuModuleGetFunction: %s is %s in the host compiler's module: its mangling differs from NVRTC's", name,
           sym ? "another function" : "not exported");
    return *rc = CUDA_ERROR_NOT_FOUND, nullptr;
  }
  m->functions.emplace_back(new Function{FUNCTION_MAGIC, m, SimtKernel{k, m->tls_touch}, 48 * 1024});
  *rc = CUDA_SUCCESS;
  return m->functions.back().get();
}

}  // namespace emu
