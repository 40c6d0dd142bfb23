/* dit_weights.c: binds checkpoint tensors to a DiT plan's weight requests
 * (see dit_weights.h): the diffusers -> official renaming table (reference
 * doc 2.4), qkv concatenation from to_q/to_k/to_v, strict missing /
 * unexpected / shape checks with deterministic first-problem reporting, and
 * the sin-cos position embedding for checkpoints that do not carry one. */
#include "dit_weights.h"

#include "bind_problems.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NAME_MAX_BYTES = 320 };

/* Where an official key comes from: one tensor, or three concatenated along dim 0. */
typedef struct Source {
  int parts;                         /* 1, or 3 for attn.qkv */
  char name[3][NAME_MAX_BYTES];
} Source;

/* Official prefix -> diffusers prefix, for keys outside the blocks. */
static const char *const TOP_MAP[][2] = {
  {"x_embedder.proj.", "pos_embed.proj."},
  {"t_embedder.mlp.0.", "transformer_blocks.0.norm1.emb.timestep_embedder.linear_1."},
  {"t_embedder.mlp.2.", "transformer_blocks.0.norm1.emb.timestep_embedder.linear_2."},
  {"y_embedder.embedding_table.", "transformer_blocks.0.norm1.emb.class_embedder.embedding_table."},
  {"final_layer.adaLN_modulation.1.", "proj_out_1."},
  {"final_layer.linear.", "proj_out_2."},
};

/* Inside "blocks.<i>.": official suffix prefix -> diffusers, after "transformer_blocks.<i>.". */
static const char *const BLOCK_MAP[][2] = {
  {"adaLN_modulation.1.", "norm1.linear."},
  {"attn.proj.", "attn1.to_out.0."},
  {"mlp.fc1.", "ff.net.0.proj."},
  {"mlp.fc2.", "ff.net.2."},
};

static int starts_with(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Length of the run of decimal digits at s (0 if none). */
static size_t digits(const char *s) {
  size_t n = 0;
  while (s[n] >= '0' && s[n] <= '9') n++;
  return n;
}

/* Fills src with the diffusers key(s) for the official key name; unknown names map to themselves. */
static void map_diffusers(const char *name, Source *src) {
  src->parts = 1;
  snprintf(src->name[0], NAME_MAX_BYTES, "%s", name);
  for (size_t i = 0; i < sizeof TOP_MAP / sizeof *TOP_MAP; i++)
    if (starts_with(name, TOP_MAP[i][0])) {
      snprintf(src->name[0], NAME_MAX_BYTES, "%s%s", TOP_MAP[i][1], name + strlen(TOP_MAP[i][0]));
      return;
    }
  if (!starts_with(name, "blocks.")) return;
  const char *idx = name + strlen("blocks.");
  size_t nd = digits(idx);
  if (nd == 0 || idx[nd] != '.') return;
  const char *rest = idx + nd + 1;
  if (starts_with(rest, "attn.qkv.")) {
    static const char *const qkv[3] = {"to_q", "to_k", "to_v"};
    src->parts = 3;
    for (int k = 0; k < 3; k++)
      snprintf(src->name[k], NAME_MAX_BYTES, "transformer_blocks.%.*s.attn1.%s.%s", (int)nd, idx,
               qkv[k], rest + strlen("attn.qkv."));
    return;
  }
  for (size_t i = 0; i < sizeof BLOCK_MAP / sizeof *BLOCK_MAP; i++)
    if (starts_with(rest, BLOCK_MAP[i][0])) {
      snprintf(src->name[0], NAME_MAX_BYTES, "transformer_blocks.%.*s.%s%s", (int)nd, idx,
               BLOCK_MAP[i][1], rest + strlen(BLOCK_MAP[i][0]));
      return;
    }
}

/* For "transformer_blocks.<i>.norm1.emb.<rest>" with 1 <= i < depth: sets *rest, returns 1. */
static int is_embedder_copy(const char *name, int64_t depth, const char **rest) {
  static const char head[] = "transformer_blocks.";
  if (!starts_with(name, head)) return 0;
  const char *idx = name + strlen(head);
  size_t nd = digits(idx);
  if (nd == 0 || nd > 9 || !starts_with(idx + nd, ".norm1.emb.")) return 0;
  long i = strtol(idx, NULL, 10);
  if (i < 1 || i >= depth) return 0;
  *rest = idx + nd + strlen(".norm1.emb.");
  return 1;
}


static int is_float_dtype(CkptDType dt) { return dt == CK_F32 || dt == CK_F16 || dt == CK_BF16; }

/* Binds one request (all its source parts); marks what it consumes in used[]. */
static void bind_one(const Checkpoint *ck, const WeightRequest *r, const Source *src,
                     int diffusers, unsigned char *used, BindProblems *pr) {
  int64_t part_shape[4];
  memcpy(part_shape, r->shape, sizeof part_shape);
  char want[96], have[160];
  bind_format_shape(want, sizeof want, r->rank, r->shape);
  if (src->parts > 1) {
    if (r->rank < 1 || r->shape[0] % src->parts != 0) {
      bind_problem(pr, DIT_ERR_WEIGHTS, "key '%s': the plan expects %s, which cannot be split into "
              "%s", r->name, want, "to_q/to_k/to_v");
      return;
    }
    part_shape[0] /= src->parts;
  }
  int64_t part_numel = 1;
  for (int d = 0; d < r->rank; d++) part_numel *= part_shape[d];
  for (int k = 0; k < src->parts; k++) {
    const char *key = src->name[k];
    char where[NAME_MAX_BYTES + 32] = "";
    if (diffusers && strcmp(key, r->name) != 0)
      snprintf(where, sizeof where, " (diffusers '%s')", key);
    size_t i = ckpt_find_index(ck, key);
    if (i == (size_t)-1) {
      if (where[0])
        bind_problem(pr, DIT_ERR_WEIGHTS, "missing key '%s' (looked for the diffusers key '%s')",
                r->name, key);
      else
        bind_problem(pr, DIT_ERR_WEIGHTS, "missing key '%s'", r->name);
      continue;
    }
    used[i] = 1;
    const CkptTensor *t = ckpt_tensor_at(ck, i);
    int same = t->rank == r->rank;
    for (int d = 0; same && d < r->rank; d++) same = t->shape[d] == part_shape[d];
    if (!same) {
      char part[96];
      bind_format_shape(have, sizeof have, t->rank, t->shape);
      bind_format_shape(part, sizeof part, r->rank, part_shape);
      bind_problem(pr, DIT_ERR_WEIGHTS, "key '%s'%s has shape %s, the plan expects %s", r->name, where,
              have, src->parts > 1 ? part : want);
      continue;
    }
    if (!is_float_dtype(t->dtype)) {
      bind_problem(pr, DIT_ERR_UNSUPPORTED, "key '%s'%s has dtype %s; only F32, F16 and BF16 weights "
              "can be loaded", r->name, where, ckpt_tensor_dtype_name(ck, t));
      continue;
    }
    if (pr->count == 0) {
      DitErr rerr;
      if (ckpt_read_f32(ck, t, r->dst + k * part_numel, &rerr))
        bind_problem(pr, rerr.status, "%s", rerr.msg);
    }
  }
}

/* Checks the request list and the geometry: these are the caller's bugs, not the file's. */
static DitStatus check_args(const WeightRequest *req, size_t n, const DitGeometry *geo,
                            DitErr *err) {
  if (!geo || geo->depth < 1 || geo->hidden < 4 || geo->hidden % 4 || geo->grid < 1 ||
      geo->grid > (1 << 16) || geo->hidden > (1 << 20))
    return dit_err(err, DIT_ERR_ARG, "dit_weights_bind: bad geometry");
  for (size_t i = 0; i < n; i++) {
    const WeightRequest *r = &req[i];
    int64_t numel = 1;
    int ok = r->name && r->rank >= 0 && r->rank <= 4;
    for (int d = 0; ok && d < r->rank; d++)
      ok = r->shape[d] >= 0 && !__builtin_mul_overflow(numel, r->shape[d], &numel);
    if (ok && numel > 0 && !r->dst) ok = 0;
    if (!ok)
      return dit_err(err, DIT_ERR_ARG, "dit_weights_bind: bad request %zu ('%s')", i,
                     r->name ? r->name : "(null)");
  }
  return DIT_OK;
}

DitStatus dit_weights_bind(const Checkpoint *ck, const WeightRequest *req, size_t n,
                           const DitGeometry *geo, DitErr *err) {
  DitStatus st = check_args(req, n, geo, err);
  if (st) return st;
  size_t nt = ckpt_num_tensors(ck);
  unsigned char *used = calloc(nt ? nt : 1, 1);
  if (!used) return dit_err(err, DIT_ERR_NOMEM, "out of memory binding weights");
  BindProblems pr = {err, DIT_OK, 0};
  int diffusers = 0;
  for (size_t i = 0; i < nt && !diffusers; i++)
    diffusers = starts_with(ckpt_tensor_at(ck, i)->name, "transformer_blocks.");

  Source src;
  for (size_t i = 0; i < n; i++) {
    const WeightRequest *r = &req[i];
    if (strlen(r->name) >= NAME_MAX_BYTES - 40) {
      bind_problem(&pr, DIT_ERR_WEIGHTS, "missing key '%.200s...' (the name is too long)", r->name);
      continue;
    }
    if (diffusers) {
      map_diffusers(r->name, &src);
    } else {
      src.parts = 1;
      snprintf(src.name[0], NAME_MAX_BYTES, "%s", r->name);
    }
    /* diffusers recomputes pos_embed and the conversion may drop it: compute it then. */
    if (diffusers && strcmp(r->name, "pos_embed") == 0 && !ckpt_find(ck, "pos_embed")) {
      int64_t numel = 1;
      for (int d = 0; d < r->rank; d++) numel *= r->shape[d];
      if (numel != geo->grid * geo->grid * geo->hidden || r->rank < 2 ||
          r->shape[r->rank - 1] != geo->hidden) {
        char want[96];
        bind_format_shape(want, sizeof want, r->rank, r->shape);
        bind_problem(&pr, DIT_ERR_WEIGHTS, "missing key 'pos_embed', and the plan's shape %s does not "
                "fit the geometry (%lld tokens of %lld) to compute it", want,
                (long long)(geo->grid * geo->grid), (long long)geo->hidden);
      } else if (pr.count == 0) {
        dit_pos_embed_sincos(r->dst, geo->grid, geo->hidden);
      }
      continue;
    }
    bind_one(ck, r, &src, diffusers, used, &pr);
  }

  for (size_t i = 0; i < nt; i++) {
    if (used[i]) continue;
    const CkptTensor *t = ckpt_tensor_at(ck, i);
    const char *rest;
    if (strcmp(t->name, "pos_embed") == 0) continue;
    if (diffusers && is_embedder_copy(t->name, geo->depth, &rest)) {
      char first[NAME_MAX_BYTES];
      snprintf(first, sizeof first, "transformer_blocks.0.norm1.emb.%s", rest);
      /* Only against a block-0 tensor the plan took: its shape is then a real one (a
       * stride-0 view of a huge shape would otherwise make this compare very long). */
      size_t i0 = ckpt_find_index(ck, first);
      if (pr.count == 0 && i0 != (size_t)-1 && used[i0] &&
          !ckpt_tensors_equal(ck, t, ckpt_tensor_at(ck, i0)))
        bind_problem(&pr, DIT_ERR_UNSUPPORTED, "diffusers key '%s' differs from '%s': the official DiT "
                "has one timestep/class embedder for all blocks, so this checkpoint cannot be "
                "loaded", t->name, first);
      continue;
    }
    bind_problem(&pr, DIT_ERR_WEIGHTS, "unexpected key '%s'", t->name);
  }
  free(used);
  return bind_problems_end(&pr);
}

void dit_pos_embed_sincos(float *dst, int64_t grid, int64_t hidden) {
  if (grid <= 0 || hidden <= 0) return;
  if (hidden % 4 != 0) {
    memset(dst, 0, (size_t)(grid * grid * hidden) * sizeof *dst);
    return;
  }
  int64_t quarter = hidden / 4, half = hidden / 2;
  for (int64_t row = 0; row < grid; row++)
    for (int64_t col = 0; col < grid; col++) {
      float *o = dst + (row * grid + col) * hidden; /* [hidden] of token row*grid+col */
      for (int64_t k = 0; k < quarter; k++) {
        /* omega[k] = 1 / 10000^(k/quarter), as numpy computes it in float64 */
        double omega = 1.0 / pow(10000.0, (double)k / (double)quarter);
        double x = (double)col * omega, y = (double)row * omega;
        o[k] = (float)sin(x);
        o[quarter + k] = (float)cos(x);
        o[half + k] = (float)sin(y);
        o[half + quarter + k] = (float)cos(y);
      }
    }
}
