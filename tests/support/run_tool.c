/* run_tool.c: fork/exec a tool with its output captured in temp files. */
#define _GNU_SOURCE
#include "run_tool.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

char *read_text_file(const char *path, size_t *len_out) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  while (buf) {
    size_t n = fread(buf + len, 1, cap - len - 1, f);
    len += n;
    if (n == 0) break;
    if (cap - len < 2) {
      char *nb = realloc(buf, cap * 2);
      if (!nb) { free(buf); buf = NULL; break; }
      buf = nb;
      cap *= 2;
    }
  }
  fclose(f);
  if (!buf) return NULL;
  buf[len] = '\0';
  if (len_out) *len_out = len;
  return buf;
}

int run_tool(const char *const *argv, const ToolOptions *opt, ToolResult *res) {
  memset(res, 0, sizeof *res);
  char out_path[] = "/tmp/ditc_test_out_XXXXXX", err_path[] = "/tmp/ditc_test_err_XXXXXX";
  int out_fd = mkstemp(out_path), err_fd = mkstemp(err_path);
  if (out_fd < 0 || err_fd < 0) return -1;
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    if (opt && opt->cwd && chdir(opt->cwd) != 0) _exit(126);
    if (opt && opt->run_as_nobody && getuid() == 0) {
      if (setgid(65534) != 0 || setuid(65534) != 0) _exit(126);
    }
    /* execv takes char *const[] for historical reasons; it does not write to them */
    char *args[64];
    size_t n = 0;
    for (; argv[n] && n < 63; n++) args[n] = strdup(argv[n]);
    args[n] = NULL;
    execv(args[0], args);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  close(out_fd);
  close(err_fd);
  res->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  res->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  res->out = read_text_file(out_path, NULL);
  res->err = read_text_file(err_path, NULL);
  unlink(out_path);
  unlink(err_path);
  return 0;
}

void tool_result_free(ToolResult *res) {
  free(res->out);
  free(res->err);
  res->out = res->err = NULL;
}
