/* bf16.h: bf16 numbers on the host, as 16-bit patterns (the top half of a
 * float32): widening is exact; narrowing rounds to nearest, ties to even,
 * keeps NaN a (quiet) NaN and overflows to infinity, exactly as
 * kernels/bf16.cuh stores them on the device. Header-only. */
#ifndef DIT_RUNTIME_UTIL_BF16_H
#define DIT_RUNTIME_UTIL_BF16_H

#include <stdint.h>
#include <string.h>

static inline uint16_t dit_bf16_from_float(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u | 0x00400000u) >> 16);
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static inline float dit_bf16_to_float(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

#endif
