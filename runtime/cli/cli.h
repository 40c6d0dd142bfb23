/* cli.h: the subcommands of the dit command line, one file each. */
#ifndef DIT_RUNTIME_CLI_H
#define DIT_RUNTIME_CLI_H

#include "dit/dit.h"

int cmd_sample(int argc, char **argv);
int cmd_loss(int argc, char **argv);  /* dit loss: cmd_loss.c */
int cmd_train(int argc, char **argv); /* dit train: cmd_train.c */
int cmd_data(int argc, char **argv); /* dit data ...: cmd_data.c */
int cmd_tune(int argc, char **argv); /* dit tune: cmd_tune.c */
/* On stderr, one line when the plan's tunings are for other devices (cmd_tune.c). */
void cli_tuning_notice(DitRuntime *rt);
int cmd_sample_set(const char *plan_path, void *args); /* --num-samples --npz: sample_set.c */

/* Sets o's CUDA settings from DIT_CUDA_DEVICE (an ordinal), DIT_CUDA_SYNC
 * (1: wait after every op) and DIT_CUDA_GRAPH (0: no graph replay), and
 * the libraries by o->device (set first): for "emu", DIT_EMU_LIB (the path
 * of libdit_emu.so, both libraries); else DIT_CUDA_DRIVER_LIB and
 * DIT_CUBLASLT_LIB: cli_env.c. 0, or -1 after a message on stderr. */
int cli_env_options(DitOptions *o);

/* The dit spelling of an official script's flag for command ("sample",
 * "train"): --ckpt is --weights, ...; any other flag as it is (cli_aliases.c). */
const char *cli_official_alias(const char *command, const char *flag);

#endif
