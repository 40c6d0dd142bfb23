/* run_dir.c: the run folder of dit train (run_dir.h). */
#define _POSIX_C_SOURCE 200809L
#include "run_dir.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_write.h"

static int is_empty_dir(const char *dir) {
  DIR *d = opendir(dir);
  int empty = 1;
  for (struct dirent *e; d && empty && (e = readdir(d));)
    empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
  if (d) closedir(d);
  return empty;
}

DitStatus run_dir_check(const char *dir, int resume, int overwrite, DitErr *err) {
  struct stat sb;
  char latest[4200];
  if (!*dir) return dit_err(err, DIT_ERR_ARG, "the run folder's name is empty");
  int exists = stat(dir, &sb) == 0;
  if (exists && !S_ISDIR(sb.st_mode)) return dit_err(err, DIT_ERR_ARG, "%s: is not a folder", dir);
  if (resume) {
    snprintf(latest, sizeof latest, "%s/checkpoints/latest", dir);
    if (!exists) return dit_err(err, DIT_ERR_ARG, "%s: no such run folder to resume", dir);
    if (stat(latest, &sb) != 0)
      return dit_err(err, DIT_ERR_ARG, "%s: no checkpoint to resume from (checkpoints/latest is missing)", dir);
    return DIT_OK;
  }
  if (exists && !overwrite && !is_empty_dir(dir))
    return dit_err(err, DIT_ERR_ARG, "%s already holds files (a run?): --resume %s continues it, --overwrite "
                                     "starts over in it, or choose another -o", dir, dir);
  return DIT_OK;
}

/* Removes dir/name when it is a file this trainer writes. */
static void remove_run_file(const char *dir, const char *name) {
  char path[4400];
  if (snprintf(path, sizeof path, "%s/%s", dir, name) < (int)sizeof path) unlink(path);
}

/* checkpoints/: NNNNNNN.safetensors, NNNNNNN-ema.safetensors, NNNNNNN.pt,
 * latest; samples/: NNNNNNN.png. */
static void clear_run_folder(const char *dir, const char *sub, const char *const *suffixes) {
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", dir, sub);
  DIR *d = opendir(path);
  for (struct dirent *e; d && (e = readdir(d));) {
    const char *name = e->d_name;
    size_t digits = strspn(name, "0123456789");
    int ours = !strcmp(name, "latest");
    for (const char *const *s = suffixes; *s && !ours; s++) ours = digits == 7 && !strcmp(name + 7, *s);
    if (ours) remove_run_file(path, name);
  }
  if (d) closedir(d);
}

DitStatus run_dir_prepare(const char *dir, int overwrite, int *created, DitErr *err) {
  *created = 0;
  if (mkdir(dir, 0777) == 0) *created = 1;
  else if (errno != EEXIST) return dit_err(err, DIT_ERR_IO, "%s: cannot create the run folder: %s", dir, strerror(errno));
  if (overwrite) {
    static const char *const ckpt_suffixes[] = {".safetensors", "-ema.safetensors", ".pt", NULL};
    static const char *const sample_suffixes[] = {".png", NULL};
    remove_run_file(dir, "loss.tsv");
    remove_run_file(dir, "log.txt");
    clear_run_folder(dir, "checkpoints", ckpt_suffixes);
    clear_run_folder(dir, "samples", sample_suffixes);
  }
  char sub[4200];
  DitStatus st = atomic_remove_stale(dir, err);
  snprintf(sub, sizeof sub, "%s/checkpoints", dir);
  if (!st) st = atomic_remove_stale(sub, err);
  snprintf(sub, sizeof sub, "%s/samples", dir);
  if (!st) st = atomic_remove_stale(sub, err);
  return st;
}

void run_dir_abandon(const char *dir, int created) {
  if (created) rmdir(dir); /* fails, as it should, unless empty */
}

DitStatus run_dir_trim_loss(const char *dir, int64_t step, DitErr *err) {
  char path[4200];
  snprintf(path, sizeof path, "%s/loss.tsv", dir);
  DitStatus st = DIT_OK;
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  if (!f) return errno == ENOENT ? DIT_OK : dit_err(err, DIT_ERR_IO, "%s: %s", path, strerror(errno));
  struct stat sb;
  if (fstat(fileno(f), &sb) != 0 || !(buf = malloc((size_t)sb.st_size + 1)) ||
      fread(buf, 1, (size_t)sb.st_size, f) != (size_t)sb.st_size) {
    st = dit_err(err, DIT_ERR_IO, "%s: cannot read", path);
    goto done;
  }
  buf[sb.st_size] = '\0';
  /* keep the lines "k\t..." for k = 1, 2, ... while k <= step, complete ones only */
  size_t keep = 0;
  for (int64_t want = 1; want <= step; want++) {
    char *eol = memchr(buf + keep, '\n', (size_t)sb.st_size - keep);
    char *end;
    if (!eol || strtoll(buf + keep, &end, 10) != want || *end != '\t') break;
    keep = (size_t)(eol - buf) + 1;
  }
  if (keep != (size_t)sb.st_size) st = atomic_write_bytes(path, buf, keep, err);
done:
  fclose(f);
  free(buf);
  return st;
}
