/* plan_vae.c: what plan_load checks of a plan of the model family "vae"
 * (docs/plan-format.md, "VAE plans"), in place of a DiT plan's model and io
 * checks: the model section's VAE fields, the named inputs and outputs of
 * the parts it holds (z -> decoded; image, noise -> latent) and their
 * shapes, and the io section that points at the first part. */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "plan_view.h"

#define VAE_MAX_DIM ((int64_t)1 << 40)

DitStatus plan_check_vae_model(const PlanView *pv, const char *name, DitErr *err) {
  const PlanModel *m = pv->model;
  const int64_t sizes[] = {m->image_size, m->latent_scale, m->latent_size, m->in_channels, m->out_channels,
                           m->tokens,     m->hidden_size,  m->depth,       m->head_dim,    m->norm_groups};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
    if (sizes[i] < 1 || sizes[i] > VAE_MAX_DIM)
      return dit_err(err, DIT_ERR_FORMAT, "%s: the model section holds an impossible size", name);
  if (m->parts < 1 || m->parts > (PLAN_VAE_DECODER | PLAN_VAE_ENCODER) || m->num_heads != 1 ||
      m->head_dim != m->hidden_size || m->latent_size * m->latent_scale != m->image_size ||
      m->tokens != m->latent_size * m->latent_size || m->grid != m->latent_size ||
      !(isfinite(m->scaling_factor) && m->scaling_factor > 0))
    return dit_err(err, DIT_ERR_FORMAT, "%s: the model section of this VAE plan is inconsistent", name);
  /* exactly the names of the parts it holds */
  bool dec = (m->parts & PLAN_VAE_DECODER) != 0, enc = (m->parts & PLAN_VAE_ENCODER) != 0;
  const struct { const char *name; uint32_t role; bool want; } names[] = {
      {"z", PLAN_IO_INPUT, dec},      {"decoded", PLAN_IO_OUTPUT, dec}, {"image", PLAN_IO_INPUT, enc},
      {"noise", PLAN_IO_INPUT, enc}, {"latent", PLAN_IO_OUTPUT, enc}};
  size_t n_want = 0;
  if (pv->n_io_names > 16)
    return dit_err(err, DIT_ERR_FORMAT, "%s: the io-names section holds %zu names", name, pv->n_io_names);
  for (size_t i = 0; i < pv->n_io_names; i++) {
    const PlanIoName *e = &pv->io_names[i];
    if (e->name >= pv->strings_bytes || e->value >= pv->n_values || e->reserved)
      return dit_err(err, DIT_ERR_FORMAT, "%s: io name %zu is invalid", name, i);
  }
  for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
    const PlanIoName *e = plan_io_named(pv, names[k].name);
    if (!names[k].want && e)
      return dit_err(err, DIT_ERR_FORMAT, "%s: the io-names section names '%s', of a part this plan lacks", name,
                     names[k].name);
    if (!names[k].want) continue;
    if (!e || e->role != names[k].role)
      return dit_err(err, DIT_ERR_FORMAT, "%s: the io-names section %s '%s'", name, e ? "gives another role to" : "lacks",
                     names[k].name);
    n_want++;
  }
  if (pv->n_io_names != n_want)
    return dit_err(err, DIT_ERR_FORMAT, "%s: the io-names section holds names a VAE plan does not have", name);
  return DIT_OK;
}

/* Value v is [max_batch, c, side, side] float32 in the arena. */
static bool image_value(const PlanView *pv, uint32_t v, int64_t c, int64_t side) {
  const PlanValue *x = &pv->values[v];
  return x->storage == PLAN_STORE_ARENA && x->batch_major && x->rank == 4 && x->dtype == PLAN_VDT_F32 &&
         x->dims[1] == c && x->dims[2] == side && x->dims[3] == side;
}

DitStatus plan_check_vae_io(const PlanView *pv, const char *name, DitErr *err) {
  const PlanModel *m = pv->model;
  const PlanIO *io = pv->io;
  bool dec = (m->parts & PLAN_VAE_DECODER) != 0, enc = (m->parts & PLAN_VAE_ENCODER) != 0;
  uint32_t z = dec ? plan_io_named(pv, "z")->value : DIT_PLAN_NONE;
  uint32_t decoded = dec ? plan_io_named(pv, "decoded")->value : DIT_PLAN_NONE;
  uint32_t image = enc ? plan_io_named(pv, "image")->value : DIT_PLAN_NONE;
  uint32_t noise = enc ? plan_io_named(pv, "noise")->value : DIT_PLAN_NONE;
  uint32_t latent = enc ? plan_io_named(pv, "latent")->value : DIT_PLAN_NONE;
  int64_t S = m->image_size, L = m->latent_size, C = m->in_channels, Z = m->out_channels;
  if ((dec && (!image_value(pv, z, Z, L) || !image_value(pv, decoded, C, S))) ||
      (enc && (!image_value(pv, image, C, S) || !image_value(pv, noise, Z, L) || !image_value(pv, latent, Z, L))))
    return dit_err(err, DIT_ERR_FORMAT, "%s: the VAE's inputs or outputs disagree with the model's sizes", name);
  /* the io section: the first part's input and output and op count, no sampler values */
  bool one = !(dec && enc);
  if (io->x != (dec ? z : image) || io->out != (dec ? decoded : latent) || io->t != DIT_PLAN_NONE ||
      io->y != DIT_PLAN_NONE || io->noise != DIT_PLAN_NONE || io->x_next != DIT_PLAN_NONE ||
      io->n_forward_ops < 1 || io->n_forward_ops > pv->n_ops || (one && io->n_forward_ops != pv->n_ops) ||
      (!one && io->n_forward_ops == pv->n_ops))
    return dit_err(err, DIT_ERR_FORMAT, "%s: the io section of this VAE plan is inconsistent", name);
  return DIT_OK;
}
