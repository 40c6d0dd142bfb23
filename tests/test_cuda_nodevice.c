/* test_cuda_nodevice.c: the CUDA backend without a GPU. The launch
 * arithmetic of runtime/cuda/cuda_launch.h (grids, the cuBLASLt view of a
 * linear op, cubin/PTX/emu image choice, alignment, the staging layout) and
 * its plan checks (for a GPU and for the emulated device); dit_open(device
 * "cuda") failing with a clear message and no leak where there is no driver
 * or device (or on a GPU, for a CPU-only plan); device "emu" failing cleanly
 * for a missing library or a plan without emu kernels; "auto" falling back
 * to the CPU; and the debug hooks (dit/dit_debug.h) on the CPU: a poisoned
 * arena changes no output. Runs everywhere. */
#define _GNU_SOURCE
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cuda/cuda_launch.h"
#include "dit/dit.h"
#include "dit/dit_debug.h"
#include "run_tool.h"

/* ---- launch arithmetic ---- */

static void test_dims_elementwise_covers_every_element(void **state) {
  (void)state;
  CudaLaunchDims d;
  assert_int_equal(cuda_dims_elementwise(1000, 256, &d), 0);
  assert_int_equal(d.grid[0], 4);
  assert_int_equal(d.grid[1], 1);
  assert_int_equal(d.grid[2], 1);
  assert_int_equal(d.block, 256);
  assert_int_equal(cuda_dims_elementwise(1024, 256, &d), 0);
  assert_int_equal(d.grid[0], 4);
  assert_int_equal(cuda_dims_elementwise(1, 256, &d), 0);
  assert_int_equal(d.grid[0], 1);
  assert_int_equal(cuda_dims_elementwise(0, 256, &d), -1);
  assert_int_equal(cuda_dims_elementwise(10, 0, &d), -1);
  assert_int_equal(cuda_dims_elementwise(10, 2048, &d), -1);
  assert_int_equal(cuda_dims_elementwise((int64_t)1 << 42, 256, &d), -1); /* 2^34 blocks */
}

static void test_dims_rows_and_attention(void **state) {
  (void)state;
  CudaLaunchDims d;
  assert_int_equal(cuda_dims_rows(2 * 256, 128, &d), 0);
  assert_int_equal(d.grid[0], 512);
  assert_int_equal(d.block, 128);
  assert_int_equal(cuda_dims_rows(10, 100, &d), -1); /* not a multiple of 32 */
  assert_int_equal(cuda_dims_rows(0, 128, &d), -1);
  /* 4 warps: ceil(T / 4) query blocks, one per head and image */
  assert_int_equal(cuda_dims_attention(2, 17, 6, 128, 1, &d), 0);
  assert_int_equal(d.grid[0], 5);
  assert_int_equal(d.grid[1], 6);
  assert_int_equal(d.grid[2], 2);
  assert_int_equal(d.block, 128);
  assert_int_equal(cuda_dims_attention(70000, 16, 4, 128, 1, &d), -1); /* grid.z <= 65535 */
  assert_int_equal(cuda_dims_attention(2, 16, 4, 48, 1, &d), -1);
  /* the tensor-core kernel: 16 queries a warp, 64 a block of 4 warps */
  assert_int_equal(cuda_dims_attention(2, 1000, 16, 128, 16, &d), 0);
  assert_int_equal(d.grid[0], 16);
  assert_int_equal(cuda_dims_attention(2, 16, 4, 128, 0, &d), -1);
}

static void test_gemm_shape_is_row_major_linear(void **state) {
  (void)state;
  /* y[32, 192] = x[32, 64] @ W[192, 64]^T: D(192 x 32) = op_T(W as 64 x 192) * (x as 64 x 32) */
  CudaGemmShape s;
  cuda_gemm_shape(32, 64, 192, &s);
  assert_int_equal(s.trans_a, 1);
  assert_int_equal(s.trans_b, 0);
  assert_int_equal(s.a_rows, 64);
  assert_int_equal(s.a_cols, 192);
  assert_int_equal(s.a_ld, 64);
  assert_int_equal(s.b_rows, 64);
  assert_int_equal(s.b_cols, 32);
  assert_int_equal(s.b_ld, 64);
  assert_int_equal(s.d_rows, 192);
  assert_int_equal(s.d_cols, 32);
  assert_int_equal(s.d_ld, 192);
}

static void test_pick_image_for_device(void **state) {
  (void)state;
  PlanKernelImage im[6];
  memset(im, 0, sizeof im);
  im[0] = (PlanKernelImage){.slot = 0, .arch = 800};
  im[1] = (PlanKernelImage){.slot = 0, .arch = 900};
  im[2] = (PlanKernelImage){.slot = 1, .arch = 800};
  im[3] = (PlanKernelImage){.slot = 1, .arch = 901};
  im[4] = (PlanKernelImage){.slot = 2, .arch = 860};
  im[5] = (PlanKernelImage){.slot = 2, .arch = 800};
  assert_int_equal(cuda_device_arch(9, 0), 900);
  assert_int_equal(cuda_device_arch(8, 6), 860);
  assert_int_equal(cuda_pick_cubin(im, 6, 0, 900), 1);   /* exact */
  assert_int_equal(cuda_pick_cubin(im, 6, 1, 900), 3);   /* sm_90a on a 9.0 device */
  assert_int_equal(cuda_pick_cubin(im, 6, 1, 1000), -1); /* no sm_100 image: JIT */
  assert_int_equal(cuda_pick_cubin(im, 6, 0, 890), 0);   /* sm_80 runs on 8.9 */
  assert_int_equal(cuda_pick_cubin(im, 6, 2, 890), 4);   /* the newest one that fits */
  assert_int_equal(cuda_pick_cubin(im, 6, 2, 800), 5);
  assert_int_equal(cuda_pick_cubin(im, 6, 0, 750), -1);
  assert_int_equal(cuda_pick_cubin(im, 6, 1, 910), -1);  /* sm_90a never on 9.1; sm_80 neither: major differs */
  PlanKernelImage ptx[2] = {{.slot = 0, .arch = 800}, {.slot = 1, .arch = 901}};
  assert_int_equal(cuda_pick_ptx(ptx, 2, 0, 900), 0);  /* JIT compiles older PTX forward */
  assert_int_equal(cuda_pick_ptx(ptx, 2, 0, 1000), 0);
  assert_int_equal(cuda_pick_ptx(ptx, 2, 0, 750), -1);
  assert_int_equal(cuda_pick_ptx(ptx, 2, 1, 900), 1);
  assert_int_equal(cuda_pick_ptx(ptx, 2, 1, 1000), -1);
  assert_int_equal(cuda_pick_emu(im, 6, 0), -1); /* no emu images here */
}

/* The emulated device's images (ditc --arch emu,sm_80): the emu device takes
 * them and nothing else; a GPU never does, whatever its arch. */
static void test_pick_emu_image(void **state) {
  (void)state;
  PlanKernelImage im[5] = {{.slot = 0, .arch = PLAN_ARCH_EMU}, {.slot = 0, .arch = 800},
                           {.slot = 1, .arch = PLAN_ARCH_EMU}, {.slot = 1, .arch = 800},
                           {.slot = 2, .arch = 800}};
  assert_int_equal(PLAN_ARCH_EMU, 1);
  assert_int_equal(cuda_pick_emu(im, 5, 0), 0);
  assert_int_equal(cuda_pick_emu(im, 5, 1), 2);
  assert_int_equal(cuda_pick_emu(im, 5, 2), -1); /* slot 2 has none */
  assert_int_equal(cuda_pick_emu(im, 5, 3), -1);
  for (uint32_t arch = 0; arch < 2000; arch += 1) { /* 0 and 1 too: arch + 1 == PLAN_ARCH_EMU */
    for (uint32_t s = 0; s < 2; s++) {
      int k = cuda_pick_cubin(im, 5, s, arch);
      if (k >= 0 && im[k].arch == PLAN_ARCH_EMU) fail_msg("cuda_pick_cubin gave the emu image to arch %u", arch);
      k = cuda_pick_ptx(im, 5, s, arch);
      if (k >= 0 && im[k].arch == PLAN_ARCH_EMU) fail_msg("cuda_pick_ptx gave the emu image to arch %u", arch);
    }
  }
  assert_int_equal(cuda_pick_cubin(im, 5, 0, 860), 1);
  PlanKernelImage only[1] = {{.slot = 0, .arch = PLAN_ARCH_EMU}};
  assert_int_equal(cuda_pick_cubin(only, 1, 0, 0), -1);
  assert_int_equal(cuda_pick_ptx(only, 1, 0, 0), -1);
}

static void test_alignment_and_stage_layout(void **state) {
  (void)state;
  assert_int_equal(cuda_ptr_alignment(0), 256);
  assert_int_equal(cuda_ptr_alignment(0x7f0000000000ull + 64), 64);
  assert_int_equal(cuda_ptr_alignment(768), 256);
  assert_int_equal(cuda_ptr_alignment(4), 4);
  assert_int_equal(cuda_ptr_alignment(1), 1);
  CudaStageLayout l;
  cuda_stage_layout(4, 4 * 256, 2 * 256, &l);
  assert_int_equal(l.params, 0);
  assert_int_equal(l.t, 256);
  assert_int_equal(l.y, 512);
  assert_int_equal(l.noise, 768);
  assert_int_equal(l.x, 768 + 4096);
  assert_int_equal(l.bytes, 768 + 4096 + 2048);
  cuda_stage_layout(3, 0, 3 * 5, &l); /* a forward: no noise, odd sizes round up */
  assert_int_equal(l.y, 512);
  assert_int_equal(l.noise, 768);
  assert_int_equal(l.x, 768);
  assert_int_equal(l.bytes, 1024);
}

/* ---- plans and runtimes ---- */

typedef struct Env {
  char dir[64];
  char plan[128], train_plan[128], bf16_plan[128];
} Env;

static int compile(const char *spec, const char *out, const char *a1, const char *a2, const char *a3,
                   const char *a4) {
  const char *argv[] = {DITC_BIN, spec, "-o", out, "--batch", "4", a1, a2, a3, a4, NULL};
  ToolResult r;
  if (run_tool(argv, NULL, &r)) return -1;
  int rc = r.exit_code;
  if (rc) fprintf(stderr, "ditc failed:\n%s\n", r.err);
  tool_result_free(&r);
  return rc;
}

static int setup(void **state) {
  Env *e = calloc(1, sizeof *e);
  strcpy(e->dir, "/tmp/ditc_cudand_XXXXXX");
  if (!mkdtemp(e->dir)) return -1;
  snprintf(e->plan, sizeof e->plan, "%s/tiny.plan", e->dir);
  snprintf(e->train_plan, sizeof e->train_plan, "%s/tiny_train.plan", e->dir);
  snprintf(e->bf16_plan, sizeof e->bf16_plan, "%s/tiny_bf16.plan", e->dir);
  const char *spec = DIT_SOURCE_DIR "/specs/tests/tiny.dit";
  if (compile(spec, e->plan, NULL, NULL, NULL, NULL) ||
      compile(spec, e->train_plan, "--mode", "train", NULL, NULL) ||
      compile(spec, e->bf16_plan, "--dtype", "bf16", NULL, NULL))
    return -1;
  *state = e;
  return 0;
}

static int teardown(void **state) {
  Env *e = *state;
  unlink(e->plan);
  unlink(e->train_plan);
  unlink(e->bf16_plan);
  rmdir(e->dir);
  free(e);
  return 0;
}

static void expect_refusal(const char *plan, int emu, const char *fragment) {
  PlanView pv;
  DitErr err = {0};
  assert_int_equal(plan_load(plan, &pv, &err), DIT_OK);
  DitErr ce = {0};
  assert_int_equal(cuda_plan_check(&pv, emu, &ce), DIT_ERR_UNSUPPORTED);
  if (!strstr(ce.msg, fragment)) fail_msg("message: %s\nwant: %s", ce.msg, fragment);
  plan_view_free(&pv);
}

static void test_plan_check_refuses_what_cuda_cannot_run(void **state) {
  Env *e = *state;
  expect_refusal(e->plan, 0, "the plan has no GPU kernels: compile it with ditc --arch sm_80,sm_90");
  expect_refusal(e->train_plan, 0, "training plans run on the CPU only for now");
  expect_refusal(e->bf16_plan, 0, "the plan has no GPU kernels: compile it with ditc --arch sm_80,sm_90");
  const char *no_emu = "the plan has no emulated-device kernels: compile it with ditc --arch emu (with or "
                       "without sm_XX)";
  expect_refusal(e->plan, 1, no_emu);
  expect_refusal(e->train_plan, 1, "training plans run on the CPU only for now");
  expect_refusal(e->bf16_plan, 1, no_emu);
}

/* specs/tests/tiny.dit compiled with --arch sm_80,sm_90 and --dtype dtype
 * into path, loaded into pv and passing the CUDA checks; skips the test
 * where NVRTC is missing. */
static void gpu_plan(const char *path, const char *dtype, PlanView *pv) {
  if (compile(DIT_SOURCE_DIR "/specs/tests/tiny.dit", path, "--arch", "sm_80,sm_90", "--dtype", dtype)) {
    unlink(path);
    skip(); /* no NVRTC on this machine */
  }
  DitErr err = {0};
  assert_int_equal(plan_load(path, pv, &err), DIT_OK);
  assert_int_equal(cuda_plan_check(pv, 0, &err), DIT_OK);
}

/* A bf16 plan with kernels: it passes; its slots' dtypes are its ops'
 * (adaLN and the attention write bf16, the attention reads it), and a slot
 * whose dtypes disagree with its op's values is refused. */
static void test_bf16_gpu_plan_dtypes(void **state) {
  Env *e = *state;
  char path[160];
  snprintf(path, sizeof path, "%s/tiny_bf16_gpu.plan", e->dir);
  PlanView pv;
  gpu_plan(path, "bf16", &pv);
  PlanKernelSlot *slots = (PlanKernelSlot *)(uintptr_t)pv.cubin.slots;
  int seen = 0;
  for (size_t i = 0; i < pv.n_ops; i++) {
    uint32_t s = pv.cubin.op_slot[i];
    if (pv.ops[i].kind == PLAN_OP_ATTENTION) {
      assert_int_equal(slots[s].dtypes, PLAN_SLOT_OUT_BF16 | PLAN_SLOT_IN_BF16);
      seen |= 1;
    } else if (pv.ops[i].kind == PLAN_OP_LN_MODULATE) {
      assert_int_equal(slots[s].dtypes, PLAN_SLOT_OUT_BF16);
      slots[s].dtypes = 0; /* an fp32 adaLN kernel for a bf16 result */
      DitErr ce = {0};
      assert_int_equal(cuda_plan_check(&pv, 0, &ce), DIT_ERR_UNSUPPORTED);
      if (!strstr(ce.msg, "takes operand dtypes 0, the op's are 1")) fail_msg("message: %s", ce.msg);
      slots[s].dtypes = PLAN_SLOT_OUT_BF16;
      seen |= 2;
    } else if (pv.ops[i].kind == PLAN_OP_UNPATCHIFY) {
      assert_int_equal(slots[s].dtypes, 0);
    }
  }
  assert_int_equal(seen, 3);
  plan_view_free(&pv);
  unlink(path);
}

/* A plan with kernels (ditc --arch sm_80,sm_90, when NVRTC is here): it
 * passes the checks, and every slot has an image for A100, H100 and an
 * sm_86 card (sm_80's cubin), and PTX for a newer GPU. */
static void test_gpu_plan_has_an_image_for_every_device(void **state) {
  Env *e = *state;
  char path[160];
  snprintf(path, sizeof path, "%s/tiny_gpu.plan", e->dir);
  PlanView pv;
  gpu_plan(path, "fp32", &pv);
  expect_refusal(path, 1, "the plan has no emulated-device kernels"); /* sm_XX alone: not for emu */
  assert_non_null(pv.cubin.h);
  assert_non_null(pv.ptx.h);
  int silu = 0;
  for (uint32_t s = 0; s < pv.cubin.h->n_slots; s++) {
    const PlanCudaView *c = &pv.cubin, *p = &pv.ptx;
    assert_true(cuda_pick_cubin(c->images, c->h->n_images, s, 800) >= 0);
    assert_true(cuda_pick_cubin(c->images, c->h->n_images, s, 900) >= 0);
    int k = cuda_pick_cubin(c->images, c->h->n_images, s, 860);
    assert_true(k >= 0 && c->images[k].arch == 800);
    assert_int_equal(cuda_pick_cubin(c->images, c->h->n_images, s, 1000), -1);
    assert_true(cuda_pick_ptx(p->images, p->h->n_images, s, 1000) >= 0);
    silu |= strcmp(plan_string(&pv, c->slots[s].name), "dit::silu_kernel<false>") == 0;
    assert_true(c->slots[s].block_threads >= 32 && c->slots[s].block_threads % 32 == 0);
  }
  assert_true(silu); /* the t_embedder's linear + SiLU needs it after its GEMM */
  for (size_t i = 0; i < pv.n_ops; i++) /* an fp32 plan: GELU and SiLU after a BIAS GEMM, by their own kernels */
    assert_true((pv.ops[i].kind == PLAN_OP_LINEAR && plan_attrs_LINEAR(&pv.ops[i]).act == PLAN_ACT_NONE) ==
                (pv.cubin.op_slot[i] == DIT_PLAN_NONE));
  plan_view_free(&pv);
  /* and on "cuda" it fails for the device here, not for the plan (or opens on a GPU) */
  DitOptions o = {.n_threads = 1, .device = "cuda"};
  DitRuntime *rt = NULL;
  DitError de;
  if (dit_open(path, &o, &rt, &de) == DIT_OK) {
    assert_non_null(strstr(dit_device_name(rt), "cuda:"));
    dit_close(rt);
  } else {
    assert_null(strstr(de.message, "no GPU kernels"));
  }
  unlink(path);
}

static void test_open_cuda_fails_cleanly(void **state) {
  Env *e = *state;
  DitOptions o = {.n_threads = 1, .device = "cuda"};
  DitRuntime *rt = (DitRuntime *)(uintptr_t)1;
  DitError err;
  memset(&err, 0, sizeof err);
  DitStatus st = dit_open(e->plan, &o, &rt, &err);
  assert_null(rt);
  assert_true(st == DIT_ERR_DEVICE || st == DIT_ERR_UNSUPPORTED);
  assert_int_equal(err.status, st);
  if (strncmp(err.message, "device 'cuda': ", 15) != 0) fail_msg("message: %s", err.message);
  /* the reason is one of: no driver, cuInit (no device), a build without the
   * backend, or on a GPU machine the plan's missing kernels */
  assert_true(strstr(err.message, "libcuda.so.1") || strstr(err.message, "cuInit failed") ||
              strstr(err.message, "no CUDA backend") || strstr(err.message, "no GPU kernels") ||
              strstr(err.message, "no CUDA device"));
  /* the same twice: nothing global was left half set up */
  DitError err2;
  assert_int_equal(dit_open(e->plan, &o, &rt, &err2), st);
  assert_string_equal(err.message, err2.message);
  /* a bad plan still reports the plan, not the device */
  assert_int_not_equal(dit_open("/nonexistent.plan", &o, &rt, &err2), DIT_OK);
  assert_non_null(strstr(err2.message, "/nonexistent.plan"));
}

/* Plans for the emulated device (ditc --arch emu, alone and with sm_80, when
 * NVRTC is here): every slot has its emu image, which passes the emu checks;
 * emu alone has no PTX and is refused for a GPU, with sm_80 it is not. */
static void test_emu_plans_pass_the_emu_checks(void **state) {
  Env *e = *state;
  char path[160];
  for (int with_sm = 0; with_sm < 2; with_sm++) {
    snprintf(path, sizeof path, "%s/tiny_emu%d.plan", e->dir, with_sm);
    if (compile(DIT_SOURCE_DIR "/specs/tests/tiny.dit", path, "--arch", with_sm ? "sm_80,emu" : "emu", NULL,
                NULL)) {
      unlink(path);
      skip(); /* no NVRTC on this machine */
    }
    PlanView pv;
    DitErr err = {0};
    assert_int_equal(plan_load(path, &pv, &err), DIT_OK);
    if (cuda_plan_check(&pv, 1, &err) != DIT_OK) fail_msg("%s", err.msg);
    assert_non_null(pv.cubin.h);
    assert_true(with_sm ? pv.ptx.h != NULL : pv.ptx.h == NULL);
    const PlanCudaView *c = &pv.cubin;
    for (uint32_t s = 0; s < c->h->n_slots; s++) {
      int k = cuda_pick_emu(c->images, c->h->n_images, s);
      assert_true(k >= 0);
      assert_int_equal(c->images[k].arch, PLAN_ARCH_EMU);
      k = cuda_pick_cubin(c->images, c->h->n_images, s, 800);
      assert_true(with_sm ? k >= 0 && c->images[k].arch == 800 : k == -1);
    }
    DitErr ge = {0};
    if (with_sm) {
      assert_int_equal(cuda_plan_check(&pv, 0, &ge), DIT_OK);
    } else {
      assert_int_equal(cuda_plan_check(&pv, 0, &ge), DIT_ERR_UNSUPPORTED);
      assert_non_null(strstr(ge.msg, "the plan has kernels for the emulated device only"));
    }
    plan_view_free(&pv);
    unlink(path);
  }
}

/* device "emu": a bad library path fails cleanly, naming the path, twice the
 * same; without a path, the library is found (then the CPU-only plan is
 * refused for its missing emu kernels) or the message says how to get it. */
static void test_open_emu_fails_cleanly(void **state) {
  Env *e = *state;
  const char *bogus = "/nonexistent/dit-emu-test/libdit_emu.so";
  DitOptions o = {.n_threads = 1, .device = "emu", .cuda_driver_lib = bogus};
  DitRuntime *rt = (DitRuntime *)(uintptr_t)1;
  DitError err, err2;
  memset(&err, 0, sizeof err);
  DitStatus st = dit_open(e->plan, &o, &rt, &err);
  assert_null(rt);
  assert_int_not_equal(st, DIT_OK);
  assert_int_equal(err.status, st);
  if (strncmp(err.message, "device 'emu': ", 14) != 0) fail_msg("message: %s", err.message);
  if (!strstr(err.message, "no CUDA backend") && !strstr(err.message, bogus)) fail_msg("message: %s", err.message);
  assert_int_equal(dit_open(e->plan, &o, &rt, &err2), st);
  assert_string_equal(err.message, err2.message);
  o.cuda_driver_lib = NULL; /* the cuBLASLt path alone: the driver follows it */
  o.cublaslt_lib = bogus;
  assert_int_equal(dit_open(e->plan, &o, &rt, &err2), st);
  assert_string_equal(err.message, err2.message);
  o.cublaslt_lib = NULL; /* the default: found, or how to get it */
  st = dit_open(e->plan, &o, &rt, &err);
  assert_null(rt);
  assert_int_not_equal(st, DIT_OK);
  if (!strstr(err.message, "no CUDA backend") && !strstr(err.message, "no emulated-device kernels") &&
      !(strstr(err.message, "libdit_emu.so") && strstr(err.message, "DIT_EMU_LIB")))
    fail_msg("message: %s", err.message);
  /* an unknown device names the four */
  o.device = "gpu";
  assert_int_equal(dit_open(e->plan, &o, &rt, &err), DIT_ERR_ARG);
  assert_non_null(strstr(err.message, "unknown device 'gpu' (expected cpu, cuda, emu or auto)"));
  /* a bogus driver for "cuda" is named too */
  o.device = "cuda";
  o.cuda_driver_lib = bogus;
  assert_int_not_equal(dit_open(e->plan, &o, &rt, &err), DIT_OK);
  if (!strstr(err.message, "no CUDA backend") && !strstr(err.message, bogus)) fail_msg("message: %s", err.message);
}

/* Random weights of moderate size, the same for every runtime given the same seed. */
static void random_weights(DitRuntime *rt, uint64_t seed) {
  int64_t nf;
  float *w = dit_weights_flat(rt, &nf);
  uint64_t s = seed;
  for (int64_t i = 0; i < nf; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    w[i] = ((float)(s >> 40) / (float)(1 << 24) - 0.5f) * 0.2f;
  }
  dit_weights_set(rt);
}

static void test_auto_falls_back_and_poison_changes_nothing(void **state) {
  Env *e = *state;
  DitOptions oa = {.n_threads = 2, .device = "auto"}, oc = {.n_threads = 2, .device = "cpu"};
  DitRuntime *ra, *rc;
  DitError err;
  assert_int_equal(dit_open(e->plan, &oa, &ra, &err), DIT_OK);
  assert_int_equal(dit_open(e->plan, &oc, &rc, &err), DIT_OK);
  const char *name = dit_device_name(ra);
  if (strcmp(name, "cpu") == 0) /* the reason for the notice of the CLI */
    assert_non_null(strstr(dit_last_error(ra), "no usable GPU: "));
  assert_string_equal(dit_device_name(rc), "cpu");
  random_weights(ra, 7);
  random_weights(rc, 7);
  const DitModelInfo *mi = dit_model_info(rc);
  int64_t xs = mi->in_channels * mi->latent_size * mi->latent_size;
  int64_t os = mi->out_channels * mi->latent_size * mi->latent_size;
  float x[3 * 4 * 8 * 8], o1[3 * 8 * 8 * 8], o2[3 * 8 * 8 * 8], o3[3 * 8 * 8 * 8];
  assert_true((size_t)(3 * xs) <= sizeof x / sizeof x[0] && (size_t)(3 * os) <= sizeof o1 / sizeof o1[0]);
  dit_randn_stream(3, 0, x, 3 * xs);
  int64_t t[3] = {0, 500, 999}, y[3] = {1, 10, 4};
  assert_int_equal(dit_forward(rc, 3, x, t, y, o1), DIT_OK);
  assert_int_equal(dit_forward(ra, 3, x, t, y, o3), DIT_OK);
  if (strcmp(name, "cpu") == 0) assert_memory_equal(o1, o3, sizeof(float) * (size_t)(3 * os));

  /* the debug hooks: the output value is what dit_forward returned ... */
  size_t n_fwd = dit_debug_num_forward_ops(rc);
  assert_true(n_fwd > 0 && n_fwd < dit_debug_num_ops(rc));
  uint32_t kind, out, out2;
  assert_int_equal(dit_debug_op(rc, n_fwd - 1, &kind, &out, &out2), DIT_OK);
  assert_int_equal(kind, PLAN_OP_UNPATCHIFY);
  assert_int_equal(dit_debug_value_bytes(rc, out), (uint64_t)(3 * os) * sizeof(float));
  float *v = malloc(dit_debug_value_bytes(rc, out));
  assert_int_equal(dit_debug_read_value(rc, out, v), DIT_OK);
  assert_memory_equal(v, o1, sizeof(float) * (size_t)(3 * os));
  /* ... poison makes it NaN ... */
  assert_int_equal(dit_debug_poison(rc), DIT_OK);
  assert_int_equal(dit_debug_read_value(rc, out, v), DIT_OK);
  assert_true(isnan(v[0]) && isnan(v[3 * os - 1]));
  /* ... and a forward over a poisoned arena reads nothing it did not write */
  assert_int_equal(dit_forward(rc, 3, x, t, y, o2), DIT_OK);
  assert_memory_equal(o1, o2, sizeof(float) * (size_t)(3 * os));
  for (size_t i = 0; i < n_fwd; i++) {
    assert_int_equal(dit_debug_op(rc, i, &kind, &out, &out2), DIT_OK);
    uint64_t bytes = dit_debug_value_bytes(rc, out);
    float *w = malloc(bytes);
    assert_int_equal(dit_debug_read_value(rc, out, w), DIT_OK);
    for (uint64_t k = 0; k < bytes / sizeof(float); k++)
      if (isnan(w[k])) fail_msg("op %zu (kind %u): NaN at %llu after a poisoned forward", i, kind, (unsigned long long)k);
    free(w);
  }
  /* a weight reads back as set, and a bad id is refused */
  assert_int_equal(dit_debug_op(rc, 0, &kind, &out, &out2), DIT_OK);
  assert_int_equal(dit_debug_read_value(rc, 0xFFFFFFF0u, v), DIT_ERR_ARG);
  assert_int_equal(dit_debug_value_bytes(rc, 0xFFFFFFF0u), 0);
  assert_int_equal(dit_debug_op(rc, dit_debug_num_ops(rc), &kind, &out, &out2), DIT_ERR_ARG);
  free(v);
  dit_close(ra);
  dit_close(rc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dims_elementwise_covers_every_element),
      cmocka_unit_test(test_dims_rows_and_attention),
      cmocka_unit_test(test_gemm_shape_is_row_major_linear),
      cmocka_unit_test(test_pick_image_for_device),
      cmocka_unit_test(test_pick_emu_image),
      cmocka_unit_test(test_alignment_and_stage_layout),
      cmocka_unit_test(test_plan_check_refuses_what_cuda_cannot_run),
      cmocka_unit_test(test_gpu_plan_has_an_image_for_every_device),
      cmocka_unit_test(test_bf16_gpu_plan_dtypes),
      cmocka_unit_test(test_open_cuda_fails_cleanly),
      cmocka_unit_test(test_emu_plans_pass_the_emu_checks),
      cmocka_unit_test(test_open_emu_fails_cleanly),
      cmocka_unit_test(test_auto_falls_back_and_poison_changes_nothing),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
