/* vae_weights.h: binding a checkpoint to the weight table of a compiled VAE
 * plan (family "vae": the Stable Diffusion KL-f8 AutoencoderKL). The plan
 * names its tensors in diffusers' current naming
 * ("decoder.mid_block.attentions.0.to_q.weight"); this module finds each in
 * any of the namings VAE files carry: diffusers' current one, diffusers'
 * legacy attention names (query/key/value/proj_attn), or the original
 * LDM/CompVis one ("decoder.mid.attn_1.q", 1×1-conv attention weights
 * [C,C,1,1], reversed up-block numbering), each also under the
 * "first_stage_model." prefix of a whole latent-diffusion checkpoint. F32,
 * F16 and BF16 tensors are converted to float32. Strict as PyTorch's
 * load_state_dict for the parts the plan holds: nothing missing or
 * mis-shaped, no unexpected key under the decoder's (decoder.,
 * post_quant_conv.) or the encoder's (encoder., quant_conv.) names when the
 * plan has that part; a part the plan lacks, and other models' keys in the
 * file, are ignored. */
#ifndef DIT_RUNTIME_WEIGHTS_VAE_WEIGHTS_H
#define DIT_RUNTIME_WEIGHTS_VAE_WEIGHTS_H

#include "dit_weights.h"

/* parts: bit 1 the plan has the decoder, bit 2 the encoder. Errors as
 * dit_weights_bind: DIT_ERR_WEIGHTS naming the first missing, mis-shaped or
 * unexpected key (with the count of further problems), DIT_ERR_UNSUPPORTED
 * for a dtype that cannot be converted, DIT_ERR_ARG for a bad request. */
DitStatus vae_weights_bind(const Checkpoint *ck, const WeightRequest *req, size_t n, int parts, DitErr *err);

/* The LDM/CompVis name of a diffusers-named VAE key (n_levels: the number
 * of down or up blocks), or 0 when it has none; exposed for tests. */
int vae_ldm_name(const char *diffusers, int n_levels, char *out, size_t cap);

#endif
