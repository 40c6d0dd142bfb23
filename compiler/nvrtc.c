/* nvrtc.c: NVRTC through dlopen (see nvrtc.h). */
#define _GNU_SOURCE /* RTLD_NODELETE */
#include "nvrtc.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_sources.h"

/* The slice of nvrtc.h that ditc uses; the ABI is stable across releases. */
typedef int NvResult;
typedef struct _nvrtcProgram *NvProgram;

struct Nvrtc {
  void *lib;
  char version[32];
  const char *(*get_error_string)(NvResult);
  NvResult (*version_fn)(int *, int *);
  NvResult (*create)(NvProgram *, const char *, const char *, int, const char *const *, const char *const *);
  NvResult (*destroy)(NvProgram *);
  NvResult (*compile)(NvProgram, int, const char *const *);
  NvResult (*add_name)(NvProgram, const char *);
  NvResult (*lowered_name)(NvProgram, const char *, const char **);
  NvResult (*log_size)(NvProgram, size_t *);
  NvResult (*log)(NvProgram, char *);
  NvResult (*cubin_size)(NvProgram, size_t *);
  NvResult (*cubin)(NvProgram, char *);
  NvResult (*ptx_size)(NvProgram, size_t *);
  NvResult (*ptx)(NvProgram, char *);
};

Nvrtc *nvrtc_open(Diag *d) {
  static const char *const names[] = {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so",
                                      "/usr/local/cuda/lib64/libnvrtc.so"};
  Nvrtc *nv = calloc(1, sizeof *nv);
  if (!nv) return NULL;
  for (size_t i = 0; i < sizeof names / sizeof names[0] && !nv->lib; i++)
    nv->lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE); /* never unloaded: C++ runtimes do not unload cleanly */
  if (!nv->lib) {
    diag_error(d, span_none(), "NVRTC is not available (libnvrtc.so: %s); GPU kernels need the CUDA toolkit",
               dlerror());
    free(nv);
    return NULL;
  }
  struct { void **slot; const char *name; } syms[] = {
      {(void **)&nv->get_error_string, "nvrtcGetErrorString"}, {(void **)&nv->version_fn, "nvrtcVersion"},
      {(void **)&nv->create, "nvrtcCreateProgram"}, {(void **)&nv->destroy, "nvrtcDestroyProgram"},
      {(void **)&nv->compile, "nvrtcCompileProgram"}, {(void **)&nv->add_name, "nvrtcAddNameExpression"},
      {(void **)&nv->lowered_name, "nvrtcGetLoweredName"}, {(void **)&nv->log_size, "nvrtcGetProgramLogSize"},
      {(void **)&nv->log, "nvrtcGetProgramLog"}, {(void **)&nv->cubin_size, "nvrtcGetCUBINSize"},
      {(void **)&nv->cubin, "nvrtcGetCUBIN"}, {(void **)&nv->ptx_size, "nvrtcGetPTXSize"},
      {(void **)&nv->ptx, "nvrtcGetPTX"}};
  for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
    *syms[i].slot = dlsym(nv->lib, syms[i].name);
    if (!*syms[i].slot) {
      diag_error(d, span_none(), "libnvrtc lacks %s", syms[i].name);
      nvrtc_close(nv);
      return NULL;
    }
  }
  int major = 0, minor = 0;
  nv->version_fn(&major, &minor);
  snprintf(nv->version, sizeof nv->version, "%d.%d", major, minor);
  return nv;
}

void nvrtc_close(Nvrtc *nv) {
  if (!nv) return;
  if (nv->lib) dlclose(nv->lib);
  free(nv);
}

const char *nvrtc_version(const Nvrtc *nv) { return nv->version; }

void kernel_image_free(KernelImage *img) {
  if (!img) return;
  free(img->cubin);
  img->cubin = NULL;
}

void kernel_module_free(KernelModule *mod) {
  if (!mod) return;
  free(mod->cubin);
  free(mod->ptx);
  memset(mod, 0, sizeof *mod);
}

int nvrtc_fixed_options(const char *const **out) {
  static const char *const opts[] = {"-std=c++17", "--ptxas-options=-v", "-default-device", "--fmad=true",
                                     "-lineinfo"};
  _Static_assert(sizeof opts / sizeof opts[0] <= 7, "nvrtc_compile_many passes at most 7");
  *out = opts;
  return (int)(sizeof opts / sizeof opts[0]);
}

/* Registers, shared memory, stack and spills of the entry point, from the
 * ptxas -v lines that follow "Compiling entry function '<lowered name>'". */
static void parse_ptxas(const char *log, KernelImage *img) {
  char quoted[sizeof img->lowered_name + 2];
  snprintf(quoted, sizeof quoted, "'%s'", img->lowered_name); /* not a prefix of another kernel's name */
  const char *p = strstr(log, quoted);
  for (int k = 0; p && k < 4; k++) {
    p = strchr(p, '\n');
    if (!p) break;
    p++;
    const char *eol = strchr(p, '\n');
    int a, b, c;
    if (sscanf(p, " %d bytes stack frame, %d bytes spill stores, %d bytes spill loads", &a, &b, &c) == 3) {
      img->stack_bytes = a;
      img->spill_stores = b;
      img->spill_loads = c;
    }
    const char *u = strstr(p, "Used ");
    if (u && (!eol || u < eol)) {
      img->registers = atoi(u + 5);
      const char *sm = strstr(u, " bytes smem");
      if (sm && (!eol || sm < eol)) {
        while (sm > u && sm[-1] >= '0' && sm[-1] <= '9') sm--;
        img->smem_bytes = atoi(sm);
      }
    }
  }
}

static void print_numbered(Diag *d, const char *source) {
  int line = 1;
  fprintf(d->out, "%5d | ", line);
  for (const char *c = source; *c; c++) {
    fputc(*c, d->out);
    if (*c == '\n' && c[1]) fprintf(d->out, "%5d | ", ++line);
  }
  fputc('\n', d->out);
}

DitcStatus nvrtc_compile_many(Nvrtc *nv, Diag *d, const char *source, const char *const *name_exprs,
                              int n, const char *arch, KernelModule *mod, KernelImage *kernels) {
  DitcStatus st = DITC_ERR_INTERNAL;
  NvProgram prog = NULL;
  char *log = NULL;
  memset(mod, 0, sizeof *mod);
  memset(kernels, 0, sizeof *kernels * (size_t)(n > 0 ? n : 0));
  const char *headers[64], *includes[64];
  int n_headers = KERNEL_SOURCE_COUNT < 64 ? KERNEL_SOURCE_COUNT : 64;
  for (int i = 0; i < n_headers; i++) {
    headers[i] = KERNEL_SOURCES[i].text;
    includes[i] = KERNEL_SOURCES[i].name;
  }
  char arch_opt[64], what[200];
  snprintf(arch_opt, sizeof arch_opt, "--gpu-architecture=%s", arch);
  if (n > 1) snprintf(what, sizeof what, "%d kernels (%s, ...)", n, name_exprs[0]);
  else snprintf(what, sizeof what, "%s", n == 1 ? name_exprs[0] : "nothing");
  const char *const *fixed = NULL;
  int n_fixed = nvrtc_fixed_options(&fixed);
  const char *opts[8] = {arch_opt};
  for (int i = 0; i < n_fixed && i < 7; i++) opts[1 + i] = fixed[i];
  bool real = strncmp(arch, "compute_", 8) != 0;
  NvResult r = nv->create(&prog, source, "ditc_kernel.cu", n_headers, headers, includes);
  if (r) {
    diag_error(d, span_none(), "nvrtcCreateProgram failed: %s", nv->get_error_string(r));
    goto done;
  }
  for (int i = 0; i < n; i++) {
    if ((r = nv->add_name(prog, name_exprs[i]))) {
      diag_error(d, span_none(), "nvrtcAddNameExpression(%s) failed: %s", name_exprs[i],
                 nv->get_error_string(r));
      goto done;
    }
  }
  NvResult cr = nv->compile(prog, 1 + n_fixed, opts);
  size_t log_bytes = 0;
  nv->log_size(prog, &log_bytes);
  log = calloc(log_bytes + 1, 1);
  if (!log) {
    st = DITC_ERR_NOMEM;
    goto done;
  }
  nv->log(prog, log);
  if (cr) {
    diag_error(d, span_none(), "NVRTC %s could not compile %s for %s: %s", nv->version, what, arch,
               nv->get_error_string(cr));
    fprintf(d->out, "%s\nsource (ditc_kernel.cu):\n", log);
    print_numbered(d, source);
    goto done;
  }
  for (int i = 0; i < n; i++) {
    const char *lowered = NULL;
    if ((r = nv->lowered_name(prog, name_exprs[i], &lowered)) || !lowered) {
      diag_error(d, span_none(), "nvrtcGetLoweredName(%s) failed", name_exprs[i]);
      goto done;
    }
    snprintf(kernels[i].lowered_name, sizeof kernels[i].lowered_name, "%s", lowered);
    parse_ptxas(log, &kernels[i]);
  }
  if (real && ((r = nv->cubin_size(prog, &mod->cubin_bytes)) || !(mod->cubin = malloc(mod->cubin_bytes)) ||
               (r = nv->cubin(prog, (char *)mod->cubin)))) {
    diag_error(d, span_none(), "nvrtcGetCUBIN failed for %s", what);
    goto done;
  }
  if ((r = nv->ptx_size(prog, &mod->ptx_bytes)) || mod->ptx_bytes == 0 ||
      !(mod->ptx = malloc(mod->ptx_bytes)) || (r = nv->ptx(prog, mod->ptx))) {
    diag_error(d, span_none(), "nvrtcGetPTX failed for %s", what);
    goto done;
  }
  mod->ptx[mod->ptx_bytes - 1] = '\0';
  st = DITC_OK;
done:
  if (st) kernel_module_free(mod);
  free(log);
  if (prog) nv->destroy(&prog);
  return st;
}

DitcStatus nvrtc_compile(Nvrtc *nv, Diag *d, const char *source, const char *name_expr,
                         const char *arch, KernelImage *out) {
  KernelModule mod;
  DitcStatus st = nvrtc_compile_many(nv, d, source, &name_expr, 1, arch, &mod, out);
  if (st) return st;
  out->cubin = mod.cubin; /* moved: the image owns it */
  out->cubin_bytes = mod.cubin_bytes;
  mod.cubin = NULL;
  kernel_module_free(&mod);
  return DITC_OK;
}
