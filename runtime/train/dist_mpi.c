/* dist_mpi.c: dist.h over MPI (built when CMake finds MPI; DIT_HAVE_MPI).
 *
 * All-reduce, deterministic and balanced: a reduce-scatter then an
 * all-gather, by hand. Each round takes up to DIST_ROUND_BYTES of the buffer
 * and cuts it into `size` contiguous slices; rank j owns slice j.
 *   1. MPI_Alltoallv: every rank sends slice j to rank j, so rank j holds
 *      all ranks' copies of its slice, [size][slice_len], in rank order.
 *   2. Rank j sums them in the buffer's type and in rank order,
 *      ((x0 + x1) + x2) + ..., one add per element per rank, no reassociation.
 *   3. MPI_Allgatherv: every rank receives every summed slice.
 * Each element is summed once, on one rank, so all ranks get the same bits;
 * MPI_SUM is avoided because its order is left to the implementation. Per
 * rank the traffic and work are O(n), like a ring all-reduce, and the extra
 * memory is one round (DIST_ROUND_BYTES) allocated at dist_init.
 * MPI errors come back as DIT_ERR_IO with the call, file, line and MPI's
 * message: the communicator uses MPI_ERRORS_RETURN, not the default abort. */
#define _POSIX_C_SOURCE 200809L
#include "dist.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One round of an all-reduce, per rank: the slices a rank receives fill at
 * most this many bytes (4M floats); also the bound that keeps MPI's int
 * counts far from INT_MAX for any n. */
#define DIST_ROUND_BYTES ((int64_t)16 << 20)
/* dist_bcast sends at most this many bytes per MPI_Bcast (int counts). */
#define DIST_BCAST_BYTES ((int64_t)1 << 30)

struct Dist {
  MPI_Comm comm; /* a duplicate of MPI_COMM_WORLD with MPI_ERRORS_RETURN */
  int rank, size;
  int owns_mpi;        /* dist_init started MPI, so dist_finalize ends it */
  unsigned char *recv; /* this rank's slice from every rank, [size][slice_len]; size * slice_len
                        * can pass a round by size - 1 elements, hence recv_bytes */
  size_t recv_bytes;   /* DIST_ROUND_BYTES + size doubles */
  int *slice_counts;   /* [size] elements of slice j in the current round */
  int *slice_displs;   /* [size] element offset of slice j within the round */
  int *recv_counts;    /* [size] all equal to this rank's slice length */
  int *recv_displs;    /* [size] i * this rank's slice length */
};

static DitStatus mpi_error(DitErr *err, int rc, const char *expr, const char *file, int line) {
  char msg[MPI_MAX_ERROR_STRING] = "";
  int len = 0;
  if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "MPI error %d", rc);
  return dit_err(err, DIT_ERR_IO, "%s:%d: %s failed: %s", file, line, expr, msg);
}

/* Runs an MPI call; on failure records it in err, sets st and jumps to fail. */
#define MPI_TRY(call) \
  do { \
    int rc_ = (call); \
    if (rc_ != MPI_SUCCESS) { \
      st = mpi_error(err, rc_, #call, __FILE__, __LINE__); \
      goto fail; \
    } \
  } while (0)

/* Whether a launcher (mpirun/mpiexec of Open MPI or MPICH, srun) started this
 * process. A singleton MPI_Init would only add failure modes that a lone
 * process does not need (Open MPI's PMIx aborts it under ulimit -f, for one);
 * DIT_MPI=1 asks for MPI anyway. */
static int launched_by_mpi(void) {
  static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE",
                                     "MPI_LOCALNRANKS", "DIT_MPI"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
    if (getenv(vars[i])) return 1;
  return 0;
}

DitStatus dist_init(Dist **out, DitErr *err) {
  DitStatus st = DIT_OK;
  Dist *d = NULL;
  if (!out) return dit_err(err, DIT_ERR_ARG, "dist_init: out is NULL");
  *out = NULL;
  d = calloc(1, sizeof *d);
  if (!d) return dit_err(err, DIT_ERR_NOMEM, "dist_init: out of memory");
  d->comm = MPI_COMM_NULL;

  int inited = 0, finalized = 0;
  MPI_TRY(MPI_Finalized(&finalized));
  if (finalized) {
    st = dit_err(err, DIT_ERR_ARG, "dist_init: MPI was already finalized (dist_init runs once per process)");
    goto fail;
  }
  MPI_TRY(MPI_Initialized(&inited));
  if (!inited && !launched_by_mpi()) { /* a plain `dit train`: one rank, MPI never started */
    d->rank = 0, d->size = 1;
    *out = d;
    return DIT_OK;
  }
  if (!inited) {
    int provided = MPI_THREAD_SINGLE;
    MPI_TRY(MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided));
    d->owns_mpi = 1;
    if (provided < MPI_THREAD_FUNNELED) {
      st = dit_err(err, DIT_ERR_UNSUPPORTED,
                   "dist_init: this MPI does not provide MPI_THREAD_FUNNELED (got level %d)", provided);
      goto fail;
    }
  }
  MPI_TRY(MPI_Comm_dup(MPI_COMM_WORLD, &d->comm));
  MPI_TRY(MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN));
  MPI_TRY(MPI_Comm_rank(d->comm, &d->rank));
  MPI_TRY(MPI_Comm_size(d->comm, &d->size));

  if (d->size > 1) {
    size_t k = (size_t)d->size;
    d->recv_bytes = (size_t)DIST_ROUND_BYTES + k * sizeof(double);
    d->recv = malloc(d->recv_bytes);
    d->slice_counts = calloc(k, sizeof(int));
    d->slice_displs = calloc(k, sizeof(int));
    d->recv_counts = calloc(k, sizeof(int));
    d->recv_displs = calloc(k, sizeof(int));
    if (!d->recv || !d->slice_counts || !d->slice_displs || !d->recv_counts || !d->recv_displs) {
      st = dit_err(err, DIT_ERR_NOMEM, "dist_init: out of memory for the %zu-byte reduction buffer (rank %d)",
                   d->recv_bytes, d->rank);
      goto fail;
    }
  }
  *out = d;
  return DIT_OK;

fail:
  dist_finalize(d);
  return st;
}

int dist_rank(const Dist *d) { return d ? d->rank : 0; }
int dist_size(const Dist *d) { return d ? d->size : 1; }
const char *dist_backend(const Dist *d) {
  (void)d;
  return "mpi";
}

/* Sums recv [size][len] into recv[0] [len], in rank order, in the element type. */
static void sum_slices(Dist *d, size_t elem_bytes, int len) {
  if (elem_bytes == sizeof(float)) {
    float *acc = (float *)d->recv;
    for (int r = 1; r < d->size; r++) {
      const float *x = acc + (size_t)r * (size_t)len;
      for (int i = 0; i < len; i++) acc[i] += x[i];
    }
  } else {
    double *acc = (double *)d->recv;
    for (int r = 1; r < d->size; r++) {
      const double *x = acc + (size_t)r * (size_t)len;
      for (int i = 0; i < len; i++) acc[i] += x[i];
    }
  }
}

/* The all-reduce of the top-of-file comment, for float or double buf [n]. */
static DitStatus allreduce_sum(Dist *d, void *buf, int64_t n, size_t elem_bytes, MPI_Datatype type,
                               const char *what, DitErr *err) {
  DitStatus st = DIT_OK;
  if (!d || n < 0 || (n > 0 && !buf)) {
    return dit_err(err, DIT_ERR_ARG, "%s: bad arguments (d %p, buf %p, n %lld)", what, (void *)d, buf,
                   (long long)n);
  }
  if (d->size == 1 || n == 0) return DIT_OK;
  const int64_t round_elems = DIST_ROUND_BYTES / (int64_t)elem_bytes;
  const int64_t k = d->size;
  for (int64_t off = 0; off < n; off += round_elems) {
    int64_t len = n - off < round_elems ? n - off : round_elems;
    for (int64_t j = 0; j < k; j++) { /* slice j: [len * j / k, len * (j + 1) / k) */
      int64_t lo = len * j / k, hi = len * (j + 1) / k;
      d->slice_displs[j] = (int)lo;
      d->slice_counts[j] = (int)(hi - lo);
    }
    int mine = d->slice_counts[d->rank];
    for (int64_t i = 0; i < k; i++) {
      d->recv_counts[i] = mine;
      d->recv_displs[i] = (int)(i * mine);
    }
    unsigned char *chunk = (unsigned char *)buf + (size_t)off * elem_bytes;
    MPI_TRY(MPI_Alltoallv(chunk, d->slice_counts, d->slice_displs, type, d->recv, d->recv_counts,
                          d->recv_displs, type, d->comm));
    sum_slices(d, elem_bytes, mine);
    MPI_TRY(MPI_Allgatherv(d->recv, mine, type, chunk, d->slice_counts, d->slice_displs, type, d->comm));
  }
  return DIT_OK;

fail:
  dit_err_context(err, "%s (rank %d of %d, %lld elements)", what, d->rank, d->size, (long long)n);
  return st;
}

DitStatus dist_allreduce_sum_f32(Dist *d, float *buf, int64_t n, DitErr *err) {
  return allreduce_sum(d, buf, n, sizeof(float), MPI_FLOAT, "dist_allreduce_sum_f32", err);
}

DitStatus dist_allreduce_sum_f64(Dist *d, double *buf, int64_t n, DitErr *err) {
  return allreduce_sum(d, buf, n, sizeof(double), MPI_DOUBLE, "dist_allreduce_sum_f64", err);
}

DitStatus dist_bcast(Dist *d, void *buf, int64_t bytes, int root, DitErr *err) {
  DitStatus st = DIT_OK;
  if (!d || bytes < 0 || (bytes > 0 && !buf) || root < 0 || root >= d->size) {
    return dit_err(err, DIT_ERR_ARG, "dist_bcast: bad arguments (buf %p, %lld bytes, root %d of %d ranks)", buf,
                   (long long)bytes, root, d ? d->size : 0);
  }
  if (d->size == 1) return DIT_OK;
  for (int64_t off = 0; off < bytes; off += DIST_BCAST_BYTES) {
    int64_t len = bytes - off < DIST_BCAST_BYTES ? bytes - off : DIST_BCAST_BYTES;
    MPI_TRY(MPI_Bcast((unsigned char *)buf + off, (int)len, MPI_BYTE, root, d->comm));
  }
  return DIT_OK;

fail:
  dit_err_context(err, "dist_bcast (rank %d of %d, %lld bytes from rank %d)", d->rank, d->size,
                  (long long)bytes, root);
  return st;
}

DitStatus dist_barrier(Dist *d, DitErr *err) {
  DitStatus st = DIT_OK;
  if (!d) return dit_err(err, DIT_ERR_ARG, "dist_barrier: d is NULL");
  if (d->size == 1) return DIT_OK;
  MPI_TRY(MPI_Barrier(d->comm));
  return DIT_OK;

fail:
  dit_err_context(err, "dist_barrier (rank %d of %d)", d->rank, d->size);
  return st;
}

DitStatus dist_any_failed(Dist *d, int local_failed, int *any, DitErr *err) {
  DitStatus st = DIT_OK;
  if (!d || !any) return dit_err(err, DIT_ERR_ARG, "dist_any_failed: d or any is NULL");
  int mine = local_failed != 0;
  *any = mine;
  if (d->size == 1) return DIT_OK;
  MPI_TRY(MPI_Allreduce(&mine, any, 1, MPI_INT, MPI_MAX, d->comm));
  return DIT_OK;

fail:
  dit_err_context(err, "dist_any_failed (rank %d of %d)", d->rank, d->size);
  return st;
}

void dist_finalize(Dist *d) {
  if (!d) return;
  int finalized = 1;
  MPI_Finalized(&finalized);
  if (!finalized) {
    if (d->comm != MPI_COMM_NULL) MPI_Comm_free(&d->comm);
    if (d->owns_mpi) MPI_Finalize();
  }
  free(d->recv);
  free(d->slice_counts);
  free(d->slice_displs);
  free(d->recv_counts);
  free(d->recv_displs);
  free(d);
}
