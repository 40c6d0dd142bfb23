/* cmd_data.c: `dit data`: build DITDATA training sets (docs/dataset-format.md)
 * and describe them.
 *   dit data fashion-mnist [--split train|t10k | --images F --labels F] [--pad-to P]
 *                          [--num-classes K] -o OUT.ditdata
 *   dit data images --root DIR --image-size S [--threads N] -o OUT.ditdata
 *                   [--vae VAE_PLAN --vae-weights W [--flips] [--seed S] [--device D]]
 *   dit data latents (--x X.npy --y Y.npy | --features-dir D --labels-dir D)
 *                    [--flipped-included | --flip-latents] [--num-classes K] -o OUT.ditdata
 *   dit data info FILE [--no-verify]
 *   dit data [SUB] --help: the usage (of SUB) on stdout
 * Each subcommand takes only its own options. Returns main.c's exit codes: 0 success, 1 bad input or failure, 2 usage. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_paths.h"
#include "data/dataset.h"
#include "data/import.h"

/* The subcommands, as bits of the options' masks below. */
enum { SUB_FASHION = 1, SUB_IMAGES = 2, SUB_LATENTS = 4, SUB_INFO = 8 };

static const struct {
  const char *name;
  unsigned bit;
  const char *usage; /* its usage lines (the first after "usage: ") and its description */
  const char *about;
} subs[] = {
    {"fashion-mnist", SUB_FASHION,
     "dit data fashion-mnist [--split train|t10k | --images F --labels F] [--pad-to P]\n"
     "                              [--num-classes 10] -o OUT.ditdata\n",
     "  fashion-mnist  IDX files (.gz or plain); by default Debian's dataset-fashion-mnist in\n"
     "                 " FASHION_MNIST_DEBIAN_DIR "; --pad-to 32 pads 28x28 with zeros\n"},
    {"images", SUB_IMAGES, "dit data images --root DIR --image-size S [--threads N] -o OUT.ditdata\n"
     "                       [--vae VAE_PLAN --vae-weights W [--flips] [--seed S | --mean] [--device D]]\n",
     "  images         an ImageFolder tree of JPEGs and PNGs (root/<class>/...), decoded as PIL\n"
     "                 does, RGB, ADM center crop to S; with --vae, their latents (a compiled VAE\n"
     "                 encoder: 0.18215 * a posterior sample, noise from --seed, or --mean; --flips also the\n"
     "                 mirrored image's, for training flips), as fast-DiT's extract_features.py\n"},
    {"latents", SUB_LATENTS,
     "dit data latents (--x X.npy --y Y.npy | --features-dir D --labels-dir D)\n"
     "                        [--flipped-included | --flip-latents] [--num-classes K] -o OUT.ditdata\n",
     "  latents        float32 latents: stacked .npy, or fast-DiT's per-sample feature/label\n"
     "                 folders; --flipped-included: each sample holds [unflipped, flipped];\n"
     "                 --flip-latents: training flips mirror the latent itself\n"},
    {"info", SUB_INFO, "dit data info FILE [--no-verify]\n",
     "  info           count, shape, classes and per-class counts; checks every byte\n"
     "                 (--no-verify: the header and labels only)\n"},
};
enum { N_SUBS = sizeof subs / sizeof subs[0] };

/* The usage of one subcommand (sub < N_SUBS), or of all. */
static void data_usage(FILE *f, size_t sub) {
  for (size_t k = 0; k < N_SUBS; k++)
    if (sub >= N_SUBS || k == sub)
      fprintf(f, "%s%s", k == 0 || sub < N_SUBS ? "usage: " : "       ", subs[k].usage);
  fprintf(f, "\n");
  for (size_t k = 0; k < N_SUBS; k++)
    if (sub >= N_SUBS || k == sub) fprintf(f, "%s", subs[k].about);
}

static int parse_count(const char *opt, const char *s, long lo, long hi, int64_t *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) {
    fprintf(stderr, "dit: error: %s takes %ld to %ld, got '%s'\n", opt, lo, hi, s);
    return -1;
  }
  *out = v;
  return 0;
}

typedef struct DataArgs {
  const char *out, *images, *labels, *split, *root, *x, *y, *features_dir, *labels_dir, *file;
  const char *vae, *vae_weights, *device; /* images --vae */
  int64_t pad_to, num_classes, image_size, threads, seed;
  int flipped_included, flip_latents, no_verify, flips, mean;
} DataArgs;

/* The options of subcommand `sub` (one of subs[]) from argv[3]; each
 * subcommand checks their combinations below. Returns 1 for --help, -1 on
 * a usage error (said), else 0. */
static int parse_data_args(int argc, char **argv, size_t sub, DataArgs *a) {
  memset(a, 0, sizeof *a);
  const unsigned out_subs = SUB_FASHION | SUB_IMAGES | SUB_LATENTS;
  for (int i = 3; i < argc; i++) {
    const char *s = argv[i];
    const char **slot = NULL;
    int64_t *num = NULL;
    int *flag = NULL;
    long lo = 1, hi = 65535;
    unsigned takes = 0; /* the subcommands that take the option */
    if (!strcmp(s, "-h") || !strcmp(s, "--help")) return 1;
    if (!strcmp(s, "-o")) slot = &a->out, takes = out_subs;
    else if (!strcmp(s, "--images")) slot = &a->images, takes = SUB_FASHION;
    else if (!strcmp(s, "--labels")) slot = &a->labels, takes = SUB_FASHION;
    else if (!strcmp(s, "--split")) slot = &a->split, takes = SUB_FASHION;
    else if (!strcmp(s, "--root")) slot = &a->root, takes = SUB_IMAGES;
    else if (!strcmp(s, "--vae")) slot = &a->vae, takes = SUB_IMAGES;
    else if (!strcmp(s, "--vae-weights")) slot = &a->vae_weights, takes = SUB_IMAGES;
    else if (!strcmp(s, "--device")) slot = &a->device, takes = SUB_IMAGES;
    else if (!strcmp(s, "--flips")) flag = &a->flips, takes = SUB_IMAGES;
    else if (!strcmp(s, "--mean")) flag = &a->mean, takes = SUB_IMAGES;
    else if (!strcmp(s, "--seed")) num = &a->seed, lo = 0, hi = 2147483647L, takes = SUB_IMAGES;
    else if (!strcmp(s, "--x")) slot = &a->x, takes = SUB_LATENTS;
    else if (!strcmp(s, "--y")) slot = &a->y, takes = SUB_LATENTS;
    else if (!strcmp(s, "--features-dir")) slot = &a->features_dir, takes = SUB_LATENTS;
    else if (!strcmp(s, "--labels-dir")) slot = &a->labels_dir, takes = SUB_LATENTS;
    else if (!strcmp(s, "--pad-to")) num = &a->pad_to, takes = SUB_FASHION;
    else if (!strcmp(s, "--image-size")) num = &a->image_size, hi = 4096, takes = SUB_IMAGES;
    else if (!strcmp(s, "--threads")) num = &a->threads, hi = 1024, takes = SUB_IMAGES;
    else if (!strcmp(s, "--num-classes"))
      num = &a->num_classes, hi = 2147483647L, takes = SUB_FASHION | SUB_LATENTS;
    else if (!strcmp(s, "--flipped-included")) flag = &a->flipped_included, takes = SUB_LATENTS;
    else if (!strcmp(s, "--flip-latents")) flag = &a->flip_latents, takes = SUB_LATENTS;
    else if (!strcmp(s, "--no-verify")) flag = &a->no_verify, takes = SUB_INFO;
    if (takes && !(takes & subs[sub].bit)) {
      fprintf(stderr, "dit: error: unknown option '%s' for dit data %s\n", s, subs[sub].name);
      return -1;
    }
    if (slot || num) {
      if (i + 1 >= argc || !strncmp(argv[i + 1], "--", 2)) { /* the next option is no value */
        fprintf(stderr, "dit: error: %s needs a value\n", s);
        return -1;
      }
      if (slot) *slot = argv[++i];
      else if (parse_count(s, argv[++i], lo, hi, num)) return -1;
    } else if (flag) {
      *flag = 1;
    } else if (s[0] == '-') {
      fprintf(stderr, "dit: error: unknown option '%s'\n", s);
      return -1;
    } else if (a->file || subs[sub].bit != SUB_INFO) {
      fprintf(stderr, "dit: error: unexpected argument '%s'\n", s);
      return -1;
    } else {
      a->file = s;
    }
  }
  return 0;
}

static const char *dtype_name(DatasetDType t) { return t == DATASET_U8 ? "u8" : "f32"; }

/* Prints what a DITDATA file holds; with verify, reads every sample byte. */
static int print_info(const char *path, int verify, int per_class) {
  DitDataset *ds = NULL;
  DitErr e = {0};
  int64_t *counts = NULL;
  int rc = 1;
  if (dataset_open(path, &ds, &e) || (verify && dataset_verify(ds, &e))) {
    fprintf(stderr, "dit: error: %s\n", e.msg);
    goto done;
  }
  int64_t n = dataset_count(ds), K = dataset_num_classes(ds);
  uint32_t fl = dataset_flags(ds);
  const char *flip = dataset_dtype(ds) == DATASET_U8                ? "flip mirrors"
                     : (fl & DATASET_FLAG_FLIP_VARIANTS) ? "flip picks the stored flipped variant"
                     : (fl & DATASET_FLAG_FLIP_MIRROR)   ? "flip mirrors"
                                                         : "flip ignored";
  printf("%s: DITDATA v%u, %lld samples %s [%lld, %lld, %lld], %lld classes, %s%s\n", path, DITDATA_VERSION,
         (long long)n, dtype_name(dataset_dtype(ds)), (long long)dataset_channels(ds), (long long)dataset_height(ds),
         (long long)dataset_width(ds), (long long)K, flip, verify ? ", checksums ok" : "");
  if (per_class) {
    if (!(counts = calloc((size_t)K, sizeof *counts))) {
      fprintf(stderr, "dit: error: out of memory\n");
      goto done;
    }
    const int64_t *lab = dataset_labels(ds);
    for (int64_t i = 0; i < n; i++) counts[lab[i]]++;
    int64_t empty = 0, shown = 0;
    printf("  per class:");
    for (int64_t k = 0; k < K; k++) {
      if (!counts[k]) empty++;
      if (K > 64 && !counts[k]) continue; /* many classes: the empty ones are only counted */
      printf("%s%lld:%lld", shown++ % 10 == 0 ? "\n    " : " ", (long long)k, (long long)counts[k]);
    }
    printf("\n");
    if (empty) printf("  %lld classes have no samples\n", (long long)empty);
  }
  rc = 0;
done:
  free(counts);
  dataset_close(ds);
  return rc;
}

static int need(const char *what, const char *v) {
  if (v) return 0;
  fprintf(stderr, "dit: error: %s is needed\n", what);
  return -1;
}

int cmd_data(int argc, char **argv) {
  if (argc < 3 || !strcmp(argv[2], "-h") || !strcmp(argv[2], "--help")) {
    data_usage(argc < 3 ? stderr : stdout, N_SUBS);
    return argc < 3 ? 2 : 0;
  }
  const char *sub = argv[2];
  size_t k = 0;
  while (k < N_SUBS && strcmp(sub, subs[k].name)) k++;
  if (k == N_SUBS) {
    fprintf(stderr, "dit: error: unknown data command '%s' (fashion-mnist, images, latents, info)\n",
            sub);
    return 2;
  }
  DataArgs a;
  int parsed = parse_data_args(argc, argv, k, &a);
  if (parsed) {
    data_usage(parsed > 0 ? stdout : stderr, k);
    return parsed > 0 ? 0 : 2;
  }
  DitErr e = {0};
  DitStatus st;
  if (!strcmp(sub, "info")) {
    if (need("FILE", a.file)) return 2;
    return print_info(a.file, !a.no_verify, 1);
  }
  if (need("-o OUT.ditdata", a.out)) return 2;
  if (!strcmp(sub, "fashion-mnist")) {
    char img[512], lab[512];
    if (!a.images != !a.labels || (a.images && a.split)) {
      fprintf(stderr, "dit: error: give --images and --labels together, or --split\n");
      return 2;
    }
    if (!a.images) {
      const char *split = a.split ? a.split : "train";
      if (strcmp(split, "train") && strcmp(split, "t10k")) {
        fprintf(stderr, "dit: error: --split takes train or t10k, got '%s'\n", split);
        return 2;
      }
      snprintf(img, sizeof img, "%s/%s-images-idx3-ubyte.gz", FASHION_MNIST_DEBIAN_DIR, split);
      snprintf(lab, sizeof lab, "%s/%s-labels-idx1-ubyte.gz", FASHION_MNIST_DEBIAN_DIR, split);
      a.images = img;
      a.labels = lab;
    }
    const char *ins[] = {a.images, a.labels};
    if (cli_check_outputs(&a.out, 1, ins, 2)) return 1;
    st = import_idx(a.images, a.labels, a.pad_to, a.num_classes ? a.num_classes : 10, a.out, &e);
  } else if (!strcmp(sub, "images")) {
    if (need("--root DIR", a.root) || need("--image-size S", a.image_size ? "" : NULL)) return 2;
    if ((a.vae != NULL) != (a.vae_weights != NULL) || (!a.vae && (a.flips || a.seed || a.device || a.mean)) ||
        (a.mean && a.seed)) {
      fprintf(stderr, "dit: error: --vae VAE_PLAN and --vae-weights W go together, and --flips, --seed, --mean and "
                      "--device are theirs (--mean takes no --seed)\n");
      return 2;
    }
    const char *ins[] = {a.vae, a.vae_weights};
    if (cli_check_outputs(&a.out, 1, ins, 2)) return 1;
    if (a.vae) { /* the pixels first, into a temporary beside OUT, then their latents */
      char pixels[4200];
      snprintf(pixels, sizeof pixels, "%s.pixels.%ld.tmp", a.out, (long)getpid());
      st = import_image_folder(a.root, a.image_size, (int)a.threads, pixels, &e);
      int erc = st ? 1 : cli_data_encode(pixels, a.vae, a.vae_weights, a.device, (int)a.threads, a.flips,
                                         a.mean, (uint64_t)a.seed, a.out);
      unlink(pixels);
      if (st) {
        fprintf(stderr, "dit: error: %s\n", e.msg);
        return 1;
      }
      if (erc) return erc;
      printf("wrote ");
      return print_info(a.out, 0, 0);
    }
    st = import_image_folder(a.root, a.image_size, (int)a.threads, a.out, &e); /* 0: all cores */
  } else { /* latents */
    int stacked = a.x || a.y, dirs = a.features_dir || a.labels_dir;
    if (stacked == dirs || (stacked && !(a.x && a.y)) || (dirs && !(a.features_dir && a.labels_dir))) {
      fprintf(stderr, "dit: error: give --x and --y, or --features-dir and --labels-dir\n");
      return 2;
    }
    const char *ins[] = {a.x, a.y};
    if (cli_check_outputs(&a.out, 1, ins, 2)) return 1;
    LatentImport li = {a.x, a.y, a.features_dir, a.labels_dir, a.flipped_included, a.flip_latents, a.num_classes};
    st = import_latents(&li, a.out, &e);
  }
  if (st) {
    fprintf(stderr, "dit: error: %s\n", e.msg);
    return st == DIT_ERR_ARG ? 2 : 1;
  }
  printf("wrote ");
  return print_info(a.out, 0, 0);
}
