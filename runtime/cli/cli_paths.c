/* cli_paths.c: output-path checks before the first write (cli_paths.h). */
#define _POSIX_C_SOURCE 200809L
#include "cli_paths.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_write.h"


/* The folder that holds path ("." for a bare name), in buf. */
static void parent_of(const char *path, char *buf, size_t n) {
  const char *slash = strrchr(path, '/');
  if (!slash) snprintf(buf, n, ".");
  else if (slash == path) snprintf(buf, n, "/");
  else snprintf(buf, n, "%.*s", (int)(slash - path), path);
}

static int check_parent(const char *path) {
  char dir[4096];
  struct stat sb;
  parent_of(path, dir, sizeof dir);
  if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
    fprintf(stderr, "dit: error: %s: cannot write: folder %s does not exist\n", path, dir);
    return -1;
  }
  if (access(dir, W_OK | X_OK) != 0) {
    fprintf(stderr, "dit: error: %s: cannot write: folder %s: %s\n", path, dir, strerror(errno));
    return -1;
  }
  return 0;
}

static int check_file(const char *path) {
  struct stat sb;
  if (!*path) {
    fprintf(stderr, "dit: error: an output path is empty\n");
    return -1;
  }
  if (stat(path, &sb) == 0) {
    if (S_ISDIR(sb.st_mode)) {
      fprintf(stderr, "dit: error: %s: cannot write: is a folder\n", path);
      return -1;
    }
    if (S_ISCHR(sb.st_mode) || S_ISFIFO(sb.st_mode)) return 0; /* written through */
    if (!S_ISREG(sb.st_mode)) {
      fprintf(stderr, "dit: error: %s: cannot write: not a regular file, device or FIFO\n", path);
      return -1;
    }
  }
  return check_parent(path);
}


int cli_check_outputs(const char *const *outputs, size_t n_out, const char *const *inputs, size_t n_in) {
  for (size_t i = 0; i < n_out; i++) {
    if (!outputs[i]) continue;
    for (size_t j = 0; j < n_in; j++)
      if (inputs[j] && (atomic_same_file(outputs[i], inputs[j]) || !strcmp(outputs[i], inputs[j]))) {
        fprintf(stderr, "dit: error: %s: is also an input of this command (%s); choose another output path\n",
                outputs[i], inputs[j]);
        return -1;
      }
    for (size_t j = 0; j < i; j++)
      if (outputs[j] && (atomic_same_file(outputs[i], outputs[j]) || !strcmp(outputs[i], outputs[j]))) {
        fprintf(stderr, "dit: error: %s: given as two outputs of this command\n", outputs[i]);
        return -1;
      }
  }
  for (size_t i = 0; i < n_out; i++)
    if (outputs[i] && check_file(outputs[i])) return -1;
  return 0;
}

int cli_check_output_dir(const char *dir) {
  struct stat sb;
  if (!*dir) {
    fprintf(stderr, "dit: error: an output folder is empty\n");
    return -1;
  }
  if (stat(dir, &sb) == 0) {
    if (S_ISDIR(sb.st_mode)) return 0;
    fprintf(stderr, "dit: error: %s: is not a folder\n", dir);
    return -1;
  }
  return check_parent(dir);
}
