/* plan_ops.h: the table of plan ops, shared by ditc (which writes them) and
 * the runtime (which checks and runs them). Everything that is per op kind
 * comes from DIT_PLAN_OPS below: the PlanOpKind enum and its numbers in
 * plan.bin, the op names, the operand counts and second results that the
 * plan checker enforces, the kernel family that runs the op on a GPU, and a
 * named view of its attributes (PlanAttrs_<ID>). Adding an op starts with a
 * row here: docs/adding-an-op.md. Included by plan_format.h. */
#ifndef DIT_PLAN_OPS_H
#define DIT_PLAN_OPS_H

#include <stdint.h>

/* Where an op may appear: a model forward (inference and training plans),
 * the sampler step after an inference plan's forward, or a training plan's
 * loss and backward. */
typedef enum PlanOpPhase { PLAN_PHASE_FORWARD = 0, PLAN_PHASE_SAMPLER = 1, PLAN_PHASE_TRAIN = 2 } PlanOpPhase;

/* Whether an op writes a second result (out2): never, in training plans only
 * (the pre-activation or log-sum-exp the backward reads), or always. */
typedef enum PlanOut2 { PLAN_OUT2_NEVER = 0, PLAN_OUT2_TRAIN = 1, PLAN_OUT2_ALWAYS = 2 } PlanOut2;

/* The kernel family of an op on the CUDA backend: a cuBLASLt GEMM, one of
 * the NVRTC template families of kernels/ (entry: the prefix of the
 * instantiation's name), or none yet (the training ops run on the CPU).
 * base: the op table's family whose ops it runs: itself, or the one it
 * stands in for (the tensor-core attention for the CUDA-core one; a linear
 * op's activation after its GEMM). dtypes: the PlanKernelSlot.dtypes its
 * templates exist for (PLAN_KF_DT_*: F32 only; F32 or a bf16 result; all
 * fp32 or all bf16; bf16 only). */
#define PLAN_KF_DT_F32 0x1u  /* dtypes 0 */
#define PLAN_KF_DT_OUT 0x3u  /* 0, or PLAN_SLOT_OUT_BF16 */
#define PLAN_KF_DT_BOTH 0x9u /* 0, or PLAN_SLOT_OUT_BF16 | PLAN_SLOT_IN_BF16 */
#define PLAN_KF_DT_BF16 0x8u /* PLAN_SLOT_OUT_BF16 | PLAN_SLOT_IN_BF16 */
#define DIT_KERNEL_FAMILIES(K) \
  K(NONE, "", NONE, PLAN_KF_DT_F32) \
  K(GEMM, "", GEMM, PLAN_KF_DT_F32) \
  K(PATCHIFY, "dit::patchify_kernel<", PATCHIFY, PLAN_KF_DT_OUT) \
  K(UNPATCHIFY, "dit::unpatchify_kernel<", UNPATCHIFY, PLAN_KF_DT_F32) \
  K(ADD, "dit::add_kernel<", ADD, PLAN_KF_DT_F32) \
  K(SILU, "dit::silu_kernel<", SILU, PLAN_KF_DT_OUT) /* also a linear op's SiLU after its BIAS GEMM */ \
  K(TIMESTEP_FREQ, "dit::timestep_freq_kernel<", TIMESTEP_FREQ, PLAN_KF_DT_OUT) \
  K(EMBEDDING, "dit::embedding_kernel<", EMBEDDING, PLAN_KF_DT_F32) \
  K(ADALN_NORM, "dit::adaln_norm_kernel<", ADALN_NORM, PLAN_KF_DT_OUT) \
  K(ATTENTION, "dit::attention_simt_kernel<", ATTENTION, PLAN_KF_DT_BOTH) \
  K(CFG_MIX, "dit::cfg_mix_kernel<", CFG_MIX, PLAN_KF_DT_F32) \
  K(DIFFUSION_STEP, "dit::diffusion_step_kernel<", DIFFUSION_STEP, PLAN_KF_DT_F32) \
  K(GELU, "dit::gelu_tanh_kernel<", GEMM, PLAN_KF_DT_OUT) /* a linear op's GELU after a BIAS GEMM (ditc --gelu-epilogue) */ \
  K(ATTENTION_MMA, "dit::attention_mma_kernel<", ATTENTION, PLAN_KF_DT_BF16) /* bf16 plans: tensor cores, sm_80+ */ \
  K(GROUP_NORM, "dit::group_norm_kernel<", GROUP_NORM, PLAN_KF_DT_F32) /* the VAE's (kernels/vae.cuh): fp32 */ \
  K(CONV2D, "dit::conv2d_kernel<", CONV2D, PLAN_KF_DT_F32) \
  K(TO_TOKENS, "dit::to_tokens_kernel<", TO_TOKENS, PLAN_KF_DT_F32) \
  K(FROM_TOKENS, "dit::from_tokens_kernel<", FROM_TOKENS, PLAN_KF_DT_F32) \
  K(LATENT_SAMPLE, "dit::latent_sample_kernel<", LATENT_SAMPLE, PLAN_KF_DT_F32)

typedef enum PlanKernelFamily {
#define DIT_KF_ENUM(ID, entry, base, dtypes) PLAN_KF_##ID,
  DIT_KERNEL_FAMILIES(DIT_KF_ENUM)
#undef DIT_KF_ENUM
  PLAN_KF_COUNT
} PlanKernelFamily;

/* X(ID, value, name, inputs, acc, out2, out2_over, family, phase, attrs):
 *   value      its number in plan.bin (never reused)
 *   inputs     operand count (the most, when the last is an optional accumulator)
 *   acc        the operand index of an optional accumulator the op adds its
 *              result to, in place (out is then that operand's bytes), or -1
 *   out2       PLAN_OUT2_*: whether it writes a second result
 *   out2_over  the operand out2 may be written over in place, or -1
 *   family     PLAN_KF_*: its kernel family on the GPU
 *   phase      PLAN_PHASE_*
 *   attrs      its attributes, named: PLAN_AI(slot, field) is op->i[slot],
 *              PLAN_AF(slot, field) op->f[slot]
 * Shapes are in plan_check.c and docs/plan-format.md. */
#define DIT_PLAN_OPS(X) \
  /* in: x[N,C,H,W]; out [N,T,C*p*p] */ \
  X(PATCHIFY, 1, patchify, 1, -1, PLAN_OUT2_NEVER, -1, PLAN_KF_PATCHIFY, PLAN_PHASE_FORWARD, \
    PLAN_AI(0, patch)) \
  /* in: x[...,K], W[M,K], b[M]; out act(x W^T + b) [...,M]; training: out2 = the pre-activation */ \
  X(LINEAR, 2, linear, 3, -1, PLAN_OUT2_TRAIN, -1, PLAN_KF_GEMM, PLAN_PHASE_FORWARD, \
    PLAN_AI(0, act)) \
  /* in: a, b (b broadcast over a's leading dims); out like a */ \
  X(ADD, 3, add, 2, -1, PLAN_OUT2_NEVER, -1, PLAN_KF_ADD, PLAN_PHASE_FORWARD, ) \
  /* in: t[N] i64; out [N,freq_dim] (cos, sin) */ \
  X(TIMESTEP_FREQ, 4, timestep_freq, 1, -1, PLAN_OUT2_NEVER, -1, PLAN_KF_TIMESTEP_FREQ, PLAN_PHASE_FORWARD, \
    PLAN_AI(0, freq_dim) PLAN_AF(0, max_period)) \
  /* in: table[V,D], ids[N] i64; out [N,D] */ \
  X(EMBEDDING, 5, embedding, 2, -1, PLAN_OUT2_NEVER, -1, PLAN_KF_EMBEDDING, PLAN_PHASE_FORWARD, ) \
  /* in: x; out like x */ \
  X(SILU, 6, silu, 1, -1, PLAN_OUT2_NEVER, -1, PLAN_KF_SILU, PLAN_PHASE_FORWARD, ) \
  /* in: x[N,T,D], mod[N,M]; out [N,T,D] */ \
  X(LN_MODULATE, 7, ln_modulate, 2, -1, PLAN_OUT2_NEVER, -1, PLAN_KF_ADALN_NORM, PLAN_PHASE_FORWARD, \
    PLAN_AI(0, shift_col) PLAN_AI(1, scale_col) PLAN_AF(0, eps)) \
  /* in: x, h [N,T,D], gmod[N,Mg], mod[N,M]; out [N,T,D]; out2: r = x + gate*h, over x in place */ \
  X(RES_GATE_LN_MODULATE, 8, res_gate_ln_modulate, 4, -1, PLAN_OUT2_ALWAYS, 0, PLAN_KF_ADALN_NORM, \
    PLAN_PHASE_FORWARD, PLAN_AI(0, shift_col) PLAN_AI(1, scale_col) PLAN_AI(2, gate_col) PLAN_AF(0, eps)) \
  /* in: qkv[N,T,3D]; out [N,T,D]; training: out2 = the row log-sum-exp [N,H,T] */ \
  X(ATTENTION, 9, attention, 1, -1, PLAN_OUT2_TRAIN, -1, PLAN_KF_ATTENTION, PLAN_PHASE_FORWARD, \
    PLAN_AI(0, heads) PLAN_AI(1, head_dim) PLAN_AF(0, scale)) \
  /* in: x[N,T,p*p*C]; out [N,C,H,W] */ \
  X(UNPATCHIFY, 10, unpatchify, 1, -1, PLAN_OUT2_NEVER, -1, PLAN_KF_UNPATCHIFY, PLAN_PHASE_FORWARD, \
    PLAN_AI(0, patch) PLAN_AI(1, channels)) \
  /* sampler step (after io.n_forward_ops; per-step parameters: a DitStepParams) */ \
  /* in: model output [rows,Cout,H,W]; out [n,Cout,H,W] */ \
  X(CFG_MIX, 11, cfg_mix, 1, -1, PLAN_OUT2_NEVER, -1, PLAN_KF_CFG_MIX, PLAN_PHASE_SAMPLER, \
    PLAN_AI(0, guided_channels)) \
  /* in: x [n,C,H,W], mixed output [n,Cout,H,W], noise [n,C,H,W], history [n,3C,H,W] (DPM-Solver++'s \
   * x0 of the last steps, read and written); out x_{t-1} [n,C,H,W] */ \
  X(DIFFUSION_STEP, 12, diffusion_step, 4, -1, PLAN_OUT2_NEVER, -1, PLAN_KF_DIFFUSION_STEP, PLAN_PHASE_SAMPLER, \
    PLAN_AI(0, learn_sigma)) \
  /* training plans */ \
  /* in: x0, noise [N,C,H,W], t [N] i64; out x_t */ \
  X(Q_SAMPLE, 13, q_sample, 3, -1, PLAN_OUT2_NEVER, -1, PLAN_KF_NONE, PLAN_PHASE_TRAIN, \
    PLAN_AI(0, timesteps)) \
  /* in: x0, x_t, model out [N,Cout,H,W], noise, t; out loss [N] */ \
  X(DIFFUSION_LOSS, 14, diffusion_loss, 5, -1, PLAN_OUT2_NEVER, -1, PLAN_KF_NONE, PLAN_PHASE_TRAIN, \
    PLAN_AI(0, learn_sigma) PLAN_AI(1, timesteps)) \
  /* the loss's inputs; out d(loss)/d(model out), scaled at run time */ \
  X(LOSS_GRAD, 15, loss_grad, 5, -1, PLAN_OUT2_NEVER, -1, PLAN_KF_NONE, PLAN_PHASE_TRAIN, \
    PLAN_AI(0, learn_sigma) PLAN_AI(1, timesteps)) \
  /* no input; out filled with zeros */ \
  X(ZEROS, 16, zeros, 0, -1, PLAN_OUT2_NEVER, -1, PLAN_KF_NONE, PLAN_PHASE_TRAIN, ) \
  /* in: dy, z; out dy * act'(z) */ \
  X(ACT_GRAD, 17, act_grad, 2, -1, PLAN_OUT2_NEVER, -1, PLAN_KF_NONE, PLAN_PHASE_TRAIN, \
    PLAN_AI(0, act)) \
  /* in: dz [...,M], W [M,K] (, acc); out dx [...,K] */ \
  X(LINEAR_GRAD_X, 18, linear_grad_x, 3, 2, PLAN_OUT2_NEVER, -1, PLAN_KF_NONE, PLAN_PHASE_TRAIN, ) \
  /* in: dz [...,M], x [...,K]; out dW [M,K]; out2 db [M] */ \
  X(LINEAR_GRAD_W, 19, linear_grad_w, 2, -1, PLAN_OUT2_ALWAYS, -1, PLAN_KF_NONE, PLAN_PHASE_TRAIN, ) \
  /* in: dy, x [N,T,D], mod, dmod [N,M] (, acc); out dx; out2 dmod (over dmod) */ \
  X(LN_MODULATE_GRAD, 20, ln_modulate_grad, 5, 4, PLAN_OUT2_ALWAYS, 3, PLAN_KF_NONE, PLAN_PHASE_TRAIN, \
    PLAN_AI(0, shift_col) PLAN_AI(1, scale_col) PLAN_AF(0, eps)) \
  /* in: dr, h [N,T,D], gmod, dmod [N,M]; out dh; out2 dmod (over dmod) */ \
  X(RESIDUAL_GATE_GRAD, 21, residual_gate_grad, 4, -1, PLAN_OUT2_ALWAYS, 3, PLAN_KF_NONE, PLAN_PHASE_TRAIN, \
    PLAN_AI(2, gate_col)) \
  /* in: dout, qkv, out, lse (, acc); out dqkv */ \
  X(ATTENTION_GRAD, 22, attention_grad, 5, 4, PLAN_OUT2_NEVER, -1, PLAN_KF_NONE, PLAN_PHASE_TRAIN, \
    PLAN_AI(0, heads) PLAN_AI(1, head_dim) PLAN_AF(0, scale)) \
  /* in: dout [N,D], ids [N] i64; out dtable [V,D] */ \
  X(EMBEDDING_GRAD, 23, embedding_grad, 2, -1, PLAN_OUT2_NEVER, -1, PLAN_KF_NONE, PLAN_PHASE_TRAIN, ) \
  /* in: dout [N,C,H,W]; out [N,T,p*p*C] */ \
  X(UNPATCHIFY_GRAD, 24, unpatchify_grad, 1, -1, PLAN_OUT2_NEVER, -1, PLAN_KF_NONE, PLAN_PHASE_TRAIN, \
    PLAN_AI(0, patch) PLAN_AI(1, channels)) \
  /* in: dy; out: dy summed over leading rows to out's shape */ \
  X(SUM_ROWS, 25, sum_rows, 1, -1, PLAN_OUT2_NEVER, -1, PLAN_KF_NONE, PLAN_PHASE_TRAIN, ) \
  /* convolutional models (the VAE) */ \
  /* in: x [N,C,H,W], gamma [C], beta [C]; out like x: torch.nn.GroupNorm (biased variance per group), \
   * then act (PLAN_ACT_NONE or PLAN_ACT_SILU) */ \
  X(GROUP_NORM, 26, group_norm, 3, -1, PLAN_OUT2_NEVER, -1, PLAN_KF_GROUP_NORM, PLAN_PHASE_FORWARD, \
    PLAN_AI(0, groups) PLAN_AI(1, act) PLAN_AF(0, eps)) \
  /* in: x [N,Cin,H,W], w [Cout,Cin,k,k], b [Cout]; x nearest-upsampled by `upsample`, zero-padded, \
   * convolved with `stride`; out alpha * (w * x') + b [N,Cout,Ho,Wo] */ \
  X(CONV2D, 27, conv2d, 3, -1, PLAN_OUT2_NEVER, -1, PLAN_KF_CONV2D, PLAN_PHASE_FORWARD, \
    PLAN_AI(0, kernel) PLAN_AI(1, stride) PLAN_AI(2, pad_top) PLAN_AI(3, pad_left) PLAN_AI(4, pad_bottom) \
    PLAN_AI(5, pad_right) PLAN_AI(6, upsample) PLAN_AF(0, alpha)) \
  /* in: x [N,C,H,W]; out [N,H*W,C] */ \
  X(TO_TOKENS, 28, to_tokens, 1, -1, PLAN_OUT2_NEVER, -1, PLAN_KF_TO_TOKENS, PLAN_PHASE_FORWARD, ) \
  /* in: o [N,H*W,C], residual [N,C,H,W]; out residual + o transposed back [N,C,H,W] */ \
  X(FROM_TOKENS, 29, from_tokens, 2, -1, PLAN_OUT2_NEVER, -1, PLAN_KF_FROM_TOKENS, PLAN_PHASE_FORWARD, ) \
  /* in: moments [N,2C,h,w] (mean, logvar), noise [N,C,h,w]; \
   * out scale * (mean + exp(clamp(logvar, -30, 20) / 2) * noise) [N,C,h,w] */ \
  X(LATENT_SAMPLE, 30, latent_sample, 2, -1, PLAN_OUT2_NEVER, -1, PLAN_KF_LATENT_SAMPLE, PLAN_PHASE_FORWARD, \
    PLAN_AF(0, scale))

typedef enum PlanOpKind {
#define DIT_OP_ENUM(ID, value, name, ...) PLAN_OP_##ID = value,
  DIT_PLAN_OPS(DIT_OP_ENUM)
#undef DIT_OP_ENUM
} PlanOpKind;

/* The highest op number: tables indexed by kind have PLAN_OP_MAX + 1 rows.
 * An op numbered above it fails to build. */
#define PLAN_OP_MAX 30
#define DIT_OP_LE_MAX(ID, value, ...) _Static_assert(value <= PLAN_OP_MAX, "PLAN_OP_MAX is below op " #ID);
DIT_PLAN_OPS(DIT_OP_LE_MAX)
#undef DIT_OP_LE_MAX

/* What the table says of one kind, for the checker and the tools. */
typedef struct PlanOpInfo {
  const char *name;   /* NULL: not an op number */
  uint32_t inputs;
  int acc, out2_over;
  PlanOut2 out2;
  PlanKernelFamily family;
  PlanOpPhase phase;
} PlanOpInfo;

static const PlanOpInfo dit_plan_op_info[PLAN_OP_MAX + 1] = {
#define DIT_OP_INFO(ID, value, name, inputs, acc, out2, out2_over, family, phase, attrs) \
  [value] = {#name, inputs, acc, out2_over, out2, family, phase},
    DIT_PLAN_OPS(DIT_OP_INFO)
#undef DIT_OP_INFO
};

/* The row of kind, or NULL for a number that is no op. */
static inline const PlanOpInfo *plan_op_info(uint32_t kind) {
  return kind <= PLAN_OP_MAX && dit_plan_op_info[kind].name ? &dit_plan_op_info[kind] : (const PlanOpInfo *)0;
}

/* The named attributes of each kind: PlanAttrs_LN_MODULATE a =
 * plan_attrs_LN_MODULATE(op); a.shift_col ... and the compiler's
 * plan_set_attrs_LN_MODULATE(op, a). The view holds copies. */
#define PLAN_AI(slot, field) int64_t field;
#define PLAN_AF(slot, field) double field;
#define DIT_OP_VIEW(ID, value, name, inputs, acc, out2, out2_over, family, phase, attrs) \
  typedef struct PlanAttrs_##ID { \
    uint32_t kind; \
    attrs \
  } PlanAttrs_##ID;
DIT_PLAN_OPS(DIT_OP_VIEW)
#undef DIT_OP_VIEW
#undef PLAN_AI
#undef PLAN_AF

/* The prefix of the kernel instantiation's name of a family, "" for none. */
static const char *const dit_kernel_family_entry[PLAN_KF_COUNT] = {
#define DIT_KF_ENTRY(ID, entry, base, dtypes) [PLAN_KF_##ID] = entry,
    DIT_KERNEL_FAMILIES(DIT_KF_ENTRY)
#undef DIT_KF_ENTRY
};

/* The op table's family whose ops a family runs (the table's base). */
static const PlanKernelFamily dit_kernel_family_base[PLAN_KF_COUNT] = {
#define DIT_KF_BASE(ID, entry, base, dtypes) [PLAN_KF_##ID] = PLAN_KF_##base,
    DIT_KERNEL_FAMILIES(DIT_KF_BASE)
#undef DIT_KF_BASE
};

/* Whether a family has a template for slot dtypes d (PlanKernelSlot.dtypes). */
static inline int dit_kernel_family_takes(PlanKernelFamily f, uint32_t d) {
  static const uint32_t ok[PLAN_KF_COUNT] = {
#define DIT_KF_DTYPES(ID, entry, base, dtypes) [PLAN_KF_##ID] = dtypes,
      DIT_KERNEL_FAMILIES(DIT_KF_DTYPES)
#undef DIT_KF_DTYPES
  };
  return (unsigned)f < PLAN_KF_COUNT && d < 4 && ((ok[f] >> d) & 1u);
}

/* plan_format.h defines, after PlanOp, plan_attrs_<ID>(op) (the view of
 * an op's attributes) and plan_set_attrs_<ID>(op, view) (sets kind and
 * attributes; the compiler's). */

#endif
