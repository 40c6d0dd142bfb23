/* dist.h: the data-parallel communicator of `dit train`. `mpirun -np K dit
 * train ...` runs K ranks, each on its own shard of every global batch; after
 * the backward pass the ranks sum their gradients with
 * dist_allreduce_sum_f32 so that every rank applies the same update.
 *
 * Backends (one is compiled in, chosen by CMake):
 *   dist_mpi.c   MPI (Debian's OpenMPI), used when find_package(MPI) succeeds;
 *                defines DIT_HAVE_MPI. Works with mpirun and also for a plain
 *                `dit train` run without it (an MPI singleton of size 1).
 *   dist_none.c  no MPI: always rank 0 of 1; the collectives return at once.
 *
 * Determinism: every all-reduce result is bit-identical on all ranks, so the
 * ranks' weights never drift apart. Each element is summed by exactly one
 * rank, in float (or double) and in rank order, ((x0 + x1) + x2) + ...,
 * and that sum is what every rank receives (see dist_mpi.c). MPI_SUM is not
 * used because MPI leaves its reduction order to the implementation.
 *
 * NCCL: GPU all-reduce (NCCL, its unique id sent from rank 0 to the others
 * through dist_bcast) arrives with the CUDA backend; this module is CPU-only
 * today.
 *
 * This module owns the communicator only. Sharding the data, averaging the
 * summed gradients and deciding when to stop belong to the trainer.
 * dist_init may be called once per process (MPI cannot be re-initialised
 * after MPI_Finalize). All functions but dist_init/dist_finalize are
 * collective: every rank must call them in the same order. */
#ifndef DIT_RUNTIME_TRAIN_DIST_H
#define DIT_RUNTIME_TRAIN_DIST_H

#include <stdint.h>

#include "err.h"

typedef struct Dist Dist;

/* Starts the communicator. With MPI: MPI_Init_thread (FUNNELED: OpenMP
 * threads compute, only the main thread talks to MPI) unless MPI is already
 * initialised; a process that no launcher started (no mpirun, mpiexec or
 * srun in its environment, and no DIT_MPI=1) is rank 0 of 1 and never
 * starts MPI. Without MPI: rank 0 of 1. */
DitStatus dist_init(Dist **out, DitErr *err);
int dist_rank(const Dist *d);
int dist_size(const Dist *d);
const char *dist_backend(const Dist *d); /* "mpi" or "none" */

/* In-place sums over all ranks of buf [n] (any n >= 0, also > INT_MAX:
 * the work is cut into bounded rounds). Bit-identical on every rank. */
DitStatus dist_allreduce_sum_f32(Dist *d, float *buf, int64_t n, DitErr *err);
DitStatus dist_allreduce_sum_f64(Dist *d, double *buf, int64_t n, DitErr *err);
/* Copies buf [bytes] from rank root to every other rank. */
DitStatus dist_bcast(Dist *d, void *buf, int64_t bytes, int root, DitErr *err);
DitStatus dist_barrier(Dist *d, DitErr *err);
/* *any = 1 on every rank when some rank passed local_failed != 0, else 0:
 * so that all ranks stop together instead of hanging in a collective. */
DitStatus dist_any_failed(Dist *d, int local_failed, int *any, DitErr *err);
/* Frees d and, when dist_init started MPI, calls MPI_Finalize. NULL is ok. */
void dist_finalize(Dist *d);

#endif
