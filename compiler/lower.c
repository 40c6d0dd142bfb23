/* lower.c: builds the forward graph of the official DiT (models.py) from a
 * ModelConfig, one primitive op per official operation:
 *   tokens = patch_embed(x) + pos_embed
 *   c      = t_embedder(t) + y_embedder(y)
 *   each block: adaLN-Zero modulation, attention and MLP with gated residuals
 *   out    = unpatchify(final_layer(tokens, c))
 * Parameter names are the official state-dict keys. */
#include "lower.h"

#include <math.h>
#include <stdio.h>

typedef struct Lower {
  Graph *g;
  const ModelConfig *c;
  int64_t N; /* batch rows */
} Lower;

static const char *pname(Lower *L, const char *prefix, const char *suffix) {
  return arena_printf(L->g->arena, "%s%s", prefix, suffix);
}

/* nn.Linear: x[..., in] -> [..., out], with its weight and bias parameters. */
static ValueId linear(Lower *L, ValueId x, const char *prefix, int64_t in, int64_t out) {
  int64_t wd[2] = {out, in}, bd[1] = {out};
  ValueId w = ir_param(L->g, pname(L, prefix, ".weight"), 2, wd, false);
  ValueId b = ir_param(L->g, pname(L, prefix, ".bias"), 1, bd, false);
  return ir_binary(L->g, OP_ADD, ir_binary(L->g, OP_MATMUL, x, w), b);
}

/* x_embedder (Conv2d with kernel = stride = p) as patchify + matmul, plus pos_embed. */
static ValueId patch_embed(Lower *L, ValueId x) {
  const ModelConfig *c = L->c;
  Graph *g = L->g;
  int64_t wd[4] = {c->hidden_size, c->in_channels, c->patch_size, c->patch_size};
  int64_t bd[1] = {c->hidden_size};
  ValueId w = ir_param(g, "x_embedder.proj.weight", 4, wd, false);
  ValueId b = ir_param(g, "x_embedder.proj.bias", 1, bd, false);
  ValueId patches = ir_patchify(g, x, c->patch_size);             // [N, T, C*p*p]
  int64_t w2d[2] = {c->hidden_size, c->patch_dim};
  ValueId w2 = ir_reshape(g, w, 2, w2d);                          // [D, C*p*p]
  ValueId tok = ir_binary(g, OP_ADD, ir_binary(g, OP_MATMUL, patches, w2), b);  // [N, T, D]
  int64_t pd[3] = {1, c->tokens, c->hidden_size};
  ValueId pos = ir_param(g, "pos_embed", 3, pd, true);           // [1, T, D], frozen
  return ir_binary(g, OP_ADD, tok, pos);
}

/* c = t_embedder(t) + y_embedder(y): the conditioning vector [N, D]. */
static ValueId conditioning(Lower *L, ValueId t, ValueId y) {
  const ModelConfig *c = L->c;
  Graph *g = L->g;
  ValueId tf = ir_timestep_freq(g, t, c->freq_embed_size, c->max_period);  // [N, 256]
  ValueId h = linear(L, tf, "t_embedder.mlp.0", c->freq_embed_size, c->hidden_size);
  h = ir_unary(g, OP_SILU, h);
  ValueId temb = linear(L, h, "t_embedder.mlp.2", c->hidden_size, c->hidden_size);  // [N, D]
  int64_t td[2] = {c->label_rows, c->hidden_size};
  ValueId table = ir_param(g, "y_embedder.embedding_table.weight", 2, td, false);
  ValueId yemb = ir_binary(g, OP_EMBEDDING, table, y);           // [N, D]
  return ir_binary(g, OP_ADD, temb, yemb);
}

/* One head-split operand of attention: qkv[N,T,3D] slice s -> [N, H, T, hd]. */
static ValueId heads(Lower *L, ValueId qkv, int s) {
  const ModelConfig *c = L->c;
  int64_t D = c->hidden_size;
  ValueId v = ir_slice(L->g, qkv, -1, s * D, D);                  // [N, T, D]
  int64_t d4[4] = {L->N, c->tokens, c->num_heads, c->head_dim};
  v = ir_reshape(L->g, v, 4, d4);                                 // [N, T, H, hd]
  static const int perm[IR_MAX_RANK] = {0, 2, 1, 3};
  return ir_permute(L->g, v, perm);                               // [N, H, T, hd]
}

/* timm Attention: qkv linear, softmax(q k^T * hd^-1/2) v per head, proj linear. */
static ValueId attention(Lower *L, ValueId h, const char *blk) {
  const ModelConfig *c = L->c;
  Graph *g = L->g;
  int64_t D = c->hidden_size;
  ValueId qkv = linear(L, h, pname(L, blk, ".attn.qkv"), D, 3 * D);  // [N, T, 3D]
  ValueId q = heads(L, qkv, 0), k = heads(L, qkv, 1), v = heads(L, qkv, 2);
  ValueId s = ir_bmm(g, q, k, true);                              // [N, H, T, T]
  s = ir_scale(g, s, 1.0 / sqrt((double)c->head_dim));
  ValueId p = ir_unary(g, OP_SOFTMAX, s);
  ValueId o = ir_bmm(g, p, v, false);                             // [N, H, T, hd]
  static const int perm[IR_MAX_RANK] = {0, 2, 1, 3};
  o = ir_permute(g, o, perm);                                     // [N, T, H, hd]
  int64_t d3[3] = {L->N, c->tokens, D};
  o = ir_reshape(g, o, 3, d3);                                    // [N, T, D]
  return linear(L, o, pname(L, blk, ".attn.proj"), D, D);
}

/* timm Mlp: fc1, GELU(tanh), fc2. */
static ValueId mlp(Lower *L, ValueId h, const char *blk) {
  const ModelConfig *c = L->c;
  ValueId u = linear(L, h, pname(L, blk, ".mlp.fc1"), c->hidden_size, c->mlp_hidden);
  u = ir_unary(L->g, OP_GELU_TANH, u);
  return linear(L, u, pname(L, blk, ".mlp.fc2"), c->mlp_hidden, c->hidden_size);
}

/* DiTBlock with adaLN-Zero: chunks (shift, scale, gate) x (msa, mlp). */
static ValueId dit_block(Lower *L, ValueId x, ValueId cond, int i) {
  const ModelConfig *c = L->c;
  Graph *g = L->g;
  int64_t D = c->hidden_size;
  const char *blk = arena_printf(g->arena, "blocks.%d", i);
  g->cur_block = i;
  ValueId sc = ir_unary(g, OP_SILU, cond);                        // [N, D]
  ValueId mod = linear(L, sc, pname(L, blk, ".adaLN_modulation.1"), D, 6 * D);  // [N, 6D]
  ValueId chunk[6];
  for (int k = 0; k < 6; k++) chunk[k] = ir_slice(g, mod, -1, k * D, D);  // [N, D] each
  enum { SHIFT_MSA, SCALE_MSA, GATE_MSA, SHIFT_MLP, SCALE_MLP, GATE_MLP };

  ValueId h = ir_layernorm(g, x, c->layernorm_eps);
  h = ir_ternary(g, OP_MODULATE, h, chunk[SHIFT_MSA], chunk[SCALE_MSA]);
  x = ir_ternary(g, OP_RESIDUAL_GATE, x, chunk[GATE_MSA], attention(L, h, blk));

  h = ir_layernorm(g, x, c->layernorm_eps);
  h = ir_ternary(g, OP_MODULATE, h, chunk[SHIFT_MLP], chunk[SCALE_MLP]);
  x = ir_ternary(g, OP_RESIDUAL_GATE, x, chunk[GATE_MLP], mlp(L, h, blk));
  g->cur_block = IR_NO_BLOCK;
  return x;                                                       // [N, T, D]
}

/* FinalLayer: adaLN (shift, scale), LayerNorm, linear to p*p*C_out, unpatchify. */
static ValueId final_layer(Lower *L, ValueId x, ValueId cond) {
  const ModelConfig *c = L->c;
  Graph *g = L->g;
  int64_t D = c->hidden_size, P = c->patch_size;
  ValueId sc = ir_unary(g, OP_SILU, cond);
  ValueId mod = linear(L, sc, "final_layer.adaLN_modulation.1", D, 2 * D);  // [N, 2D]
  ValueId shift = ir_slice(g, mod, -1, 0, D), scale = ir_slice(g, mod, -1, D, D);
  ValueId h = ir_layernorm(g, x, c->layernorm_eps);
  h = ir_ternary(g, OP_MODULATE, h, shift, scale);
  ValueId o = linear(L, h, "final_layer.linear", D, P * P * c->out_channels);  // [N, T, p*p*Cout]
  return ir_unpatchify(g, o, P, c->out_channels);                // [N, Cout, H, W]
}

/* The model's inputs and forward, shared by the inference and training graphs. */
static ValueId model_forward(Lower *L, ValueId x, ValueId t, ValueId y) {
  const ModelConfig *c = L->c;
  Graph *g = L->g;
  ValueId tok = patch_embed(L, x);                                // [N, T, D]
  ValueId cond = conditioning(L, t, y);                           // [N, D]
  for (int i = 0; i < c->depth && !g->status; i++) tok = dit_block(L, tok, cond, i);
  return final_layer(L, tok, cond);                               // [N, Cout, H, W]
}

static DitcStatus finish(Diag *d, const Spec *spec, Graph *g, Graph **out) {
  const ModelConfig *c = &spec->cfg;
  if (g->status == DITC_ERR_LIMIT) {
    diag_error(d, spec->model_loc,
               "model '%s' is too large: %s (%lld tokens of width %lld)", c->name, g->error,
               (long long)c->tokens, (long long)c->hidden_size);
    return DITC_ERR_LIMIT;
  }
  if (g->status) {
    diag_error(d, span_none(), "internal error lowering '%s': %s", c->name, g->error);
    return g->status;
  }
  *out = g;
  return DITC_OK;
}

DitcStatus lower_forward(Arena *a, Diag *d, const Spec *spec, int64_t batch, Graph **out) {
  const ModelConfig *c = &spec->cfg;
  *out = NULL;
  Graph *g = graph_new(a, c, batch);
  if (!g) return DITC_ERR_NOMEM;
  Lower L = {g, c, batch};
  int64_t xd[4] = {batch, c->in_channels, c->latent_size, c->latent_size};
  int64_t nd[1] = {batch};
  ValueId x = ir_input(g, "x", DT_F32, 4, xd);                   // [N, C, H, W]
  ValueId t = ir_input(g, "t", DT_I64, 1, nd);                   // [N]
  ValueId y = ir_input(g, "y", DT_I64, 1, nd);                   // [N]
  /* DPM-Solver++'s x0 of the last steps: defined before the forward, so that
   * the planner gives it bytes of its own for the whole run (an input defined
   * after the forward, like the noise, may reuse the forward's dead bytes) */
  int64_t hd[4] = {batch, 3 * c->in_channels, c->latent_size, c->latent_size};
  ValueId history = ir_input(g, "history", DT_F32, 4, hd);        // [N, 3C, H, W]
  ValueId img = model_forward(&L, x, t, y);                       // [N, Cout, H, W]
  ir_unary(g, OP_OUTPUT, img);

  /* One sampler step on the model's output, run after the forward when
   * sampling: guidance, then the DDPM/DDIM update of x with this step's noise,
   * or the DPM-Solver++ update with the x0 of the last steps (history). */
  ValueId noise = ir_input(g, "noise", DT_F32, 4, xd);            // [N, C, H, W]
  Node mix = {.op = OP_CFG_MIX, .n_src = 1, .src = {img}};
  mix.attr.cfg.guided = c->guided_channels;
  ValueId guided = ir_append(g, &mix);                            // [N, Cout, H, W]
  Node step = {.op = OP_DIFFUSION_STEP, .n_src = 4, .src = {x, guided, noise, history}};
  step.attr.step.channels = c->in_channels;
  step.attr.step.learn_sigma = c->learn_sigma;
  ir_unary(g, OP_OUTPUT, ir_append(g, &step));                    // x_{t-1} [N, C, H, W]
  return finish(d, spec, g, out);
}

DitcStatus lower_train(Arena *a, Diag *d, const Spec *spec, int64_t batch, Graph **out) {
  const ModelConfig *c = &spec->cfg;
  *out = NULL;
  Graph *g = graph_new(a, c, batch);
  if (!g) return DITC_ERR_NOMEM;
  Lower L = {g, c, batch};
  int64_t xd[4] = {batch, c->in_channels, c->latent_size, c->latent_size};
  int64_t nd[1] = {batch};
  ValueId x0 = ir_input(g, "x0", DT_F32, 4, xd);                 // [N, C, H, W]
  ValueId t = ir_input(g, "t", DT_I64, 1, nd);                   // [N]
  ValueId y = ir_input(g, "y", DT_I64, 1, nd);                   // [N]
  ValueId noise = ir_input(g, "noise", DT_F32, 4, xd);            // [N, C, H, W]
  /* training_losses: x_t = q_sample(x0, t, noise); the model predicts eps
   * (and the variance interpolation); the loss is per sample. */
  Node qs = {.op = OP_Q_SAMPLE, .n_src = 3, .src = {x0, noise, t}};
  qs.attr.qs.steps = DIT_TRAIN_TIMESTEPS;
  ValueId xt = ir_append(g, &qs);                                 // [N, C, H, W]
  ValueId img = model_forward(&L, xt, t, y);                      // [N, Cout, H, W]
  Node loss = {.op = OP_DIFFUSION_LOSS, .n_src = 5, .src = {x0, xt, img, noise, t}};
  loss.attr.step.channels = c->in_channels;
  loss.attr.step.learn_sigma = c->learn_sigma;
  ir_unary(g, OP_OUTPUT, ir_append(g, &loss));                    // [N]
  return finish(d, spec, g, out);
}
