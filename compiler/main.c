/* main.c: the ditc command line. Parses arguments into CompileOptions, runs
 * the pipeline and maps its status to an exit code. The only file that exits.
 *   exit 0: success   1: the spec or a file is bad   2: usage   3: internal */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kfam.h"
#include "model_names.h"
#include "pipeline.h"

#define DITC_VERSION "0.1.0"

static void usage(FILE *f) {
  fprintf(f,
          "usage: ditc SPEC -o PLAN [--batch N] [--dtype fp32|tf32|bf16] [--arch LIST|none]\n"
          "                 [--tune-candidates K] [--cache-dir DIR | --no-cache]\n"
          "       ditc DiT-XL/2 [--image-size 256|512] ...   (an official model: its shipped spec)\n"
          "       ditc VAE_SPEC|config.json -o PLAN [--part decoder|encoder|both] [--image-size S]\n"
          "       ditc --list-models\n"
          "       ditc SPEC --mode train --batch N [--recompute none|block] -o TRAIN_PLAN\n"
          "       ditc SPEC [--info [--json] | --dump-ir [--dump-after STAGE]] [--batch N] [-o FILE]\n"
          "\n"
          "Compiles a DiT spec (.dit) ahead of time into a plan (plan.bin) that the dit\n"
          "runtime executes with the weights of a checkpoint. SPEC may be one of the twelve\n"
          "official names (DiT-XL/2 ... DiT-S/8, as models.py spells them) with\n"
          "--image-size 256 (default) or 512; the specs are looked up in $DITC_SPEC_PATH,\n"
          "next to ditc and in the install prefix (ditc --list-models shows where).\n"
          "\n"
          "  -o PLAN      write the compiled plan (atomically)\n"
          "  SPEC         a .dit spec, or a diffusers config.json (AutoencoderKL,\n"
          "               DiTTransformer2DModel) read as one\n"
          "  --image-size S  the plan's image side: specialises the spec's image_size (a VAE\n"
          "               at 512 from a config of 256); with an official name, 256 or 512\n"
          "  --batch N    the most rows one forward may run (default 16, sample.py's 8 images with\n"
          "               guidance; at most %d);\n"
          "               the runtime runs any batch from 1 to N\n"
          "  --dtype T    precision of the plan: fp32, tf32 or bf16; the default is bf16 for a\n"
          "               plan with GPU kernels (--arch, --kernel-report, --emit-cuda; inference),\n"
          "               fp32 otherwise\n"
          "  --mode M     inference (default): forward and sampler step; train: the\n"
          "               official loss and its gradients for every trainable weight\n"
          "               (needs --batch: the rows of one training step)\n"
          "  --recompute R  with --mode train: none (default) keeps the activations the\n"
          "               backward needs; block keeps block inputs only and recomputes\n"
          "               each block before its backward (--info shows both peaks)\n"
          "  --part P     a VAE's part to compile: decoder (default), encoder or both\n"
          "               (the decoder's ops first)\n",
          DITC_MAX_BATCH);
  fprintf(f,
          "  --arch LIST  also compile the plan's GPU kernels with NVRTC into it, for\n"
          "               each architecture of LIST (sm_80,sm_90[,sm_90a]); emu in LIST\n"
          "               adds the kernels' source for the emulated device (dit --device\n"
          "               emu; --arch emu alone: for it only); 'none' (default): a\n"
          "               CPU-only plan. Needs the CUDA toolkit's NVRTC (emu too)\n"
          "  --gelu-epilogue G  with --arch: where a linear op's GELU runs: cublaslt (its\n"
          "               GELU_BIAS epilogue), kernel (a BIAS GEMM, then the project's GELU\n"
          "               kernel, exact tanhf) or auto (default: kernel for fp32 plans, whose\n"
          "               1e-5 an approximate tanh in the epilogue could break; cublaslt else)\n"
          "  --tune-candidates K  with --arch: also compile up to K knob choices (1 to %d,\n"
          "               the default first) of each kernel into the plan, the candidates\n"
          "               dit tune times; 1 (default): the defaults only\n"
          "  --cache-dir DIR  where NVRTC's results are cached by content hash (default:\n"
          "               $DITC_CACHE_DIR, else $XDG_CACHE_HOME/ditc, else ~/.cache/ditc)\n"
          "  --no-cache   compile every kernel with NVRTC, reading and writing no cache\n"
          "  --kernel-report  compile the graph's GPU kernels with NVRTC for --arch\n"
          "               (default sm_80,sm_90; emu is left out) and print registers,\n"
          "               shared memory and spills; fails on any spill\n"
          "  --emit-cuda  print the CUDA source of the graph's kernels (as kept in generated/)\n"
          "  --info       print the model report: parameters, Gflops, tokens, weight bytes\n"
          "  --json       with --info: print the report as one JSON object\n"
          "  --dump-ir    print the graph IR after the last pass (stable text)\n"
          "  --dump-after STAGE  with --dump-ir: print it after STAGE instead: lower, cse,\n"
          "               fuse-linear, fuse-attention, hoist-adaln, fuse-ln-modulate, fuse-residual\n"
          "  -o FILE      with --info or --dump-ir: write that output to FILE instead of stdout\n"
          "  --version    print the version\n"
          "  -h, --help   print this help\n"
          "\n"
          "Without -o or an output option ditc prints the report.\n",
          KFAM_MAX_CANDIDATES);
}

/* The NVRTC cache's default directory: $DITC_CACHE_DIR, else
 * $XDG_CACHE_HOME/ditc (an absolute one), else $HOME/.cache/ditc; NULL when
 * none is set (then nothing is cached). */
static const char *default_cache_dir(char *buf, size_t cap) {
  const char *v = getenv("DITC_CACHE_DIR");
  if (v && *v) return v;
  v = getenv("XDG_CACHE_HOME");
  if (v && v[0] == '/' && (size_t)snprintf(buf, cap, "%s/ditc", v) < cap) return buf;
  v = getenv("HOME");
  if (v && *v && (size_t)snprintf(buf, cap, "%s/.cache/ditc", v) < cap) return buf;
  return NULL;
}

static int parse_batch(const char *s, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < 1 || v > DITC_MAX_BATCH) return -1;
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  CompileOptions o = {.emit = EMIT_REPORT, .batch = 16};
  signal(SIGXFSZ, SIG_IGN); /* past ulimit -f a write fails with EFBIG and is reported, not a death */
  int info = 0, json = 0, dump_ir = 0, kernel_report = 0, emit_cuda = 0, recompute_given = 0, batch_given = 0;
  bool dtype_given = false, tune_given = false, no_cache = false;
  const char *cache_dir = NULL; /* --cache-dir */
  char cache_buf[4096];
  long image_size = 0; /* --image-size: picks an official model's spec, or overrides a spec's image_size */
  const char *image_size_arg = NULL;
  const char *part = NULL; /* --part, of a VAE */
  char resolved[1200];
  o.spec.allow_include = true;
  for (int i = 1; i < argc; i++) { /* -h or --help anywhere (even as an option's value): the usage */
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      usage(stdout);
      return 0;
    }
  }
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--version")) {
      printf("ditc %s\n", DITC_VERSION);
      return 0;
    } else if (!strcmp(a, "--list-models")) {
      model_names_list(argv[0], stdout);
      return 0;
    } else if (!strcmp(a, "--image-size")) {
      char *end;
      if (i + 1 >= argc) {
        fprintf(stderr, "ditc: error: --image-size needs a value\n");
        return 2;
      }
      errno = 0;
      image_size_arg = argv[++i];
      image_size = strtol(image_size_arg, &end, 10);
      if (errno || end == image_size_arg || *end || image_size < 1 || image_size > 65536) {
        fprintf(stderr, "ditc: error: --image-size takes an image side in pixels (1 to 65536), got '%s'\n",
                image_size_arg);
        return 2;
      }
    } else if (!strcmp(a, "--part")) {
      if (i + 1 >= argc) {
        fprintf(stderr, "ditc: error: --part needs a value\n");
        return 2;
      }
      part = argv[++i];
      if (strcmp(part, "decoder") && strcmp(part, "encoder") && strcmp(part, "both")) {
        fprintf(stderr, "ditc: error: --part takes decoder, encoder or both, got '%s'\n", part);
        return 2;
      }
    } else if (!strcmp(a, "--info")) {
      info = 1;
    } else if (!strcmp(a, "--json")) {
      json = 1;
    } else if (!strcmp(a, "--kernel-report")) {
      kernel_report = 1;
    } else if (!strcmp(a, "--emit-cuda")) {
      emit_cuda = 1;
    } else if (!strcmp(a, "--dump-ir")) {
      dump_ir = 1;
    } else if (!strcmp(a, "--no-cache")) {
      no_cache = true;
    } else if (!strcmp(a, "--batch") || !strcmp(a, "-o") || !strcmp(a, "--dump-after") ||
               !strcmp(a, "--dtype") || !strcmp(a, "--arch") || !strcmp(a, "--mode") ||
               !strcmp(a, "--recompute") || !strcmp(a, "--gelu-epilogue") || !strcmp(a, "--tune-candidates") ||
               !strcmp(a, "--cache-dir")) {
      if (i + 1 >= argc) {
        fprintf(stderr, "ditc: error: %s needs a value\n", a);
        return 2;
      }
      const char *v = argv[++i];
      if (a[1] == 'o') {
        o.out_path = v;
      } else if (!strcmp(a, "--dtype")) {
        dtype_given = true;
        if (!strcmp(v, "fp32")) o.dtype = PLAN_DT_F32;
        else if (!strcmp(v, "tf32")) o.dtype = PLAN_DT_TF32;
        else if (!strcmp(v, "bf16")) o.dtype = PLAN_DT_BF16;
        else {
          fprintf(stderr, "ditc: error: --dtype takes fp32, tf32 or bf16, got '%s'\n", v);
          return 2;
        }
      } else if (!strcmp(a, "--mode")) {
        if (strcmp(v, "train") && strcmp(v, "inference")) {
          fprintf(stderr, "ditc: error: --mode takes inference or train, got '%s'\n", v);
          return 2;
        }
        o.train = !strcmp(v, "train");
      } else if (!strcmp(a, "--gelu-epilogue")) {
        if (!strcmp(v, "auto")) o.gelu = GELU_EPILOGUE_AUTO;
        else if (!strcmp(v, "cublaslt")) o.gelu = GELU_EPILOGUE_CUBLASLT;
        else if (!strcmp(v, "kernel")) o.gelu = GELU_EPILOGUE_KERNEL;
        else {
          fprintf(stderr, "ditc: error: --gelu-epilogue takes auto, cublaslt or kernel, got '%s'\n", v);
          return 2;
        }
      } else if (!strcmp(a, "--tune-candidates")) {
        char *end;
        errno = 0;
        long k = strtol(v, &end, 10);
        if (errno || end == v || *end || k < 1 || k > KFAM_MAX_CANDIDATES) {
          fprintf(stderr, "ditc: error: --tune-candidates takes an integer from 1 to %d, got '%s'\n",
                  KFAM_MAX_CANDIDATES, v);
          return 2;
        }
        o.tune_candidates = (int)k;
        tune_given = true;
      } else if (!strcmp(a, "--cache-dir")) {
        if (!*v) {
          fprintf(stderr, "ditc: error: --cache-dir needs a directory\n");
          return 2;
        }
        cache_dir = v;
      } else if (!strcmp(a, "--recompute")) {
        if (strcmp(v, "none") && strcmp(v, "block")) {
          fprintf(stderr, "ditc: error: --recompute takes none or block, got '%s'\n", v);
          return 2;
        }
        o.recompute = strcmp(v, "block") ? RECOMPUTE_NONE : RECOMPUTE_BLOCK;
        recompute_given = 1;
      } else if (!strcmp(a, "--arch")) {
        for (const char *p = v; *p; p++) {
          if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == ',')) {
            fprintf(stderr, "ditc: error: --arch takes a list like sm_80,sm_90 or none, got '%s'\n", v);
            return 2;
          }
        }
        o.arch = strcmp(v, "none") ? v : NULL;
      } else if (!strcmp(a, "--dump-after")) {
        if (!pipeline_stage_exists(v)) {
          fprintf(stderr, "ditc: error: --dump-after: unknown stage '%s' (see ditc --help)\n", v);
          return 2;
        }
        o.dump_after = v;
        dump_ir = 1;
      } else if ((batch_given = 1, parse_batch(v, &o.batch))) {
        fprintf(stderr, "ditc: error: --batch takes an integer from 1 to %d, got '%s'\n",
                DITC_MAX_BATCH, v);
        return 2;
      }
    } else if (a[0] == '-' && a[1] != '\0') {
      fprintf(stderr, "ditc: error: unknown option '%s' (see ditc --help)\n", a);
      return 2;
    } else if (o.spec.path) {
      fprintf(stderr, "ditc: error: more than one spec file given ('%s' and '%s')\n",
              o.spec.path, a);
      return 2;
    } else {
      o.spec.path = a;
    }
  }
  if (!o.spec.path) {
    fprintf(stderr, "ditc: error: no spec file given\n");
    usage(stderr);
    return 2;
  }
  if (model_name_like(o.spec.path)) { /* DiT-XL/2: the shipped spec of that name and size */
    if (image_size && image_size != 256 && image_size != 512) {
      fprintf(stderr, "ditc: error: --image-size takes 256 or 512, got '%s' (with an official model name)\n",
              image_size_arg);
      return 2;
    }
    if (model_name_resolve(o.spec.path, image_size ? (int)image_size : 256, argv[0], resolved, sizeof resolved,
                           stderr))
      return 1;
    o.spec.path = resolved;
  } else if (image_size) { /* a spec or config.json: its image_size, specialised */
    o.overrides.at[o.overrides.n++] = (SpecOverride){"--image-size", "image_size", image_size_arg, false};
  }
  if (part) o.overrides.at[o.overrides.n++] = (SpecOverride){"--part", "part", part, true};
  if (json && !info) {
    fprintf(stderr, "ditc: error: --json goes with --info\n");
    return 2;
  }
  if (dump_ir && info) {
    fprintf(stderr, "ditc: error: choose one of --info and --dump-ir\n");
    return 2;
  }
  o.emit = dump_ir ? EMIT_IR : (json ? EMIT_JSON : EMIT_REPORT);
  if (emit_cuda) {
    if (info || dump_ir || kernel_report) {
      fprintf(stderr, "ditc: error: --emit-cuda goes alone (with -o FILE at most)\n");
      return 2;
    }
    o.emit = EMIT_CUDA;
  } else if (o.out_path && !info && !dump_ir) {
    o.emit = EMIT_PLAN;
  }
  if (kernel_report) {
    if (info || dump_ir || o.out_path) {
      fprintf(stderr, "ditc: error: --kernel-report goes alone (no --info, --dump-ir or -o)\n");
      return 2;
    }
    o.emit = EMIT_KERNEL_REPORT;
  }
  if (o.train && !batch_given) {
    fprintf(stderr, "ditc: error: --mode train needs --batch N (the rows of one training step)\n");
    return 2;
  }
  if (recompute_given && !o.train) {
    fprintf(stderr, "ditc: error: --recompute goes with --mode train\n");
    return 2;
  }
  if (o.train && (kernel_report || emit_cuda)) {
    fprintf(stderr, "ditc: error: --mode train has no GPU kernels yet (--kernel-report, --emit-cuda)\n");
    return 2;
  }
  if (o.train && o.arch && o.emit == EMIT_PLAN) {
    fprintf(stderr, "ditc: error: --arch %s: training plans have no GPU kernels yet; compile them "
                    "with --arch none\n", o.arch);
    return 2;
  }
  if (tune_given && !o.arch) {
    fprintf(stderr, "ditc: error: --tune-candidates needs --arch LIST: the candidates are GPU kernels\n");
    return 2;
  }
  if (tune_given && o.emit != EMIT_PLAN) {
    fprintf(stderr, "ditc: error: --tune-candidates goes with -o PLAN: it compiles candidates into the plan\n");
    return 2;
  }
  if (cache_dir && no_cache) {
    fprintf(stderr, "ditc: error: choose one of --cache-dir and --no-cache\n");
    return 2;
  }
  o.cache_dir = no_cache ? NULL : cache_dir ? cache_dir : default_cache_dir(cache_buf, sizeof cache_buf);
  /* GPU plans are bf16 unless told otherwise: their GEMMs and attention on tensor cores */
  if (!dtype_given && !o.train && ((o.arch && o.emit == EMIT_PLAN) || kernel_report || emit_cuda))
    o.dtype = PLAN_DT_BF16;
  if (o.train && o.dtype == PLAN_DT_BF16) {
    fprintf(stderr, "ditc: error: --dtype bf16 is for inference plans; training plans are fp32 (or tf32)\n");
    return 2;
  }
  DitcStatus st = compile_pipeline(&o, stdout, stderr);
  switch (st) {
  case DITC_OK: return 0;
  case DITC_ERR_INTERNAL: return 3;
  case DITC_ERR_USAGE: return 2;
  case DITC_ERR_IO: case DITC_ERR_SPEC: case DITC_ERR_LIMIT: case DITC_ERR_NOMEM: return 1;
  }
  return 1;
}
