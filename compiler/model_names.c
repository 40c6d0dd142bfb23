/* model_names.c: official DiT model names -> shipped specs (model_names.h). */
#define _XOPEN_SOURCE 700
#include "model_names.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef DITC_INSTALL_SPEC_DIR
#define DITC_INSTALL_SPEC_DIR "/usr/local/share/ditc/specs"
#endif

/* The twelve models of DiT's models.py, in its order, and their spec stems. */
static const struct { const char *name, *stem; } MODELS[] = {
    {"DiT-XL/2", "XL2"}, {"DiT-XL/4", "XL4"}, {"DiT-XL/8", "XL8"}, {"DiT-L/2", "L2"},
    {"DiT-L/4", "L4"},   {"DiT-L/8", "L8"},   {"DiT-B/2", "B2"},   {"DiT-B/4", "B4"},
    {"DiT-B/8", "B8"},   {"DiT-S/2", "S2"},   {"DiT-S/4", "S4"},   {"DiT-S/8", "S8"},
};
enum { N_MODELS = sizeof MODELS / sizeof MODELS[0], MAX_DIRS = 16 };

static bool is_file(const char *p) {
  struct stat sb;
  return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

bool model_name_like(const char *arg) { return !strncmp(arg, "DiT-", 4) && !is_file(arg); }

/* The folders to look in, in order, into dirs[] (each PATH_MAX-ish). */
static int spec_dirs(const char *argv0, char dirs[][1024]) {
  int n = 0;
  const char *env = getenv("DITC_SPEC_PATH");
  for (const char *p = env; p && *p && n < MAX_DIRS;) {
    size_t len = strcspn(p, ":");
    if (len && len < 1024) snprintf(dirs[n++], 1024, "%.*s", (int)len, p);
    p += len + (p[len] == ':');
  }
  char exe[1024];
  ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (k > 0) exe[k] = '\0';
  else snprintf(exe, sizeof exe, "%s", argv0 ? argv0 : "");
  char *slash = strrchr(exe, '/');
  if (slash) {
    *slash = '\0';
    static const char *const rel[] = {"specs", "../specs", "../../specs", "../share/ditc/specs"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0] && n < MAX_DIRS; i++)
      if ((size_t)snprintf(dirs[n], 1024, "%s/%s", exe, rel[i]) < 1024) n++;
  }
  if (n < MAX_DIRS) snprintf(dirs[n++], 1024, "%s", DITC_INSTALL_SPEC_DIR);
  return n;
}

/* The spec of model m at image_size in the first folder that has it, into
 * path (its real path); 0, or -1 with the folders looked in (dirs, n_dirs). */
static int find_spec(int m, int image_size, const char *argv0, char *path, size_t n, char dirs[][1024], int *n_dirs) {
  *n_dirs = spec_dirs(argv0, dirs);
  for (int d = 0; d < *n_dirs; d++) {
    if ((size_t)snprintf(path, n, "%s/%s_%d.dit", dirs[d], MODELS[m].stem, image_size) < n && is_file(path)) {
      char *real = realpath(path, NULL); /* without the binary's ../.. */
      if (real && strlen(real) < n) strcpy(path, real);
      free(real);
      return 0;
    }
  }
  return -1;
}

int model_name_resolve(const char *name, int image_size, const char *argv0, char *path, size_t n, FILE *err) {
  int m = 0;
  while (m < N_MODELS && strcmp(MODELS[m].name, name) != 0) m++;
  if (m == N_MODELS) {
    fprintf(err, "ditc: error: unknown model '%s'; the official models are:", name);
    for (int i = 0; i < N_MODELS; i++) fprintf(err, "%s %s", i ? "," : "", MODELS[i].name);
    fprintf(err, " (or give a spec file)\n");
    return -1;
  }
  if (image_size != 256 && image_size != 512) {
    fprintf(err, "ditc: error: --image-size takes 256 or 512 (the official checkpoints' sizes), got %d\n",
            image_size);
    return -1;
  }
  char dirs[MAX_DIRS][1024];
  int n_dirs = 0;
  if (!find_spec(m, image_size, argv0, path, n, dirs, &n_dirs)) return 0;
  fprintf(err, "ditc: error: %s at %d px: no %s_%d.dit in", name, image_size, MODELS[m].stem, image_size);
  for (int d = 0; d < n_dirs; d++) fprintf(err, "%s %s", d ? "," : "", dirs[d]);
  fprintf(err, "; set DITC_SPEC_PATH to the folder of the shipped specs\n");
  return -1;
}

void model_names_list(const char *argv0, FILE *out) {
  char path[1200], dirs[MAX_DIRS][1024];
  int n_dirs = 0;
  for (int i = 0; i < N_MODELS; i++) {
    fprintf(out, "%-9s", MODELS[i].name);
    for (int size = 256; size <= 512; size *= 2)
      fprintf(out, "  %d: %s", size,
              find_spec(i, size, argv0, path, sizeof path, dirs, &n_dirs) ? "(spec not found)" : path);
    fputc('\n', out);
  }
}
