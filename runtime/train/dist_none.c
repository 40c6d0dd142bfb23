/* dist_none.c: dist.h without MPI (built when CMake finds no MPI): one
 * process, rank 0 of 1. A sum over one rank is the buffer itself, so the
 * collectives only check their arguments, with the same rules as dist_mpi.c. */
#include "dist.h"

#include <stdlib.h>

struct Dist {
  int rank, size; /* always 0 and 1 */
};

DitStatus dist_init(Dist **out, DitErr *err) {
  if (!out) return dit_err(err, DIT_ERR_ARG, "dist_init: out is NULL");
  *out = calloc(1, sizeof **out);
  if (!*out) return dit_err(err, DIT_ERR_NOMEM, "dist_init: out of memory");
  (*out)->size = 1;
  return DIT_OK;
}

int dist_rank(const Dist *d) { return d ? d->rank : 0; }
int dist_size(const Dist *d) { return d ? d->size : 1; }
const char *dist_backend(const Dist *d) {
  (void)d;
  return "none";
}

static DitStatus check_buf(const Dist *d, const void *buf, int64_t n, const char *what, DitErr *err) {
  if (!d || n < 0 || (n > 0 && !buf)) {
    return dit_err(err, DIT_ERR_ARG, "%s: bad arguments (d %p, buf %p, n %lld)", what, (const void *)d, buf,
                   (long long)n);
  }
  return DIT_OK;
}

DitStatus dist_allreduce_sum_f32(Dist *d, float *buf, int64_t n, DitErr *err) {
  return check_buf(d, buf, n, "dist_allreduce_sum_f32", err);
}

DitStatus dist_allreduce_sum_f64(Dist *d, double *buf, int64_t n, DitErr *err) {
  return check_buf(d, buf, n, "dist_allreduce_sum_f64", err);
}

DitStatus dist_bcast(Dist *d, void *buf, int64_t bytes, int root, DitErr *err) {
  if (!d || bytes < 0 || (bytes > 0 && !buf) || root != 0) {
    return dit_err(err, DIT_ERR_ARG, "dist_bcast: bad arguments (buf %p, %lld bytes, root %d of 1 rank)", buf,
                   (long long)bytes, root);
  }
  return DIT_OK;
}

DitStatus dist_barrier(Dist *d, DitErr *err) {
  if (!d) return dit_err(err, DIT_ERR_ARG, "dist_barrier: d is NULL");
  return DIT_OK;
}

DitStatus dist_any_failed(Dist *d, int local_failed, int *any, DitErr *err) {
  if (!d || !any) return dit_err(err, DIT_ERR_ARG, "dist_any_failed: d or any is NULL");
  *any = local_failed != 0;
  return DIT_OK;
}

void dist_finalize(Dist *d) { free(d); }
