/* vae_weights.c: binds checkpoint tensors to a VAE plan's weight requests
 * (see vae_weights.h): the diffusers -> legacy and diffusers -> LDM/CompVis
 * renamings (dit-reference.md section 5), the "first_stage_model." prefix,
 * 1×1-conv attention weights for Linear ones, and strict missing / shape /
 * unexpected checks with the first problem reported. */
#include "vae_weights.h"

#include "bind_problems.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NAME_MAX_BYTES = 320, MAX_LEVELS = 16 };

static const char *const PREFIXES[] = {"", "first_stage_model."};
#define N_PREFIXES (sizeof PREFIXES / sizeof PREFIXES[0])

static bool starts_with(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

/* "<digits>." at s: the number, and s moved past the dot; -1 if not. */
static long take_index(const char **s) {
  const char *p = *s;
  long v = 0;
  int n = 0;
  while (*p >= '0' && *p <= '9' && n < 6) v = v * 10 + (*p++ - '0'), n++;
  if (!n || *p != '.') return -1;
  *s = p + 1;
  return v;
}

/* The inside of a resnet: conv_shortcut is LDM's nin_shortcut. */
static void resnet_rest(const char *rest, char *out, size_t cap) {
  if (starts_with(rest, "conv_shortcut.")) snprintf(out, cap, "nin_shortcut.%s", rest + strlen("conv_shortcut."));
  else snprintf(out, cap, "%s", rest);
}

/* The mid block's names after "<side>.mid_block.". */
static int mid_ldm(const char *side, const char *rest, char *out, size_t cap) {
  char tail[NAME_MAX_BYTES];
  if (starts_with(rest, "resnets.")) {
    const char *p = rest + strlen("resnets.");
    long j = take_index(&p);
    if (j < 0 || j > 1) return 0;
    resnet_rest(p, tail, sizeof tail);
    snprintf(out, cap, "%s.mid.block_%ld.%s", side, j + 1, tail);
    return 1;
  }
  static const char *const attn[][2] = {{"group_norm.", "norm."}, {"to_q.", "q."},           {"to_k.", "k."},
                                        {"to_v.", "v."},          {"to_out.0.", "proj_out."}};
  if (!starts_with(rest, "attentions.0.")) return 0;
  rest += strlen("attentions.0.");
  for (size_t i = 0; i < sizeof attn / sizeof attn[0]; i++)
    if (starts_with(rest, attn[i][0])) {
      snprintf(out, cap, "%s.mid.attn_1.%s%s", side, attn[i][1], rest + strlen(attn[i][0]));
      return 1;
    }
  return 0;
}

int vae_ldm_name(const char *d, int n_levels, char *out, size_t cap) {
  char tail[NAME_MAX_BYTES];
  if (starts_with(d, "quant_conv.") || starts_with(d, "post_quant_conv.")) {
    snprintf(out, cap, "%s", d);
    return 1;
  }
  const char *side = starts_with(d, "decoder.") ? "decoder" : starts_with(d, "encoder.") ? "encoder" : NULL;
  if (!side) return 0;
  const char *rest = d + strlen(side) + 1;
  if (starts_with(rest, "conv_in.") || starts_with(rest, "conv_out.")) {
    snprintf(out, cap, "%s", d);
    return 1;
  }
  if (starts_with(rest, "conv_norm_out.")) {
    snprintf(out, cap, "%s.norm_out.%s", side, rest + strlen("conv_norm_out."));
    return 1;
  }
  if (starts_with(rest, "mid_block.")) return mid_ldm(side, rest + strlen("mid_block."), out, cap);
  bool up = side[0] == 'd';
  const char *blocks = up ? "up_blocks." : "down_blocks.";
  if (!starts_with(rest, blocks)) return 0;
  const char *p = rest + strlen(blocks);
  long i = take_index(&p);
  if (i < 0 || i >= n_levels) return 0;
  long level = up ? n_levels - 1 - i : i; /* LDM numbers the decoder's levels from the bottom */
  const char *name = up ? "up" : "down";
  if (starts_with(p, "resnets.")) {
    p += strlen("resnets.");
    long j = take_index(&p);
    if (j < 0) return 0;
    resnet_rest(p, tail, sizeof tail);
    snprintf(out, cap, "%s.%s.%ld.block.%ld.%s", side, name, level, j, tail);
    return 1;
  }
  const char *sampler = up ? "upsamplers.0.conv." : "downsamplers.0.conv.";
  if (starts_with(p, sampler)) {
    snprintf(out, cap, "%s.%s.%ld.%s.conv.%s", side, name, level, up ? "upsample" : "downsample",
             p + strlen(sampler));
    return 1;
  }
  return 0;
}

/* diffusers' legacy attention names (query/key/value/proj_attn), or 0 when the key has none. */
static int legacy_name(const char *d, char *out, size_t cap) {
  static const char *const map[][2] = {
      {"to_q.", "query."}, {"to_k.", "key."}, {"to_v.", "value."}, {"to_out.0.", "proj_attn."}};
  const char *a = strstr(d, ".attentions.0.");
  if (!a) return 0;
  a += strlen(".attentions.0.");
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (starts_with(a, map[i][0])) {
      snprintf(out, cap, "%.*s%s%s", (int)(a - d), d, map[i][1], a + strlen(map[i][0]));
      return 1;
    }
  return 0;
}


/* The plan's shape, or it with trailing 1s (a 1×1 conv's weight for a Linear's). */
static bool shape_fits(const CkptTensor *t, const WeightRequest *r) {
  if (t->rank < r->rank) return false;
  for (int d = 0; d < t->rank; d++)
    if (t->shape[d] != (d < r->rank ? r->shape[d] : 1)) return false;
  return true;
}

/* The number of down/up levels the requests name. */
static int levels_of(const WeightRequest *req, size_t n) {
  int levels = 0;
  for (size_t i = 0; i < n; i++) {
    const char *p = NULL;
    if (starts_with(req[i].name, "decoder.up_blocks.")) p = req[i].name + strlen("decoder.up_blocks.");
    else if (starts_with(req[i].name, "encoder.down_blocks.")) p = req[i].name + strlen("encoder.down_blocks.");
    long v = p ? take_index(&p) : -1;
    if (v >= 0 && v < MAX_LEVELS && v + 1 > levels) levels = (int)v + 1;
  }
  return levels;
}

/* Whether a checkpoint key belongs to a part the plan holds (after its prefix). */
static bool in_scope(const char *name, int parts) {
  for (size_t p = 0; p < N_PREFIXES; p++) {
    if (!starts_with(name, PREFIXES[p])) continue;
    const char *k = name + strlen(PREFIXES[p]);
    if ((parts & 1) && (starts_with(k, "decoder.") || starts_with(k, "post_quant_conv."))) return true;
    if ((parts & 2) && (starts_with(k, "encoder.") || starts_with(k, "quant_conv."))) return true;
  }
  return false;
}

DitStatus vae_weights_bind(const Checkpoint *ck, const WeightRequest *req, size_t n, int parts, DitErr *err) {
  size_t n_t = ckpt_num_tensors(ck);
  unsigned char *used = calloc(n_t ? n_t : 1, 1);
  BindProblems pr = {err, DIT_OK, 0};
  if (!used) return dit_err(err, DIT_ERR_NOMEM, "out of memory");
  int levels = levels_of(req, n);
  for (size_t i = 0; i < n; i++) {
    const WeightRequest *r = &req[i];
    char names[3][NAME_MAX_BYTES];
    int n_names = 0;
    snprintf(names[n_names++], NAME_MAX_BYTES, "%s", r->name);
    if (legacy_name(r->name, names[n_names], NAME_MAX_BYTES)) n_names++;
    if (vae_ldm_name(r->name, levels, names[n_names], NAME_MAX_BYTES) && strcmp(names[n_names], r->name)) n_names++;
    size_t found = (size_t)-1;
    char key[NAME_MAX_BYTES + 32];
    for (size_t p = 0; p < N_PREFIXES && found == (size_t)-1; p++)
      for (int k = 0; k < n_names && found == (size_t)-1; k++) {
        snprintf(key, sizeof key, "%s%.300s", PREFIXES[p], names[k]);
        found = ckpt_find_index(ck, key);
      }
    if (found == (size_t)-1) {
      bind_problem(&pr, DIT_ERR_WEIGHTS, "missing VAE tensor '%s' (looked for it in the diffusers, legacy-attention and "
              "LDM namings, also under 'first_stage_model.')", r->name);
      continue;
    }
    used[found] = 1;
    const CkptTensor *t = ckpt_tensor_at(ck, found);
    if (!shape_fits(t, r)) {
      char want[96], have[160];
      bind_format_shape(want, sizeof want, r->rank, r->shape);
      bind_format_shape(have, sizeof have, t->rank, t->shape);
      bind_problem(&pr, DIT_ERR_WEIGHTS, "VAE tensor '%s' has shape %s, the plan expects %s (the checkpoint is of "
              "another VAE configuration or resolution-independent layers differ)", t->name, have, want);
      continue;
    }
    if (t->dtype != CK_F32 && t->dtype != CK_F16 && t->dtype != CK_BF16) {
      bind_problem(&pr, DIT_ERR_UNSUPPORTED, "VAE tensor '%s' has dtype %s; only F32, F16 and BF16 weights can be loaded",
              t->name, ckpt_tensor_dtype_name(ck, t));
      continue;
    }
    if (pr.count == 0) {
      DitErr rerr;
      if (ckpt_read_f32(ck, t, r->dst, &rerr)) bind_problem(&pr, rerr.status, "%s", rerr.msg);
    }
  }
  for (size_t i = 0; i < n_t; i++) {
    const CkptTensor *t = ckpt_tensor_at(ck, i);
    if (!used[i] && in_scope(t->name, parts))
      bind_problem(&pr, DIT_ERR_WEIGHTS, "unexpected VAE tensor '%s' (not in this plan's configuration)", t->name);
  }
  free(used);
  return bind_problems_end(&pr);
}
