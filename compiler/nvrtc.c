/* nvrtc.c: NVRTC through dlopen (see nvrtc.h). */
#define _GNU_SOURCE /* RTLD_NODELETE */
#include "nvrtc.h"

#include <dlfcn.h>
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
      {(void **)&nv->cubin, "nvrtcGetCUBIN"}};
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

/* Registers, shared memory, stack and spills of the entry point, from the
 * ptxas -v lines that follow "Compiling entry function '<lowered name>'". */
static void parse_ptxas(const char *log, KernelImage *img) {
  const char *p = strstr(log, img->lowered_name);
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

DitcStatus nvrtc_compile(Nvrtc *nv, Diag *d, const char *source, const char *name_expr,
                         const char *arch, KernelImage *out) {
  DitcStatus st = DITC_ERR_INTERNAL;
  NvProgram prog = NULL;
  char *log = NULL;
  memset(out, 0, sizeof *out);
  const char *headers[64], *includes[64];
  int n_headers = KERNEL_SOURCE_COUNT < 64 ? KERNEL_SOURCE_COUNT : 64;
  for (int i = 0; i < n_headers; i++) {
    headers[i] = KERNEL_SOURCES[i].text;
    includes[i] = KERNEL_SOURCES[i].name;
  }
  char arch_opt[64];
  snprintf(arch_opt, sizeof arch_opt, "--gpu-architecture=%s", arch);
  const char *opts[] = {arch_opt, "-std=c++17", "--ptxas-options=-v", "-default-device",
                        "--fmad=true", "-lineinfo"};
  NvResult r = nv->create(&prog, source, "ditc_kernel.cu", n_headers, headers, includes);
  if (r) {
    diag_error(d, span_none(), "nvrtcCreateProgram failed: %s", nv->get_error_string(r));
    goto done;
  }
  if ((r = nv->add_name(prog, name_expr))) {
    diag_error(d, span_none(), "nvrtcAddNameExpression(%s) failed: %s", name_expr, nv->get_error_string(r));
    goto done;
  }
  NvResult cr = nv->compile(prog, (int)(sizeof opts / sizeof opts[0]), opts);
  size_t log_bytes = 0;
  nv->log_size(prog, &log_bytes);
  log = calloc(log_bytes + 1, 1);
  if (!log) {
    st = DITC_ERR_NOMEM;
    goto done;
  }
  nv->log(prog, log);
  if (cr) {
    diag_error(d, span_none(), "NVRTC %s could not compile %s for %s: %s", nv->version, name_expr, arch,
               nv->get_error_string(cr));
    fprintf(d->out, "%s\nsource (ditc_kernel.cu):\n", log);
    print_numbered(d, source);
    goto done;
  }
  const char *lowered = NULL;
  if ((r = nv->lowered_name(prog, name_expr, &lowered)) || !lowered) {
    diag_error(d, span_none(), "nvrtcGetLoweredName(%s) failed", name_expr);
    goto done;
  }
  snprintf(out->lowered_name, sizeof out->lowered_name, "%s", lowered);
  if ((r = nv->cubin_size(prog, &out->cubin_bytes)) || !(out->cubin = malloc(out->cubin_bytes)) ||
      (r = nv->cubin(prog, (char *)out->cubin))) {
    diag_error(d, span_none(), "nvrtcGetCUBIN failed for %s", name_expr);
    goto done;
  }
  parse_ptxas(log, out);
  st = DITC_OK;
done:
  if (st) kernel_image_free(out);
  free(log);
  if (prog) nv->destroy(&prog);
  return st;
}
