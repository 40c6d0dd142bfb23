/* cli.h: the subcommands of the dit command line, one file each. */
#ifndef DIT_RUNTIME_CLI_H
#define DIT_RUNTIME_CLI_H

#include <stdbool.h>

#include "dit/dit.h"

int cmd_sample(int argc, char **argv);
int cmd_loss(int argc, char **argv);  /* dit loss: cmd_loss.c */
int cmd_train(int argc, char **argv); /* dit train: cmd_train.c */
int cmd_data(int argc, char **argv); /* dit data ...: cmd_data.c */
int cmd_tune(int argc, char **argv); /* dit tune: cmd_tune.c */
int cmd_decode(int argc, char **argv); /* dit decode: cmd_vae.c */
int cmd_encode(int argc, char **argv); /* dit encode: cmd_vae.c */

/* The compiled VAE for the other commands (cmd_vae.c). cli_vae_open: a VAE
 * plan with the parts asked for, its weights bound when weights is not
 * NULL; a message on stderr otherwise. cli_vae_run: n images through the
 * decoder (in: DiT-space latents) or the encoder (noise NULL: the mean),
 * max_batch at a time, with a progress bar on a terminal. cli_vae_check_latents:
 * 0 when [C,H,W] latents fit the decoder, else -1 after a message. */
DitStatus cli_vae_open(const char *plan, const char *weights, const char *device, int threads, bool need_decoder,
                       bool need_encoder, DitRuntime **out);
DitStatus cli_vae_run(DitRuntime *vae, bool decode, int64_t n, const float *in, const float *noise, float *out,
                      bool progress);
int cli_vae_check_latents(const DitVaeInfo *v, int64_t C, int64_t H, int64_t W, const char *what);
/* dit data images --vae: the pixel set's latents into out (data_vae.c); 0, or 1 after a message. */
int cli_data_encode(const char *pixels, const char *vae_plan, const char *vae_weights, const char *device,
                    int threads, bool flips, bool mean, uint64_t seed, const char *out);
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
