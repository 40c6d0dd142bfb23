/* test_gpu_vs_cpu.c: the CUDA backend against the CPU backend (the oracle),
 * on a GPU ($DIT_TEST_DEVICE cuda, the default) or on the emulated device
 * (emu: tools/emu/, CTest label emu). On cuda it exits 77 (skipped) where
 * there is no driver, no device or no CUDA backend in the build, but fails
 * where a GPU is present (/dev/nvidia0) and cannot be opened; on emu it
 * skips nothing.
 *
 * For each spec (tiny, tiny_hd72, tiny_pixel, and S2_256 on a GPU; on emu
 * tiny_long, whose 144 tokens take several attention tiles, and S8_256:
 * $DIT_TEST_SPECS) and dtype (fp32, tf32, bf16: $DIT_TEST_DTYPES, default
 * all three, fp32,tf32 on emu), ditc compiles a plan with
 * GPU kernels (--arch $DIT_TEST_ARCH, default sm_80,sm_90, or emu); a CPU and
 * a CUDA runtime load it with the same random weights (every tensor); then,
 * with the CUDA arena poisoned (NaN) first:
 *   op by op: each forward op on the device fed the CPU's own inputs to it,
 *   so that its tolerance measures that op alone;
 *   forward at max rows: each forward op's result still in the arena at the
 *   end (intact_values), and the final output;
 *   forward at max rows - 1 (another cuBLASLt algorithm choice): the same;
 *   the guided forward (dit_forward_cfg);
 *   dit_sample, 10 DDPM steps, 10 DDIM steps and 10 DPM-Solver++ steps of
 *   order 3 with guidance, noise injected, through the captured CUDA graph; a second run must repeat the
 *   first bit for bit.
 * Error: max |cuda - cpu| / max |cpu| over a tensor (normwise), at most
 * 1e-5 (fp32), 3e-3 (tf32) or 2^-7 (bf16: one bf16 ulp, see run_case) per
 * forward value, 10x that after sampling
 * ($DIT_TEST_TOL_SCALE scales both); any NaN fails. The DDPM sample is
 * also run by a CUDA runtime opened with cuda_no_graph (every step
 * eager): graph replay and eager launches must agree bit for bit. A table
 * of every check is printed; DIT_TEST_VERBOSE=1 adds a line per op.
 *
 * On a machine other than the one that built it (the GPU visit, see
 * tools/gpu_check.sh): $DIT_TEST_PLAN_DIR holds plans compiled elsewhere,
 * <spec>_<dtype>.plan at --batch 4 (tools/gpu_bundle.sh makes them), used
 * instead of compiling here; a plan that is missing, of another batch, or
 * whose kernels this driver cannot load (an image from a newer toolkit) is
 * compiled here after all. $DIT_TEST_DITC and $DIT_TEST_SOURCE_DIR replace
 * the ditc binary and the source tree (specs/) of the build. */
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

enum { SKIP = 77 };

typedef struct Cmp {
  double rel, max_ref, max_diff;
  int64_t nans;
} Cmp;

static Cmp compare(const float *ref, const float *got, int64_t n) {
  Cmp c = {0, 0, 0, 0};
  for (int64_t i = 0; i < n; i++) {
    if (isnan(got[i]) != isnan(ref[i]) || isinf(got[i]) != isinf(ref[i])) c.nans++;
    if (!isfinite(got[i]) || !isfinite(ref[i])) continue;
    double d = fabs((double)got[i] - ref[i]), r = fabs((double)ref[i]);
    if (d > c.max_diff) c.max_diff = d;
    if (r > c.max_ref) c.max_ref = r;
  }
  c.rel = c.max_diff / (c.max_ref > 1e-30 ? c.max_ref : 1e-30);
  return c;
}

static int failures, verbose;
static const char *device = "cuda"; /* $DIT_TEST_DEVICE: cuda or emu */

/* One row of the table; returns 1 on failure. */
static int report(const char *plan, const char *check, Cmp c, double tol) {
  int bad = c.nans > 0 || !(c.rel <= tol);
  printf("%-22s %-34s rel %9.2e  (max|ref| %8.2e)  tol %7.1e  %s%s\n", plan, check, c.rel, c.max_ref, tol,
         bad ? "FAIL" : "ok", c.nans ? "  NaN/inf mismatch" : "");
  failures += bad;
  return bad;
}

/* $name when set and not empty, else fallback. */
static const char *env_or(const char *name, const char *fallback) {
  const char *v = getenv(name);
  return v && *v ? v : fallback;
}

static int compile_plan(const char *spec, const char *dtype, int batch, const char *arch, const char *out) {
  char b[16];
  snprintf(b, sizeof b, "%d", batch);
  const char *argv[] = {env_or("DIT_TEST_DITC", DITC_BIN), spec, "-o", out, "--batch", b, "--dtype", dtype, arch ? "--arch" : NULL, arch, NULL};
  ToolResult r;
  if (run_tool(argv, NULL, &r)) return -1;
  int rc = r.exit_code;
  if (rc) fprintf(stderr, "ditc %s --dtype %s --arch %s failed:\n%s\n", spec, dtype, arch ? arch : "none", r.err);
  tool_result_free(&r);
  return rc;
}

static uint64_t lcg(uint64_t *s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return *s >> 11;
}
static float uniform(uint64_t *s) { return (float)((double)lcg(s) / 9007199254740992.0 * 2.0 - 1.0); }

/* Every weight random, scaled so activations keep unit size: matrices by
 * sqrt(3 / fan_in), vectors small, pos_embed of unit size; the same bytes in both runtimes. */
static void random_weights(DitRuntime *cpu, DitRuntime *gpu, uint64_t seed) {
  int64_t nf;
  float *w = dit_weights_flat(cpu, &nf);
  uint64_t s = seed;
  for (size_t i = 0; i < dit_num_weights(cpu); i++) {
    DitWeightView v;
    if (dit_weight_view(cpu, i, &v)) continue;
    double scale = v.rank >= 2 ? sqrt(3.0 / (double)(v.numel / v.dims[0])) : 0.1;
    if (strcmp(v.name, "pos_embed") == 0) scale = 1.0;
    for (int64_t k = 0; k < v.numel; k++) w[v.offset + k] = (float)(uniform(&s) * scale);
  }
  memcpy(dit_weights_flat(gpu, NULL), w, (size_t)nf * sizeof(float));
  dit_weights_set(cpu);
  dit_weights_set(gpu);
}

/* Which values still hold their op's result at the end of a forward: no
 * later forward op writes bytes they occupy (the planner reuses the arena).
 * Only those compare after a whole forward: a clobbered value holds a later
 * one's bytes, which a bf16 plan's CPU arena (twice the device's, executor.h)
 * lays out otherwise. NULL (all intact) if the plan does not load here. */
static bool *intact_values(const char *path) {
  PlanView pv;
  DitErr e = {0};
  if (plan_load(path, &pv, &e)) return NULL;
  bool *ok = calloc(pv.n_values ? pv.n_values : 1, sizeof *ok);
  size_t nf = pv.io ? pv.io->n_forward_ops : 0;
  for (size_t i = 0; ok && i < nf; i++)
    for (int a = 0; a < 2; a++) {
      uint32_t v = a ? pv.ops[i].out2 : pv.ops[i].out;
      if (v == DIT_PLAN_NONE) continue;
      const PlanValue *pa = &pv.values[v];
      ok[v] = true;
      for (size_t j = i + 1; j < nf && ok[v]; j++)
        for (int b = 0; b < 2; b++) {
          uint32_t w = b ? pv.ops[j].out2 : pv.ops[j].out;
          if (w == DIT_PLAN_NONE || w == v) continue;
          const PlanValue *pb = &pv.values[w];
          if (pa->storage == pb->storage && pa->offset < pb->offset + pb->bytes && pb->offset < pa->offset + pa->bytes)
            ok[v] = false;
        }
    }
  plan_view_free(&pv);
  return ok;
}

/* Every forward op's results (out, out2) that are intact after the last
 * forward of both runtimes (intact NULL: all). */
static double check_ops(const char *plan, const char *check, DitRuntime *cpu, DitRuntime *gpu, double tol,
                        const bool *intact) {
  double worst = 0;
  size_t worst_op = 0;
  int bad = 0;
  for (size_t i = 0; i < dit_debug_num_forward_ops(cpu); i++) {
    uint32_t kind, ids[2];
    dit_debug_op(cpu, i, &kind, &ids[0], &ids[1]);
    for (int j = 0; j < 2; j++) {
      if (ids[j] == DIT_PLAN_NONE || (intact && !intact[ids[j]])) continue;
      uint64_t bytes = dit_debug_value_bytes(cpu, ids[j]);
      float *a = malloc(bytes), *b = malloc(bytes);
      if (dit_debug_read_value(cpu, ids[j], a) || dit_debug_read_value(gpu, ids[j], b)) {
        fprintf(stderr, "reading value %u: %s / %s\n", ids[j], dit_last_error(cpu), dit_last_error(gpu));
        bad = 1;
      } else {
        Cmp c = compare(a, b, (int64_t)(bytes / sizeof(float)));
        int fail = c.nans > 0 || !(c.rel <= tol);
        if (verbose || fail)
          printf("  op %3zu %-22s value %4u%s  rel %9.2e  max|ref| %8.2e%s\n", i, plan_op_name(kind), ids[j],
                 j ? " (out2)" : "", c.rel, c.max_ref, fail ? (c.nans ? "  NaN FAIL" : "  FAIL") : "");
        bad |= fail;
        if (c.nans || c.rel > worst) worst = c.nans ? INFINITY : c.rel, worst_op = i;
      }
      free(a);
      free(b);
    }
  }
  char what[96];
  snprintf(what, sizeof what, "%s: each op left (worst %zu)", check, worst_op);
  Cmp c = {worst, 0, 0, bad && isinf(worst)};
  report(plan, what, c, tol);
  return worst;
}

/* Each forward op alone: the CPU runs the forward one op at a time; before
 * op i, its inputs (as the CPU has them) are written into the device's
 * values, op i runs on both, and its results are compared. */
static void check_ops_isolated(const char *plan, DitRuntime *cpu, DitRuntime *gpu, int64_t rows, const float *x,
                               const int64_t *t, const int64_t *y, double tol) {
  double worst = 0;
  size_t worst_op = 0, n_fwd = dit_debug_num_forward_ops(cpu);
  int bad = 0;
  if (dit_debug_stage_forward(cpu, rows, x, t, y) || dit_debug_stage_forward(gpu, rows, x, t, y)) {
    printf("%-22s %-34s FAIL: %s | %s\n", plan, "op by op: stage", dit_last_error(cpu), dit_last_error(gpu));
    failures++;
    return;
  }
  for (size_t i = 0; i < n_fwd && !bad; i++) {
    uint32_t ids[8], n_in = 0, kind, outs[2];
    dit_debug_op_inputs(cpu, i, ids, &n_in);
    dit_debug_op(cpu, i, &kind, &outs[0], &outs[1]);
    for (uint32_t k = 0; k < n_in && !bad; k++) {
      uint64_t bytes = dit_debug_value_bytes(cpu, ids[k]);
      void *buf = malloc(bytes);
      bad = dit_debug_read_value(cpu, ids[k], buf) || dit_debug_write_value(gpu, ids[k], buf);
      free(buf);
    }
    if (bad || dit_debug_run_ops(cpu, i, i + 1) || dit_debug_run_ops(gpu, i, i + 1)) {
      printf("%-22s op %zu FAIL: %s | %s\n", plan, i, dit_last_error(cpu), dit_last_error(gpu));
      failures++;
      return;
    }
    for (int j = 0; j < 2; j++) {
      if (outs[j] == DIT_PLAN_NONE) continue;
      uint64_t bytes = dit_debug_value_bytes(cpu, outs[j]);
      float *a = malloc(bytes), *b = malloc(bytes);
      if (dit_debug_read_value(cpu, outs[j], a) || dit_debug_read_value(gpu, outs[j], b)) {
        bad = 1;
      } else {
        Cmp c = compare(a, b, (int64_t)(bytes / sizeof(float)));
        int fail = c.nans > 0 || !(c.rel <= tol);
        if (verbose || fail)
          printf("  alone: op %3zu %-22s value %4u%s  rel %9.2e  max|ref| %8.2e%s\n", i, plan_op_name(kind),
                 outs[j], j ? " (out2)" : "", c.rel, c.max_ref, fail ? "  FAIL" : "");
        if (c.nans || c.rel > worst) worst = c.nans ? INFINITY : c.rel, worst_op = i;
      }
      free(a);
      free(b);
    }
  }
  char what[96];
  snprintf(what, sizeof what, "op by op, CPU inputs (worst %zu)", worst_op);
  Cmp c = {worst, 0, 0, isinf(worst) || bad};
  report(plan, what, c, tol);
}

/* Opens a CPU and a CUDA runtime of the case's plan: the one in
 * $DIT_TEST_PLAN_DIR when it fits and loads, else one compiled now into dir
 * (*compiled = 1: the caller removes it). */
static int open_case(const char *dir, const char *spec_name, const char *dtype, int batch, const char *arch,
                     char *path, size_t path_size, int *compiled, DitRuntime **cpu, DitRuntime **gpu) {
  char spec[512], label[64];
  snprintf(spec, sizeof spec, "%s/specs/%s%s.dit", env_or("DIT_TEST_SOURCE_DIR", DIT_SOURCE_DIR),
           strncmp(spec_name, "tiny", 4) ? "" : "tests/", spec_name);
  snprintf(label, sizeof label, "%s/%s", spec_name, dtype);
  DitError err;
  DitOptions oc = {.n_threads = 0, .device = "cpu"}, og = {.n_threads = 0, .device = device};
  *compiled = 0;
  *cpu = *gpu = NULL;
  const char *pdir = getenv("DIT_TEST_PLAN_DIR");
  if (pdir && *pdir) {
    snprintf(path, path_size, "%s/%s_%s.plan", pdir, spec_name, dtype);
    if (access(path, R_OK) != 0) {
      printf("%-22s %-34s %s is missing: compiling here\n", label, "plan", path);
    } else if (dit_open(path, &oc, cpu, &err)) {
      printf("%-22s %-34s %s: %s: compiling here\n", label, "plan", path, err.message);
    } else if (dit_model_info(*cpu)->max_batch != batch) {
      printf("%-22s %-34s %s has --batch %lld, not %d: compiling here\n", label, "plan", path,
             (long long)dit_model_info(*cpu)->max_batch, batch);
    } else if (dit_open(path, &og, gpu, &err)) {
      /* e.g. cubins of a newer toolkit than this driver: this machine's NVRTC makes ones it loads */
      printf("%-22s %-34s %s on cuda: %s: compiling here\n", label, "plan", path, err.message);
    } else {
      return 0;
    }
    dit_close(*cpu);
    *cpu = NULL;
  }
  snprintf(path, path_size, "%s/%s_%s.plan", dir, spec_name, dtype);
  if (compile_plan(spec, dtype, batch, arch, path)) {
    printf("%-22s %-34s FAIL (ditc)\n", label, "compile");
    return -1;
  }
  *compiled = 1;
  if (dit_open(path, &oc, cpu, &err) || dit_open(path, &og, gpu, &err)) {
    printf("%-22s %-34s FAIL: %s\n", label, "open", err.message);
    dit_close(*cpu);
    *cpu = NULL;
    return -1;
  }
  return 0;
}

static int run_case(const char *dir, const char *spec_name, const char *dtype, int batch, const char *arch) {
  char path[512], label[64];
  snprintf(label, sizeof label, "%s/%s", spec_name, dtype);
  /* bf16: the CPU rounds to bf16 where the device stores bf16 (executor.h), from the same bf16
   * inputs, so their fp32 results differ in the order of fp32 sums, after which a bf16 result may
   * round the other way: one bf16 ulp, at most 2^-7 of the largest element (normwise); and in the
   * tensor-core attention, which rounds its softmax weights P to bf16 for the P V product
   * (attention_mma.cuh) where the CPU keeps them in fp32: about one more ulp. So 2^-6. */
  bool bf16 = strcmp(dtype, "bf16") == 0;
  double tol = strcmp(dtype, "fp32") == 0 ? 1e-5 : strcmp(dtype, "tf32") == 0 ? 3e-3 : 0x1p-6;
  const char *ts = getenv("DIT_TEST_TOL_SCALE");
  if (ts && *ts) tol *= atof(ts);
  DitRuntime *cpu = NULL, *gpu = NULL;
  int compiled = 0;
  if (open_case(dir, spec_name, dtype, batch, arch, path, sizeof path, &compiled, &cpu, &gpu)) {
    if (compiled) unlink(path);
    return ++failures;
  }
  printf("%-22s on %s\n", label, dit_device_name(gpu));
  bool *intact = intact_values(path);
  random_weights(cpu, gpu, 1234);
  const DitModelInfo *mi = dit_model_info(cpu);
  int64_t xs = mi->in_channels * mi->latent_size * mi->latent_size;
  int64_t os = mi->out_channels * mi->latent_size * mi->latent_size;
  float *x = malloc(sizeof(float) * (size_t)(batch * xs));
  float *o1 = malloc(sizeof(float) * (size_t)(batch * os)), *o2 = malloc(sizeof(float) * (size_t)(batch * os));
  int64_t *t = malloc(sizeof(int64_t) * (size_t)batch), *y = malloc(sizeof(int64_t) * (size_t)batch);
  uint64_t s = 99;
  dit_randn_stream(5, 0, x, batch * xs);
  int64_t labels = mi->num_classes + (mi->has_null_class ? 1 : 0);
  for (int i = 0; i < batch; i++) t[i] = (int64_t)(lcg(&s) % 1000), y[i] = (int64_t)(lcg(&s) % (uint64_t)labels);
  t[0] = 999;
  if (batch > 1) t[1] = 0;

  if (dit_debug_poison(gpu) == DIT_OK) check_ops_isolated(label, cpu, gpu, batch, x, t, y, tol);
  for (int pass = 0; pass < 2; pass++) { /* max rows, then one row fewer */
    int64_t rows = pass == 0 ? batch : batch - 1;
    if (rows < 1) continue;
    char what[64];
    snprintf(what, sizeof what, "forward %lld rows", (long long)rows);
    if (dit_debug_poison(gpu) || dit_forward(cpu, rows, x, t, y, o1) || dit_forward(gpu, rows, x, t, y, o2)) {
      printf("%-22s %-34s FAIL: %s | %s\n", label, what, dit_last_error(cpu), dit_last_error(gpu));
      failures++;
      continue;
    }
    check_ops(label, what, cpu, gpu, tol, intact);
    report(label, what, compare(o1, o2, rows * os), tol);
  }

  int64_t n = mi->has_null_class ? batch / 2 : batch;
  if (mi->has_null_class && n >= 1) {
    if (dit_forward_cfg(cpu, n, x, t, y, 4.0f, o1) || dit_forward_cfg(gpu, n, x, t, y, 4.0f, o2)) {
      printf("%-22s %-34s FAIL: %s | %s\n", label, "forward_cfg", dit_last_error(cpu), dit_last_error(gpu));
      failures++;
    } else {
      /* guidance, c + 4 (c - u), scales the forward's errors in c and u by up to 4 + 3: bf16's
       * (unlike fp32's and tf32's, far below their tolerance) reach that */
      report(label, "forward_cfg (scale 4)", compare(o1, o2, n * os), bf16 ? 7 * tol : tol);
    }
  }

  /* $DIT_TEST_STEPS (default 10; at least 5, so that DPM-Solver++ of order 3 takes each of its updates) */
  int STEPS = atoi(env_or("DIT_TEST_STEPS", "10"));
  if (STEPS < 5 || STEPS > 100) STEPS = 10;
  char ddpm_steps[16], ddim_steps[16];
  snprintf(ddpm_steps, sizeof ddpm_steps, "%d", STEPS);
  snprintf(ddim_steps, sizeof ddim_steps, "ddim%d", STEPS);
  float *noise = malloc(sizeof(float) * (size_t)(n * xs));
  float *step_noise = malloc(sizeof(float) * (size_t)(STEPS * n * xs));
  float *o3 = malloc(sizeof(float) * (size_t)(n * xs)), *o4 = malloc(sizeof(float) * (size_t)(n * xs));
  float *o5 = malloc(sizeof(float) * (size_t)(n * xs));
  dit_randn_stream(11, 0, noise, n * xs);
  dit_randn_stream(11, 1, step_noise, STEPS * n * xs);
  for (int sampler = 0; sampler < 3; sampler++) { /* DDPM, DDIM, DPM-Solver++ (order 3: every update) */
    static const DitSampler kinds[3] = {DIT_DDPM, DIT_DDIM, DIT_DPM_SOLVER};
    const char *const steps[3] = {ddpm_steps, ddim_steps, ddpm_steps};
    char whats[3][48];
    snprintf(whats[0], sizeof whats[0], "sample ddpm %d, cfg 4", STEPS);
    snprintf(whats[1], sizeof whats[1], "sample ddim%d, cfg 4", STEPS);
    snprintf(whats[2], sizeof whats[2], "sample dpm++ %d, order 3, cfg 4", STEPS);
    DitSampleOptions so = {0};
    so.n = n;
    so.labels = y;
    so.sampler = kinds[sampler];
    so.steps = steps[sampler];
    so.dpm_order = 3;
    so.cfg_scale = mi->has_null_class ? 4.0f : 1.0f;
    so.noise = noise;
    so.step_noise = sampler == 2 ? NULL : step_noise;
    const char *what = whats[sampler];
    if (dit_debug_poison(gpu) || dit_sample(cpu, &so, o3) || dit_sample(gpu, &so, o4) || dit_sample(gpu, &so, o5)) {
      printf("%-22s %-34s FAIL: %s | %s\n", label, what, dit_last_error(cpu), dit_last_error(gpu));
      failures++;
      continue;
    }
    report(label, what, compare(o3, o4, n * xs), 10 * tol);
    Cmp again = compare(o4, o5, n * xs);
    report(label, "  the same sample again (bitwise)", again, 0.0);
    if (sampler == 0) { /* the captured graph against eager launches of every step */
      DitRuntime *eager = NULL;
      DitError err;
      DitOptions og = {.n_threads = 0, .device = device, .cuda_no_graph = 1};
      DitStatus st = dit_open(path, &og, &eager, &err);
      if (!st) {
        int64_t nf;
        float *w = dit_weights_flat(cpu, &nf);
        memcpy(dit_weights_flat(eager, NULL), w, (size_t)nf * sizeof(float));
        dit_weights_set(eager);
      }
      if (st || dit_sample(eager, &so, o5)) {
        printf("%-22s %-34s FAIL: %s\n", label, "sample, no CUDA graph", st ? err.message : dit_last_error(eager));
        failures++;
      } else {
        report(label, "  graph == eager steps (bitwise)", compare(o4, o5, n * xs), 0.0);
      }
      dit_close(eager);
    }
  }
  free(noise), free(step_noise), free(o3), free(o4), free(o5);
  free(x), free(o1), free(o2), free(t), free(y), free(intact);
  dit_close(cpu);
  dit_close(gpu);
  if (compiled) unlink(path);
  return 0;
}

int main(void) {
  verbose = getenv("DIT_TEST_VERBOSE") && strcmp(getenv("DIT_TEST_VERBOSE"), "0") != 0;
  device = env_or("DIT_TEST_DEVICE", "cuda");
  int emu = strcmp(device, "emu") == 0;
  if (!emu && strcmp(device, "cuda") != 0) {
    fprintf(stderr, "DIT_TEST_DEVICE=%s: expected cuda or emu\n", device);
    return 2;
  }
  char dir[] = "/tmp/ditc_gpu_XXXXXX";
  if (!mkdtemp(dir)) return 1;
  /* Is there a device? A CPU-only plan on "cuda" fails for the device
   * (DIT_ERR_DEVICE: no driver, no GPU), the build, or (on a GPU) the plan. */
  char probe[512], probe_spec[512];
  snprintf(probe, sizeof probe, "%s/probe.plan", dir);
  snprintf(probe_spec, sizeof probe_spec, "%s/specs/tests/tiny.dit", env_or("DIT_TEST_SOURCE_DIR", DIT_SOURCE_DIR));
  if (compile_plan(probe_spec, "fp32", 1, NULL, probe)) return 1;
  DitRuntime *rt = NULL;
  DitError err;
  DitOptions og = {.n_threads = 0, .device = device};
  DitStatus st = dit_open(probe, &og, &rt, &err);
  unlink(probe);
  if (st == DIT_ERR_DEVICE || (st && strstr(err.message, "no CUDA backend"))) {
    /* a GPU that is there must be usable: only its absence skips */
    int gpu_present = access("/dev/nvidia0", F_OK) == 0 || access("/proc/driver/nvidia/gpus", F_OK) == 0;
    if (emu || gpu_present) {
      printf("FAIL: %s cannot be opened: %s\n", emu ? "the emulated device" : "a GPU is present but", err.message);
      rmdir(dir);
      return 1;
    }
    printf("SKIP: no usable GPU: %s\n", err.message);
    rmdir(dir);
    return SKIP;
  }
  if (st && !strstr(err.message, "no GPU kernels") && !strstr(err.message, "no emulated-device kernels")) {
    printf("FAIL: unexpected error for a CPU plan on cuda: %s\n", err.message);
    rmdir(dir);
    return 1;
  }
  dit_close(rt);
  const char *arch = getenv("DIT_TEST_ARCH");
  if (!arch || !*arch) arch = emu ? "emu" : "sm_80,sm_90";
  const char *specs_env = getenv("DIT_TEST_SPECS");
  char specs[256];
  snprintf(specs, sizeof specs, "%s", specs_env && *specs_env ? specs_env
                                              : emu ? "tiny,tiny_hd72,tiny_pixel,tiny_long,S8_256"
                                                    : "tiny,tiny_hd72,tiny_pixel,S2_256");
  /* any of fp32, tf32, bf16; on emu, bf16 is a CTest of its own (test_gpu_vs_cpu_emu_bf16) */
  const char *dtypes = env_or("DIT_TEST_DTYPES", emu ? "fp32,tf32" : "fp32,tf32,bf16");
  static const char *const all[3] = {"fp32", "tf32", "bf16"};
  for (char *save = NULL, *sp = strtok_r(specs, ",", &save); sp; sp = strtok_r(NULL, ",", &save))
    for (int d = 0; d < 3; d++)
      if (strstr(dtypes, all[d])) run_case(dir, sp, all[d], 4, arch);
  rmdir(dir);
  printf("%d failed checks\n", failures);
  return failures ? 1 : 0;
}
