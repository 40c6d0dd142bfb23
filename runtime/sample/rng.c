/* rng.c: Philox4x32-10 (Salmon et al., SC'11) and Box-Muller (see rng.h). */
#include "rng.h"

#include <math.h>

static void philox_rounds(uint32_t c[4], uint32_t k0, uint32_t k1) {
  for (int r = 0; r < 10; r++) {
    uint64_t p0 = (uint64_t)0xD2511F53u * c[0], p1 = (uint64_t)0xCD9E8D57u * c[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    uint32_t n0 = hi1 ^ c[1] ^ k0, n2 = hi0 ^ c[3] ^ k1;
    c[0] = n0;
    c[1] = lo1;
    c[2] = n2;
    c[3] = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
}

void dit_philox(uint64_t seed, uint64_t stream, uint64_t counter, uint32_t out[4]) {
  out[0] = (uint32_t)counter;
  out[1] = (uint32_t)(counter >> 32);
  out[2] = (uint32_t)stream;
  out[3] = (uint32_t)(stream >> 32);
  philox_rounds(out, (uint32_t)seed, (uint32_t)(seed >> 32));
}

void dit_randn(uint64_t seed, uint64_t stream, float *out, int64_t n, int n_threads) {
  const double two_pi = 6.283185307179586476925286766559;
  int64_t blocks = (n + 3) / 4;
#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (int64_t q = 0; q < blocks; q++) {
    uint32_t r[4];
    dit_philox(seed, stream, (uint64_t)q, r);
    double z[4];
    for (int h = 0; h < 2; h++) {
      double u1 = ((double)r[2 * h] + 1.0) / 4294967296.0; /* (0, 1]: log is finite */
      double u2 = (double)r[2 * h + 1] / 4294967296.0;
      double rad = sqrt(-2.0 * log(u1));
      z[2 * h] = rad * cos(two_pi * u2);
      z[2 * h + 1] = rad * sin(two_pi * u2);
    }
    for (int j = 0; j < 4 && 4 * q + j < n; j++) out[4 * q + j] = (float)z[j];
  }
}
