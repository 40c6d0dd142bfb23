/* cmd_sample.c: `dit sample`: load a plan and weights, run the sampler, and
 * write the final latents (.npy), a PNG grid (pixel-space models; upscaled
 * and with class names per row on request) or an evaluation set (.npz,
 * resumable). Exits through main.c's return codes:
 * 0 success, 1 bad input or failure, 2 usage. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "atomic_write.h"
#include "cli.h"
#include "cli_paths.h"
#include "dit/dit.h"
#include "font5x7.h"
#include "image.h"
#include "npy.h"
#include "sample_args.h"
#include "train/dist.h"

/* sample.py's class labels for ImageNet models */
static const int64_t OFFICIAL_LABELS[8] = {207, 360, 387, 974, 88, 979, 417, 279};

/* "207,360,...": one integer per item, no empty item (a stray comma is a mistake). */
static int parse_labels(const char *s, SampleArgs *a) {
  a->n_labels = 0;
  for (const char *p = s;;) {
    char *end;
    errno = 0;
    long long v = strtoll(p, &end, 10);
    if (errno || end == p || (*end && *end != ',') || a->n_labels == SAMPLE_MAX_LABELS) return -1;
    a->labels[a->n_labels++] = v;
    if (!*end) break;
    p = end + 1;
  }
  return 0;
}

static void sample_usage(FILE *f) {
  fprintf(f,
          "usage: dit sample PLAN --weights CKPT [-n N] [--labels 207,360,...] [--sampler ddpm|ddim|dpm++]\n"
          "                  [--steps 250] [--eta 0] [--order 2] [--karras] [--cfg-scale 4.0] [--seed 0]\n"
          "                  [-o OUT.npy]\n"
          "                  [--png GRID.png [--png-scale S] [--grid-cols N] [--label-names A,B,...]]\n"
          "                  [--per-class K] [--noise Z.npy] [--step-noise S.npy]\n"
          "                  [--num-samples M (--npz OUT.npz | --sample-dir DIR)] [--device D]\n"
          "                  [--vae VAE_PLAN --vae-weights W] [--threads N]\n"
          "                  (--random-weights S instead of --weights; --vae-random-weights S)\n"
          "\n"
          "The official sampler from noise: DDPM (learned or fixed variance) or DDIM (--eta, DDIM\n"
          "only), respaced steps as \"250\", \"25\", \"10,20,30\" or \"ddim50\"; guidance when\n"
          "--cfg-scale > 1 (each image then takes 2 rows of the plan). Writes the final latents to -o\n"
          "(default samples.npy) and, for pixel-space models, a PNG grid. The defaults are\n"
          "sample.py's: DDPM, 250 steps, --cfg-scale 4.0, --seed 0, and for 1000-class models\n"
          "the labels 207, 360, 387, 974, 88, 979, 417, 279 (8 images, 16 rows: ditc's default\n"
          "--batch). Official flag names work too: --ckpt, --num-sampling-steps, --global-seed,\n"
          "--num-fid-samples, --per-proc-batch-size.\n"
          "--sampler dpm++: multistep DPM-Solver++ as diffusers' DPMSolverMultistepScheduler\n"
          "(dpmsolver++, midpoint, lower-order final steps, final sigma zero), --steps a count\n"
          "(default 20), --order 1|2|3 (default 2), --karras for Karras sigmas; deterministic\n"
          "after the initial latents.\n"
          "  -n N         images (default: the --labels' count, else 8 or as many as fit the plan);\n"
          "               N that does not fit the plan's --batch is refused\n"
          "  --labels L   one class id per image: as many as -n (with --npz: image i takes label\n"
          "               i mod the count); default sample.py's eight for ImageNet, else drawn\n"
          "               from the seed. Ids are 0..num_classes; num_classes itself is the\n"
          "               null class (an unconditional sample, as the model's CFG uses it)\n"
          "  --per-class K  K images of each class in turn (0,..,0,1,..), K per grid row\n"
          "  --noise Z, --step-noise S  the initial latents [N,C,H,W] and each step's noise\n"
          "               [steps,N,C,H,W] (to compare with other implementations)\n"
          "  --png G      a grid: --grid-cols N per row (default ceil(sqrt(n))), --png-scale S (1 to\n"
          "               64, nearest neighbour), --label-names \"T-shirt/top,Trouser,...\" (exactly one\n"
          "               per class id, printable ASCII) in a column at each row's left\n"
          "  --num-samples M --npz OUT.npz  an evaluation set (uint8 arr_0) written by batches of -n\n"
          "               to OUT.npz.partial/; the same command resumes a killed run, and a\n"
          "               different one (plan, weights, labels, seed, sampler, cfg) is refused\n"
          "  --sample-dir D  the set also as D/000000.png, D/000001.png, ... (sample_ddp.py's\n"
          "               folder); without --npz the set is D.npz, as sample_ddp.py names it\n"
          "  --random-weights S, --vae-random-weights S  deterministic random weights of seed S\n"
          "               instead of a checkpoint (demos, benchmarks: the images are noise)\n"
          "  --vae P --vae-weights W  a latent model's samples decoded by the compiled VAE P\n"
          "               (ditc specs/vae/sd-vae-ft-mse.dit -o P; W: sd-vae-ft-mse's or -ema's weights),\n"
          "               as sample.py and sample_ddp.py do: --png shows the images (sample.py's\n"
          "               save_image mapping, 4 per row by default) and --npz holds them; -o still\n"
          "               writes the latents\n"
          "  --device D   cpu (default), cuda, emu (the emulated device, libdit_emu.so: a plan\n"
          "               compiled with ditc --arch emu; slow) or auto (the GPU when there is one);\n"
          "               the libraries' paths: DIT_CUDA_DRIVER_LIB, DIT_CUBLASLT_LIB, DIT_EMU_LIB\n"
          "  --threads N  CPU threads (default: all cores)\n"
          "Results that are not finite (NaN, infinity) fail with the step and op that made them.\n");
}

int sample_parse_args(int argc, char **argv, SampleArgs *a) {
  memset(a, 0, sizeof *a);
  a->steps = "250";
  a->cfg_scale = 4.0f;
  a->device = "cpu";
  int n_given = 0, eta_given = 0, steps_given = 0, order_given = 0;
  a->dpm_order = 2;
  for (int i = 2; i < argc; i++) {
    const char *s = argv[i];
    if (!strcmp(s, "-h") || !strcmp(s, "--help")) return 1;
    if (!strcmp(s, "--karras")) { /* a flag: no value */
      a->karras = 1;
      continue;
    }
    if (s[0] != '-') {
      if (a->plan) {
        fprintf(stderr, "dit: error: more than one plan given\n");
        return -1;
      }
      a->plan = s;
      continue;
    }
    s = cli_official_alias("sample", s); /* --ckpt, --num-sampling-steps, ... */
    static const char *const known[] = {"--weights", "-o", "--png", "--npz", "--sample-dir", "--noise", "--step-noise", "--steps",
                                        "--device", "--sampler", "--labels", "--label-names", "-n",
                                        "--num-samples", "--threads", "--seed", "--per-class", "--grid-cols",
                                        "--png-scale", "--eta", "--cfg-scale", "--order", "--vae", "--vae-weights",
                                        "--random-weights", "--vae-random-weights"};
    size_t k = 0;
    while (k < sizeof known / sizeof *known && strcmp(s, known[k])) k++;
    if (k == sizeof known / sizeof *known) {
      fprintf(stderr, "dit: error: unknown option '%s' (dit sample --help)\n", s);
      return -1;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "dit: error: %s needs a value\n", argv[i]);
      return -1;
    }
    const char *v = argv[++i];
    char *end = NULL;
    errno = 0;
    if (!strcmp(s, "--weights")) a->weights = v;
    else if (!strcmp(s, "-o")) a->out = v;
    else if (!strcmp(s, "--png")) a->png = v;
    else if (!strcmp(s, "--npz")) a->npz = v;
    else if (!strcmp(s, "--vae")) {
      if (!strcmp(v, "ema") || !strcmp(v, "mse")) {
        fprintf(stderr, "dit: error: --vae takes a compiled VAE plan (ditc specs/vae/sd-vae-ft-%s.dit -o vae.plan) "
                        "with --vae-weights W; sample.py's --vae %s names hub weights, which dit does not download\n",
                v, v);
        return -1;
      }
      a->vae = v;
    } else if (!strcmp(s, "--vae-weights")) a->vae_weights = v;
    else if (!strcmp(s, "--random-weights") || !strcmp(s, "--vae-random-weights")) {
      long long x = strtoll(v, &end, 10);
      if (errno || end == v || *end || x < 0 || x > (1LL << 40)) {
        fprintf(stderr, "dit: error: %s takes a seed from 0 to %lld, got '%s'\n", s, 1LL << 40, v);
        return -1;
      }
      if (!strcmp(s, "--random-weights")) a->random_weights = x + 1;
      else a->vae_random_weights = x + 1;
    }
    else if (!strcmp(s, "--sample-dir")) a->sample_dir = v;
    else if (!strcmp(s, "--noise")) a->noise = v;
    else if (!strcmp(s, "--step-noise")) a->step_noise = v;
    else if (!strcmp(s, "--steps")) {
      if (!*v) {
        fprintf(stderr, "dit: error: --steps takes a respacing such as 250, ddim50 or 10,20,30; got ''\n");
        return -1;
      }
      a->steps = v;
      steps_given = 1;
    }
    else if (!strcmp(s, "--device")) a->device = v;
    else if (!strcmp(s, "--sampler")) {
      if (!strcmp(v, "ddpm")) a->sampler = DIT_DDPM;
      else if (!strcmp(v, "ddim")) a->sampler = DIT_DDIM;
      else if (!strcmp(v, "dpm++")) a->sampler = DIT_DPM_SOLVER;
      else {
        fprintf(stderr, "dit: error: --sampler takes ddpm, ddim or dpm++, got '%s'\n", v);
        return -1;
      }
    } else if (!strcmp(s, "--order")) {
      if (strcmp(v, "1") && strcmp(v, "2") && strcmp(v, "3")) {
        fprintf(stderr, "dit: error: --order takes 1, 2 or 3 (DPM-Solver++'s solver order), got '%s'\n", v);
        return -1;
      }
      a->dpm_order = v[0] - '0';
      order_given = 1;
    } else if (!strcmp(s, "--labels")) {
      if (parse_labels(v, a)) {
        fprintf(stderr, "dit: error: --labels takes comma-separated integers (at most %d), got '%s'\n",
                SAMPLE_MAX_LABELS, v);
        return -1;
      }
    } else if (!strcmp(s, "--label-names")) a->label_names = v;
    else if (!strcmp(s, "-n") || !strcmp(s, "--num-samples") || !strcmp(s, "--threads") ||
             !strcmp(s, "--seed") || !strcmp(s, "--per-class") || !strcmp(s, "--grid-cols") ||
             !strcmp(s, "--png-scale")) {
      long long x = strtoll(v, &end, 10);
      long long lo = !strcmp(s, "--seed") ? 0 : 1;
      long long hi = !strcmp(s, "--png-scale") ? PNG_GRID_MAX_SCALE : !strcmp(s, "--per-class") ||
                     !strcmp(s, "--grid-cols") ? SAMPLE_MAX_LABELS : (1LL << 40);
      if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "dit: error: %s takes an integer from %lld to %lld, got '%s'\n", s, lo, hi, v);
        return -1;
      }
      if (!strcmp(s, "-n")) a->n = x, n_given = 1;
      else if (!strcmp(s, "--num-samples")) a->num_samples = x;
      else if (!strcmp(s, "--threads")) a->threads = (int)(x > 1024 ? 1024 : x);
      else if (!strcmp(s, "--per-class")) a->per_class = x;
      else if (!strcmp(s, "--grid-cols")) a->grid_cols = x;
      else if (!strcmp(s, "--png-scale")) a->png_scale = x;
      else a->seed = (uint64_t)x;
    } else if (!strcmp(s, "--eta") || !strcmp(s, "--cfg-scale")) {
      double x = strtod(v, &end);
      if (errno || end == v || *end || !(x == x) || x < 0 || x > 1e6) {
        fprintf(stderr, "dit: error: %s takes a number >= 0, got '%s'\n", s, v);
        return -1;
      }
      if (!strcmp(s, "--eta")) a->eta = x, eta_given = 1;
      else a->cfg_scale = (float)x;
    }
  }
  if (!a->plan || (!a->weights == !a->random_weights)) {
    fprintf(stderr, "dit: error: sample needs %s\n", !a->plan ? "PLAN" : "--weights CKPT or --random-weights SEED (one)");
    return -1;
  }
  if (a->vae_weights && a->vae_random_weights) {
    fprintf(stderr, "dit: error: give --vae-weights W or --vae-random-weights SEED, not both\n");
    return -1;
  }
  if ((a->vae != NULL) != (a->vae_weights != NULL || a->vae_random_weights)) {
    fprintf(stderr, "dit: error: --vae VAE_PLAN goes with --vae-weights W (or --vae-random-weights SEED)\n");
    return -1;
  }
  if (a->sample_dir && !a->npz) { /* sample_ddp.py: the folder, then FOLDER.npz */
    size_t len = strlen(a->sample_dir);
    while (len > 1 && a->sample_dir[len - 1] == '/') len--;
    snprintf(a->npz_default, sizeof a->npz_default, "%.*s.npz", (int)len, a->sample_dir);
    a->npz = a->npz_default;
  }
  if ((a->npz != NULL) != (a->num_samples > 0)) {
    fprintf(stderr, "dit: error: --num-samples goes with --npz or --sample-dir\n");
    return -1;
  }
  if (a->npz && (a->noise || a->step_noise || a->png || a->out || a->per_class)) {
    fprintf(stderr, "dit: error: --npz runs take no --noise, --step-noise, --png, -o or --per-class\n");
    return -1;
  }
  if (!a->png && (a->label_names || a->grid_cols || a->png_scale)) {
    fprintf(stderr, "dit: error: --label-names, --grid-cols and --png-scale lay out the PNG grid; give --png\n");
    return -1;
  }
  if (a->per_class && (a->n || a->n_labels || a->grid_cols)) {
    fprintf(stderr, "dit: error: --per-class K sets the labels, the count and the grid's columns; "
                    "it takes no -n, --labels or --grid-cols\n");
    return -1;
  }
  if ((order_given || a->karras) && a->sampler != DIT_DPM_SOLVER) {
    fprintf(stderr, "dit: error: --order and --karras are DPM-Solver++'s; give --sampler dpm++\n");
    return -1;
  }
  if (a->sampler == DIT_DPM_SOLVER) {
    if (a->step_noise) {
      fprintf(stderr, "dit: error: --step-noise: DPM-Solver++ draws no noise after the initial latents\n");
      return -1;
    }
    if (!steps_given) a->steps = "20";
    char *end = NULL;
    long st = strtol(a->steps, &end, 10);
    if (*end || st < 1 || st > 1000) {
      fprintf(stderr, "dit: error: --steps with dpm++ takes a step count from 1 to 1000 (no respacing), got '%s'\n",
              a->steps);
      return -1;
    }
  }
  if (eta_given && a->sampler != DIT_DDIM) {
    fprintf(stderr, "dit: error: --eta is DDIM's; give --sampler ddim (DDPM's variance is the model's)\n");
    return -1;
  }
  if (n_given && a->n_labels && a->n != a->n_labels && !a->npz) {
    fprintf(stderr, "dit: error: -n %lld, but --labels gives %d labels; give one label per image\n",
            (long long)a->n, a->n_labels);
    return -1;
  }
  if (!a->png_scale) a->png_scale = 1;
  a->n_given = n_given;
  return 0;
}

/* Progress on a terminal: steps, images per second, time left. */
void sample_progress(void *vctx, int step, int steps) {
  SampleProgress *p = vctx;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  double now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
  if (step == 1 && p->t0 == 0) p->t0 = now;
  double done = (double)p->images_done + (double)p->images_now * step / steps;
  double elapsed = now - p->t0, rate = elapsed > 0 ? done / elapsed : 0;
  double left = rate > 0 ? ((double)p->images_total - done) / rate : 0;
  int width = 30, fill = (int)(width * done / (double)p->images_total);
  fprintf(stderr, "\r[%.*s%*s] step %d/%d  %lld/%lld images  %.2f img/s  ETA %02d:%02d:%02d ", fill,
          "##############################", width - fill, "", step, steps,
          (long long)(p->images_done + (step == steps ? p->images_now : 0)), (long long)p->images_total,
          rate, (int)(left / 3600), (int)(left / 60) % 60, (int)left % 60);
  if (step == steps && p->images_done + p->images_now >= p->images_total) fputc('\n', stderr);
  fflush(stderr);
}

/* Labels for n images: given, sample.py's for ImageNet, or drawn from the seed. */
void sample_labels(const SampleArgs *a, const DitModelInfo *mi, uint64_t seed, int64_t first,
                   int64_t n, int64_t *out) {
  for (int64_t i = 0; i < n; i++) {
    if (a->n_labels) out[i] = a->labels[(first + i) % a->n_labels];
    else if (mi->num_classes == 1000 && !a->npz) out[i] = OFFICIAL_LABELS[(first + i) % 8];
    else {
      float r[4];
      dit_randn_stream(seed ^ 0x6C6162656C73ull, (uint64_t)(first + i), r, 4); /* "labels" */
      uint64_t bits;
      memcpy(&bits, r, sizeof bits);
      out[i] = (int64_t)(bits % (uint64_t)mi->num_classes);
    }
  }
}

/* --label-names "a,b,...": a copy of the list in *buf, split at the commas,
 * each name trimmed of surrounding spaces, into names[0..*count). At least
 * num_classes names, none empty, all printable ASCII (the PNG font's). */
static int parse_label_names(const char *s, int64_t num_classes, char **buf, const char ***names,
                             int64_t *count) {
  enum { MAX_NAME = 64 };
  int64_t n = 1;
  for (const char *p = s; *p; p++) n += *p == ',';
  *buf = strdup(s);
  *names = calloc((size_t)n, sizeof **names);
  if (!*buf || !*names) return -1;
  char *p = *buf;
  for (int64_t k = 0; k < n; k++) {
    char *comma = strchr(p, ','), *end = comma ? comma : p + strlen(p);
    *end = 0;
    while (*p == ' ') p++;
    while (end > p && end[-1] == ' ') *--end = 0;
    if (!*p) {
      fprintf(stderr, "dit: error: --label-names: name %lld (class %lld) is empty\n", (long long)k + 1,
              (long long)k);
      return -1;
    }
    for (const char *q = p; *q; q++)
      if (!font5x7_has_glyph((unsigned char)*q)) {
        fprintf(stderr, "dit: error: --label-names: the name of class %lld has byte 0x%02x; the PNG's font "
                        "draws printable ASCII only (32..126), so spell it in ASCII\n",
                (long long)k, (unsigned)(unsigned char)*q);
        return -1;
      }
    if (strlen(p) > MAX_NAME) {
      fprintf(stderr, "dit: error: --label-names: the name of class %lld is longer than %d characters\n",
              (long long)k, MAX_NAME);
      return -1;
    }
    (*names)[k] = p;
    p = comma ? comma + 1 : end;
  }
  if (n != num_classes) {
    fprintf(stderr, "dit: error: --label-names gives %lld names, but the model has %lld classes (one name per "
                    "class id)\n", (long long)n, (long long)num_classes);
    return -1;
  }
  *count = n;
  return 0;
}

/* The PNG grid of cmd_sample: --grid-cols (or --per-class's K) cells per
 * row, --png-scale, and with --label-names (names, parsed) each row
 * labelled with the name of its first image's class. */
static int write_sample_png(const SampleArgs *a, const char *const *names, int64_t n_names, const uint8_t *rgb,
                            const int64_t *labels, int64_t L) {
  int rc = -1;
  const char **row_labels = NULL;
  DitErr e = {0};
  PngGridLayout g;
  int64_t cols = a->per_class ? a->per_class : a->grid_cols;
  if (png_grid_layout(a->n, L, L, cols, a->png_scale, NULL, &g, &e)) goto fail;
  if (names) {
    row_labels = calloc((size_t)g.rows, sizeof *row_labels);
    if (!row_labels) goto done;
    for (int64_t r = 0; r < g.rows; r++) {
      int64_t y = labels[r * g.cols];
      row_labels[r] = y >= 0 && y < n_names ? names[y] : NULL; /* the null class has no name */
    }
  }
  if (png_write_labeled_grid(a->png, rgb, a->n, L, L, g.cols, a->png_scale, row_labels, &e)) goto fail;
  rc = 0;
  goto done;
fail:
  fprintf(stderr, "dit: error: %s\n", e.msg);
done:
  free(row_labels);
  return rc;
}

/* A checkpoint, or random weights of seed random - 1 (random > 0); 0, or -1 after a message. */
static int load_weights(DitRuntime *rt, const char *path, int64_t random) {
  if (random ? dit_random_weights(rt, (uint64_t)(random - 1)) : dit_load_weights(rt, path)) {
    fprintf(stderr, "dit: error: %s\n", dit_last_error(rt));
    return -1;
  }
  return 0;
}

int cmd_sample(int argc, char **argv) {
  SampleArgs a;
  int pr = sample_parse_args(argc, argv, &a);
  if (pr > 0) {
    sample_usage(stdout);
    return 0;
  }
  if (pr) return 2;
  int rc = 1;
  DitRuntime *rt = NULL;
  DitError oe;
  NpyArray z = {0}, sn = {0};
  DitErr e = {0};
  float *out = NULL, *img = NULL;
  DitRuntime *vae = NULL; /* --vae */
  uint8_t *rgb = NULL;
  char staged[4200] = ""; /* the .npy's staged name while the PNG is written */
  int staged_ok = 0;
  const char *npy_path = NULL;
  char *names_buf = NULL; /* --label-names, split: names[0..n_names) point into it */
  const char **names = NULL;
  int64_t n_names = 0;
  DitOptions opt = {.n_threads = a.threads, .device = a.device};
  if (cli_env_options(&opt)) return 2;
  /* under mpirun the ranks split an --npz set; each takes the cores and the GPU of its local rank */
  Dist *dist = NULL;
  DitErr de = {0};
  if (dist_init(&dist, &de)) {
    fprintf(stderr, "dit: error: %s\n", de.msg);
    return 1;
  }
  if (dist_size(dist) > 1) {
    if (!a.npz) {
      fprintf(stderr, "dit: error: under mpirun (%d ranks) dit sample splits an evaluation set: give --num-samples "
                      "and --npz (one -o would be written by every rank)\n", dist_size(dist));
      dist_finalize(dist);
      return 2;
    }
    const char *lr = getenv("OMPI_COMM_WORLD_LOCAL_RANK"), *ls = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    int local_rank = lr ? atoi(lr) : dist_rank(dist), local_size = ls ? atoi(ls) : dist_size(dist);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (!a.threads && local_size > 0) opt.n_threads = cores / local_size > 1 ? (int)(cores / local_size) : 1;
    const char *dev_env = getenv("DIT_CUDA_DEVICE");
    if (!(dev_env && *dev_env)) opt.cuda_device = local_rank;
  }
  /* every output checked before the first write: none is an input, each can be written */
  const char *outs[] = {a.out ? a.out : (a.png || a.npz) ? NULL : "samples.npy", a.png, a.npz};
  if (a.sample_dir && cli_check_output_dir(a.sample_dir)) goto done;
  const char *ins[] = {a.plan, a.weights, a.noise, a.step_noise, a.vae, a.vae_weights};
  if (cli_check_outputs(outs, 3, ins, 6)) goto done;
  if (a.npz) {
    char partial[4200];
    snprintf(partial, sizeof partial, "%s.partial", a.npz);
    if (cli_check_output_dir(partial)) goto done;
  }
  if (dit_open(a.plan, &opt, &rt, &oe)) {
    fprintf(stderr, "dit: error: %s\n", oe.message);
    goto done;
  }
  if (dit_vae_info(rt)) {
    fprintf(stderr, "dit: error: %s is a VAE plan: sample with a DiT plan and give the VAE as --vae %s --vae-weights W\n",
            a.plan, a.plan);
    goto done;
  }
  cli_tuning_notice(rt);
  /* which device (auto: on the CPU, the runtime's last message says why) */
  if (!strcmp(a.device, "auto") || !strcmp(a.device, "emu")) {
    int gpu = strcmp(dit_device_name(rt), "cpu") != 0;
    fprintf(stderr, "dit: note: running on %s%s\n", gpu ? dit_device_name(rt) : "the CPU: ", gpu ? "" : dit_last_error(rt));
  }
  const DitModelInfo *mi = dit_model_info(rt);
  if (a.vae) { /* the decoder of the latents, checked against them before any sampling */
    if (mi->image_size == mi->latent_size) {
      fprintf(stderr, "dit: error: --vae: %s is a pixel-space model (latent_scale 1); its samples are images\n",
              a.plan);
      goto done;
    }
    if (cli_vae_open(a.vae, NULL, a.device, a.threads, true, false, &vae) ||
        cli_vae_check_latents(dit_vae_info(vae), mi->in_channels, mi->latent_size, mi->latent_size, a.plan))
      goto done;
  }
  int steps = a.sampler == DIT_DPM_SOLVER ? atoi(a.steps) : dit_sample_steps(rt, a.steps); /* dpm++: checked */
  if (steps < 0) {
    fprintf(stderr, "dit: error: %s\n", dit_last_error(rt));
    goto done;
  }
  if (a.npz) {
    if (load_weights(rt, a.weights, a.random_weights) || (vae && load_weights(vae, a.vae_weights, a.vae_random_weights)))
      goto done;
    rc = cmd_sample_set(a.plan, &(SampleSetCtx){&a, rt, vae, steps, dist});
    goto done;
  }
  if (a.per_class) { /* K of class 0, then K of class 1, ... */
    if (a.per_class * mi->num_classes > SAMPLE_MAX_LABELS) {
      fprintf(stderr, "dit: error: --per-class %lld with %lld classes is more than %d images\n",
              (long long)a.per_class, (long long)mi->num_classes, SAMPLE_MAX_LABELS);
      goto done;
    }
    a.n = a.per_class * mi->num_classes;
    a.n_labels = (int)a.n;
    for (int64_t i = 0; i < a.n; i++) a.labels[i] = i / a.per_class;
  }
  if (a.label_names && (mi->image_size == mi->latent_size || vae) && /* else --png fails below */
      parse_label_names(a.label_names, mi->num_classes, &names_buf, &names, &n_names))
    goto done;
  int64_t L = mi->latent_size, C = mi->in_channels, per = C * L * L;
  int64_t rows_per_image = a.cfg_scale > 1.0f ? 2 : 1;
  if (a.noise) {
    if (npy_read(a.noise, &z, &e)) goto npy_fail;
    if (z.type != NPY_F32 || z.rank != 4 || z.shape[1] != C || z.shape[2] != L || z.shape[3] != L) {
      fprintf(stderr, "dit: error: %s: expected float32 [N,%lld,%lld,%lld]\n", a.noise, (long long)C,
              (long long)L, (long long)L);
      goto done;
    }
    if (a.n && a.n != z.shape[0]) {
      fprintf(stderr, "dit: error: -n %lld, but --noise holds %lld rows\n", (long long)a.n, (long long)z.shape[0]);
      goto done;
    }
    a.n = z.shape[0];
  }
  if (!a.n) a.n = a.n_labels ? a.n_labels : 8;
  if (a.n_labels && a.n_labels != a.n) {
    fprintf(stderr, "dit: error: --labels gives %d labels for %lld images; give one label per image\n",
            a.n_labels, (long long)a.n);
    goto done;
  }
  if (a.n * rows_per_image > mi->max_batch && !a.n_given && !a.noise && !a.n_labels && !a.step_noise) {
    a.n = mi->max_batch / rows_per_image; /* the default count: as many as fit */
  }
  if (a.n < 1 || a.n * rows_per_image > mi->max_batch) { /* before the weights are read */
    int64_t n = a.n < 1 ? 1 : a.n;
    fprintf(stderr, "dit: error: %lld image%s%s need%s %lld rows, but the plan runs at most %lld; compile it "
                    "with ditc --batch %lld (or more)\n",
            (long long)n, n > 1 ? "s" : "", rows_per_image > 1 ? " with guidance" : "", n > 1 ? "" : "s",
            (long long)(n * rows_per_image), (long long)mi->max_batch, (long long)(n * rows_per_image));
    goto done;
  }
  if (a.step_noise) {
    if (npy_read(a.step_noise, &sn, &e)) goto npy_fail;
    if (sn.type != NPY_F32 || sn.rank != 5 || sn.shape[0] != steps || sn.shape[1] != a.n ||
        sn.shape[2] != C || sn.shape[3] != L || sn.shape[4] != L) {
      fprintf(stderr, "dit: error: %s: expected float32 [%d,%lld,%lld,%lld,%lld] (steps, N, C, H, W)\n",
              a.step_noise, steps, (long long)a.n, (long long)C, (long long)L, (long long)L);
      goto done;
    }
  }
  if (a.png && mi->image_size != L && !vae) {
    fprintf(stderr, "dit: error: --png of a latent model's samples needs its VAE: --vae VAE_PLAN --vae-weights W "
                    "(ditc specs/vae/sd-vae-ft-mse.dit -o VAE_PLAN)\n");
    goto done;
  }
  int64_t labels[SAMPLE_MAX_LABELS];
  if (a.n > SAMPLE_MAX_LABELS) {
    fprintf(stderr, "dit: error: at most %d images per run\n", SAMPLE_MAX_LABELS);
    goto done;
  }
  /* every argument checked: now the checkpoints */
  if (load_weights(rt, a.weights, a.random_weights) || (vae && load_weights(vae, a.vae_weights, a.vae_random_weights)))
    goto done;
  sample_labels(&a, mi, a.seed, 0, a.n, labels);
  out = malloc((size_t)(a.n * per) * sizeof(float));
  if (!out) goto done;
  SampleProgress prog = {0, 0, a.n, a.n};
  DitSampleOptions so = {a.n, labels, a.sampler, a.steps, a.eta, a.cfg_scale, a.seed,
                         a.noise ? z.data : NULL, a.step_noise ? sn.data : NULL,
                         isatty(2) ? sample_progress : NULL, &prog, a.dpm_order, a.karras};
  if (dit_sample(rt, &so, out)) {
    fprintf(stderr, "dit: error: %s\n", dit_last_error(rt));
    goto done;
  }
  int64_t shape[4] = {a.n, C, L, L};
  npy_path = a.out ? a.out : a.png ? NULL : "samples.npy";
  if (!a.png) {
    if (npy_write_f32(npy_path, out, 4, shape, &e)) goto npy_fail;
  } else { /* both or neither: the .npy is staged until the PNG is written */
    int64_t S = vae ? dit_vae_info(vae)->image_size : L; /* the images' side */
    rgb = malloc((size_t)(a.n * S * S * 3));
    if (!rgb) goto done;
    if (vae) { /* decoded, then sample.py's save_image mapping */
      const DitVaeInfo *v = dit_vae_info(vae);
      if (!(img = malloc((size_t)(a.n * v->image_channels * S * S) * sizeof *img))) goto done;
      if (cli_vae_run(vae, true, a.n, out, NULL, img, true)) goto done;
      images_to_rgb8_save_image(img, a.n, v->image_channels, S, S, rgb);
      if (!a.grid_cols && !a.per_class) a.grid_cols = 4; /* sample.py's nrow */
    } else {
      images_to_rgb8(out, a.n, C, L, L, rgb);
    }
    if (npy_path && (atomic_stage(npy_path, staged, sizeof staged, &e) ||
                     (staged_ok = 1, npy_write_f32(staged, out, 4, shape, &e))))
      goto npy_fail;
    if (write_sample_png(&a, names, n_names, rgb, labels, S)) goto done;
    staged_ok = 0;
    if (npy_path && atomic_commit(staged, npy_path, &e)) goto npy_fail;
  }
  rc = 0;
  goto done;
npy_fail:
  fprintf(stderr, "dit: error: %s\n", e.msg);
done:
  if (staged_ok) atomic_unstage(staged, npy_path);
  free(out);
  free(img);
  free(rgb);
  free(names);
  free(names_buf);
  npy_free(&z);
  npy_free(&sn);
  dit_close(vae);
  dit_close(rt);
  dist_finalize(dist);
  return rc;
}
