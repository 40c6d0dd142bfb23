/* nvrtc_cache.c: the content-hash cache of NVRTC results (nvrtc_cache.h).
 * An entry DIR/<sha256 of the key, hex>.nvc is an EntryHeader, one
 * EntryKernel per name expression, the cubin (none for a virtual arch),
 * then the PTX (NUL-terminated), in the host's byte order: a cache is the
 * machine's own. */
#define _POSIX_C_SOURCE 200809L
#include "nvrtc_cache.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "atomic_file.h"
#include "kernel_sources.h"
#include "sha256.h"

#define ENTRY_MAGIC "DITCNVRC"
enum { ENTRY_VERSION = 1, LOWERED_MAX = 256 };
#define ENTRY_MAX_BYTES ((uint64_t)1 << 31) /* far above any module ditc compiles */

typedef struct EntryHeader {
  char magic[8];                 /* ENTRY_MAGIC, no NUL */
  uint32_t version;              /* ENTRY_VERSION */
  uint32_t header_bytes;         /* sizeof(EntryHeader) */
  unsigned char key[SHA256_BYTES]; /* the digest the file is named by */
  uint32_t n_kernels;            /* name expressions, in the order given */
  uint32_t reserved;             /* 0 */
  uint64_t cubin_bytes, ptx_bytes;
  uint64_t payload_bytes;        /* everything after the header */
  unsigned char payload_sha256[SHA256_BYTES];
} EntryHeader;

typedef struct EntryKernel {
  char lowered_name[LOWERED_MAX]; /* NUL-terminated, not empty */
  int32_t registers, smem_bytes, stack_bytes, spill_stores, spill_loads, reserved;
} EntryKernel;

_Static_assert(sizeof(EntryHeader) == 112, "EntryHeader has no padding");
_Static_assert(sizeof(EntryKernel) == 280, "EntryKernel has no padding");
_Static_assert(sizeof(((KernelImage *)0)->lowered_name) == LOWERED_MAX, "lowered names fit");

/* Creates dir and its parents (mkdir -p); 0, or -1 with why. */
static int make_dirs(const char *dir, char *why, size_t cap) {
  char p[sizeof ((NvrtcCache *)0)->dir];
  size_t len = strlen(dir);
  struct stat sb;
  if (len == 0 || len >= sizeof p - 80) { /* room for the entry's name */
    snprintf(why, cap, "the path is %s", len ? "too long" : "empty");
    return -1;
  }
  memcpy(p, dir, len + 1);
  for (size_t i = 1; i <= len; i++) {
    if (p[i] != '/' && p[i] != '\0') continue;
    char was = p[i];
    p[i] = '\0';
    if (mkdir(p, 0777) != 0 && errno != EEXIST) {
      snprintf(why, cap, "cannot create %s: %s", p, strerror(errno));
      return -1;
    }
    p[i] = was;
  }
  if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
    snprintf(why, cap, "not a directory");
    return -1;
  }
  return 0;
}

void nvrtc_cache_init(NvrtcCache *c, const char *dir, Diag *d) {
  char why[512];
  memset(c, 0, sizeof *c);
  if (!dir) return;
  if (make_dirs(dir, why, sizeof why) != 0) {
    diag_note(d, span_none(), "NVRTC cache off: %s: %s", dir, why);
    return;
  }
  snprintf(c->dir, sizeof c->dir, "%s", dir);
  c->reads = c->writes = true;
}

/* One field of the key: its length, then its bytes, so that no two lists
 * of fields hash alike. */
static void key_field(Sha256 *s, const void *p, size_t n) {
  unsigned char len[8];
  for (int i = 0; i < 8; i++) len[i] = (unsigned char)((uint64_t)n >> (8 * i));
  sha256_update(s, len, 8);
  sha256_update(s, p, n);
}

static void key_str(Sha256 *s, const char *str) { key_field(s, str, strlen(str)); }

static void entry_key(const Nvrtc *nv, const char *source, const char *const *exprs, int n, const char *arch,
                      unsigned char key[SHA256_BYTES]) {
  Sha256 s;
  const char *const *opts = NULL;
  int n_opts = nvrtc_fixed_options(&opts);
  char count[32];
  sha256_init(&s);
  key_str(&s, "ditc NVRTC cache 1");
  key_str(&s, nvrtc_version(nv));
  snprintf(count, sizeof count, "%d options", n_opts);
  key_str(&s, count);
  for (int i = 0; i < n_opts; i++) key_str(&s, opts[i]);
  key_str(&s, arch);
  key_str(&s, source);
  snprintf(count, sizeof count, "%d headers", KERNEL_SOURCE_COUNT);
  key_str(&s, count);
  for (int i = 0; i < KERNEL_SOURCE_COUNT; i++) {
    key_str(&s, KERNEL_SOURCES[i].name);
    key_str(&s, KERNEL_SOURCES[i].text);
  }
  snprintf(count, sizeof count, "%d names", n);
  key_str(&s, count);
  for (int i = 0; i < n; i++) key_str(&s, exprs[i]);
  sha256_final(&s, key);
}

static void entry_path(const NvrtcCache *c, const unsigned char key[SHA256_BYTES], char *path, size_t cap) {
  char hex[2 * SHA256_BYTES + 1];
  for (int i = 0; i < SHA256_BYTES; i++) snprintf(hex + 2 * i, 3, "%02x", key[i]);
  snprintf(path, cap, "%s/%s.nvc", c->dir, hex);
}

/* Reads the whole file (at most ENTRY_MAX_BYTES) into *out (malloc'ed);
 * 0, 1 when it does not exist, -1 with why. */
static int read_file(const char *path, unsigned char **out, size_t *bytes, char *why, size_t cap) {
  FILE *f = fopen(path, "rb");
  unsigned char *b = NULL;
  int rc = -1;
  struct stat sb;
  *out = NULL;
  if (!f) {
    if (errno == ENOENT) return 1;
    snprintf(why, cap, "%s", strerror(errno));
    return -1;
  }
  if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size < 0 ||
      (uint64_t)sb.st_size > ENTRY_MAX_BYTES) {
    snprintf(why, cap, "not a regular file of at most 2 GiB");
    goto done;
  }
  b = malloc(sb.st_size ? (size_t)sb.st_size : 1);
  if (!b) {
    snprintf(why, cap, "out of memory");
    goto done;
  }
  if (fread(b, 1, (size_t)sb.st_size, f) != (size_t)sb.st_size) {
    snprintf(why, cap, "cannot read it");
    goto done;
  }
  *out = b;
  *bytes = (size_t)sb.st_size;
  b = NULL;
  rc = 0;
done:
  free(b);
  fclose(f);
  return rc;
}

/* Checks entry b[0..len) against the compile it should answer and fills
 * mod and kernels from it; false (with why, nothing filled) when it is not
 * exactly such an entry. */
static bool parse_entry(const unsigned char *b, size_t len, const unsigned char key[SHA256_BYTES], int n,
                        bool real, KernelModule *mod, KernelImage *kernels, char *why, size_t cap) {
  EntryHeader h;
  unsigned char digest[SHA256_BYTES];
  if (len < sizeof h) {
    snprintf(why, cap, "truncated: %zu bytes", len);
    return false;
  }
  memcpy(&h, b, sizeof h);
  uint64_t table = (uint64_t)sizeof(EntryKernel) * (uint64_t)n;
  if (memcmp(h.magic, ENTRY_MAGIC, sizeof h.magic) != 0 || h.version != ENTRY_VERSION ||
      h.header_bytes != sizeof h || h.reserved != 0) {
    snprintf(why, cap, "not a version %d entry", ENTRY_VERSION);
    return false;
  }
  if (memcmp(h.key, key, SHA256_BYTES) != 0 || h.n_kernels != (uint32_t)n) {
    snprintf(why, cap, "the entry of another compile");
    return false;
  }
  if (h.cubin_bytes > ENTRY_MAX_BYTES || h.ptx_bytes > ENTRY_MAX_BYTES || h.ptx_bytes == 0 ||
      (h.cubin_bytes != 0) != real || h.payload_bytes != table + h.cubin_bytes + h.ptx_bytes ||
      h.payload_bytes != len - sizeof h) {
    snprintf(why, cap, "its lengths do not add up to its %zu bytes", len);
    return false;
  }
  const unsigned char *payload = b + sizeof h;
  sha256(payload, (size_t)h.payload_bytes, digest);
  if (memcmp(digest, h.payload_sha256, SHA256_BYTES) != 0) {
    snprintf(why, cap, "its contents do not match their digest");
    return false;
  }
  const unsigned char *cubin = payload + table, *ptx = cubin + h.cubin_bytes;
  if (ptx[h.ptx_bytes - 1] != '\0') {
    snprintf(why, cap, "its PTX is not terminated");
    return false;
  }
  for (int i = 0; i < n; i++) {
    EntryKernel k;
    memcpy(&k, payload + sizeof k * (size_t)i, sizeof k);
    if (!memchr(k.lowered_name, '\0', sizeof k.lowered_name) || !k.lowered_name[0] || k.registers < 0 ||
        k.smem_bytes < 0 || k.stack_bytes < 0 || k.spill_stores < 0 || k.spill_loads < 0 || k.reserved) {
      snprintf(why, cap, "kernel %d's record is malformed", i);
      return false;
    }
  }
  memset(mod, 0, sizeof *mod);
  mod->cubin = real ? malloc((size_t)h.cubin_bytes) : NULL;
  mod->ptx = malloc((size_t)h.ptx_bytes);
  if ((real && !mod->cubin) || !mod->ptx) {
    kernel_module_free(mod);
    snprintf(why, cap, "out of memory");
    return false;
  }
  if (real) memcpy(mod->cubin, cubin, (size_t)h.cubin_bytes);
  memcpy(mod->ptx, ptx, (size_t)h.ptx_bytes);
  mod->cubin_bytes = (size_t)h.cubin_bytes;
  mod->ptx_bytes = (size_t)h.ptx_bytes;
  memset(kernels, 0, sizeof *kernels * (size_t)n);
  for (int i = 0; i < n; i++) {
    EntryKernel k;
    memcpy(&k, payload + sizeof k * (size_t)i, sizeof k);
    memcpy(kernels[i].lowered_name, k.lowered_name, sizeof k.lowered_name);
    kernels[i].registers = k.registers;
    kernels[i].smem_bytes = k.smem_bytes;
    kernels[i].stack_bytes = k.stack_bytes;
    kernels[i].spill_stores = k.spill_stores;
    kernels[i].spill_loads = k.spill_loads;
  }
  return true;
}

typedef struct EntryWrite {
  EntryHeader h;
  const EntryKernel *ks;
  int n;
  const KernelModule *mod;
} EntryWrite;

static int write_entry(FILE *f, void *ctx) {
  const EntryWrite *w = ctx;
  if (fwrite(&w->h, sizeof w->h, 1, f) != 1) return -1;
  if (w->n && fwrite(w->ks, sizeof *w->ks, (size_t)w->n, f) != (size_t)w->n) return -1;
  if (w->mod->cubin_bytes && fwrite(w->mod->cubin, 1, w->mod->cubin_bytes, f) != w->mod->cubin_bytes) return -1;
  return fwrite(w->mod->ptx, 1, w->mod->ptx_bytes, f) == w->mod->ptx_bytes ? 0 : -1;
}

/* Stores the result of a compile; false with why. */
static bool store_entry(const char *path, const unsigned char key[SHA256_BYTES], int n, const KernelModule *mod,
                        const KernelImage *kernels, char *why, size_t cap) {
  EntryWrite w = {.n = n, .mod = mod};
  EntryKernel *ks = calloc(n > 0 ? (size_t)n : 1, sizeof *ks);
  if (!ks) {
    snprintf(why, cap, "out of memory");
    return false;
  }
  for (int i = 0; i < n; i++) {
    memcpy(ks[i].lowered_name, kernels[i].lowered_name, sizeof ks[i].lowered_name);
    ks[i].lowered_name[LOWERED_MAX - 1] = '\0';
    ks[i].registers = kernels[i].registers;
    ks[i].smem_bytes = kernels[i].smem_bytes;
    ks[i].stack_bytes = kernels[i].stack_bytes;
    ks[i].spill_stores = kernels[i].spill_stores;
    ks[i].spill_loads = kernels[i].spill_loads;
  }
  memcpy(w.h.magic, ENTRY_MAGIC, sizeof w.h.magic);
  w.h.version = ENTRY_VERSION;
  w.h.header_bytes = sizeof w.h;
  memcpy(w.h.key, key, SHA256_BYTES);
  w.h.n_kernels = (uint32_t)n;
  w.h.cubin_bytes = mod->cubin_bytes;
  w.h.ptx_bytes = mod->ptx_bytes;
  w.h.payload_bytes = sizeof *ks * (uint64_t)n + mod->cubin_bytes + mod->ptx_bytes;
  Sha256 s;
  sha256_init(&s);
  sha256_update(&s, ks, sizeof *ks * (size_t)n);
  if (mod->cubin_bytes) sha256_update(&s, mod->cubin, mod->cubin_bytes);
  sha256_update(&s, mod->ptx, mod->ptx_bytes);
  sha256_final(&s, w.h.payload_sha256);
  w.ks = ks;
  bool ok = atomic_write_quiet(path, write_entry, &w, why, cap) == DITC_OK;
  free(ks);
  return ok;
}

DitcStatus nvrtc_cache_compile(NvrtcCache *c, Nvrtc *nv, Diag *d, const char *source,
                               const char *const *name_exprs, int n, const char *arch, KernelModule *mod,
                               KernelImage *kernels) {
  unsigned char key[SHA256_BYTES];
  char path[sizeof c->dir + 80], why[1100];
  bool real = strncmp(arch, "compute_", 8) != 0;
  if (c->reads || c->writes) {
    entry_key(nv, source, name_exprs, n, arch, key);
    entry_path(c, key, path, sizeof path);
  }
  if (c->reads) {
    unsigned char *b = NULL;
    size_t len = 0;
    why[0] = '\0';
    int rc = read_file(path, &b, &len, why, sizeof why);
    bool hit = rc == 0 && parse_entry(b, len, key, n, real, mod, kernels, why, sizeof why);
    free(b);
    if (hit) {
      c->hits++;
      return DITC_OK;
    }
    if (rc != 1) diag_note(d, span_none(), "NVRTC cache: ignoring %s (%s); compiling it again", path, why);
  }
  c->misses++;
  DitcStatus st = nvrtc_compile_many(nv, d, source, name_exprs, n, arch, mod, kernels);
  if (st || !c->writes) return st;
  if (!store_entry(path, key, n, mod, kernels, why, sizeof why)) {
    diag_note(d, span_none(), "NVRTC cache: cannot store results in %s (%s); caching nothing more", c->dir, why);
    c->writes = false;
  }
  return DITC_OK;
}
