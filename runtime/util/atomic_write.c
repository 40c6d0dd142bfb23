/* atomic_write.c: the output-file policy of ditc and dit (see atomic_write.h):
 * temp + fsync + rename for regular files, links followed, devices and FIFOs
 * written through, stale temporaries of dead writers removed. */
#define _POSIX_C_SOURCE 200809L
#include "atomic_write.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* The final target of path, links followed (at most 40), in out. */
static DitStatus resolve_links(const char *path, char *out, size_t n, DitErr *err) {
  char link[PATH_MAX];
  snprintf(out, n, "%s", path);
  for (int hops = 0;; hops++) {
    struct stat sb;
    if (lstat(out, &sb) != 0 || !S_ISLNK(sb.st_mode)) return DIT_OK;
    if (hops == 40) return dit_err(err, DIT_ERR_IO, "%s: cannot write: too many levels of symbolic links", path);
    ssize_t k = readlink(out, link, sizeof link - 1);
    if (k < 0) return dit_err(err, DIT_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    link[k] = '\0';
    const char *slash = strrchr(out, '/');
    if (link[0] == '/' || !slash) {
      snprintf(out, n, "%s", link);
    } else { /* relative to the link's folder */
      char dir[PATH_MAX];
      snprintf(dir, sizeof dir, "%.*s", (int)(slash - out), out);
      if ((size_t)snprintf(out, n, "%s/%s", dir, link) >= n)
        return dit_err(err, DIT_ERR_IO, "%s: cannot write: path too long", path);
    }
  }
}

/* ".NAME.tmp.PID.XXXXXX" (ours) or ".NAME.tmp.XXXXXX" (older versions): is
 * it a temporary, of base (any base when NULL), whose writer is gone? */
static int stale_temp(const char *file, const char *base) {
  if (file[0] != '.') return 0;
  const char *tag = strstr(file + 1, ".tmp.");
  if (!tag) return 0;
  for (const char *t; (t = strstr(tag + 1, ".tmp."));) tag = t; /* the last ".tmp." */
  if (base && ((size_t)(tag - file - 1) != strlen(base) || strncmp(file + 1, base, strlen(base)))) return 0;
  const char *rest = tag + 5, *dot = strchr(rest, '.');
  if (!dot) return strlen(rest) == 6; /* old format: its writer could only have died */
  if (strlen(dot + 1) != 6 || strspn(rest, "0123456789") != (size_t)(dot - rest) || dot == rest) return 0;
  long pid = strtol(rest, NULL, 10);
  return pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

static void remove_stale_in(const char *dir, const char *base) {
  DIR *d = opendir(dir);
  for (struct dirent *e; d && (e = readdir(d));) {
    if (!stale_temp(e->d_name, base)) continue;
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < sizeof path) unlink(path);
  }
  if (d) closedir(d);
}

DitStatus atomic_remove_stale(const char *dir, DitErr *err) {
  (void)err;
  remove_stale_in(dir, NULL);
  return DIT_OK;
}

int atomic_same_file(const char *a, const char *b) {
  struct stat sa, sb;
  return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int make_temp(const char *target, char *tmp, size_t n);

/* A character device or a FIFO: the body goes straight into it. */
static DitStatus write_through(const char *path, int fifo, WriteBodyFn fn, void *ctx, DitErr *err) {
  /* a FIFO opened without O_NONBLOCK waits for a reader forever: fail instead */
  int fd = open(path, O_WRONLY | (fifo ? O_NONBLOCK : 0));
  if (fd < 0)
    return dit_err(err, DIT_ERR_IO, "%s: cannot write: %s", path,
                   fifo && errno == ENXIO ? "no process is reading the FIFO" : strerror(errno));
  if (fifo) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  FILE *f = fdopen(fd, "wb");
  if (!f) {
    close(fd);
    return dit_err(err, DIT_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
  }
  errno = 0;
  if (err) err->status = DIT_OK;
  int bad = fn(f, ctx) != 0 || fflush(f) != 0;
  int saved = errno;
  if (fclose(f) != 0 && !bad) bad = 1, saved = errno;
  if (!bad) return DIT_OK;
  if (err && err->status) return err->status;
  return dit_err(err, DIT_ERR_IO, "%s: cannot write: %s", path, saved ? strerror(saved) : "write failed");
}

DitStatus atomic_write_file(const char *path, WriteBodyFn fn, void *ctx, DitErr *err) {
  DitStatus st = DIT_ERR_IO;
  FILE *f = NULL;
  char target[PATH_MAX], tmp[PATH_MAX + 64];
  tmp[0] = '\0';
  st = resolve_links(path, target, sizeof target, err);
  if (st) return st;
  const char *slash = strrchr(target, '/');
  int dir_len = slash ? (int)(slash - target) + 1 : 0;
  const char *base = slash ? slash + 1 : target;
  struct stat sb;
  if (base[0] == '\0') return dit_err(err, DIT_ERR_IO, "%s: cannot write: is a directory", path);
  if (stat(target, &sb) == 0) {
    if (S_ISCHR(sb.st_mode) || S_ISFIFO(sb.st_mode)) return write_through(target, S_ISFIFO(sb.st_mode), fn, ctx, err);
    if (!S_ISREG(sb.st_mode))
      return dit_err(err, DIT_ERR_IO, "%s: cannot write: %s", path,
                     S_ISDIR(sb.st_mode) ? "is a directory" : "not a regular file, character device or FIFO");
  }
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%.*s", dir_len ? dir_len : 1, dir_len ? target : ".");
  remove_stale_in(dir, base);
  int fd = make_temp(target, tmp, sizeof tmp);
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
  if (rc != 0 || rename(tmp, target) != 0) {
    st = dit_err(err, DIT_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    goto fail;
  }
  tmp[0] = '\0';
  st = DIT_OK;
fail:
  if (f) fclose(f);
  if (tmp[0]) unlink(tmp);
  return st;
}

/* A new temporary ".BASE.tmp.PID.XXXXXX" beside target (its name in tmp). */
static int make_temp(const char *target, char *tmp, size_t n) {
  const char *slash = strrchr(target, '/');
  int dir_len = slash ? (int)(slash - target) + 1 : 0;
  if ((size_t)snprintf(tmp, n, "%.*s.%s.tmp.%ld.XXXXXX", dir_len, target, target + dir_len, (long)getpid()) >= n)
    return errno = ENAMETOOLONG, -1;
  return mkstemp(tmp);
}

DitStatus atomic_stage(const char *path, char *staged, size_t n, DitErr *err) {
  char target[PATH_MAX];
  struct stat sb;
  DitStatus st = resolve_links(path, target, sizeof target, err);
  if (st) return st;
  if (stat(target, &sb) == 0 && (S_ISCHR(sb.st_mode) || S_ISFIFO(sb.st_mode))) {
    snprintf(staged, n, "%s", path);
    return DIT_OK;
  }
  int fd = make_temp(target, staged, n);
  if (fd < 0) return dit_err(err, DIT_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
  fchmod(fd, 0644);
  close(fd);
  return DIT_OK;
}

DitStatus atomic_commit(const char *staged, const char *path, DitErr *err) {
  char target[PATH_MAX];
  if (!strcmp(staged, path)) return DIT_OK;
  DitStatus st = resolve_links(path, target, sizeof target, err);
  if (!st && rename(staged, target) != 0)
    st = dit_err(err, DIT_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
  if (st) unlink(staged);
  return st;
}

void atomic_unstage(const char *staged, const char *path) {
  if (strcmp(staged, path)) unlink(staged);
}

typedef struct Bytes {
  const void *data;
  size_t n;
} Bytes;

static int write_bytes(FILE *f, void *ctx) {
  const Bytes *b = ctx;
  return fwrite(b->data, 1, b->n, f) == b->n ? 0 : -1;
}

DitStatus atomic_write_bytes(const char *path, const void *data, size_t n, DitErr *err) {
  Bytes b = {data, n};
  return atomic_write_file(path, write_bytes, &b, err);
}
