/* cmd_loss.c: `dit loss`: the official training loss of one given batch
 * and, optionally, the gradient of its mean for every trainable weight,
 * written as float32 safetensors under the official parameter names.
 *   dit loss PLAN --weights W --x0 X0.npy --t T.npy --y Y.npy --noise E.npy
 *            [--grads-out G.safetensors] [--losses-out L.npy] [--threads N]
 *   dit loss --help: the usage on stdout
 * Labels are used as given (no label dropout). The last line printed is
 * `loss <mean>`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_paths.h"
#include "dit/dit.h"
#include "npy.h"
#include "safetensors_write.h"

typedef struct LossArgs {
  const char *plan, *weights, *x0, *t, *y, *noise, *grads_out, *losses_out, *device;
  long threads;
} LossArgs;

static void loss_usage(FILE *f) {
  fprintf(f,
          "usage: dit loss PLAN --weights W --x0 X0.npy --t T.npy --y Y.npy --noise E.npy\n"
          "                [--grads-out G.safetensors] [--losses-out L.npy] [--threads N] [--device cpu]\n"
          "\n"
          "The official DiT training loss (MSE on eps, plus the VB term for learned sigma)\n"
          "of one batch, with a training plan (ditc SPEC --mode train --batch N -o PLAN).\n"
          "X0 and E float32 [N,C,H,W]; T (0..999) and Y int64 or int32 [N], used as given.\n"
          "Prints each row's loss, then `loss <mean>`. --grads-out writes the gradient of\n"
          "the mean loss for every trainable weight (float32, official names).\n"
          "Training plans run on the CPU only for now: --device cuda and emu are refused.\n");
}

static int parse_loss(int argc, char **argv, LossArgs *a) {
  memset(a, 0, sizeof *a);
  for (int i = 2; i < argc; i++) {
    const char *k = argv[i];
    const char **slot = !strcmp(k, "--weights")      ? &a->weights
                        : !strcmp(k, "--x0")         ? &a->x0
                        : !strcmp(k, "--t")          ? &a->t
                        : !strcmp(k, "--y")          ? &a->y
                        : !strcmp(k, "--noise")      ? &a->noise
                        : !strcmp(k, "--grads-out")  ? &a->grads_out
                        : !strcmp(k, "--losses-out") ? &a->losses_out
                        : !strcmp(k, "--device")     ? &a->device
                                                     : NULL;
    if (slot || !strcmp(k, "--threads")) {
      if (i + 1 >= argc || !strncmp(argv[i + 1], "--", 2)) { /* the next option is no value */
        fprintf(stderr, "dit loss: error: %s needs a value\n", k);
        return -1;
      }
      const char *v = argv[++i];
      if (slot) {
        *slot = v;
        continue;
      }
      char *end;
      errno = 0;
      a->threads = strtol(v, &end, 10);
      if (errno || *end || a->threads < 1 || a->threads > 4096) {
        fprintf(stderr, "dit loss: error: --threads takes 1 to 4096, got '%s'\n", v);
        return -1;
      }
    } else if (k[0] == '-') {
      fprintf(stderr, "dit loss: error: unknown option '%s'\n", k);
      return -1;
    } else if (a->plan) {
      fprintf(stderr, "dit loss: error: more than one plan given\n");
      return -1;
    } else {
      a->plan = k;
    }
  }
  if (!a->plan || !a->weights || !a->x0 || !a->t || !a->y || !a->noise) {
    fprintf(stderr, "dit loss: error: PLAN, --weights, --x0, --t, --y and --noise are required\n");
    return -1;
  }
  return 0;
}

/* Every trainable weight's gradient, under its official name. */
static DitStatus write_grads(DitRuntime *rt, const char *path, DitErr *e) {
  size_t n = dit_num_weights(rt), k = 0;
  StTensor *ts = calloc(n ? n : 1, sizeof *ts);
  if (!ts) return dit_err(e, DIT_ERR_NOMEM, "out of memory");
  const float *g = dit_grads_flat(rt);
  for (size_t i = 0; i < n; i++) {
    DitWeightView w;
    dit_weight_view(rt, i, &w);
    if (w.frozen) continue;
    StTensor *t = &ts[k++];
    t->name = w.name;
    t->dtype = "F32";
    t->rank = w.rank;
    for (int d = 0; d < w.rank; d++) t->shape[d] = w.dims[d];
    t->data = g + w.offset;
    t->bytes = (uint64_t)w.numel * sizeof(float);
  }
  static const char *const meta[] = {"format", "pt", "content", "gradients of the mean loss"};
  DitStatus st = st_write(path, ts, (int64_t)k, meta, 2, e);
  free(ts);
  return st;
}

int cmd_loss(int argc, char **argv) {
  LossArgs a;
  if (argc >= 3 && (!strcmp(argv[2], "-h") || !strcmp(argv[2], "--help"))) {
    loss_usage(stdout);
    return 0;
  }
  if (parse_loss(argc, argv, &a)) {
    loss_usage(stderr);
    return 2;
  }
  int rc = 1;
  DitRuntime *rt = NULL;
  NpyArray x0 = {0}, t = {0}, y = {0}, z = {0};
  float *losses = NULL;
  DitErr e = {0};
  DitError oe;
  DitOptions opt = {.n_threads = (int)a.threads, .device = a.device ? a.device : "cpu"};
  if (cli_env_options(&opt)) return 2;
  const char *outs[] = {a.grads_out, a.losses_out}, *ins[] = {a.plan, a.weights, a.x0, a.t, a.y, a.noise};
  if (cli_check_outputs(outs, 2, ins, 6)) goto done;
  if (dit_open(a.plan, &opt, &rt, &oe)) {
    fprintf(stderr, "dit: error: %s\n", oe.message);
    goto done;
  }
  const DitModelInfo *mi = dit_model_info(rt);
  if (!mi->training) {
    fprintf(stderr, "dit: error: %s is an inference plan; compile a training plan with "
                    "ditc SPEC --mode train --batch N -o PLAN\n", a.plan);
    goto done;
  }
  if (npy_read(a.x0, &x0, &e) || npy_read(a.t, &t, &e) || npy_read(a.y, &y, &e) ||
      npy_read(a.noise, &z, &e)) {
    fprintf(stderr, "dit: error: %s\n", e.msg);
    goto done;
  }
  int64_t L = mi->latent_size, n = x0.rank == 4 ? x0.shape[0] : -1;
  const NpyArray *imgs[2] = {&x0, &z};
  const char *names[2] = {a.x0, a.noise};
  for (int k = 0; k < 2; k++) {
    const NpyArray *v = imgs[k];
    if (v->type != NPY_F32 || v->rank != 4 || v->shape[0] != n || v->shape[1] != mi->in_channels ||
        v->shape[2] != L || v->shape[3] != L) {
      fprintf(stderr, "dit: error: %s: expected float32 [N,%lld,%lld,%lld] (N as in --x0)\n", names[k],
              (long long)mi->in_channels, (long long)L, (long long)L);
      goto done;
    }
  }
  if (t.type != NPY_I64 || t.rank != 1 || t.shape[0] != n || y.type != NPY_I64 || y.rank != 1 ||
      y.shape[0] != n) {
    fprintf(stderr, "dit: error: --t and --y must be int64 or int32 vectors of length %lld (the rows of --x0)\n",
            (long long)n);
    goto done;
  }
  if (dit_load_weights(rt, a.weights)) {
    fprintf(stderr, "dit: error: %s\n", dit_last_error(rt));
    goto done;
  }
  losses = malloc((size_t)n * sizeof(float));
  if (!losses) {
    fprintf(stderr, "dit: error: out of memory\n");
    goto done;
  }
  if (dit_loss(rt, n, x0.data, t.data, y.data, z.data, a.grads_out != NULL, 1.0f / (float)n, losses)) {
    fprintf(stderr, "dit: error: %s\n", dit_last_error(rt));
    goto done;
  }
  double sum = 0;
  for (int64_t i = 0; i < n; i++) {
    printf("row %lld t=%lld y=%lld loss %.9g\n", (long long)i, (long long)((int64_t *)t.data)[i],
           (long long)((int64_t *)y.data)[i], losses[i]);
    sum += losses[i];
  }
  if (a.losses_out && npy_write_f32(a.losses_out, losses, 1, &n, &e)) {
    fprintf(stderr, "dit: error: %s\n", e.msg);
    goto done;
  }
  if (a.grads_out && write_grads(rt, a.grads_out, &e)) {
    fprintf(stderr, "dit: error: %s\n", e.msg);
    goto done;
  }
  printf("loss %.12g\n", sum / (double)n);
  rc = 0;
done:
  free(losses);
  npy_free(&x0);
  npy_free(&t);
  npy_free(&y);
  npy_free(&z);
  dit_close(rt);
  return rc;
}
