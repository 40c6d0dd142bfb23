/* atomic_write.c: temp + fsync + rename (see atomic_write.h). */
#define _POSIX_C_SOURCE 200809L
#include "atomic_write.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

DitStatus atomic_write_file(const char *path, WriteBodyFn fn, void *ctx, DitErr *err) {
  DitStatus st = DIT_ERR_IO;
  FILE *f = NULL;
  size_t n = strlen(path) + 32;
  char *tmp = malloc(n);
  if (!tmp) return dit_err(err, DIT_ERR_NOMEM, "out of memory");
  tmp[0] = '\0';
  const char *slash = strrchr(path, '/');
  int dir_len = slash ? (int)(slash - path) + 1 : 0;
  const char *base = slash ? slash + 1 : path;
  struct stat sb;
  if (base[0] == '\0' || (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))) {
    st = dit_err(err, DIT_ERR_IO, "%s: cannot write: is a directory", path);
    goto fail;
  }
  snprintf(tmp, n, "%.*s.%s.tmp.XXXXXX", dir_len, path, base);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    st = dit_err(err, DIT_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    tmp[0] = '\0';
    goto fail;
  }
  fchmod(fd, 0644);
  f = fdopen(fd, "wb");
  if (!f) {
    close(fd);
    st = dit_err(err, DIT_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    goto fail;
  }
  errno = 0;
  if (err) err->status = DIT_OK;
  if (fn(f, ctx) != 0 || fflush(f) != 0 || fsync(fileno(f)) != 0) {
    /* a writer that failed for its own reason has said why in err */
    if (err && err->status) st = err->status;
    else st = dit_err(err, DIT_ERR_IO, "%s: cannot write: %s", path, errno ? strerror(errno) : "write failed");
    goto fail;
  }
  int rc = fclose(f);
  f = NULL;
  if (rc != 0 || rename(tmp, path) != 0) {
    st = dit_err(err, DIT_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    goto fail;
  }
  tmp[0] = '\0';
  st = DIT_OK;
fail:
  if (f) fclose(f);
  if (tmp[0]) unlink(tmp);
  free(tmp);
  return st;
}
