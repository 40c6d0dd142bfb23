/* config_import.h: a diffusers config.json as a spec. ditc reads a file whose
 * name ends in ".json" with the JSON reader (json.h) and turns its object
 * into the syntax tree of one model block, so that sema checks it as it
 * checks a .dit file, every error at the config's own bytes:
 *   AutoencoderKL          -> family "vae": the keys map one to one
 *   DiTTransformer2DModel  -> family "dit" (also the legacy Transformer2DModel
 *                             with norm_type "ada_norm_zero"): sizes mapped
 *                             as dit-reference.md 2.5 describes
 * Members whose names start with '_' are diffusers' bookkeeping and are
 * ignored (_class_name picks the family; _name_or_path names the model), so
 * are members that are null (a default). The model is named after the last
 * part of _name_or_path, else the config's folder, else its class. */
#ifndef DIT_COMPILER_CONFIG_IMPORT_H
#define DIT_COMPILER_CONFIG_IMPORT_H

#include <stdbool.h>

#include "ast.h"

/* Whether path names a config.json (ends in ".json"). */
bool config_is_json(const char *path);

/* Parses source file `file` as a diffusers config.json into *out. Reports
 * every problem; *out is set unless memory ran out or the JSON is malformed. */
DitcStatus config_import(Arena *a, Diag *d, uint32_t file, AstFile **out);

#endif
