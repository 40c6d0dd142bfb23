/* cmd_tune.c: `dit tune`, the autotuner's command (dit_tune, docs/autotune.md),
 * and the one-line notice the other commands print when a plan's tunings
 * are for other devices.
 *   dit tune PLAN -o TUNED [--device cpu|cuda|emu] [--budget SECONDS]
 *            [--weights W] [--batch N] [--repeats R] [--threads N] [--seed S] */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_paths.h"

static void tune_usage(FILE *f) {
  fprintf(f,
          "usage: dit tune PLAN -o TUNED [--device cpu|cuda|emu] [--budget SECONDS] [--weights W]\n"
          "                [--batch N] [--repeats R] [--threads N] [--seed S]\n"
          "\n"
          "Times every op's choices on this device at the plan's shapes and writes the plan\n"
          "with the fastest correct ones as this device's tuning (atomically; TUNED may be PLAN).\n"
          "Choices: kernel candidates (ditc --arch ... --tune-candidates K) and cuBLASLt's\n"
          "algorithms on a GPU; threads and tile shapes on the CPU. A choice whose output differs\n"
          "from the default's (beyond the plan's dtype tolerance) or that fails is reported and\n"
          "never chosen. The runtime uses a tuning only on the device it was made on.\n"
          "  --device   cpu (default), cuda, or emu (the emulated device: its times mean nothing)\n"
          "  --budget   stop tuning after about this many seconds; the rest keep their defaults\n"
          "  --weights  a checkpoint to run on (default: random weights; times do not depend on them)\n"
          "  --batch    the rows to time at (default: the plan's batch)\n"
          "  --repeats  timed runs per choice, median (default 5)\n"
          "  --threads  CPU threads (default: all cores; a CPU tuning is for this count)\n"
          "  --seed     of the random inputs and weights (default 0)\n");
}

void cli_tuning_notice(DitRuntime *rt) {
  const char *info = dit_tuning_info(rt);
  if (info[0] && strncmp(info, "tuned for this device", 21) != 0) fprintf(stderr, "dit: note: %s\n", info);
}

typedef struct TuneArgs {
  const char *plan, *out, *device, *weights;
  long batch, repeats, threads;
  double budget;
  unsigned long long seed;
} TuneArgs;

static int parse_tune(int argc, char **argv, TuneArgs *a) {
  memset(a, 0, sizeof *a);
  a->device = "cpu";
  for (int i = 2; i < argc; i++) {
    const char *s = argv[i];
    const char **slot = !strcmp(s, "-o") ? &a->out : !strcmp(s, "--device") ? &a->device
                        : !strcmp(s, "--weights") ? &a->weights : NULL;
    bool num = !strcmp(s, "--budget") || !strcmp(s, "--batch") || !strcmp(s, "--repeats") ||
               !strcmp(s, "--threads") || !strcmp(s, "--seed");
    if (slot || num) {
      if (i + 1 >= argc || !strncmp(argv[i + 1], "--", 2)) {
        fprintf(stderr, "dit: error: %s needs a value\n", s);
        return -1;
      }
      const char *v = argv[++i];
      char *end;
      errno = 0;
      if (slot) {
        *slot = v;
        continue;
      }
      if (!strcmp(s, "--budget")) {
        a->budget = strtod(v, &end);
        if (errno || end == v || *end || !(a->budget > 0) || a->budget > 1e7) {
          fprintf(stderr, "dit: error: --budget takes seconds > 0, got '%s'\n", v);
          return -1;
        }
        continue;
      }
      long long x = strtoll(v, &end, 10);
      long long hi = !strcmp(s, "--seed") ? (long long)1 << 62 : !strcmp(s, "--repeats") ? 64 : 1 << 20;
      if (errno || end == v || *end || x < (!strcmp(s, "--seed") ? 0 : 1) || x > hi) {
        fprintf(stderr, "dit: error: %s takes an integer from %d to %lld, got '%s'\n", s, !strcmp(s, "--seed") ? 0 : 1,
                hi, v);
        return -1;
      }
      if (!strcmp(s, "--batch")) a->batch = (long)x;
      else if (!strcmp(s, "--repeats")) a->repeats = (long)x;
      else if (!strcmp(s, "--threads")) a->threads = (long)x;
      else a->seed = (unsigned long long)x;
    } else if (s[0] == '-') {
      fprintf(stderr, "dit: error: unknown option '%s'\n", s);
      return -1;
    } else if (a->plan) {
      fprintf(stderr, "dit: error: more than one plan given\n");
      return -1;
    } else {
      a->plan = s;
    }
  }
  if (!a->plan || !a->out) {
    fprintf(stderr, "dit: error: tune needs %s\n", !a->plan ? "PLAN" : "-o TUNED");
    return -1;
  }
  if (strcmp(a->device, "cpu") && strcmp(a->device, "cuda") && strcmp(a->device, "emu")) {
    fprintf(stderr, "dit: error: --device takes cpu, cuda or emu (a tuning is for one device), got '%s'\n",
            a->device);
    return -1;
  }
  return 0;
}

typedef struct TuneProgress {
  double t0;
} TuneProgress;

static void tune_progress(void *ctx, size_t done, size_t total) {
  TuneProgress *p = ctx;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  double now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9, el = now - p->t0;
  double left = done ? el * (double)(total - done) / (double)done : 0;
  int width = 30, fill = total ? (int)(width * (double)done / (double)total) : width;
  fprintf(stderr, "\r[%.*s%*s] op %zu/%zu  %.0f s  ETA %02d:%02d ", fill, "##############################",
          width - fill, "", done, total, el, (int)(left / 60), (int)left % 60);
  if (done == total) fputc('\n', stderr);
  fflush(stderr);
}

static void print_report(const DitTuneReport *r) {
  printf("tuned %s: %zu ops with choices\n", r->device, r->n_ops);
  printf("%4s  %-22s %-16s %11s %11s %7s  %s\n", "op", "kind", "shape", "default us", "tuned us", "speedup",
         "choice");
  size_t wrong = 0, failed = 0;
  for (size_t i = 0; i < r->n_ops; i++) {
    const DitTuneOp *o = &r->ops[i];
    printf("%4zu  %-22s %-16s %11.1f %11.1f %6.2fx  %s\n", o->op, o->op_name, o->shape, o->default_us, o->tuned_us,
           o->tuned_us > 0 ? o->default_us / o->tuned_us : 1.0, o->chosen);
    wrong += (size_t)o->wrong, failed += (size_t)o->failed;
  }
  for (size_t i = 0; i < r->n_ops; i++)
    if (r->ops[i].note[0]) printf("  op %zu: %s\n", r->ops[i].op, r->ops[i].note);
  printf("forward: %.3f ms untuned, %.3f ms tuned (%.2fx); output within %.2g of the untuned\n", r->default_ms,
         r->tuned_ms, r->tuned_ms > 0 ? r->default_ms / r->tuned_ms : 1.0, r->rel_err);
  printf("choices rejected: %zu with another result, %zu that failed to run", wrong, failed);
  if (r->out_of_budget) printf("; %zu ops left at their defaults (budget)", r->out_of_budget);
  printf("\n");
}

int cmd_tune(int argc, char **argv) {
  if (argc >= 3 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
    tune_usage(stdout);
    return 0;
  }
  TuneArgs a;
  if (parse_tune(argc, argv, &a)) {
    tune_usage(stderr);
    return 2;
  }
  const char *outs[] = {a.out};
  const char *ins[] = {a.weights}; /* NULL is skipped; the plan itself may be rewritten in place */
  if (cli_check_outputs(outs, 1, ins, 1)) return 1;
  DitOptions opt = {.n_threads = (int)a.threads, .device = a.device, .no_tuning = 1};
  if (cli_env_options(&opt)) return 2;
  DitRuntime *rt = NULL;
  DitError oe;
  DitTuneReport rep = {0};
  int rc = 1;
  if (dit_open(a.plan, &opt, &rt, &oe)) {
    fprintf(stderr, "dit: error: %s\n", oe.message);
    goto done;
  }
  if (a.weights && dit_load_weights(rt, a.weights)) {
    fprintf(stderr, "dit: error: %s\n", dit_last_error(rt));
    goto done;
  }
  if (!a.weights && dit_random_weights(rt, a.seed)) {
    fprintf(stderr, "dit: error: %s\n", dit_last_error(rt));
    goto done;
  }
  TuneProgress prog = {0};
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  prog.t0 = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
  DitTuneOptions to = {.rows = a.batch, .budget_s = a.budget, .repeats = (int)a.repeats, .seed = a.seed,
                       .progress = isatty(2) ? tune_progress : NULL, .progress_ctx = &prog};
  if (dit_tune(rt, &to, &rep)) {
    fprintf(stderr, "dit: error: tuning %s: %s\n", a.plan, dit_last_error(rt));
    goto done;
  }
  print_report(&rep);
  if (dit_save_plan(rt, a.out)) {
    fprintf(stderr, "dit: error: %s\n", dit_last_error(rt));
    goto done;
  }
  printf("wrote %s\n", a.out);
  rc = 0;
done:
  dit_tune_report_free(&rep);
  dit_close(rt);
  return rc;
}
