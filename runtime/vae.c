/* vae.c: the public calls of VAE plans (dit/dit.h: dit_vae_info,
 * dit_vae_decode, dit_vae_encode) over the backend interface, and what
 * runtime.c asks of a VAE plan at open and at weight binding. A plan holds
 * the decoder, the encoder or both (PlanModel.parts); with both, the
 * decoder's ops come first ([0, n_forward_ops)), then the encoder's. Inputs
 * go in by name (z; image and noise), results come out by name (decoded;
 * latent), max_batch images per run. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "nonfinite.h"
#include "runtime_internal.h"
#include "weights/vae_weights.h"

void rt_vae_init(DitRuntime *rt) {
  const PlanModel *m = rt->pv.model;
  DitVaeInfo *v = &rt->vae_info;
  rt->vae = 1;
  v->has_decoder = (m->parts & PLAN_VAE_DECODER) != 0;
  v->has_encoder = (m->parts & PLAN_VAE_ENCODER) != 0;
  v->image_size = m->image_size;
  v->latent_size = m->latent_size;
  v->image_channels = m->in_channels;
  v->latent_channels = m->out_channels;
  v->scaling_factor = m->scaling_factor;
  v->max_batch = rt->pv.header->max_batch;
}

DitStatus rt_vae_bind(DitRuntime *rt, const Checkpoint *ck, const WeightRequest *req, size_t n) {
  return vae_weights_bind(ck, req, n, (int)rt->pv.model->parts, &rt->err);
}

const DitVaeInfo *dit_vae_info(const DitRuntime *rt) { return rt->vae ? &rt->vae_info : NULL; }

/* The op range of a part: the decoder's first when the plan has both. */
static void part_ops(const DitRuntime *rt, int decoder, size_t *first, size_t *end) {
  size_t split = rt->pv.io->n_forward_ops;
  bool first_part = decoder || !rt->vae_info.has_decoder;
  *first = first_part ? 0 : split;
  *end = first_part ? split : rt->pv.n_ops;
}

static DitStatus ready(DitRuntime *rt, bool want, const char *what) {
  if (!rt->vae)
    return dit_err(&rt->err, DIT_ERR_ARG, "this is a DiT plan, not a VAE plan: compile a VAE spec "
                   "(specs/vae/sd-vae-ft-mse.dit) to %s", what);
  if (!want)
    return dit_err(&rt->err, DIT_ERR_ARG, "this VAE plan has no %s: compile it with --part %s or --part both",
                   what[0] == 'd' ? "decoder" : "encoder", what[0] == 'd' ? "decoder" : "encoder");
  if (!rt->has_weights) return dit_err(&rt->err, DIT_ERR_ARG, "no weights are bound: call dit_load_weights first");
  return rt_sync_weights(rt);
}

static uint32_t io_value(const DitRuntime *rt, const char *name) {
  const PlanIoName *e = plan_io_named(&rt->pv, name);
  return e ? e->value : DIT_PLAN_NONE;
}

/* One run of a part on rows images: inputs in, ops, the result out. */
static DitStatus run_part(DitRuntime *rt, int decoder, int64_t rows, const float *in, const float *noise,
                          float *out) {
  Backend *be = rt->be;
  uint32_t vin = io_value(rt, decoder ? "z" : "image"), vout = io_value(rt, decoder ? "decoded" : "latent");
  uint32_t vnoise = decoder ? DIT_PLAN_NONE : io_value(rt, "noise");
  size_t first, end;
  part_ops(rt, decoder, &first, &end);
  if (vin == DIT_PLAN_NONE || vout == DIT_PLAN_NONE || (!decoder && vnoise == DIT_PLAN_NONE))
    return dit_err(&rt->err, DIT_ERR_INTERNAL, "the VAE plan does not name its inputs and outputs");
  DitStatus st = be->vt->put(be, vin, rows, in, &rt->err);
  if (!st && !decoder) st = be->vt->put(be, vnoise, rows, noise, &rt->err);
  if (!st) st = be->vt->run(be, first, end, rows, &rt->err);
  if (!st) st = be->vt->fetch(be, vout, rows, out, &rt->err);
  if (!st) rt->last_rows = rt->last_n = rows;
  return st;
}

/* A part over n images, max_batch at a time. */
static DitStatus run_all(DitRuntime *rt, int decoder, int64_t n, const float *in, const float *noise, float *out,
                         int64_t in_per, int64_t out_per) {
  const char *what = decoder ? "decode" : "encode";
  if (n < 1) return dit_err(&rt->err, DIT_ERR_ARG, "dit_vae_%s: n = %lld images", what, (long long)n);
  int64_t mb = rt->vae_info.max_batch;
  float *zeros = NULL;
  if (!decoder && !noise) { /* the posterior's mean: noise 0 */
    if (!(zeros = calloc((size_t)(mb * out_per), sizeof *zeros)))
      return dit_err(&rt->err, DIT_ERR_NOMEM, "out of memory");
  }
  DitStatus st = DIT_OK;
  for (int64_t i = 0; i < n && !st; i += mb) {
    int64_t rows = n - i < mb ? n - i : mb;
    const float *e = decoder ? NULL : noise ? noise + i * out_per : zeros;
    st = run_part(rt, decoder, rows, in + i * in_per, e, out + i * out_per);
    if (!st && rt_first_nonfinite(out + i * out_per, rows * out_per) >= 0)
      st = dit_err(&rt->err, DIT_ERR_NONFINITE, "the VAE's %s of images %lld..%lld holds NaN or infinity (the "
                   "weights or the input are not finite, or they overflow float32)", decoder ? "decode" : "encode",
                   (long long)i, (long long)(i + rows - 1));
  }
  free(zeros);
  return st;
}

DitStatus dit_vae_decode(DitRuntime *rt, int64_t n, const float *z, float *images) {
  DitStatus st = ready(rt, rt->vae && rt->vae_info.has_decoder, "decode");
  const DitVaeInfo *v = &rt->vae_info;
  int64_t zs = v->latent_channels * v->latent_size * v->latent_size;
  int64_t xs = v->image_channels * v->image_size * v->image_size;
  if (!st) st = run_all(rt, 1, n, z, NULL, images, zs, xs);
  return rt_fail(rt, st);
}

DitStatus dit_vae_encode(DitRuntime *rt, int64_t n, const float *images, const float *noise, float *latents) {
  DitStatus st = ready(rt, rt->vae && rt->vae_info.has_encoder, "encode");
  const DitVaeInfo *v = &rt->vae_info;
  int64_t zs = v->latent_channels * v->latent_size * v->latent_size;
  int64_t xs = v->image_channels * v->image_size * v->image_size;
  if (!st) st = run_all(rt, 0, n, images, noise, latents, xs, zs);
  return rt_fail(rt, st);
}
