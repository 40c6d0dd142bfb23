/* vae_lower.c: the graph of diffusers' AutoencoderKL (dit-reference.md
 * section 5) from a VaeConfig: the decoder, the encoder, or both (the
 * decoder's nodes first), one op per module:
 *   decoder: post_quant_conv (z / scaling_factor folded into its alpha),
 *            conv_in, mid block (resnet, attention, resnet), up blocks of
 *            layers_per_block + 1 resnets and a nearest x2 upsample fused
 *            into the next 3x3 conv, GroupNorm + SiLU, conv_out
 *   encoder: conv_in, down blocks of layers_per_block resnets and a stride-2
 *            conv on (0, 1, 0, 1) padding, mid block, GroupNorm + SiLU,
 *            conv_out to 2 * latent_channels moments, quant_conv, then
 *            scaling_factor * (mean + std * noise)
 * Parameter names are diffusers' current ones (decoder.up_blocks.0.resnets.0
 * .norm1.weight, decoder.mid_block.attentions.0.to_q.weight, to_out.0, ...);
 * the runtime's checkpoint binder maps the legacy and LDM namings onto them.
 * Linears are MATMUL + ADD, which pass_fuse_linear fuses; the attention is
 * written as the DiT's is, so that pass_fuse_attention makes it one
 * ATTENTION op (1 head of width C). Its q, k and v weights are a PARAM_PACK
 * built here, not by a pass: no pass packs separate linears that share an
 * input (pass_hoist_adaln packs only the adaLN linears of one SiLU). */
#include <math.h>

#include "families/vae/vae_family.h"
#include "lower.h"

typedef struct VaeLower {
  Graph *g;
  const VaeConfig *v;
  int64_t N; /* batch rows */
} VaeLower;

static const char *pname(VaeLower *L, const char *prefix, const char *suffix) {
  return arena_printf(L->g->arena, "%s.%s", prefix, suffix);
}

/* nn.Conv2d(cin, cout, k) with bias, named prefix.weight / prefix.bias:
 * x [N,cin,H,W] -> [N,cout,Ho,Wo]; up: nearest upsampling of x first. */
static ValueId conv(VaeLower *L, ValueId x, const char *prefix, int64_t cin, int64_t cout, int64_t k,
                    int64_t stride, const int64_t pad[4], int64_t up, double alpha) {
  int64_t wd[4] = {cout, cin, k, k}, bd[1] = {cout};
  ValueId w = ir_param(L->g, pname(L, prefix, "weight"), 4, wd, false);  // [cout, cin, k, k]
  ValueId b = ir_param(L->g, pname(L, prefix, "bias"), 1, bd, false);    // [cout]
  return ir_conv2d(L->g, x, w, b, stride, pad, up, alpha);
}

static const int64_t PAD_SAME3[4] = {1, 1, 1, 1}; /* a 3x3 conv, padding 1 */
static const int64_t PAD_NONE[4] = {0, 0, 0, 0};
static const int64_t PAD_DOWN[4] = {0, 0, 1, 1};  /* F.pad(x, (0, 1, 0, 1)): bottom and right */

static ValueId conv3(VaeLower *L, ValueId x, const char *prefix, int64_t cin, int64_t cout) {
  return conv(L, x, prefix, cin, cout, 3, 1, PAD_SAME3, 1, 1.0);
}

/* nn.GroupNorm(norm_num_groups, c, eps 1e-6) with affine, then act. */
static ValueId norm(VaeLower *L, ValueId x, const char *prefix, int64_t c, Activation act) {
  int64_t d[1] = {c};
  ValueId gamma = ir_param(L->g, pname(L, prefix, "weight"), 1, d, false);  // [c]
  ValueId beta = ir_param(L->g, pname(L, prefix, "bias"), 1, d, false);     // [c]
  return ir_group_norm_act(L->g, x, gamma, beta, L->v->norm_num_groups, VAE_NORM_EPS, act);
}

/* ResnetBlock2D (no time embedding, dropout 0, output scale 1):
 * shortcut(x) + conv2(SiLU(GN(conv1(SiLU(GN(x)))))), the shortcut a 1x1
 * conv when the channels change. x [N,cin,H,W] -> [N,cout,H,W]. */
static ValueId resnet(VaeLower *L, ValueId x, const char *prefix, int64_t cin, int64_t cout) {
  Graph *g = L->g;
  ValueId h = norm(L, x, pname(L, prefix, "norm1"), cin, ACT_SILU);
  h = conv3(L, h, pname(L, prefix, "conv1"), cin, cout);                   // [N, cout, H, W]
  h = norm(L, h, pname(L, prefix, "norm2"), cout, ACT_SILU);
  h = conv3(L, h, pname(L, prefix, "conv2"), cout, cout);
  ValueId sc = cin == cout ? x : conv(L, x, pname(L, prefix, "conv_shortcut"), cin, cout, 1, 1, PAD_NONE, 1, 1.0);
  return ir_binary(g, OP_ADD, sc, h);                                     // [N, cout, H, W]
}

/* nn.Linear(c, c) on tokens t [N,T,c] from a weight and bias (a PARAM or a
 * PARAM_PACK), as MATMUL + ADD. */
static ValueId linear_wb(VaeLower *L, ValueId t, ValueId w, ValueId b) {
  return ir_binary(L->g, OP_ADD, ir_binary(L->g, OP_MATMUL, t, w), b);
}

/* q, k or v of one head: qkv [N,T,3C] slice s -> [N,1,T,C], written as the
 * DiT's head split so that pass_fuse_attention matches it. */
static ValueId head(VaeLower *L, ValueId qkv, int s, int64_t T, int64_t C) {
  ValueId x = ir_slice(L->g, qkv, -1, s * C, C);                          // [N, T, C]
  int64_t d4[4] = {L->N, T, 1, C};
  x = ir_reshape(L->g, x, 4, d4);                                         // [N, T, 1, C]
  static const int perm[IR_MAX_RANK] = {0, 2, 1, 3};
  return ir_permute(L->g, x, perm);                                       // [N, 1, T, C]
}

/* A PARAM_PACK of prefix.to_q/to_k/to_v.<what>: [3C, C] weights or [3C] biases. */
static ValueId qkv_pack(VaeLower *L, const char *prefix, const char *what, int64_t C, int rank) {
  Graph *g = L->g;
  const char **names = arena_array(g->arena, 3, sizeof(char *));
  int64_t *rows = arena_array(g->arena, 3, sizeof(int64_t));
  if (!names || !rows) {
    g->status = DITC_ERR_NOMEM;
    return -1;
  }
  static const char *const part[3] = {"to_q", "to_k", "to_v"};
  for (int i = 0; i < 3; i++) {
    names[i] = arena_printf(g->arena, "%s.%s.%s", prefix, part[i], what);
    rows[i] = C;
  }
  Node p = {.op = OP_PARAM_PACK, .n_src = 0};
  p.type.dtype = DT_F32;
  p.type.rank = rank;
  p.type.dims[0] = 3 * C;
  p.type.dims[1] = C;
  p.attr.pack.n_parts = 3;
  p.attr.pack.names = names;
  p.attr.pack.rows = rows;
  p.name = names[0];
  return ir_append(g, &p);
}

/* The mid block's Attention (1 head, scale 1/sqrt(C), residual, rescale 1):
 * x + to_out(softmax(q k^T / sqrt(C)) v) over the H*W positions of GN(x). */
static ValueId attention(VaeLower *L, ValueId x, const char *prefix, int64_t C, int64_t T) {
  Graph *g = L->g;
  ValueId h = norm(L, x, pname(L, prefix, "group_norm"), C, ACT_NONE);    // [N, C, H, W]
  ValueId t = ir_to_tokens(g, h);                                         // [N, T, C]
  ValueId w_qkv = qkv_pack(L, prefix, "weight", C, 2);                    // [3C, C]
  ValueId b_qkv = qkv_pack(L, prefix, "bias", C, 1);                      // [3C]
  ValueId qkv = linear_wb(L, t, w_qkv, b_qkv);                            // [N, T, 3C]
  ValueId q = head(L, qkv, 0, T, C), k = head(L, qkv, 1, T, C), v = head(L, qkv, 2, T, C);
  ValueId s = ir_bmm(g, q, k, true);                                      // [N, 1, T, T]
  s = ir_scale(g, s, 1.0 / sqrt((double)C));
  ValueId o = ir_bmm(g, ir_unary(g, OP_SOFTMAX, s), v, false);            // [N, 1, T, C]
  static const int perm[IR_MAX_RANK] = {0, 2, 1, 3};
  o = ir_permute(g, o, perm);                                             // [N, T, 1, C]
  int64_t d3[3] = {L->N, T, C};
  o = ir_reshape(g, o, 3, d3);                                            // [N, T, C]
  int64_t wd[2] = {C, C}, bd[1] = {C};
  ValueId w = ir_param(g, pname(L, prefix, "to_out.0.weight"), 2, wd, false);
  ValueId b = ir_param(g, pname(L, prefix, "to_out.0.bias"), 1, bd, false);
  o = linear_wb(L, o, w, b);                                              // [N, T, C]
  return ir_from_tokens(g, o, x);                                         // x + o^T, [N, C, H, W]
}

/* UNetMidBlock2D: resnet, attention (mid_block_add_attention), resnet, at
 * C channels and side S. */
static ValueId mid_block(VaeLower *L, ValueId x, const char *side, int64_t C, int64_t S) {
  const char *mid = arena_printf(L->g->arena, "%s.mid_block", side);
  x = resnet(L, x, pname(L, mid, "resnets.0"), C, C);
  if (L->v->mid_block_add_attention) x = attention(L, x, pname(L, mid, "attentions.0"), C, S * S);
  return resnet(L, x, pname(L, mid, "resnets.1"), C, C);
}

/* Decoder(z) after post_quant_conv: z [N, latent, h, w] -> [N, out, H, W]. */
static ValueId decoder(VaeLower *L, ValueId z) {
  const VaeConfig *v = L->v;
  Graph *g = L->g;
  int64_t levels = v->levels, lat = v->latent_channels;
  if (v->use_post_quant_conv) /* post_quant_conv(z / scaling_factor): 1 / scaling_factor as its alpha */
    z = conv(L, z, "post_quant_conv", lat, lat, 1, 1, PAD_NONE, 1, 1.0 / v->scaling_factor);
  else
    z = ir_scale(g, z, 1.0 / v->scaling_factor);
  int64_t prev = v->mid_channels;
  ValueId h = conv3(L, z, "decoder.conv_in", lat, prev);                  // [N, C_last, h, w]
  h = mid_block(L, h, "decoder", prev, v->latent_size);
  for (int64_t i = 0; i < levels && !g->status; i++) {
    int64_t ch = v->block_out_channels.v[levels - 1 - i]; /* reversed(block_out_channels) */
    for (int64_t j = 0; j <= v->layers_per_block; j++) {
      const char *p = arena_printf(g->arena, "decoder.up_blocks.%lld.resnets.%lld", (long long)i, (long long)j);
      h = resnet(L, h, p, j == 0 ? prev : ch, ch);
    }
    prev = ch;
    if (i < levels - 1) { /* Upsample2D: nearest x2, fused into its 3x3 conv */
      const char *p = arena_printf(g->arena, "decoder.up_blocks.%lld.upsamplers.0.conv", (long long)i);
      h = conv(L, h, p, ch, ch, 3, 1, PAD_SAME3, 2, 1.0);                 // side x2
    }
  }
  h = norm(L, h, "decoder.conv_norm_out", prev, ACT_SILU);
  return conv3(L, h, "decoder.conv_out", prev, v->out_channels);          // [N, out, H, W]
}

/* Encoder + quant_conv: image [N, in, H, W] -> moments [N, 2 latent, h, w]. */
static ValueId encoder(VaeLower *L, ValueId x) {
  const VaeConfig *v = L->v;
  Graph *g = L->g;
  int64_t levels = v->levels, lat2 = 2 * v->latent_channels;
  int64_t prev = v->block_out_channels.v[0];
  ValueId h = conv3(L, x, "encoder.conv_in", v->in_channels, prev);       // [N, C_0, H, W]
  for (int64_t i = 0; i < levels && !g->status; i++) {
    int64_t ch = v->block_out_channels.v[i];
    for (int64_t j = 0; j < v->layers_per_block; j++) {
      const char *p = arena_printf(g->arena, "encoder.down_blocks.%lld.resnets.%lld", (long long)i, (long long)j);
      h = resnet(L, h, p, j == 0 ? prev : ch, ch);
    }
    prev = ch;
    if (i < levels - 1) { /* Downsample2D: pad (0, 1, 0, 1), 3x3 conv, stride 2 */
      const char *p = arena_printf(g->arena, "encoder.down_blocks.%lld.downsamplers.0.conv", (long long)i);
      h = conv(L, h, p, ch, ch, 3, 2, PAD_DOWN, 1, 1.0);                  // side / 2
    }
  }
  h = mid_block(L, h, "encoder", prev, v->latent_size);
  h = norm(L, h, "encoder.conv_norm_out", prev, ACT_SILU);
  h = conv3(L, h, "encoder.conv_out", prev, lat2);                        // [N, 2 latent, h, w] (double_z)
  if (v->use_quant_conv) h = conv(L, h, "quant_conv", lat2, lat2, 1, 1, PAD_NONE, 1, 1.0);
  return h;
}

static DitcStatus finish(Diag *d, const Spec *spec, Graph *g, Graph **out) {
  const ModelConfig *c = &spec->cfg;
  if (g->status == DITC_ERR_LIMIT) {
    diag_error(d, spec->model_loc, "model '%s' is too large: %s (images of %lldx%lld at batch %lld)", c->name,
               g->error, (long long)c->vae.image_size, (long long)c->vae.image_size, (long long)g->batch);
    return DITC_ERR_LIMIT;
  }
  if (g->status) {
    diag_error(d, span_none(), "internal error lowering '%s': %s", c->name, g->error);
    return g->status;
  }
  *out = g;
  return DITC_OK;
}

/* The graph of the parts `parts` names, for batch rows. */
static DitcStatus lower_parts(Arena *a, Diag *d, const Spec *spec, int64_t batch, int64_t parts, Graph **out) {
  const ModelConfig *c = &spec->cfg;
  const VaeConfig *v = &c->vae;
  *out = NULL;
  Graph *g = graph_new(a, c, batch);
  if (!g) return DITC_ERR_NOMEM;
  VaeLower L = {g, v, batch};
  int64_t zd[4] = {batch, v->latent_channels, v->latent_size, v->latent_size};
  if (parts & PLAN_VAE_DECODER) {
    ValueId z = ir_input(g, "z", DT_F32, 4, zd);                         // [N, latent, h, w], DiT-space
    ir_unary(g, OP_OUTPUT, decoder(&L, z));                               // "decoded" [N, out, H, W]
  }
  if (parts & PLAN_VAE_ENCODER) {
    int64_t xd[4] = {batch, v->in_channels, v->image_size, v->image_size};
    /* both inputs before the encoder's ops: the runtime puts them before it
     * runs them, so their bytes must not be any encoder value's */
    ValueId x = ir_input(g, "image", DT_F32, 4, xd);                     // [N, in, H, W] in [-1, 1]
    ValueId noise = ir_input(g, "noise", DT_F32, 4, zd);                 // [N, latent, h, w]
    ValueId moments = encoder(&L, x);                                     // [N, 2 latent, h, w]
    ir_unary(g, OP_OUTPUT, ir_latent_sample(g, moments, noise, v->scaling_factor));  // "latent"
  }
  return finish(d, spec, g, out);
}

DitcStatus vae_lower_forward(Arena *a, Diag *d, const Spec *spec, int64_t batch, Graph **out) {
  return lower_parts(a, d, spec, batch, spec->cfg.vae.parts, out);
}

DitcStatus vae_lower_whole(Arena *a, Diag *d, const Spec *spec, Graph **out) {
  return lower_parts(a, d, spec, 1, PLAN_VAE_DECODER | PLAN_VAE_ENCODER, out);
}

DitcStatus vae_lower_train(Arena *a, Diag *d, const Spec *spec, int64_t batch, Graph **out) {
  (void)a;
  (void)batch;
  *out = NULL;
  diag_error(d, spec->family_loc, "model '%s' is a VAE: ditc compiles VAEs for inference only (no --mode train)",
             spec->cfg.name);
  return DITC_ERR_USAGE;
}
