/* cpu_conv.c: the ops of the convolutional models (the VAE): conv2d through
 * im2col tiles and OpenBLAS sgemm (a 1x1 convolution without stride,
 * padding or upsampling is the GEMM itself), the token transposes around
 * the mid-block attention, and the posterior sample of the encoder.
 *
 * conv2d's work is split into fixed tiles of CPU_CONV_TILE_PIXELS output
 * pixels of one image (pixels in row-major order across output rows), one
 * task each: the task gathers its im2col block [Cin*k*k, tile] into its
 * thread's scratch, with the nearest upsampling and the zero padding folded
 * into the gather, then one sgemm writes alpha * W [Cout, Cin*k*k] @ block
 * into the output's [Cout, tile] columns, and the bias is added while they
 * are in cache. Every output element is computed by one sgemm call whose
 * operands do not depend on the thread count, so results are bit-identical
 * for any number of threads. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "cpu_math.h"
#include "cpu_ops.h"

/* The fast case: a plain GEMM over the image's pixels, nothing to gather. */
static int conv_is_gemm(const CpuConvShape *s) {
  return s->k == 1 && s->stride == 1 && s->up == 1 && !(s->pad[0] | s->pad[1] | s->pad[2] | s->pad[3]);
}

int64_t cpu_conv2d_scratch(const CpuConvShape *s) {
  return conv_is_gemm(s) ? 0 : s->Cin * s->k * s->k * CPU_CONV_TILE_PIXELS;
}

/* One row of the im2col block: dst[j] = x'[oy*stride + ky - pad_top][ox*stride + kx - pad_left]
 * for the tile's pixels p0 + j, j < np, where x' is the plane upsampled by up
 * and 0 outside it. plane: one input channel [H, W]. */
DIT_HOT static void gather_row(const CpuConvShape *s, const float *plane, int64_t ky, int64_t kx, int64_t p0,
                               int64_t np, float *dst) {
  const int64_t st = s->stride, sh = s->up == 2, hu = s->H * s->up, wu = s->W * s->up;
  /* ox range whose column lies inside the upsampled plane: lo <= ox < hi */
  int64_t off = kx - s->pad[1]; /* px = ox * st + off */
  int64_t lo = off >= 0 ? 0 : (-off + st - 1) / st;
  int64_t hi = wu - off <= 0 ? 0 : (wu - off + st - 1) / st;
  int64_t j = 0;
  while (j < np) {
    int64_t p = p0 + j, oy = p / s->Wo, ox0 = p % s->Wo;
    int64_t run = s->Wo - ox0 < np - j ? s->Wo - ox0 : np - j; /* pixels left in this output row */
    float *d = dst + j;
    int64_t py = oy * st + ky - s->pad[0];
    if (py < 0 || py >= hu) {
      memset(d, 0, (size_t)run * sizeof(float));
    } else {
      const float *row = plane + (py >> sh) * s->W; // [W]
      int64_t a = lo > ox0 ? lo : ox0, b = hi < ox0 + run ? hi : ox0 + run; /* valid ox in [a, b) */
      if (a > b) a = b;
      for (int64_t ox = ox0; ox < a; ox++) d[ox - ox0] = 0.0f;
      if (st == 1 && !sh) {
        memcpy(d + (a - ox0), row + a + off, (size_t)(b - a) * sizeof(float));
      } else {
        for (int64_t ox = a; ox < b; ox++) d[ox - ox0] = row[(ox * st + off) >> sh];
      }
      for (int64_t ox = b; ox < ox0 + run; ox++) d[ox - ox0] = 0.0f;
    }
    j += run;
  }
}

/* rows [Cout, np] (row stride ld) += b[co] per row */
DIT_HOT static void add_bias(float *y, int64_t Cout, int64_t np, int64_t ld, const float *b) {
  for (int64_t co = 0; co < Cout; co++) {
    float *r = y + co * ld, bias = b[co];
#pragma omp simd
    for (int64_t j = 0; j < np; j++) r[j] += bias;
  }
}

void cpu_conv2d(const CpuCtx *c, const float *x, const CpuConvShape *s, const float *w, const float *b,
                double alpha, float *out) {
  const int64_t P = s->Ho * s->Wo, tile = CPU_CONV_TILE_PIXELS, n_pt = (P + tile - 1) / tile;
  const int64_t K = s->Cin * s->k * s->k, kk = s->k * s->k;
  const int gemm = conv_is_gemm(s);
  const float fa = (float)alpha;
#pragma omp parallel for num_threads(c->n_threads) schedule(dynamic, 1)
  for (int64_t task = 0; task < s->N * n_pt; task++) {
    int64_t n = task / n_pt, p0 = (task % n_pt) * tile, np = P - p0 < tile ? P - p0 : tile;
    const float *xn = x + n * s->Cin * s->H * s->W; // [Cin, H, W]
    float *y = out + n * s->Cout * P + p0;          // [Cout, np] within [Cout, P]
    const float *B = xn + p0;                       // [K, np], row stride ldb
    int64_t ldb = P;
    if (!gemm) {
      float *col = c->scratch + (int64_t)omp_get_thread_num() * c->scratch_per_thread; // [K, np]
      for (int64_t r = 0; r < K; r++) /* r = (ci * k + ky) * k + kx, the weight's order */
        gather_row(s, xn + (r / kk) * s->H * s->W, (r % kk) / s->k, r % s->k, p0, np, col + r * np);
      B = col;
      ldb = np;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)s->Cout, (int)np, (int)K, fa, w, (int)K, B,
                (int)ldb, 0.0f, y, (int)P);
    add_bias(y, s->Cout, np, P, b);
  }
}

/* Transposes in 32 x 32 blocks so that reads and writes both stay in cache lines. */
enum { TBLOCK = 32 };

void cpu_to_tokens(const CpuCtx *c, const float *x, int64_t N, int64_t C, int64_t hw, float *out) {
  const int64_t nb_p = (hw + TBLOCK - 1) / TBLOCK, nb_c = (C + TBLOCK - 1) / TBLOCK;
#pragma omp parallel for num_threads(c->n_threads) schedule(static)
  for (int64_t task = 0; task < N * nb_p * nb_c; task++) {
    int64_t n = task / (nb_p * nb_c), bp = (task / nb_c) % nb_p, bc = task % nb_c;
    const float *xn = x + n * C * hw; // [C, hw]
    float *on = out + n * hw * C;     // [hw, C]
    int64_t p1 = (bp + 1) * TBLOCK < hw ? (bp + 1) * TBLOCK : hw, c1 = (bc + 1) * TBLOCK < C ? (bc + 1) * TBLOCK : C;
    for (int64_t p = bp * TBLOCK; p < p1; p++)
      for (int64_t ch = bc * TBLOCK; ch < c1; ch++) on[p * C + ch] = xn[ch * hw + p];
  }
}

void cpu_from_tokens(const CpuCtx *c, const float *o, const float *res, int64_t N, int64_t C, int64_t hw,
                     float *out) {
  const int64_t nb_p = (hw + TBLOCK - 1) / TBLOCK, nb_c = (C + TBLOCK - 1) / TBLOCK;
#pragma omp parallel for num_threads(c->n_threads) schedule(static)
  for (int64_t task = 0; task < N * nb_c * nb_p; task++) {
    int64_t n = task / (nb_c * nb_p), bc = (task / nb_p) % nb_c, bp = task % nb_p;
    const float *on = o + n * hw * C;   // [hw, C]
    const float *rn = res + n * C * hw; // [C, hw]
    float *yn = out + n * C * hw;       // [C, hw]
    int64_t p1 = (bp + 1) * TBLOCK < hw ? (bp + 1) * TBLOCK : hw, c1 = (bc + 1) * TBLOCK < C ? (bc + 1) * TBLOCK : C;
    for (int64_t ch = bc * TBLOCK; ch < c1; ch++)
      for (int64_t p = bp * TBLOCK; p < p1; p++) yn[ch * hw + p] = rn[ch * hw + p] + on[p * C + ch];
  }
}

void cpu_latent_sample(const CpuCtx *c, const float *moments, const float *noise, int64_t N, int64_t C,
                       int64_t hw, double scale, float *out) {
#pragma omp parallel for num_threads(c->n_threads) schedule(static)
  for (int64_t nc = 0; nc < N * C; nc++) {
    int64_t n = nc / C, ch = nc % C;
    const float *mean = moments + (n * 2 * C + ch) * hw, *logvar = mean + C * hw; // [hw] each
    const float *e = noise + nc * hw;
    float *y = out + nc * hw;
    for (int64_t i = 0; i < hw; i++) {
      double lv = logvar[i] < -30.0f ? -30.0 : logvar[i] > 20.0f ? 20.0 : (double)logvar[i];
      float sd = (float)exp(0.5 * lv);
      y[i] = (float)(scale * (double)(mean[i] + sd * e[i]));
    }
  }
}
