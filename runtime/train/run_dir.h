/* run_dir.h: the run folder of `dit train` (run_dir.c): what may be
 * started or resumed in it, its creation, the stale temporaries a kill left
 * there, and loss.tsv cut back to the checkpoint a resume starts from, so
 * that a killed and resumed run ends with the same files as one that ran
 * straight through. Rank 0 alone writes into it. */
#ifndef DIT_RUNTIME_TRAIN_RUN_DIR_H
#define DIT_RUNTIME_TRAIN_RUN_DIR_H

#include <stdint.h>

#include "err.h"

/* Before anything is written: a new run needs a missing or empty folder
 * (or overwrite); a resumed one needs a folder with checkpoints/latest. */
DitStatus run_dir_check(const char *dir, int resume, int overwrite, DitErr *err);

/* Creates the folder (*created: it did not exist), clears a run's own files
 * under overwrite (loss.tsv, log.txt, checkpoints/, samples/), and removes
 * the temporaries that killed writers left in it. */
DitStatus run_dir_prepare(const char *dir, int overwrite, int *created, DitErr *err);

/* A failed start: the folder goes again if this command created it and it
 * is still empty. */
void run_dir_abandon(const char *dir, int created);

/* loss.tsv keeps the rows of steps 1..step, complete lines only. */
DitStatus run_dir_trim_loss(const char *dir, int64_t step, DitErr *err);

#endif
