/* cli_aliases.c: the official scripts' flag names that dit accepts for the
 * same thing (cli.h; the README's table). Only true synonyms: a flag whose
 * meaning differs (train.py's --results-dir makes a numbered experiment
 * folder inside it; --data-path is an image folder, not a DITDATA set) has
 * no alias. */
#include <string.h>

#include "cli.h"

const char *cli_official_alias(const char *command, const char *flag) {
  static const struct { const char *command, *official, *ours; } ALIASES[] = {
      {"sample", "--ckpt", "--weights"},               /* sample.py, sample_ddp.py */
      {"sample", "--num-sampling-steps", "--steps"},   /* sample.py, sample_ddp.py */
      {"sample", "--global-seed", "--seed"},           /* sample_ddp.py */
      {"sample", "--num-fid-samples", "--num-samples"}, /* sample_ddp.py */
      {"sample", "--per-proc-batch-size", "-n"},       /* sample_ddp.py: images per batch */
      {"train", "--global-batch-size", "--global-batch"}, /* train.py */
      {"train", "--global-seed", "--seed"},            /* train.py */
  };
  for (size_t i = 0; i < sizeof ALIASES / sizeof ALIASES[0]; i++)
    if (!strcmp(ALIASES[i].command, command) && !strcmp(ALIASES[i].official, flag)) return ALIASES[i].ours;
  return flag;
}
