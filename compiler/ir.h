/* ir.h: the graph IR. A graph is a flat, topologically ordered array of
 * nodes; node i defines value i (one output per node), so value ids double as
 * node indices and need no fix-up when written to plan.bin. Every value has a
 * static type: dtype and dims, the batch included. Ops are primitive (the
 * official model's operations one by one) so that fusion passes have patterns
 * to match and reverse-mode differentiation has one rule per op. */
#ifndef DIT_COMPILER_IR_H
#define DIT_COMPILER_IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "model_config.h"
#include "status.h"

#define IR_MAX_RANK 4
#define IR_MAX_SRC 6
#define IR_MAX_ELEMS ((int64_t)1 << 50) /* largest tensor ditc accepts, in elements */
#define IR_NO_BLOCK (-1)

/* DT_BF16 is a storage precision, set by pass_bf16 in bf16 plans: type rules
 * give DT_F32, and a value recorded DT_BF16 is a float value stored in bf16. */
typedef enum { DT_F32 = 0, DT_I64 = 1, DT_BF16 = 2 } DType;
static inline bool dtype_is_float(DType t) { return t == DT_F32 || t == DT_BF16; }

typedef enum {
#define OP(id, name, n_src, grad, acc, flops) OP_##id,
#include "ops.def"
#undef OP
  OP_COUNT
} OpKind;

typedef int32_t ValueId;

typedef enum { ACT_NONE = 0, ACT_GELU_TANH = 1, ACT_SILU = 2 } Activation;

typedef struct TensorType {
  DType dtype;
  int rank;
  int64_t dims[IR_MAX_RANK];
} TensorType;

/* Per-op attributes; which member is used is fixed by the op. */
typedef union NodeAttr {
  struct { int axis; int64_t start, len; } slice;   /* SLICE */
  struct { int perm[IR_MAX_RANK]; } permute;        /* PERMUTE */
  struct { int64_t p, channels; } patch;            /* PATCHIFY (p), UNPATCHIFY (p, channels) */
  struct { bool trans_b; } bmm;                     /* BMM */
  struct { double value; } scale;                   /* SCALE */
  struct { double eps; } norm;                      /* LAYERNORM */
  struct { int64_t groups; double eps; Activation act; } gnorm; /* GROUP_NORM: act none or silu */
  struct {                                          /* CONV2D (the kernel size is the weight's) */
    int64_t stride;  /* 1 or 2 */
    int64_t pad[4];  /* top, left, bottom, right: 0 or 1 each */
    int64_t up;      /* nearest upsampling of the input first: 1 or 2 */
    double alpha;    /* out = alpha * (w * x') + b */
  } conv;
  struct { double scale; } latent;                  /* LATENT_SAMPLE */
  struct { int64_t dim; double max_period; } tfreq; /* TIMESTEP_FREQ */
  struct { bool frozen; } param;                    /* PARAM: excluded from training */
  struct { Activation act; } linear;                /* LINEAR */
  struct {                                          /* LN_MODULATE, RES_GATE_LN_MODULATE */
    double eps;
    int64_t shift_col, scale_col; /* columns of mod: [N, shift_col .. +D) */
    int64_t gate_col;             /* column of gmod (RES_GATE_LN_MODULATE only) */
  } lnmod;
  struct { int64_t heads, head_dim; double scale; } attn; /* ATTENTION */
  struct { int64_t guided; } cfg;                   /* CFG_MIX: channels guidance mixes */
  struct { int64_t channels; bool learn_sigma; } step; /* DIFFUSION_STEP, DIFFUSION_LOSS, LOSS_GRAD */
  struct { Activation act; } act_grad;              /* ACT_GRAD */
  struct { int64_t steps; } qs;                     /* Q_SAMPLE: timesteps of the training diffusion */
  struct {                                          /* PARAM_PACK */
    int n_parts;
    const char **names;   /* state-dict keys, in stacking order */
    const int64_t *rows;  /* rows (axis 0) of each part */
  } pack;
} NodeAttr;

typedef struct Node {
  OpKind op;
  TensorType type;      /* of the value this node defines */
  ValueId src[IR_MAX_SRC];
  int n_src;
  NodeAttr attr;
  const char *name;     /* INPUT: "x", "t", "y"; PARAM: state-dict key; else NULL */
  int block;            /* DiT block index, or IR_NO_BLOCK */
} Node;

typedef struct Graph {
  Arena *arena;
  Node *nodes;
  size_t n_nodes, cap_nodes;
  int64_t batch;            /* rows of one forward */
  const ModelConfig *cfg;
  int cur_block;            /* stamped on new nodes */
  /* First error of a failed build; later builder calls become no-ops. */
  DitcStatus status;
  char error[200];
} Graph;

const char *op_name(OpKind op);
const char *activation_name(Activation a);
int op_arity(OpKind op);     /* the most operands */
int op_min_arity(OpKind op); /* fewer when the op takes an optional accumulator */
bool op_differentiable(OpKind op);
/* Real operations per output element of the op's elementwise work (ops.def). */
double op_elementwise_flops(OpKind op);
const char *dtype_name(DType t);

Graph *graph_new(Arena *a, const ModelConfig *cfg, int64_t batch);

/* Builders. Each infers and checks the result type; on failure the graph
 * records the error and every later call returns -1. */
ValueId ir_input(Graph *g, const char *name, DType dt, int rank, const int64_t *dims);
ValueId ir_param(Graph *g, const char *name, int rank, const int64_t *dims, bool frozen);
ValueId ir_unary(Graph *g, OpKind op, ValueId x);
ValueId ir_binary(Graph *g, OpKind op, ValueId a, ValueId b);
ValueId ir_ternary(Graph *g, OpKind op, ValueId a, ValueId b, ValueId c);
ValueId ir_reshape(Graph *g, ValueId x, int rank, const int64_t *dims);
ValueId ir_permute(Graph *g, ValueId x, const int *perm);
ValueId ir_slice(Graph *g, ValueId x, int axis, int64_t start, int64_t len);
ValueId ir_scale(Graph *g, ValueId x, double value);
ValueId ir_layernorm(Graph *g, ValueId x, double eps);
/* torch.nn.GroupNorm(groups, C, eps) of x [N,C,H,W] with weights gamma, beta [C]. */
ValueId ir_group_norm(Graph *g, ValueId x, ValueId gamma, ValueId beta, int64_t groups, double eps);
/* The same followed by act (ACT_NONE or ACT_SILU), fused. */
ValueId ir_group_norm_act(Graph *g, ValueId x, ValueId gamma, ValueId beta, int64_t groups, double eps,
                          Activation act);
/* nn.Conv2d with bias: x [N,Cin,H,W], w [Cout,Cin,k,k] (k 1 or 3), b [Cout] -> [N,Cout,Ho,Wo].
 * x is first nearest-upsampled by up (1 or 2: x'[y][x] = x[y/up][x/up]), then
 * zero-padded by pad = {top, left, bottom, right} (each 0 or 1), then
 * convolved with stride 1 or 2: out = alpha * (w * x') + b,
 * Ho = (H*up + pad[0] + pad[2] - k) / stride + 1, Wo likewise. */
ValueId ir_conv2d(Graph *g, ValueId x, ValueId w, ValueId b, int64_t stride, const int64_t pad[4], int64_t up,
                  double alpha);
/* x [N,C,H,W] -> [N,H*W,C]: an image's positions as tokens. */
ValueId ir_to_tokens(Graph *g, ValueId x);
/* o [N,H*W,C], residual [N,C,H,W] -> residual + o transposed back, [N,C,H,W]. */
ValueId ir_from_tokens(Graph *g, ValueId o, ValueId residual);
/* moments [N,2C,h,w] (mean: channels [0,C), logvar: [C,2C)), noise [N,C,h,w] ->
 * scale * (mean + exp(0.5 * clamp(logvar, -30, 20)) * noise), [N,C,h,w]. */
ValueId ir_latent_sample(Graph *g, ValueId moments, ValueId noise, double scale);
ValueId ir_bmm(Graph *g, ValueId a, ValueId b, bool trans_b);
ValueId ir_patchify(Graph *g, ValueId x, int64_t p);
ValueId ir_unpatchify(Graph *g, ValueId x, int64_t p, int64_t channels);
ValueId ir_timestep_freq(Graph *g, ValueId t, int64_t dim, double max_period);
/* Appends a fully formed node (type inferred); used by the builders and passes. */
ValueId ir_append(Graph *g, const Node *proto);

/* Type rule of one node given its sources already in g. Returns DITC_OK and
 * sets *out, or an error status and a message in err. (ir_ops.c) */
DitcStatus ir_infer_type(const Graph *g, const Node *n, TensorType *out, char *err,
                         size_t err_bytes);

/* Checked element count of a type; -1 when it overflows IR_MAX_ELEMS. */
int64_t type_numel(const TensorType *t);

/* Verifier: every invariant the rest of the compiler relies on. (ir_verify.c) */
DitcStatus ir_verify(const Graph *g, char *err, size_t err_bytes);

#endif
