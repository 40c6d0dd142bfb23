/* main.c: the dit command line over the runtime's public API: the command
 * dispatch and the one CLI convention (--help or -h anywhere, or `dit help
 * CMD`: the command's usage on stdout, exit 0), and the forward and info
 * commands. The only runtime file that exits.
 *   dit forward PLAN --weights W --x X.npy --t T.npy --y Y.npy -o OUT.npy
 *               [--cfg-scale S] [--device cpu|cuda|emu|auto] [--threads N]
 *   dit info PLAN          (inference and training plans)
 * exit 0: success   1: a file or the data is bad   2: usage */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cli_paths.h"
#include "dit/dit.h"
#include "npy.h"
#include "plan/plan_view.h"

#define DIT_VERSION "0.1.0"

static void usage(FILE *f) {
  fprintf(f,
          "usage: dit forward PLAN --weights CKPT --x X.npy --t T.npy --y Y.npy -o OUT.npy\n"
          "                   [--cfg-scale S] [--device cpu|cuda|emu|auto] [--threads N]\n"
          "       dit sample PLAN --weights CKPT [-n N] [--labels 207,360,...] [--sampler ddpm|ddim]\n"
          "                  [--steps 250] [--eta 0] [--cfg-scale 4.0] [--seed 0] [-o OUT.npy]\n"
          "                  [--png GRID.png [--png-scale S] [--grid-cols N] [--label-names A,B,...]]\n"
          "                  [--per-class K] [--noise Z.npy] [--step-noise S.npy]\n"
          "                  [--num-samples M --npz OUT.npz] [--device cpu|cuda|emu|auto] [--threads N]\n"
          "       dit loss PLAN --weights W --x0 X0.npy --t T.npy --y Y.npy --noise E.npy\n"
          "                [--grads-out G.safetensors]                      (dit loss --help)\n"
          "       dit train PLAN --data DATA [--steps N] [--lr 1e-4] ... -o RUN_DIR   (dit train --help)\n"
          "       dit data fashion-mnist|images|latents ... -o OUT.ditdata   (dit data --help)\n"
          "       dit data info FILE\n"
          "       dit decode VAE_PLAN --weights W --z Z.npy -o X.npy [--png GRID.png]   (dit decode --help)\n"
          "       dit encode VAE_PLAN --weights W --x X.npy -o Z.npy [--mean | --noise E.npy | --seed S]\n"
          "       dit tune PLAN -o TUNED [--device cpu|cuda|emu] [--budget SECONDS]   (dit tune --help)\n"
          "       dit info PLAN [--device cpu|cuda|emu]\n"
          "       dit CMD --help, dit help CMD: a command's usage\n"
          "\n"
          "  forward    one forward pass of a compiled DiT plan (ditc SPEC -o PLAN)\n"
          "             X float32 [N,C,H,W]; T and Y int64 or int32 [N]; OUT float32 [N,C_out,H,W]\n"
          "             CKPT: a .pt state dict or train.py checkpoint (its 'ema'), or safetensors\n"
          "             in the official or the diffusers naming\n"
          "  --cfg-scale S  the official forward_with_cfg: X and Y hold the N conditional rows;\n"
          "             OUT holds the N guided rows\n"
          "  --device   cpu (default), cuda, emu (the CUDA backend on the emulated device,\n"
          "             libdit_emu.so: a plan compiled with ditc --arch emu; slow), or auto\n"
          "             (the GPU when there is one). Environment: DIT_CUDA_DEVICE, DIT_CUDA_SYNC,\n"
          "             DIT_CUDA_GRAPH; DIT_CUDA_DRIVER_LIB, DIT_CUBLASLT_LIB (cuda) and\n"
          "             DIT_EMU_LIB (emu): the libraries' paths\n"
          "  --threads  CPU threads (default: all cores)\n"
          "  sample     the official sampler from noise: DDPM (learned or fixed variance) or DDIM,\n"
          "             respaced steps as \"250\", \"25\", \"10,20,30\" or \"ddim50\"; guidance when\n"
          "             --cfg-scale > 1 (2N rows must fit the plan); writes the final latents to -o\n"
          "             (default samples.npy) and, for pixel-space models, a PNG grid. --noise and\n"
          "             --step-noise inject the initial latents and each step's noise.\n"
          "             --per-class K: K images of each class in turn (0,..,0,1,..), K per grid row.\n"
          "             The grid: --grid-cols N images per row (default ceil(sqrt(n))); --png-scale S\n"
          "             enlarges each image S times (nearest neighbour, 1 to 64); --label-names\n"
          "             \"T-shirt/top,Trouser,...\" (one per class id, printable ASCII) writes each row's\n"
          "             first class name in a column at its left, so give labels a row per class\n"
          "             --num-samples M --npz OUT.npz: an evaluation set (uint8 arr_0) that a\n"
          "             killed run resumes\n"
          "  loss       the official training loss of one batch and its gradients, with a\n"
          "             training plan (ditc SPEC --mode train --batch N -o PLAN)\n"
          "  train      train a training plan on a DITDATA set as the official train.py, with\n"
          "             checkpoints, bit-exact --resume, and data parallelism under mpirun\n"
          "  data       build a training set (DITDATA) from Fashion-MNIST IDX files, a folder of\n"
          "             PNGs per class, or pre-extracted latents; describe one (docs/dataset-format.md)\n"
          "  decode     images from DiT-space latents with a compiled VAE (ditc specs/vae/sd-vae-ft-mse.dit)\n"
          "  encode     DiT-space latents of images with a compiled VAE encoder (--part encoder|both)\n"
          "  tune       time each op's choices on this device, keep the fastest correct ones in the plan\n"
          "  info       what a plan holds (with --device: whether that device runs its tuning)\n");
}

static int is_help(const char *s) { return !strcmp(s, "-h") || !strcmp(s, "--help"); }

static int parse_int(const char *s, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

static int parse_float(const char *s, float *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v == v) || v > 1e30 || v < -1e30) return -1;
  *out = (float)v;
  return 0;
}

/* The ops that run slot j, by kind: "attention x28", "linear x1" (a linear op's activation). */
static void slot_ops(const PlanView *pv, uint32_t j, char *buf, size_t n) {
  size_t len = 0;
  buf[0] = '\0';
  for (size_t k = 0; k < pv->n_ops && len < n; k++) {
    if (pv->cubin.op_slot[k] != j) continue;
    bool seen = false;
    for (size_t e = 0; e < k && !seen; e++) seen = pv->cubin.op_slot[e] == j && pv->ops[e].kind == pv->ops[k].kind;
    if (seen) continue;
    int count = 0;
    for (size_t e = k; e < pv->n_ops; e++) count += pv->cubin.op_slot[e] == j && pv->ops[e].kind == pv->ops[k].kind;
    len += (size_t)snprintf(buf + len, n - len, "%s%s x%d", len ? ", " : "", plan_op_name(pv->ops[k].kind), count);
  }
}

/* The GPU kernels of a plan compiled with ditc --arch: per slot its
 * template, block size, registers per arch, (shortened) entry point and the
 * ops it runs. */
static void print_gpu_kernels(const PlanView *pv) {
  const PlanCudaView *c = &pv->cubin;
  uint32_t archs[8], n_archs = 0, with_kernel = 0;
  for (uint32_t i = 0; i < c->h->n_images; i++) {
    uint32_t k = 0;
    while (k < n_archs && archs[k] != c->images[i].arch) k++;
    if (k == n_archs && n_archs < 8) archs[n_archs++] = c->images[i].arch;
  }
  for (size_t k = 0; k < pv->n_ops; k++) with_kernel += c->op_slot[k] != DIT_PLAN_NONE;
  printf("  gpu kernels %u for %u of %zu ops (linear: cuBLASLt); cubins", c->h->n_slots, with_kernel, pv->n_ops);
  for (uint32_t k = 0; k < n_archs; k++) {
    if (archs[k] == PLAN_ARCH_EMU) printf(" emu"); /* the emulated device's (ditc --arch emu) */
    else printf(" sm_%u%s", archs[k] / 10, archs[k] % 10 ? "a" : "");
  }
  if (pv->ptx.h) printf(", PTX sm_%u%s", pv->ptx.images[0].arch / 10, pv->ptx.images[0].arch % 10 ? "a" : "");
  printf("\n    slot %-44s threads  regs/arch  %-27s  runs\n", "kernel", "entry");
  for (uint32_t j = 0, i = 0; j < c->h->n_slots; j++) {
    const PlanKernelSlot *s = &c->slots[j];
    const char *name = plan_string(pv, s->name), *entry = plan_string(pv, s->entry);
    if (!strncmp(name, "dit::", 5)) name += 5;
    char regs[64] = "";
    size_t len = 0;
    for (; i < c->h->n_images && c->images[i].slot == j; i++) /* sorted by slot, then arch */
      if (len < sizeof regs)
        len += (size_t)snprintf(regs + len, sizeof regs - len, "%s%u", len ? " " : "", c->images[i].registers);
    char ops[160];
    slot_ops(pv, j, ops, sizeof ops);
    printf("    %4u %-44s %7u  %-9s  %.24s%-3s  %s\n", j, name, s->block_threads, regs, entry,
           strlen(entry) > 24 ? "..." : "", ops);
  }
}

static void info_usage(FILE *f) {
  fprintf(f, "usage: dit info PLAN [--device cpu|cuda|emu]\n"
             "\n"
             "What a compiled plan holds: the model, the plan's dtype and batch, its weights,\n"
             "the activation arena and its ops by kind. For a training plan (ditc SPEC --mode\n"
             "train) also the recompute mode, the loss, the gradients and the memory peaks of\n"
             "dit loss and dit train; for a plan with GPU kernels (--arch) its kernels and\n"
             "kernel candidates; the tunings of dit tune, one per device. --device: whether\n"
             "that device (as dit would open it, DIT_CUDA_* included) runs one of them.\n");
}

/* The plan's kernel candidates and tunings (dit tune). */
static void print_tunings(const PlanView *pv) {
  if (pv->n_candidates) {
    size_t ops = 0;
    for (size_t i = 0; i < pv->n_candidates; i++) ops += i == 0 || pv->candidates[i].op != pv->candidates[i - 1].op;
    printf("  candidates  %zu kernel candidates for %zu ops (ditc --tune-candidates)\n", pv->n_candidates, ops);
  }
  static const char *const be[] = {"?", "cpu", "cuda", "emu"};
  for (size_t i = 0; i < pv->n_tunings; i++) {
    const PlanTuning *t = &pv->tunings[i];
    char when[32] = "?";
    time_t at = (time_t)t->tuned_at;
    struct tm tm;
    if (gmtime_r(&at, &tm)) strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tm);
    printf("  tuning %zu    %s: %s", i, be[t->backend <= 3 ? t->backend : 0], t->device);
    if (t->backend == PLAN_TUNE_CPU) printf(", %u threads", t->sm_count);
    else printf(", sm_%u, %u SMs, driver %u", t->arch, t->sm_count, t->driver_version);
    printf("; %u choices at %u rows, forward %.3f -> %.3f ms; %s\n", t->n_choices, t->rows, t->default_ms,
           t->tuned_ms, when);
  }
}

/* The ops [from, to) counted by kind, in kind order (" linear x12 add x3"),
 * wrapped below column 100 from column col (continued lines indented). Any uint32_t kind is counted:
 * each pass finds the next larger kind. */
static void print_op_counts(const PlanView *pv, size_t from, size_t to, int col) {
  int64_t last = -1;
  for (;;) {
    int64_t next = INT64_MAX;
    size_t count = 0;
    for (size_t i = from; i < to; i++) {
      int64_t k = pv->ops[i].kind;
      if (k <= last || k > next) continue;
      count = k == next ? count + 1 : 1;
      next = k;
    }
    if (next == INT64_MAX) break;
    char item[64];
    const char *name = plan_op_name((uint32_t)next);
    int len = strcmp(name, "?") ? snprintf(item, sizeof item, " %s x%zu", name, count)
                                : snprintf(item, sizeof item, " kind%lld x%zu", (long long)next, count);
    if (col + len > 100) col = printf("\n%15s", "") - 1;
    col += printf("%s", item);
    last = next;
  }
  printf("\n");
}

/* A training plan: its loss, gradients and memory (docs/training.md). */
static void print_train(const PlanView *pv) {
  const PlanTrain *tr = pv->train;
  const PlanModel *m = pv->model;
  size_t trainable = 0, frozen = 0;
  uint64_t trainable_bytes = 0;
  for (size_t i = 0; i < pv->n_weights; i++) {
    if (pv->weights[i].flags & PLAN_WEIGHT_FROZEN) {
      frozen++;
    } else {
      trainable++;
      trainable_bytes += pv->weights[i].bytes;
    }
  }
  printf("  recompute   %s\n", tr->recompute == PLAN_RECOMPUTE_BLOCK
                                   ? "block (keeps block inputs, recomputes each block before its backward)"
                                   : "none (keeps every activation the backward reads)");
  printf("  loss        the official training loss: %s, %u timesteps\n",
         m->learn_sigma ? "mse + vb (learned sigma)" : "mse (fixed variance)", tr->timesteps);
  printf("  gradients   %zu trainable tensors, %llu bytes (%zu frozen:", trainable,
         (unsigned long long)trainable_bytes, frozen);
  for (size_t i = 0, shown = 0; i < pv->n_weights && shown < 4; i++)
    if (pv->weights[i].flags & PLAN_WEIGHT_FROZEN)
      printf("%s %s", shown++ ? "," : "", plan_string(pv, pv->weights[i].name));
  printf("); gradient buffer %llu bytes\n", (unsigned long long)tr->grad_bytes);
  /* dit loss holds weights, gradients and the arena; dit train adds AdamW's
   * two moments and the EMA: five weight buffers, as ditc --info counts */
  unsigned long long w = tr->weight_bytes, a = tr->arena_bytes;
  printf("  memory      peak %llu bytes in dit loss (weights, gradients, arena), %llu bytes in\n"
         "              dit train (weights, gradients, AdamW moments and EMA: 5 x %llu, + arena)\n",
         2 * w + a, 5 * w + a, w);
}

static int cmd_info(int argc, char **argv) {
  if (argc >= 3 && is_help(argv[2])) {
    info_usage(stdout);
    return 0;
  }
  const char *device = NULL;
  if (argc == 5 && !strcmp(argv[3], "--device")) device = argv[4];
  if (argc < 3 || argv[2][0] == '-' || (argc > 3 && !device)) {
    if (argc < 3) fprintf(stderr, "dit: error: info needs PLAN\n");
    else if (argv[2][0] == '-') fprintf(stderr, "dit: error: unknown option '%s'\n", argv[2]);
    else if (argc == 4 && !strcmp(argv[3], "--device")) fprintf(stderr, "dit: error: --device needs a value\n");
    else fprintf(stderr, "dit: error: unexpected argument '%s'\n", argv[3]);
    info_usage(stderr);
    return 2;
  }
  PlanView pv;
  DitErr e = {0};
  if (plan_load(argv[2], &pv, &e)) {
    fprintf(stderr, "dit: error: %s\n", e.msg);
    return 1;
  }
  const PlanModel *m = pv.model;
  static const char *const dtypes[] = {"fp32", "tf32", "bf16"};
  printf("%s  (%s, plan format %u, %s)\n", plan_string(&pv, m->name), argv[2], pv.header->version,
         pv.header->compiler);
  if (!strcmp(plan_string(&pv, m->family), "vae")) { /* docs/plan-format.md, "VAE plans" */
    bool dec = (m->parts & PLAN_VAE_DECODER) != 0, enc = (m->parts & PLAN_VAE_ENCODER) != 0;
    printf("  model       VAE %s: %lldx%lldx%lld px <-> latent %lldx%lldx%lld (downsampling %lld)\n",
           dec && enc ? "decoder and encoder" : dec ? "decoder" : "encoder", (long long)m->image_size,
           (long long)m->image_size, (long long)m->in_channels, (long long)m->latent_size,
           (long long)m->latent_size, (long long)m->out_channels, (long long)m->latent_scale);
    printf("  vae         mid width %lld, %lld resnets per level, GroupNorm %lld groups, attention 1 head over "
           "%lld tokens, scaling_factor %g\n",
           (long long)m->hidden_size, (long long)m->depth, (long long)m->norm_groups, (long long)m->tokens,
           m->scaling_factor);
  } else {
    printf("  model       %lldx%lld px, latent %lldx%lldx%lld, patch %lld, %lld tokens\n",
           (long long)m->image_size, (long long)m->image_size, (long long)m->latent_size,
           (long long)m->latent_size, (long long)m->in_channels, (long long)m->patch_size,
           (long long)m->tokens);
    printf("  transformer depth %lld, hidden %lld, %lld heads x %lld, MLP %lld\n", (long long)m->depth,
           (long long)m->hidden_size, (long long)m->num_heads, (long long)m->head_dim,
           (long long)m->mlp_hidden);
    printf("  classes     %lld%s; output channels %lld; guidance mixes %lld\n",
           (long long)m->num_classes, m->label_rows > m->num_classes ? " + null class" : "",
           (long long)m->out_channels, (long long)m->guided_channels);
  }
  printf("  plan        %s %s plan, dtype %s, batch 1 to %u rows\n", plan_string(&pv, m->family),
         pv.train ? "training" : "inference", pv.header->dtype < 3 ? dtypes[pv.header->dtype] : "?",
         pv.header->max_batch);
  static const char *const roles[] = {"?", "in", "out", "step in", "step out"};
  printf("  io         ");
  for (size_t i = 0; i < pv.n_io_names; i++) {
    const PlanIoName *io = &pv.io_names[i];
    const PlanValue *v = &pv.values[io->value];
    printf("%s%s %s [", i ? ", " : " ", plan_string(&pv, io->name), roles[io->role]);
    for (uint32_t k = 0; k < v->rank; k++) {
      if (k) printf(",");
      if (k == 0 && v->batch_major) printf("N");
      else printf("%lld", (long long)v->dims[k]);
    }
    printf("]");
  }
  printf("\n");
  printf("  weights     %zu tensors, %llu bytes (bound from a checkpoint at run time)\n", pv.n_weights,
         (unsigned long long)pv.weight_bytes);
  uint64_t unplanned = pv.train ? pv.train->unplanned_bytes : pv.io->unplanned_bytes;
  printf("  activations %llu bytes in one arena (%llu without reuse)\n", (unsigned long long)pv.arena_bytes,
         (unsigned long long)unplanned);
  if (pv.train) {
    print_train(&pv);
    size_t n_loss = pv.train->n_loss_ops < pv.n_ops ? pv.train->n_loss_ops : pv.n_ops;
    print_op_counts(&pv, 0, n_loss, printf("  ops         %zu to the loss:", n_loss));
    print_op_counts(&pv, n_loss, pv.n_ops, printf("              %zu backward:", pv.n_ops - n_loss));
  } else {
    size_t n_fwd = pv.io->n_forward_ops < pv.n_ops ? pv.io->n_forward_ops : pv.n_ops;
    bool vae = !strcmp(plan_string(&pv, m->family), "vae");
    int col = !vae ? printf("  ops         %zu forward, %zu per sampler step:", n_fwd, pv.n_ops - n_fwd)
              : n_fwd < pv.n_ops ? printf("  ops         %zu decoder, %zu encoder:", n_fwd, pv.n_ops - n_fwd)
                                 : printf("  ops         %zu:", n_fwd);
    print_op_counts(&pv, 0, pv.n_ops, col);
  }
  if (pv.cubin.h) print_gpu_kernels(&pv);
  print_tunings(&pv);
  plan_view_free(&pv);
  if (!device) return 0;
  DitOptions opt = {.device = device};
  DitRuntime *rt = NULL;
  DitError oe;
  if (cli_env_options(&opt)) return 2;
  if (dit_open(argv[2], &opt, &rt, &oe)) {
    fprintf(stderr, "dit: error: %s\n", oe.message);
    return 1;
  }
  const char *ti = dit_tuning_info(rt);
  printf("  device      %s: %s\n", dit_device_name(rt), ti[0] ? ti : "the plan has no tuning; it runs its defaults");
  dit_close(rt);
  return 0;
}

static void forward_usage(FILE *f) {
  fprintf(f,
          "usage: dit forward PLAN --weights CKPT --x X.npy --t T.npy --y Y.npy -o OUT.npy\n"
          "                   [--cfg-scale S] [--device cpu|cuda|emu|auto] [--threads N]\n"
          "\n"
          "One forward pass of a compiled DiT plan (ditc SPEC -o PLAN).\n"
          "  X float32 [N,C,H,W]; T and Y int64 or int32 [N]; OUT float32 [N,C_out,H,W]\n"
          "  CKPT: a .pt state dict or train.py checkpoint (its 'ema'), or safetensors\n"
          "  in the official or the diffusers naming\n"
          "  --cfg-scale S  the official forward_with_cfg: X and Y hold the N conditional rows;\n"
          "             OUT holds the N guided rows\n"
          "  --device   cpu (default), cuda, emu (the CUDA backend on the emulated device,\n"
          "             libdit_emu.so: a plan compiled with ditc --arch emu; slow), or auto\n"
          "             (the GPU when there is one). Environment: DIT_CUDA_DEVICE, DIT_CUDA_SYNC,\n"
          "             DIT_CUDA_GRAPH; DIT_CUDA_DRIVER_LIB, DIT_CUBLASLT_LIB (cuda) and\n"
          "             DIT_EMU_LIB (emu): the libraries' paths\n"
          "  --threads  CPU threads (default: all cores)\n");
}
typedef struct ForwardArgs {
  const char *plan, *weights, *x, *t, *y, *out, *device;
  long threads;
  float cfg;
  int has_cfg;
} ForwardArgs;

static int parse_forward(int argc, char **argv, ForwardArgs *a) {
  memset(a, 0, sizeof *a);
  for (int i = 2; i < argc; i++) {
    const char *s = argv[i];
    const char **slot = NULL;
    if (!strcmp(s, "--weights")) slot = &a->weights;
    else if (!strcmp(s, "--x")) slot = &a->x;
    else if (!strcmp(s, "--t")) slot = &a->t;
    else if (!strcmp(s, "--y")) slot = &a->y;
    else if (!strcmp(s, "-o")) slot = &a->out;
    else if (!strcmp(s, "--device")) slot = &a->device;
    if (slot || !strcmp(s, "--threads") || !strcmp(s, "--cfg-scale")) {
      if (i + 1 >= argc || !strncmp(argv[i + 1], "--", 2)) { /* the next option is no value */
        fprintf(stderr, "dit: error: %s needs a value\n", s);
        return -1;
      }
      const char *v = argv[++i];
      if (slot) {
        *slot = v;
      } else if (!strcmp(s, "--threads")) {
        if (parse_int(v, 1, 1024, &a->threads)) {
          fprintf(stderr, "dit: error: --threads takes 1 to 1024, got '%s'\n", v);
          return -1;
        }
      } else if (parse_float(v, &a->cfg)) {
        fprintf(stderr, "dit: error: --cfg-scale takes a number, got '%s'\n", v);
        return -1;
      } else {
        a->has_cfg = 1;
      }
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
  const char *missing = !a->plan ? "PLAN" : !a->weights ? "--weights" : !a->x ? "--x" : !a->t ? "--t"
                        : !a->y ? "--y" : !a->out ? "-o" : NULL;
  if (missing) {
    fprintf(stderr, "dit: error: forward needs %s\n", missing);
    return -1;
  }
  return 0;
}

static int cmd_forward(int argc, char **argv) {
  ForwardArgs a;
  if (argc >= 3 && is_help(argv[2])) {
    forward_usage(stdout);
    return 0;
  }
  if (parse_forward(argc, argv, &a)) {
    forward_usage(stderr);
    return 2;
  }
  int rc = 1;
  DitRuntime *rt = NULL;
  NpyArray x = {0}, t = {0}, y = {0};
  float *out = NULL;
  DitErr e = {0};
  DitError oe;
  DitOptions opt = {.n_threads = (int)a.threads, .device = a.device ? a.device : "cpu"};
  if (cli_env_options(&opt)) return 2;
  const char *outs[] = {a.out}, *ins[] = {a.plan, a.weights, a.x, a.t, a.y};
  if (cli_check_outputs(outs, 1, ins, 5)) goto done;
  if (dit_open(a.plan, &opt, &rt, &oe)) {
    fprintf(stderr, "dit: error: %s\n", oe.message);
    goto done;
  }
  if (dit_vae_info(rt)) {
    fprintf(stderr, "dit: error: %s is a VAE plan: it decodes and encodes images (dit decode, dit encode), it runs "
                    "no DiT forward\n", a.plan);
    goto done;
  }
  cli_tuning_notice(rt);
  /* which device (auto: on the CPU, the runtime's last message says why) */
  if (a.device && (!strcmp(a.device, "auto") || !strcmp(a.device, "emu"))) {
    int gpu = strcmp(dit_device_name(rt), "cpu") != 0;
    fprintf(stderr, "dit: note: running on %s%s\n", gpu ? dit_device_name(rt) : "the CPU: ", gpu ? "" : dit_last_error(rt));
  }
  const DitModelInfo *mi = dit_model_info(rt);
  if (npy_read(a.x, &x, &e) || npy_read(a.t, &t, &e) || npy_read(a.y, &y, &e)) {
    fprintf(stderr, "dit: error: %s\n", e.msg);
    goto done;
  }
  int64_t L = mi->latent_size;
  if (x.type != NPY_F32 || x.rank != 4 || x.shape[1] != mi->in_channels || x.shape[2] != L ||
      x.shape[3] != L) {
    fprintf(stderr, "dit: error: %s: expected float32 [N,%lld,%lld,%lld]\n", a.x,
            (long long)mi->in_channels, (long long)L, (long long)L);
    goto done;
  }
  int64_t n = x.shape[0];
  if (t.type != NPY_I64 || t.rank != 1 || t.shape[0] != n || y.type != NPY_I64 || y.rank != 1 ||
      y.shape[0] != n) {
    fprintf(stderr, "dit: error: --t and --y must be int64 or int32 vectors of length %lld (the rows of --x)\n",
            (long long)n);
    goto done;
  }
  if (dit_load_weights(rt, a.weights)) {
    fprintf(stderr, "dit: error: %s\n", dit_last_error(rt));
    goto done;
  }
  int64_t shape[4] = {n, mi->out_channels, L, L};
  out = malloc((size_t)(n * mi->out_channels * L * L) * sizeof(float) + 1);
  if (!out) {
    fprintf(stderr, "dit: error: out of memory\n");
    goto done;
  }
  DitStatus st = a.has_cfg ? dit_forward_cfg(rt, n, x.data, t.data, y.data, a.cfg, out)
                           : dit_forward(rt, n, x.data, t.data, y.data, out);
  if (st) {
    fprintf(stderr, "dit: error: %s\n", dit_last_error(rt));
    goto done;
  }
  if (npy_write_f32(a.out, out, 4, shape, &e)) {
    fprintf(stderr, "dit: error: %s\n", e.msg);
    goto done;
  }
  rc = 0;
done:
  free(out);
  npy_free(&x);
  npy_free(&t);
  npy_free(&y);
  dit_close(rt);
  return rc;
}

typedef int (*CommandFn)(int argc, char **argv);

static CommandFn find_command(const char *name) {
  static const struct {
    const char *name;
    CommandFn fn;
  } commands[] = {{"forward", cmd_forward}, {"sample", cmd_sample}, {"loss", cmd_loss},
                  {"train", cmd_train},     {"data", cmd_data},     {"info", cmd_info},
                  {"tune", cmd_tune},       {"decode", cmd_decode}, {"encode", cmd_encode}};
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (!strcmp(name, commands[i].name)) return commands[i].fn;
  return NULL;
}

/* `dit CMD ... --help ...` and `dit help CMD [SUB]`: the command's own usage
 * on stdout, exit 0, whatever else is given; each command answers a --help
 * right after its name (`dit data SUB --help` after the subcommand's). */
static int command_help(CommandFn fn, char *argv0, char *cmd, char *sub) {
  char help[] = "--help";
  char *args[] = {argv0, cmd, sub ? sub : help, sub ? help : NULL, NULL};
  return fn(sub ? 4 : 3, args);
}

int main(int argc, char **argv) {
  /* A write past a file-size limit (ulimit -f) would kill the process with
   * SIGXFSZ; ignored, the write fails with EFBIG and is reported as an error
   * (exit 1) like a full disk, and atomic writes leave the old file. */
  signal(SIGXFSZ, SIG_IGN);
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (is_help(argv[1]) || (!strcmp(argv[1], "help") && argc == 2)) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("dit %s\n", DIT_VERSION);
    return 0;
  }
  int at = !strcmp(argv[1], "help") ? 2 : 1; /* the command's index */
  CommandFn fn = find_command(argv[at]);
  if (!fn) {
    fprintf(stderr, "dit: error: unknown command '%s' (forward, sample, loss, train, data, info, "
                    "tune, decode, encode; dit --help)\n", argv[at]);
    return 2;
  }
  int help = at == 2;
  for (int i = at + 1; i < argc && !help; i++) help = is_help(argv[i]);
  if (!help) return fn(argc, argv);
  /* dit data SUB --help: the subcommand's usage */
  char *sub = fn == cmd_data && at + 1 < argc && argv[at + 1][0] != '-' ? argv[at + 1] : NULL;
  return command_help(fn, argv[0], argv[at], sub);
}
