/* test_dist.c: the data-parallel communicator (runtime/train/dist.h) on two
 * MPI ranks, run by CTest as `mpiexec -n 2 test_dist`: ranks and size; f32
 * and f64 all-reduce of rank-dependent values against the sum computed here
 * from both ranks' inputs (each rank regenerates the other's), bit for bit
 * and identical on both ranks, for lengths from 0 to past two reduction
 * rounds; broadcast from either root; any_failed; argument errors.
 * Every test does all its collectives before it asserts, and agrees on the
 * verdict through dist_any_failed, so that a failure on one rank cannot leave
 * the other waiting in a collective. Exit 77 (skip) in a build without MPI. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "train/dist.h"

/* dist_mpi.c's round: 16 MiB, i.e. this many elements per round. */
#define ROUND_F32 ((int64_t)4 << 20)
#define ROUND_F64 ((int64_t)2 << 20)

static uint64_t mix(uint64_t x) { /* splitmix64 finaliser */
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/* Element i of rank r's input for a buffer of length n: signed, with
 * exponents over 2^-8..2^8 so that the sums round. */
static double value(int r, int64_t n, int64_t i) {
  uint64_t h = mix(mix((uint64_t)r * 1000003u + (uint64_t)n) ^ (uint64_t)i);
  double m = (double)(h >> 11) / 9007199254740992.0 * 2.0 - 1.0; /* [-1, 1) */
  int e = (int)((h >> 3) % 17) - 8;
  return m * (double)((int64_t)1 << (e + 8)) / 256.0;
}

static uint64_t fnv1a(const void *p, size_t bytes) {
  const unsigned char *b = p;
  uint64_t h = 0xCBF29CE484222325ull;
  for (size_t i = 0; i < bytes; i++) h = (h ^ b[i]) * 0x100000001B3ull;
  return h;
}

/* 1 on every rank when some rank passed bad != 0 (or the vote failed). */
static int anyone(Dist *d, int bad) {
  int any = 1;
  DitErr err = {0};
  if (dist_any_failed(d, bad, &any, &err) != DIT_OK) {
    print_error("dist_any_failed: %s\n", err.msg);
    return 1;
  }
  return any;
}

/* 1 when rank 0's hash differs from this rank's (every rank calls it). */
static int hash_differs(Dist *d, uint64_t h) {
  uint64_t h0 = h;
  DitErr err = {0};
  if (dist_bcast(d, &h0, sizeof h0, 0, &err) != DIT_OK) {
    print_error("dist_bcast: %s\n", err.msg);
    return 1;
  }
  return h0 != h;
}

static void test_dist_rank_size(void **state) {
  Dist *d = *state;
  DitErr err = {0};
  int bad = 0;
  bad |= dist_size(d) != 2 || dist_rank(d) < 0 || dist_rank(d) > 1 || strcmp(dist_backend(d), "mpi") != 0;
  for (int root = 0; root < 2; root++) { /* the ranks are distinct: root's value arrives from root */
    int v = dist_rank(d) * 10 + 1;
    bad |= dist_bcast(d, &v, sizeof v, root, &err) != DIT_OK || v != root * 10 + 1;
  }
  bad |= dist_barrier(d, &err) != DIT_OK;
  assert_int_equal(anyone(d, bad), 0);
}

static void check_f32(Dist *d, int64_t n, int *bad) {
  float *x = malloc((size_t)(n ? n : 1) * sizeof(float)), *want = malloc((size_t)(n ? n : 1) * sizeof(float));
  DitErr err = {0};
  if (!x || !want) {
    *bad = 1;
    goto out;
  }
  for (int64_t i = 0; i < n; i++) {
    x[i] = (float)value(dist_rank(d), n, i);
    want[i] = (float)value(0, n, i) + (float)value(1, n, i); /* rank order, in float */
  }
  if (dist_allreduce_sum_f32(d, x, n, &err) != DIT_OK) {
    print_error("rank %d: %s\n", dist_rank(d), err.msg);
    *bad = 1;
  }
  int64_t wrong = 0, first = -1;
  for (int64_t i = 0; i < n; i++)
    if (memcmp(&x[i], &want[i], sizeof(float)) != 0 && wrong++ == 0) first = i;
  if (wrong) {
    print_error("rank %d, f32 n %lld: %lld elements differ, first [%lld] %.9g want %.9g\n", dist_rank(d),
                (long long)n, (long long)wrong, (long long)first, (double)x[first], (double)want[first]);
    *bad = 1;
  }
  if (hash_differs(d, fnv1a(x, (size_t)n * sizeof(float)))) {
    print_error("rank %d, f32 n %lld: result differs from rank 0's\n", dist_rank(d), (long long)n);
    *bad = 1;
  }
out:
  free(x);
  free(want);
}

static void check_f64(Dist *d, int64_t n, int *bad) {
  double *x = malloc((size_t)(n ? n : 1) * sizeof(double)), *want = malloc((size_t)(n ? n : 1) * sizeof(double));
  DitErr err = {0};
  if (!x || !want) {
    *bad = 1;
    goto out;
  }
  for (int64_t i = 0; i < n; i++) {
    x[i] = value(dist_rank(d), n, i) * 1.0000001;
    want[i] = value(0, n, i) * 1.0000001 + value(1, n, i) * 1.0000001;
  }
  if (dist_allreduce_sum_f64(d, x, n, &err) != DIT_OK) {
    print_error("rank %d: %s\n", dist_rank(d), err.msg);
    *bad = 1;
  }
  int64_t wrong = 0, first = -1;
  for (int64_t i = 0; i < n; i++)
    if (memcmp(&x[i], &want[i], sizeof(double)) != 0 && wrong++ == 0) first = i;
  if (wrong) {
    print_error("rank %d, f64 n %lld: %lld elements differ, first [%lld] %.17g want %.17g\n", dist_rank(d),
                (long long)n, (long long)wrong, (long long)first, x[first], want[first]);
    *bad = 1;
  }
  if (hash_differs(d, fnv1a(x, (size_t)n * sizeof(double)))) {
    print_error("rank %d, f64 n %lld: result differs from rank 0's\n", dist_rank(d), (long long)n);
    *bad = 1;
  }
out:
  free(x);
  free(want);
}

/* Lengths: empty, shorter than the rank count, odd, exactly one round, and
 * past two rounds by a remainder that splits unevenly over the ranks. */
static void test_dist_allreduce_f32_rank_order(void **state) {
  const int64_t ns[] = {0, 1, 2, 3, 1001, ROUND_F32, 2 * ROUND_F32 + ROUND_F32 / 3 + 7};
  int bad = 0;
  for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) check_f32(*state, ns[k], &bad);
  assert_int_equal(anyone(*state, bad), 0);
}

static void test_dist_allreduce_f64_rank_order(void **state) {
  const int64_t ns[] = {0, 1, 5, ROUND_F64 - 1, 2 * ROUND_F64 + 12345};
  int bad = 0;
  for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) check_f64(*state, ns[k], &bad);
  assert_int_equal(anyone(*state, bad), 0);
}

static void test_dist_bcast_either_root(void **state) {
  Dist *d = *state;
  DitErr err = {0};
  const int64_t bytes = 1000003;
  unsigned char *b = malloc((size_t)bytes);
  assert_non_null(b);
  int bad = 0;
  for (int root = 0; root < 2; root++) {
    for (int64_t i = 0; i < bytes; i++) b[i] = dist_rank(d) == root ? (unsigned char)mix((uint64_t)(i + root)) : 0;
    bad |= dist_bcast(d, b, bytes, root, &err) != DIT_OK;
    for (int64_t i = 0; i < bytes; i++) bad |= b[i] != (unsigned char)mix((uint64_t)(i + root));
  }
  bad |= dist_bcast(d, b, 0, 1, &err) != DIT_OK; /* empty is fine */
  free(b);
  assert_int_equal(anyone(d, bad), 0);
}

static void test_dist_any_failed(void **state) {
  Dist *d = *state;
  DitErr err = {0};
  int r = dist_rank(d), none = -1, one = -1, other = -1, big = -1;
  int st = dist_any_failed(d, 0, &none, &err);
  st |= dist_any_failed(d, r == 1, &one, &err);
  st |= dist_any_failed(d, r == 0, &other, &err);
  st |= dist_any_failed(d, r == 0 ? -5 : 0, &big, &err); /* any nonzero status counts */
  int bad = st != DIT_OK || none != 0 || one != 1 || other != 1 || big != 1;
  assert_int_equal(anyone(d, bad), 0);
}

/* Bad arguments are refused before any communication, on every rank alike. */
static void test_dist_bad_args(void **state) {
  Dist *d = *state;
  DitErr err = {0};
  float f = 1;
  int bad = 0;
  bad |= dist_allreduce_sum_f32(d, &f, -1, &err) != DIT_ERR_ARG;
  bad |= strstr(err.msg, "dist_allreduce_sum_f32") == NULL;
  bad |= dist_allreduce_sum_f32(d, NULL, 4, &err) != DIT_ERR_ARG;
  bad |= dist_allreduce_sum_f64(NULL, NULL, 0, &err) != DIT_ERR_ARG;
  bad |= dist_bcast(d, &f, sizeof f, 2, &err) != DIT_ERR_ARG;
  bad |= strstr(err.msg, "root 2 of 2") == NULL;
  bad |= dist_bcast(d, &f, sizeof f, -1, &err) != DIT_ERR_ARG;
  bad |= dist_any_failed(d, 0, NULL, &err) != DIT_ERR_ARG;
  bad |= dist_barrier(NULL, &err) != DIT_ERR_ARG;
  bad |= dist_init(NULL, &err) != DIT_ERR_ARG;
  dist_finalize(NULL);
  assert_int_equal(anyone(d, bad), 0);
}

int main(void) {
  Dist *d = NULL;
  DitErr err = {0};
  if (dist_init(&d, &err) != DIT_OK) {
    fprintf(stderr, "test_dist: %s\n", err.msg);
    return 1;
  }
  if (strcmp(dist_backend(d), "none") == 0) {
    printf("test_dist: built without MPI, skipped\n");
    dist_finalize(d);
    return 77;
  }
  if (dist_size(d) != 2) {
    fprintf(stderr, "test_dist: needs exactly 2 ranks (mpiexec -n 2), got %d\n", dist_size(d));
    dist_finalize(d);
    return 1;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_prestate(test_dist_rank_size, d),
      cmocka_unit_test_prestate(test_dist_allreduce_f32_rank_order, d),
      cmocka_unit_test_prestate(test_dist_allreduce_f64_rank_order, d),
      cmocka_unit_test_prestate(test_dist_bcast_either_root, d),
      cmocka_unit_test_prestate(test_dist_any_failed, d),
      cmocka_unit_test_prestate(test_dist_bad_args, d),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  dist_finalize(d);
  return failed;
}
