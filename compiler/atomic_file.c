/* atomic_file.c: temp + fsync + rename output (see atomic_file.h). */
#define _POSIX_C_SOURCE 200809L
#include "atomic_file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

DitcStatus atomic_write(Diag *d, const char *path, AtomicWriteFn fn, void *ctx) {
  DitcStatus st = DITC_ERR_IO;
  FILE *f = NULL;
  int fd = -1;
  const char *slash = strrchr(path, '/');
  int dir_len = slash ? (int)(slash - path) + 1 : 0;
  const char *base = slash ? slash + 1 : path;
  size_t n = strlen(path) + 32;
  char *tmp = malloc(n);
  if (!tmp) return DITC_ERR_NOMEM;
  tmp[0] = '\0';
  struct stat sb;
  if (base[0] == '\0' || (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))) {
    diag_file_error(d, path, "cannot write output: is a directory");
    goto fail;
  }
  snprintf(tmp, n, "%.*s.%s.tmp.XXXXXX", dir_len, path, base);
  fd = mkstemp(tmp);
  if (fd < 0) {
    diag_file_error(d, path, "cannot write output: %s", strerror(errno));
    tmp[0] = '\0';
    goto fail;
  }
  fchmod(fd, 0644);
  f = fdopen(fd, "wb");
  if (!f) {
    diag_file_error(d, path, "cannot write output: %s", strerror(errno));
    goto fail;
  }
  fd = -1;
  errno = 0;
  if (fn(f, ctx) != 0 || fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0) {
    diag_file_error(d, path, "cannot write output: %s", errno ? strerror(errno) : "write failed");
    goto fail;
  }
  if (fclose(f) != 0) {
    f = NULL;
    diag_file_error(d, path, "cannot write output: %s", strerror(errno));
    goto fail;
  }
  f = NULL;
  if (rename(tmp, path) != 0) {
    diag_file_error(d, path, "cannot write output: %s", strerror(errno));
    goto fail;
  }
  tmp[0] = '\0';
  st = DITC_OK;
fail:
  if (f) fclose(f);
  if (fd >= 0) close(fd);
  if (tmp[0]) unlink(tmp);
  free(tmp);
  return st;
}
