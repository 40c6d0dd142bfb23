/* cmd_train.c: `dit train`: train a compiled training plan on a DITDATA set
 * the way the official train.py does (runtime/train/trainer.h), on one
 * process or on the ranks of `mpirun -np K dit train ...`.
 *   dit train PLAN --data DATA [--weights INIT] [--steps N] [--lr 1e-4]
 *             [--ema 0.9999] [--weight-decay 0] [--seed 0] [--global-batch B]
 *             [--log-every 100] [--ckpt-every 50000] [--sample-plan P
 *             --sample-every K [--sample-steps 100]] [--threads N]
 *             (-o RUN_DIR | --resume RUN_DIR) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "train/dist.h"
#include "train/trainer.h"

static void train_usage(FILE *f) {
  fprintf(f,
          "usage: dit train PLAN --data DATA [--weights INIT] [--steps N] [--lr 1e-4] [--ema 0.9999]\n"
          "                 [--weight-decay 0] [--seed 0] [--global-batch B] [--log-every 100]\n"
          "                 [--ckpt-every 50000] [--sample-plan P --sample-every K [--sample-steps 100]]\n"
          "                 [--threads N] (-o RUN_DIR [--overwrite] | --resume RUN_DIR)\n"
          "\n"
          "Trains a training plan (ditc SPEC --mode train --batch N -o PLAN) on a DITDATA set\n"
          "(dit data) as the official train.py: AdamW (betas 0.9/0.999, eps 1e-8) at a constant\n"
          "learning rate, an EMA whose first update copies the weights, label dropout at the\n"
          "model's class_dropout, t uniform in [0, 1000), random horizontal flips.\n"
          "  --weights INIT   start from a checkpoint instead of the official initialisation\n"
          "  --steps N        train until N optimizer steps in total (default 1000)\n"
          "  --global-batch B rows per step over all ranks (default: the plan's batch x ranks)\n"
          "  --ckpt-every K   checkpoint every K steps, and at the end (RUN_DIR/checkpoints)\n"
          "  --sample-plan P  an inference plan of the same pixel-space spec: every\n"
          "                   --sample-every K steps, a PNG grid of EMA samples (RUN_DIR/samples)\n"
          "  -o RUN_DIR       a new run: RUN_DIR must be missing or empty\n"
          "  --overwrite      start a new run in a RUN_DIR that holds one (its loss.tsv, log.txt,\n"
          "                   checkpoints and samples are removed first)\n"
          "  --resume RUN_DIR continue bit-exactly from RUN_DIR's latest checkpoint (its\n"
          "                   hyperparameters and seed; --steps sets the new end); loss.tsv is cut\n"
          "                   back to that checkpoint's step, so a killed and resumed run ends with\n"
          "                   the files of one that ran straight through\n"
          "  --dump-batches D write each step's rows (x0, t, y, noise as .npy) to D (testing)\n"
          "Logs: RUN_DIR/log.txt, and RUN_DIR/loss.tsv with every step's mean loss.\n"
          "Data parallel: mpirun -np K dit train ... (each rank takes B/K rows of every batch).\n");
}

static int parse_i64(const char *s, int64_t lo, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < lo) return -1;
  *out = v;
  return 0;
}

static int parse_f64(const char *s, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v >= lo && v <= hi)) return -1;
  *out = v;
  return 0;
}

static int parse_train(int argc, char **argv, TrainOptions *o) {
  const char *resume = NULL;
  int steps_given = 0; /* --sample-steps */
  for (int i = 2; i < argc; i++) {
    const char *k = argv[i];
    if (k[0] != '-') {
      if (o->plan_path) {
        fprintf(stderr, "dit train: error: more than one plan given\n");
        return -1;
      }
      o->plan_path = k;
      continue;
    }
    if (!strcmp(k, "--overwrite")) {
      o->overwrite = 1;
      continue;
    }
    k = cli_official_alias("train", k); /* --global-batch-size, --global-seed */
    static const char *const known[] = {"--data", "--weights", "-o", "--resume", "--sample-plan", "--sample-steps",
                                        "--dump-batches", "--steps", "--global-batch", "--log-every",
                                        "--ckpt-every", "--sample-every", "--seed", "--threads", "--lr", "--ema",
                                        "--weight-decay"};
    size_t kn = 0;
    while (kn < sizeof known / sizeof *known && strcmp(k, known[kn])) kn++;
    if (kn == sizeof known / sizeof *known) {
      fprintf(stderr, "dit train: error: unknown option '%s' (dit train --help)\n", k);
      return -1;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "dit train: error: %s needs a value\n", argv[i]);
      return -1;
    }
    const char *v = argv[++i];
    int64_t n = 0;
    int bad = 0;
    if (!strcmp(k, "--data")) o->data_path = v;
    else if (!strcmp(k, "--weights")) o->init_path = v;
    else if (!strcmp(k, "-o")) o->run_dir = v;
    else if (!strcmp(k, "--resume")) resume = v;
    else if (!strcmp(k, "--sample-plan")) o->sample_plan = v;
    else if (!strcmp(k, "--sample-steps")) o->sample_steps = v, steps_given = 1;
    else if (!strcmp(k, "--dump-batches")) o->dump_batches = v;
    else if (!strcmp(k, "--steps")) bad = parse_i64(v, 0, &o->steps);
    else if (!strcmp(k, "--global-batch")) bad = parse_i64(v, 1, &o->global_batch);
    else if (!strcmp(k, "--log-every")) bad = parse_i64(v, 1, &o->log_every);
    else if (!strcmp(k, "--ckpt-every")) bad = parse_i64(v, 1, &o->ckpt_every);
    else if (!strcmp(k, "--sample-every")) bad = parse_i64(v, 1, &o->sample_every);
    else if (!strcmp(k, "--seed")) bad = parse_i64(v, 0, &n), o->seed = (uint64_t)n;
    else if (!strcmp(k, "--threads")) bad = parse_i64(v, 1, &n) || n > 4096, o->threads = (int)n;
    else if (!strcmp(k, "--lr")) bad = parse_f64(v, 0, 1e3, &o->lr);
    else if (!strcmp(k, "--ema")) bad = parse_f64(v, 0, 1, &o->ema_decay);
    else if (!strcmp(k, "--weight-decay")) bad = parse_f64(v, 0, 1e3, &o->weight_decay);
    if (bad) {
      fprintf(stderr, "dit train: error: bad value for %s: '%s'\n", k, v);
      return -1;
    }
  }
  if (resume && o->run_dir) {
    fprintf(stderr, "dit train: error: give -o RUN_DIR for a new run, or --resume RUN_DIR, not both\n");
    return -1;
  }
  if (resume) {
    o->run_dir = resume;
    o->resume = 1;
  }
  if (!o->plan_path || !o->data_path || !o->run_dir) {
    fprintf(stderr, "dit train: error: PLAN, --data and -o RUN_DIR (or --resume RUN_DIR) are required\n");
    return -1;
  }
  if ((o->sample_plan != NULL) != (o->sample_every > 0) || (steps_given && !o->sample_plan)) {
    fprintf(stderr, "dit train: error: --sample-plan and --sample-every go together (--sample-steps with them)\n");
    return -1;
  }
  if (o->resume && o->overwrite) {
    fprintf(stderr, "dit train: error: --overwrite starts a new run; --resume continues one\n");
    return -1;
  }
  if (o->resume && o->init_path) {
    fprintf(stderr, "dit train: error: --weights starts a new run; --resume continues one\n");
    return -1;
  }
  return 0;
}

int cmd_train(int argc, char **argv) {
  TrainOptions o;
  train_defaults(&o);
  o.out = stdout;
  if (argc >= 3 && (!strcmp(argv[2], "-h") || !strcmp(argv[2], "--help"))) {
    train_usage(stdout);
    return 0;
  }
  if (parse_train(argc, argv, &o)) return 2; /* the message says what; --help the rest */
  Dist *dist = NULL;
  DitErr e = {0};
  int rc = 1;
  if (dist_init(&dist, &e)) {
    fprintf(stderr, "dit: error: %s\n", e.msg);
    return 1;
  }
  if (train_run(&o, dist, &e)) {
    fprintf(stderr, "dit: error%s: %s\n", dist_size(dist) > 1 ? " (a rank)" : "", e.msg);
    goto done;
  }
  rc = 0;
done:
  dist_finalize(dist);
  return rc;
}
