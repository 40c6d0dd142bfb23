/* test_emu_vae.c: the VAE's GPU kernels (kernels/vae.cuh, attention_simt
 * at the VAE's one head, cuBLASLt's linears) on the emulated device against
 * the CPU backend, op by op. ditc compiles specs/tests/tiny_vae.dit for
 * --arch emu at --batch 2: the decoder and the encoder as fp32 plans, and
 * --part both as a bf16 plan (the default dtype of a plan with kernels).
 * A CPU and an emu runtime bind the same random weights (dit_random_weights);
 * the inputs are random (z; image and noise). For each fp32 part:
 *   op by op: the CPU runs the part one op at a time; before op i its
 *   inputs, as the CPU has them, are written into the device's values
 *   (dit_debug_write_value), op i runs on both and its result is compared,
 *   so that the error is that op's alone;
 *   whole: dit_vae_decode / dit_vae_encode on both (device arena poisoned
 *   first), the result and every op's value still intact at the end.
 * The bf16 plan of both parts holds no bf16 value (pass_bf16 keeps VAE plans
 * fp32: no conv or norm reads bf16), so it must match the CPU as closely.
 * Error: ||emu - cpu|| / ||cpu|| (L2 over the tensor) at most 1e-5; any NaN
 * fails. The op kinds covered are counted, and every VAE op kind (and
 * group_norm with and without SiLU, 1x1 and 3x3, stride 2 and the fused
 * upsampling) must have been seen. */
#define _GNU_SOURCE
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dit/dit.h"
#include "dit/dit_debug.h"
#include "dit/plan_format.h"
#include "plan/plan_view.h"
#include "run_tool.h"

enum { BATCH = 2 };
static const double TOL = 1e-5;
static int failures, verbose;

/* ||got - ref|| / ||ref||, INFINITY on any NaN or infinity mismatch. */
static double rel_l2(const float *ref, const float *got, int64_t n) {
  double d = 0, r = 0;
  for (int64_t i = 0; i < n; i++) {
    if (!isfinite(ref[i]) || !isfinite(got[i])) return INFINITY;
    d += ((double)got[i] - ref[i]) * ((double)got[i] - ref[i]);
    r += (double)ref[i] * ref[i];
  }
  return sqrt(d) / (r > 1e-60 ? sqrt(r) : 1e-30);
}

static void report(const char *plan, const char *check, double rel) {
  bool bad = !(rel <= TOL);
  printf("%-20s %-44s rel %9.2e  tol %7.1e  %s\n", plan, check, rel, TOL, bad ? "FAIL" : "ok");
  failures += bad;
}

static int compile(const char *part, const char *dtype, const char *out) {
  const char *argv[] = {DITC_BIN, DIT_SOURCE_DIR "/specs/tests/tiny_vae.dit", "-o", out, "--batch", "2",
                        "--part", part, "--dtype", dtype, "--arch", "emu", NULL};
  ToolResult r;
  if (run_tool(argv, NULL, &r)) return -1;
  int rc = r.exit_code;
  if (rc) fprintf(stderr, "ditc --part %s --dtype %s failed:\n%s\n", part, dtype, r.err);
  tool_result_free(&r);
  return rc;
}

static uint64_t lcg(uint64_t *s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return *s >> 11;
}
static float *random_floats(int64_t n, uint64_t seed, float lo, float hi) {
  float *v = malloc((size_t)n * sizeof *v);
  for (int64_t i = 0; v && i < n; i++) v[i] = lo + (hi - lo) * (float)((double)lcg(&seed) / 9007199254740992.0);
  return v;
}

/* Which kinds and variants the op-by-op checks reached. */
typedef struct Seen {
  int kinds[PLAN_OP_MAX + 1];
  int gn_silu, gn_plain, conv1, conv3, stride2, up2;
} Seen;

static void note(Seen *s, const PlanView *pv, size_t i) {
  const PlanOp *op = &pv->ops[i];
  s->kinds[op->kind]++;
  if (op->kind == PLAN_OP_GROUP_NORM) {
    if (plan_attrs_GROUP_NORM(op).act == PLAN_ACT_SILU) s->gn_silu++;
    else s->gn_plain++;
  } else if (op->kind == PLAN_OP_CONV2D) {
    PlanAttrs_CONV2D a = plan_attrs_CONV2D(op);
    if (pv->values[op->in[1]].dims[2] == 1) s->conv1++;
    else s->conv3++;
    s->stride2 += a.stride == 2;
    s->up2 += a.upsample == 2;
  }
}

/* Reads value id of both runtimes and compares; the relative error. */
static double compare_value(DitRuntime *cpu, DitRuntime *gpu, uint32_t id) {
  uint64_t bytes = dit_debug_value_bytes(cpu, id);
  float *a = malloc(bytes), *b = malloc(bytes);
  double rel = INFINITY;
  if (a && b && !dit_debug_read_value(cpu, id, a) && !dit_debug_read_value(gpu, id, b))
    rel = rel_l2(a, b, (int64_t)(bytes / sizeof(float)));
  free(a);
  free(b);
  return rel;
}

/* Copies value id from the CPU runtime into the device's. */
static int copy_value(DitRuntime *cpu, DitRuntime *gpu, uint32_t id) {
  uint64_t bytes = dit_debug_value_bytes(cpu, id);
  void *buf = malloc(bytes ? bytes : 1);
  int bad = !buf || dit_debug_read_value(cpu, id, buf) || dit_debug_write_value(gpu, id, buf);
  free(buf);
  return bad;
}

/* Each op of the part alone on the CPU's inputs. The part's inputs are
 * written into the CPU runtime first: the whole run before may have reused
 * their bytes. */
static void check_isolated(const char *label, const PlanView *pv, DitRuntime *cpu, DitRuntime *gpu,
                           const char *const *in_names, const float *const *in_data, Seen *seen) {
  double worst = 0;
  size_t worst_op = 0, n_ops = dit_debug_num_forward_ops(cpu);
  for (int k = 0; in_names[k]; k++) {
    const PlanIoName *e = plan_io_named(pv, in_names[k]);
    if (!e || dit_debug_write_value(cpu, e->value, in_data[k])) {
      printf("%-20s op by op: input %s FAIL: %s\n", label, in_names[k], dit_last_error(cpu));
      failures++;
      return;
    }
  }
  for (size_t i = 0; i < n_ops; i++) {
    const PlanOp *op = &pv->ops[i];
    int bad = 0;
    for (uint32_t k = 0; k < op->n_in && !bad; k++) bad = copy_value(cpu, gpu, op->in[k]);
    if (bad || dit_debug_run_ops(cpu, i, i + 1) || dit_debug_run_ops(gpu, i, i + 1)) {
      printf("%-20s op %zu FAIL: %s | %s\n", label, i, dit_last_error(cpu), dit_last_error(gpu));
      failures++;
      return;
    }
    double rel = compare_value(cpu, gpu, op->out);
    note(seen, pv, i);
    if (verbose || !(rel <= TOL))
      printf("  alone: op %3zu %-14s value %4u  rel %9.2e%s\n", i, plan_op_name(op->kind), op->out, rel,
             rel <= TOL ? "" : "  FAIL");
    if (!(rel <= worst)) worst = rel, worst_op = i;
  }
  char what[96];
  snprintf(what, sizeof what, "op by op, CPU inputs (%zu ops, worst %zu)", n_ops, worst_op);
  report(label, what, worst);
}

/* After a whole run: every op's result that no later op of [first, end)
 * overwrote. */
static void check_intact(const char *label, const PlanView *pv, DitRuntime *cpu, DitRuntime *gpu, size_t first,
                         size_t end) {
  double worst = 0;
  size_t worst_op = first, n = 0;
  for (size_t i = first; i < end; i++) {
    const PlanValue *a = &pv->values[pv->ops[i].out];
    bool intact = true;
    for (size_t j = i + 1; j < end && intact; j++) {
      const PlanValue *b = &pv->values[pv->ops[j].out];
      if (pv->ops[j].out != pv->ops[i].out && a->storage == b->storage && a->offset < b->offset + b->bytes &&
          b->offset < a->offset + a->bytes)
        intact = false;
    }
    if (!intact) continue;
    double rel = compare_value(cpu, gpu, pv->ops[i].out);
    n++;
    if (!(rel <= worst)) worst = rel, worst_op = i;
  }
  char what[96];
  snprintf(what, sizeof what, "whole run: %zu intact values (worst %zu)", n, worst_op);
  report(label, what, worst);
}

typedef struct Part {
  const char *name; /* decoder or encoder */
  const float *in, *noise;
  int64_t in_floats, out_floats;
} Part;

/* Opens plan path on the CPU and the emulated device with the same weights. */
static int open_pair(const char *path, DitRuntime **cpu, DitRuntime **gpu) {
  DitOptions oc = {.device = "cpu"}, og = {.device = "emu"};
  DitError err;
  *cpu = *gpu = NULL;
  if (dit_open(path, &oc, cpu, &err) || dit_open(path, &og, gpu, &err)) {
    printf("%-20s open FAIL: %s\n", path, err.message);
    failures++;
    dit_close(*cpu);
    return -1;
  }
  if (dit_random_weights(*cpu, 7) || dit_random_weights(*gpu, 7)) {
    printf("%-20s weights FAIL: %s | %s\n", path, dit_last_error(*cpu), dit_last_error(*gpu));
    failures++;
    return -1;
  }
  return 0;
}

/* One run of a part on both runtimes (device arena poisoned), the results compared. */
static void run_whole(const char *label, DitRuntime *cpu, DitRuntime *gpu, const Part *p) {
  float *a = malloc((size_t)(BATCH * p->out_floats) * sizeof *a), *b = malloc((size_t)(BATCH * p->out_floats) * sizeof *b);
  bool dec = p->name[0] == 'd';
  DitStatus sa = dec ? dit_vae_decode(cpu, BATCH, p->in, a) : dit_vae_encode(cpu, BATCH, p->in, p->noise, a);
  DitStatus sb = dit_debug_poison(gpu);
  if (!sb) sb = dec ? dit_vae_decode(gpu, BATCH, p->in, b) : dit_vae_encode(gpu, BATCH, p->in, p->noise, b);
  char what[64];
  snprintf(what, sizeof what, "%s: the result", dec ? "dit_vae_decode" : "dit_vae_encode");
  if (sa || sb) {
    printf("%-20s %s FAIL: %s | %s\n", label, what, dit_last_error(cpu), dit_last_error(gpu));
    failures++;
  } else {
    report(label, what, rel_l2(a, b, BATCH * p->out_floats));
  }
  free(a);
  free(b);
}

/* The fp32 plan of one part: whole run, intact values, then op by op. */
static void run_part(const char *dir, const Part *p, Seen *seen) {
  char path[512], label[64];
  snprintf(path, sizeof path, "%s/%s.plan", dir, p->name);
  snprintf(label, sizeof label, "tiny_vae/%s/fp32", p->name);
  if (compile(p->name, "fp32", path)) {
    printf("%-20s compile FAIL\n", label);
    failures++;
    return;
  }
  DitRuntime *cpu, *gpu;
  PlanView pv;
  DitErr e = {0};
  if (open_pair(path, &cpu, &gpu) == 0 && plan_load(path, &pv, &e) == 0) {
    run_whole(label, cpu, gpu, p);
    check_intact(label, &pv, cpu, gpu, 0, pv.io->n_forward_ops);
    bool dec = p->name[0] == 'd';
    const char *names_dec[] = {"z", NULL}, *names_enc[] = {"image", "noise", NULL};
    const float *data[] = {p->in, p->noise};
    check_isolated(label, &pv, cpu, gpu, dec ? names_dec : names_enc, data, seen);
    plan_view_free(&pv);
  }
  dit_close(cpu);
  dit_close(gpu);
  unlink(path);
}

/* The bf16 plan of both parts: no value in bf16, decode and encode as close as fp32. */
static void run_both_bf16(const char *dir, const Part *dec, const Part *enc) {
  char path[512];
  const char *label = "tiny_vae/both/bf16";
  snprintf(path, sizeof path, "%s/both_bf16.plan", dir);
  if (compile("both", "bf16", path)) {
    printf("%-20s compile FAIL\n", label);
    failures++;
    return;
  }
  PlanView pv;
  DitErr e = {0};
  if (plan_load(path, &pv, &e) == 0) {
    size_t n_bf16 = 0;
    for (size_t v = 0; v < pv.n_values; v++) n_bf16 += pv.values[v].dtype == PLAN_VDT_BF16;
    printf("%-20s %-44s %zu bf16 values  %s\n", label, "values stored in bf16 (want none)", n_bf16,
           n_bf16 ? "FAIL" : "ok");
    failures += n_bf16 != 0;
    plan_view_free(&pv);
  } else {
    printf("%-20s plan_load FAIL: %s\n", label, e.msg);
    failures++;
  }
  DitRuntime *cpu, *gpu;
  if (open_pair(path, &cpu, &gpu) == 0) {
    run_whole(label, cpu, gpu, dec);
    run_whole(label, cpu, gpu, enc);
  }
  dit_close(cpu);
  dit_close(gpu);
  unlink(path);
}

int main(void) {
  verbose = getenv("DIT_TEST_VERBOSE") && atoi(getenv("DIT_TEST_VERBOSE"));
  char dir[] = "/tmp/test_emu_vae_XXXXXX";
  if (!mkdtemp(dir)) return 1;
  /* tiny_vae: 3 x 64 x 64 images, 4 x 8 x 8 latents */
  const int64_t xs = 3 * 64 * 64, zs = 4 * 8 * 8;
  float *z = random_floats(BATCH * zs, 1, -2.0f, 2.0f), *img = random_floats(BATCH * xs, 2, -1.0f, 1.0f);
  float *noise = random_floats(BATCH * zs, 3, -1.5f, 1.5f);
  Part dec = {"decoder", z, NULL, zs, xs}, enc = {"encoder", img, noise, xs, zs};
  Seen seen;
  memset(&seen, 0, sizeof seen);
  run_part(dir, &dec, &seen);
  run_part(dir, &enc, &seen);
  run_both_bf16(dir, &dec, &enc);
  static const PlanOpKind need[] = {PLAN_OP_GROUP_NORM, PLAN_OP_CONV2D, PLAN_OP_TO_TOKENS, PLAN_OP_FROM_TOKENS,
                                    PLAN_OP_LATENT_SAMPLE, PLAN_OP_ATTENTION, PLAN_OP_LINEAR, PLAN_OP_ADD};
  int missing = 0;
  for (size_t k = 0; k < sizeof need / sizeof need[0]; k++) missing += seen.kinds[need[k]] == 0;
  missing += !seen.gn_silu + !seen.gn_plain + !seen.conv1 + !seen.conv3 + !seen.stride2 + !seen.up2;
  printf("covered: group_norm %d (silu %d), conv2d %d (1x1 %d, 3x3 %d, stride 2 %d, upsample 2 %d), to_tokens %d, "
         "attention %d, linear %d, from_tokens %d, add %d, latent_sample %d  %s\n",
         seen.kinds[PLAN_OP_GROUP_NORM], seen.gn_silu, seen.kinds[PLAN_OP_CONV2D], seen.conv1, seen.conv3,
         seen.stride2, seen.up2, seen.kinds[PLAN_OP_TO_TOKENS], seen.kinds[PLAN_OP_ATTENTION],
         seen.kinds[PLAN_OP_LINEAR], seen.kinds[PLAN_OP_FROM_TOKENS], seen.kinds[PLAN_OP_ADD],
         seen.kinds[PLAN_OP_LATENT_SAMPLE], missing ? "FAIL" : "ok");
  failures += missing != 0;
  free(z);
  free(img);
  free(noise);
  rmdir(dir);
  printf("%d failures\n", failures);
  return failures ? 1 : 0;
}
