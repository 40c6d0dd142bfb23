/* test_emu_vae_knobs.c: every knob candidate of the VAE's kernels
 * (compiler/kfam_vae.c, and attention_simt at head dim 512,
 * kfam_attention.c) on the emulated device against float64 references, at
 * odd sizes that leave every tile partial: conv2d_kernel's eight tiles for
 * 1x1 and 3x3 (stride 1 and 2, the per-side padding, the fused x2
 * upsampling), group_norm_kernel's four block sizes with and without SiLU,
 * attention_simt_kernel<512, ...>'s six. test_emu_vae covers the defaults
 * inside whole plans. Error: ||out - ref|| / ||ref|| at most 1e-5. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu_test.h"
#include "kernel_abi.h"

static int failures;
static CUmodule mod;
static CUstream stream;

static const int TILES[][3] = {{64, 64, 16}, {32, 64, 16}, {64, 32, 16}, {128, 64, 8},
                               {64, 128, 8}, {32, 32, 16}, {128, 32, 8}, {64, 64, 8}}; /* kfam_vae.c */
enum { N_TILES = 8 };
static const int GN_THREADS[] = {256, 128, 512, 1024};
static const int ATTN[][2] = {{4, 8}, {2, 4}, {2, 8}, {4, 4}, {8, 4}, {8, 8}}; /* WARPS, BLOCK_N at HD 512 */
enum { N_ATTN = 6, HD = 512 };

static void conv_name(int ks, const int *t, char *buf, size_t n) {
  snprintf(buf, n, "_ZN3dit13conv2d_kernelILi%dELi%dELi%dELi%dEEEv13DitConv2dArgs", ks, t[0], t[1], t[2]);
}
static void gn_name(int threads, int silu, char *buf, size_t n) {
  snprintf(buf, n, "_ZN3dit17group_norm_kernelILi%dELb%dEEEv16DitGroupNormArgs", threads, silu);
}
static void attn_name(const int *k, char *buf, size_t n) {
  snprintf(buf, n, "_ZN3dit21attention_simt_kernelILi%dELi%dELi%dELb0EEEv16DitAttentionArgs", HD, k[0], k[1]);
}

static int setup(void) {
  size_t cap = 64 * 1024, len = 0;
  char *tu = malloc(cap), name[160];
  len += (size_t)snprintf(tu + len, cap - len, "#include \"vae.cuh\"\n#include \"attention_simt.cuh\"\nDIT_EMU_KERNELS_BEGIN\n");
  for (int ks = 1; ks <= 3; ks += 2)
    for (int i = 0; i < N_TILES; i++) {
      conv_name(ks, TILES[i], name, sizeof name);
      len += (size_t)snprintf(tu + len, cap - len, "DIT_EMU_KERNEL(\"%s\", dit::conv2d_kernel<%d, %d, %d, %d>)\n", name,
                              ks, TILES[i][0], TILES[i][1], TILES[i][2]);
    }
  for (int i = 0; i < 4; i++)
    for (int s = 0; s < 2; s++) {
      gn_name(GN_THREADS[i], s, name, sizeof name);
      len += (size_t)snprintf(tu + len, cap - len, "DIT_EMU_KERNEL(\"%s\", dit::group_norm_kernel<%d, %s>)\n", name,
                              GN_THREADS[i], s ? "true" : "false");
    }
  for (int i = 0; i < N_ATTN; i++) {
    attn_name(ATTN[i], name, sizeof name);
    len += (size_t)snprintf(tu + len, cap - len, "DIT_EMU_KERNEL(\"%s\", dit::attention_simt_kernel<%d, %d, %d, false>)\n",
                            name, HD, ATTN[i][0], ATTN[i][1]);
  }
  snprintf(tu + len, cap - len, "DIT_EMU_KERNELS_END\n");
  static const char *const headers[] = {"vae.cuh", "attention_simt.cuh", "bf16.cuh", "common.cuh", "kernel_abi.h"};
  char *img = emu_test_image(headers, 5, tu);
  free(tu);
  if (!img) {
    printf("FAIL: cannot read the headers of kernels/ under %s\n", DIT_SOURCE_DIR);
    return -1;
  }
  int rc = emu_test_open(img, &stream, &mod);
  free(img);
  return rc;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float uniform(float lo, float hi) {
  rng = rng * 6364136223846793005ull + 1442695040888963407ull;
  return lo + (hi - lo) * (float)((double)(rng >> 11) / 9007199254740992.0);
}

static double rel_l2(const double *ref, const float *got, size_t n) {
  double d = 0, r = 0;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(got[i])) return INFINITY;
    d += (got[i] - ref[i]) * (got[i] - ref[i]);
    r += ref[i] * ref[i];
  }
  return sqrt(d / (r > 0 ? r : 1e-300));
}

static CUdeviceptr upload(const float *h, size_t n) {
  CUdeviceptr d = 0;
  if (cuMemAlloc(&d, n * sizeof(float)) != CUDA_SUCCESS) return 0;
  if (cuMemcpyHtoDAsync(d, h, n * sizeof(float), stream) != CUDA_SUCCESS ||
      cuStreamSynchronize(stream) != CUDA_SUCCESS)
    failures++;
  return d;
}

/* Launches f with one struct argument and copies n floats of out back. */
static int launch(const char *name, unsigned gx, unsigned gy, unsigned gz, unsigned block, void *arg,
                  CUdeviceptr out, float *host, size_t n) {
  CUfunction f;
  CU(cuModuleGetFunction(&f, mod, name));
  CU(cuMemsetD8Async(out, 0xff, n * sizeof(float), stream)); /* NaN where the kernel writes nothing */
  void *args[] = {arg};
  CU(cuLaunchKernel(f, gx, gy, gz, block, 1, 1, 0, stream, args, NULL));
  CU(cuMemcpyDtoHAsync(host, out, n * sizeof(float), stream));
  CU(cuStreamSynchronize(stream));
  return 0;
}

/* One convolution shape, every tile. */
static void run_conv(int ks, int stride, const int pad[4], int up) {
  const int N = 2, Cin = 5, H = 9, W = 7, Cout = 70;
  const int Ho = (H * up + pad[0] + pad[2] - ks) / stride + 1, Wo = (W * up + pad[1] + pad[3] - ks) / stride + 1;
  const size_t nx = (size_t)N * Cin * H * W, nw = (size_t)Cout * Cin * ks * ks, no = (size_t)N * Cout * Ho * Wo;
  float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc(Cout * 4), *o = malloc(no * 4);
  double *ref = malloc(no * 8);
  const float alpha = 0.75f;
  for (size_t i = 0; i < nx; i++) x[i] = uniform(-1, 2);
  for (size_t i = 0; i < nw; i++) w[i] = uniform(-0.5f, 0.5f);
  for (int i = 0; i < Cout; i++) b[i] = uniform(-1, 1);
  for (int n = 0; n < N; n++)
    for (int co = 0; co < Cout; co++)
      for (int oy = 0; oy < Ho; oy++)
        for (int ox = 0; ox < Wo; ox++) {
          double s = 0;
          for (int ci = 0; ci < Cin; ci++)
            for (int ky = 0; ky < ks; ky++)
              for (int kx = 0; kx < ks; kx++) {
                int iy = oy * stride + ky - pad[0], ix = ox * stride + kx - pad[1];
                if (iy < 0 || iy >= H * up || ix < 0 || ix >= W * up) continue;
                s += (double)w[((co * Cin + ci) * ks + ky) * ks + kx] * x[((n * Cin + ci) * H + iy / up) * W + ix / up];
              }
          ref[((size_t)(n * Cout + co) * Ho + oy) * Wo + ox] = alpha * s + b[co];
        }
  CUdeviceptr dx = upload(x, nx), dw = upload(w, nw), db = upload(b, Cout), dout = upload(o, no);
  for (int t = 0; t < N_TILES; t++) {
    char name[160];
    conv_name(ks, TILES[t], name, sizeof name);
    DitConv2dArgs a = {dx, dw, db, dout, N, Cin, H, W, Cout, Ho, Wo, stride, pad[0], pad[1], up, alpha, 0};
    long long P = (long long)N * Ho * Wo;
    if (launch(name, (unsigned)((P + TILES[t][1] - 1) / TILES[t][1]), (unsigned)((Cout + TILES[t][0] - 1) / TILES[t][0]),
               1, (unsigned)(TILES[t][0] * TILES[t][1] / 16), &a, dout, o, no))
      continue;
    double rel = rel_l2(ref, o, no);
    printf("conv2d<%d, %3d, %3d, %2d> stride %d pad %d%d%d%d up %d: rel %9.2e %s\n", ks, TILES[t][0], TILES[t][1],
           TILES[t][2], stride, pad[0], pad[1], pad[2], pad[3], up, rel, rel <= 1e-5 ? "ok" : "FAIL");
    CHECK(rel <= 1e-5, "conv2d tile %d", t);
  }
  cuMemFree(dx), cuMemFree(dw), cuMemFree(db), cuMemFree(dout);
  free(x), free(w), free(b), free(o), free(ref);
}

static void run_group_norm(void) {
  const int N = 2, C = 12, G = 4, hw = 37, cg = C / G;
  const size_t n = (size_t)N * C * hw;
  float *x = malloc(n * 4), *o = malloc(n * 4), gamma[12], beta[12];
  double *ref = malloc(n * 8);
  for (size_t i = 0; i < n; i++) x[i] = 3.0f + uniform(-1, 1);
  for (int c = 0; c < C; c++) gamma[c] = uniform(0.5f, 1.5f), beta[c] = uniform(-0.5f, 0.5f);
  CUdeviceptr dx = upload(x, n), dg = upload(gamma, C), db = upload(beta, C), dout = upload(o, n);
  for (int silu = 0; silu < 2; silu++) {
    for (int g = 0; g < N * G; g++) {
      const float *v = x + (size_t)g * cg * hw;
      double s = 0, sq = 0;
      for (int i = 0; i < cg * hw; i++) s += v[i];
      double mean = s / (cg * hw);
      for (int i = 0; i < cg * hw; i++) sq += (v[i] - mean) * (v[i] - mean);
      double rstd = 1.0 / sqrt(sq / (cg * hw) + 1e-6);
      for (int i = 0; i < cg * hw; i++) {
        int c = (g % G) * cg + i / hw;
        double y = (v[i] - mean) * rstd * gamma[c] + beta[c];
        ref[(size_t)g * cg * hw + i] = silu ? y / (1.0 + exp(-y)) : y;
      }
    }
    for (int t = 0; t < 4; t++) {
      char name[160];
      gn_name(GN_THREADS[t], silu, name, sizeof name);
      DitGroupNormArgs a = {dx, dg, db, dout, C, hw, G, 1e-6f, 0};
      if (launch(name, G, N, 1, (unsigned)GN_THREADS[t], &a, dout, o, n)) continue;
      double rel = rel_l2(ref, o, n);
      printf("group_norm<%4d, %d>: rel %9.2e %s\n", GN_THREADS[t], silu, rel, rel <= 1e-5 ? "ok" : "FAIL");
      CHECK(rel <= 1e-5, "group_norm %d", t);
    }
  }
  cuMemFree(dx), cuMemFree(dg), cuMemFree(db), cuMemFree(dout);
  free(x), free(o), free(ref);
}

static void run_attention(void) {
  const int T = 37; /* one head of HD: qkv [1, T, 3 HD] -> out [1, T, HD] */
  const size_t nq = (size_t)T * 3 * HD, no = (size_t)T * HD;
  float *qkv = malloc(nq * 4), *o = malloc(no * 4);
  double *ref = calloc(no, 8), *p = malloc((size_t)T * 8);
  const double scale = 1.0 / sqrt((double)HD);
  for (size_t i = 0; i < nq; i++) qkv[i] = uniform(-1, 1) + (i % (3 * HD) < HD ? 0.2f : 0.0f);
  for (int q = 0; q < T; q++) {
    double m = -INFINITY, l = 0;
    for (int k = 0; k < T; k++) {
      double s = 0;
      for (int e = 0; e < HD; e++) s += (double)qkv[(size_t)q * 3 * HD + e] * qkv[(size_t)k * 3 * HD + HD + e];
      p[k] = s * (float)scale;
      if (p[k] > m) m = p[k];
    }
    for (int k = 0; k < T; k++) l += p[k] = exp(p[k] - m);
    for (int k = 0; k < T; k++)
      for (int e = 0; e < HD; e++) ref[(size_t)q * HD + e] += p[k] / l * qkv[(size_t)k * 3 * HD + 2 * HD + e];
  }
  CUdeviceptr dq = upload(qkv, nq), dout = upload(o, no);
  for (int i = 0; i < N_ATTN; i++) {
    char name[160];
    attn_name(ATTN[i], name, sizeof name);
    DitAttentionArgs a = {dq, dout, T, 1, (float)scale, 0};
    if (launch(name, (unsigned)((T + ATTN[i][0] - 1) / ATTN[i][0]), 1, 1, 32u * (unsigned)ATTN[i][0], &a, dout, o, no))
      continue;
    double rel = rel_l2(ref, o, no);
    printf("attention_simt<%d, %d, %d>: rel %9.2e %s\n", HD, ATTN[i][0], ATTN[i][1], rel, rel <= 1e-5 ? "ok" : "FAIL");
    CHECK(rel <= 1e-5, "attention %d", i);
  }
  cuMemFree(dq), cuMemFree(dout);
  free(qkv), free(o), free(ref), free(p);
}

int main(void) {
  if (setup()) return 1;
  static const int pad1[4] = {1, 1, 1, 1}, pad0[4] = {0, 0, 0, 0}, pad_down[4] = {0, 0, 1, 1};
  run_conv(3, 1, pad1, 1);
  run_conv(3, 2, pad_down, 1); /* the encoder's downsampler */
  run_conv(3, 1, pad1, 2);     /* the decoder's upsampler */
  run_conv(1, 1, pad0, 1);
  run_group_norm();
  run_attention();
  cuModuleUnload(mod);
  cuStreamDestroy(stream);
  printf("%d failures\n", failures);
  return failures ? 1 : 0;
}
