/* model_names.h: the twelve official DiT model names (DiT-XL/2 ... DiT-S/8)
 * and the shipped specs they name, so that `ditc DiT-XL/2 --image-size 512`
 * works as the official scripts' --model does. Specs are looked up in
 * $DITC_SPEC_PATH (folders separated by ':'), next to the ditc binary
 * (specs/, ../specs, ../../specs, ../share/ditc/specs) and in the install
 * prefix's share/ditc/specs. */
#ifndef DIT_COMPILER_MODEL_NAMES_H
#define DIT_COMPILER_MODEL_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Whether arg is meant as a model name rather than a spec path: it starts
 * with "DiT-" and is not an existing file. */
bool model_name_like(const char *arg);

/* The spec file of an official name at image_size (256 or 512), in path
 * (n bytes). 0 when found; -1 after a message on err (an unknown name lists
 * the twelve; a known one whose spec is nowhere lists where it looked). */
int model_name_resolve(const char *name, int image_size, const char *argv0, char *path, size_t n, FILE *err);

/* `ditc --list-models`: each official name, its sizes, and the spec files. */
void model_names_list(const char *argv0, FILE *out);

#endif
