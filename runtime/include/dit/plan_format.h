/* dit/plan_format.h: the byte layout of plan.bin, shared by the compiler
 * (which writes it) and the runtime (which validates and executes it).
 * docs/plan-format.md is the prose version of this header. All integers are
 * little-endian; every struct has a fixed size asserted below; enum values
 * are explicit and never reused. A plan holds no weights: it names the
 * checkpoint tensors it needs and where each goes in the weight buffer. */
#ifndef DIT_PLAN_FORMAT_H
#define DIT_PLAN_FORMAT_H

#include <stdint.h>

#include "plan_ops.h"

#define DIT_PLAN_MAGIC "DITPLAN" /* 8 bytes with the terminating NUL */
#define DIT_PLAN_VERSION 6u
#define DIT_PLAN_ALIGN 64u       /* every section starts on this boundary */
#define DIT_PLAN_MAX_RANK 4
#define DIT_PLAN_NONE 0xFFFFFFFFu /* "no value" in a value-id field */

/* File header, at offset 0. */
typedef struct PlanHeader {
  char magic[8];               /* DIT_PLAN_MAGIC */
  uint32_t version;            /* DIT_PLAN_VERSION */
  uint32_t header_bytes;       /* sizeof(PlanHeader) */
  char compiler[32];           /* "ditc 0.1.0", NUL-padded */
  uint64_t file_bytes;         /* size of the whole file */
  uint64_t section_table;      /* offset of PlanSection[n_sections] */
  uint32_t n_sections;
  uint32_t dtype;              /* PlanDType: the precision the plan was compiled for */
  uint32_t max_batch;          /* rows one forward may run, 1 .. max_batch */
  uint32_t flags;              /* PlanFlags */
  uint32_t header_crc32;       /* CRC-32 of this header with this field set to 0 */
  uint32_t reserved[7];
} PlanHeader;

/* Header flags. */
#define PLAN_FLAG_TRAIN 1u /* a training plan: a PlanTrain section instead of PlanIO */

typedef enum PlanDType { PLAN_DT_F32 = 0, PLAN_DT_TF32 = 1, PLAN_DT_BF16 = 2 } PlanDType;

/* One entry of the section table. */
typedef struct PlanSection {
  uint32_t kind;   /* PlanSectionKind */
  uint32_t count;  /* records in the section (for record sections) */
  uint64_t offset; /* from the start of the file, a multiple of DIT_PLAN_ALIGN */
  uint64_t bytes;
  uint32_t crc32;  /* CRC-32 (IEEE) of the section's bytes */
  uint32_t flags;  /* PLAN_SECTION_OPTIONAL: a reader that does not know the kind may skip it */
} PlanSection;

#define PLAN_SECTION_OPTIONAL 1u

typedef enum PlanSectionKind {
  PLAN_SEC_MODEL = 1,   /* PlanModel, count 1 */
  PLAN_SEC_STRINGS = 2, /* NUL-terminated UTF-8 strings; fields hold byte offsets into it */
  PLAN_SEC_WEIGHTS = 3, /* PlanWeight[count]: the checkpoint tensors to bind */
  PLAN_SEC_VALUES = 4,  /* PlanValue[count]: every tensor the ops read or write */
  PLAN_SEC_OPS = 5,     /* PlanOp[count], in execution order */
  PLAN_SEC_IO = 6,      /* PlanIO, count 1 (inference plans) */
  PLAN_SEC_IO_NAMES = 7, /* PlanIoName[count]: the plan's inputs and outputs, by name */
  /* 100-199: GPU kernel images per architecture (CUDA backend, issue #5) */
  PLAN_SEC_CUDA_CUBIN = 100,
  PLAN_SEC_CUDA_PTX = 101,
  /* 200-299: training plans */
  PLAN_SEC_TRAIN = 200, /* PlanTrain, count 1 (training plans only) */
  /* 300-399: autotuning, both optional (a reader that predates them runs the defaults) */
  PLAN_SEC_CANDIDATES = 300, /* PlanCandidate[count]: ditc --tune-candidates */
  PLAN_SEC_TUNING = 301,     /* PlanTuningHeader, count 1: what `dit tune` chose, per device */
} PlanSectionKind;

/* The model's configuration, as the compiler validated it. */
typedef struct PlanModel {
  uint32_t name;         /* string offset: "DiT-XL/2" */
  uint32_t learn_sigma;  /* 0 or 1 */
  int64_t image_size, latent_scale, latent_size, in_channels, out_channels;
  int64_t patch_size, grid, tokens, hidden_size, depth, num_heads, head_dim;
  int64_t mlp_hidden, num_classes, label_rows, guided_channels, freq_embed_size;
  double mlp_ratio, class_dropout, layernorm_eps, max_period;
  uint32_t family;       /* string offset: the model family, "dit" (the fields above are its) */
  uint32_t reserved32;
  /* family "vae" (docs/plan-format.md, "Model"): which parts the plan holds,
   * its GroupNorm groups and the latent scaling factor; 0 in DiT plans */
  int64_t parts;          /* PLAN_VAE_DECODER | PLAN_VAE_ENCODER */
  int64_t norm_groups;
  double scaling_factor;  /* DiT-space latent = scaling_factor * the VAE's: 0.18215 */
  int64_t reserved[4];
} PlanModel;

#define PLAN_VAE_DECODER 1
#define PLAN_VAE_ENCODER 2

/* What a named input or output is for. */
typedef enum PlanIoRole {
  PLAN_IO_INPUT = 1,       /* the caller's, before a forward or a training step */
  PLAN_IO_OUTPUT = 2,      /* the call's result */
  PLAN_IO_STEP_INPUT = 3,  /* a sampler step's (its noise) */
  PLAN_IO_STEP_OUTPUT = 4, /* a sampler step's result */
} PlanIoRole;

/* One named input or output of the plan (section PLAN_SEC_IO_NAMES): DiT
 * plans name x, t, y, out (and noise, x_next; or x0, noise, loss); another
 * family names its own (a VAE decoder: z, image). */
typedef struct PlanIoName {
  uint32_t name;  /* string offset */
  uint32_t value; /* value id */
  uint32_t role;  /* PlanIoRole */
  uint32_t reserved;
} PlanIoName;

/* A checkpoint tensor and its place in the weight buffer (float32). */
typedef struct PlanWeight {
  uint32_t name;    /* string offset: official state-dict key */
  uint32_t flags;   /* PLAN_WEIGHT_FROZEN: not trained (pos_embed) */
  uint32_t rank;
  uint32_t dtype;   /* PlanValueDType of the bound data: F32 */
  int64_t dims[DIT_PLAN_MAX_RANK];
  uint64_t offset;  /* bytes into the weight buffer */
  uint64_t bytes;
} PlanWeight;

#define PLAN_WEIGHT_FROZEN 1u

/* Where a value lives: the activation arena, the weight buffer, or (training
 * plans) the gradient buffer, which has the weight buffer's layout. */
typedef enum PlanStorage { PLAN_STORE_ARENA = 1, PLAN_STORE_WEIGHTS = 2, PLAN_STORE_GRADS = 3 } PlanStorage;
/* PLAN_VDT_BF16 (bf16 plans only): a float value the device stores in bf16.
 * In the arena its bytes are 2 per element; a weight's are the host weight
 * buffer's float32 (4 per element), which the backend converts at upload. */
typedef enum PlanValueDType { PLAN_VDT_F32 = 0, PLAN_VDT_I64 = 1, PLAN_VDT_BF16 = 2 } PlanValueDType;

/* A tensor: where it lives and its shape at max_batch. Dim 0 of every arena
 * value is the batch when batch_major is 1: the runtime runs n <= max_batch
 * rows by scaling that dim, and offsets stay as planned. */
typedef struct PlanValue {
  uint32_t storage;     /* PlanStorage */
  uint32_t dtype;       /* PlanValueDType */
  uint32_t rank;
  uint32_t batch_major; /* 1 when dims[0] is the batch */
  int64_t dims[DIT_PLAN_MAX_RANK];
  uint64_t offset;      /* bytes into the arena or weight buffer */
  uint64_t bytes;       /* at max_batch */
} PlanValue;

/* Executable ops: PlanOpKind and everything per kind is in plan_ops.h. */
typedef enum PlanActivation { PLAN_ACT_NONE = 0, PLAN_ACT_GELU_TANH = 1, PLAN_ACT_SILU = 2 } PlanActivation;

typedef struct PlanOp {
  uint32_t kind;    /* PlanOpKind */
  uint32_t n_in;
  uint32_t in[6];   /* value ids */
  uint32_t out;     /* value id */
  uint32_t out2;    /* second result, or DIT_PLAN_NONE */
  int64_t i[7];     /* integer attributes */
  double f[4];      /* float attributes */
} PlanOp;

/* plan_attrs_<ID>(op): the named view of an op's attributes (plan_ops.h);
 * plan_set_attrs_<ID>(op, a): sets its kind and attributes from a view. */
#define PLAN_AI(slot, field) a.field = op->i[slot];
#define PLAN_AF(slot, field) a.field = op->f[slot];
#define DIT_OP_GET(ID, value, name, inputs, acc, out2, out2_over, family, phase, attrs) \
  static inline PlanAttrs_##ID plan_attrs_##ID(const PlanOp *op) { \
    PlanAttrs_##ID a; \
    a.kind = value; \
    (void)op; \
    attrs return a; \
  }
DIT_PLAN_OPS(DIT_OP_GET)
#undef DIT_OP_GET
#undef PLAN_AI
#undef PLAN_AF
#define PLAN_AI(slot, field) op->i[slot] = a.field;
#define PLAN_AF(slot, field) op->f[slot] = a.field;
#define DIT_OP_SET(ID, value, name, inputs, acc, out2, out2_over, family, phase, attrs) \
  static inline void plan_set_attrs_##ID(PlanOp *op, PlanAttrs_##ID a) { \
    op->kind = value; \
    attrs(void) a; \
  }
DIT_PLAN_OPS(DIT_OP_SET)
#undef DIT_OP_SET
#undef PLAN_AI
#undef PLAN_AF

/* The plan's inputs and outputs. Ops [0, n_forward_ops) are the model's
 * forward; the rest are one sampler step. */
typedef struct PlanIO {
  uint32_t x, t, y; /* value ids: x f32 [N,C,H,W], t i64 [N], y i64 [N] */
  uint32_t out;     /* value id: the model output, f32 [N,C_out,H,W] */
  uint64_t arena_bytes;   /* size of the activation arena */
  uint64_t weight_bytes;  /* size of the weight buffer */
  uint64_t unplanned_bytes; /* what the activations would take without reuse (statistics) */
  uint32_t noise;         /* value id: a step's noise, f32 [N,C,H,W] */
  uint32_t x_next;        /* value id: the sampler step's result, f32 [N,C,H,W] */
  uint32_t n_forward_ops;
  uint32_t reserved[5];
} PlanIO;

/* GPU kernel images (sections PLAN_SEC_CUDA_CUBIN and PLAN_SEC_CUDA_PTX).
 * Both sections have the same layout, all offsets relative to the section:
 *   PlanCudaHeader
 *   uint32_t op_slot[n_ops]        the kernel slot of each plan op, in op order,
 *                                  or DIT_PLAN_NONE (a GEMM on cuBLASLt, or no kernel)
 *   PlanKernelSlot slots[n_slots]  one per distinct kernel instantiation
 *   PlanKernelImage images[n_images]
 *   the image bytes (cubin ELF, or NUL-terminated PTX text)
 * A slot is arch-independent (the template instantiation and its launch
 * shape); it has one image per architecture of --arch in the cubin section
 * (the emulated device's too: PLAN_ARCH_EMU), and one PTX image (for the lowest architecture, a JIT fallback for newer
 * GPUs) in the PTX section. The runtime picks the cubin of the device's
 * architecture, else JIT-compiles the PTX. Launch grids are computed by the
 * runtime from the op's shapes and the slot's knobs. */
typedef struct PlanCudaHeader {
  uint32_t n_ops;      /* == the plan's op count */
  uint32_t n_slots;
  uint32_t n_images;
  uint32_t reserved;
  uint64_t op_slot_offset, slots_offset, images_offset;
} PlanCudaHeader;

typedef struct PlanKernelSlot {
  uint32_t name;          /* string offset: the C++ instantiation, "dit::adaln_norm_kernel<1152, 128, true>" */
  uint32_t entry;         /* string offset: its lowered (mangled) name, the symbol in every image */
  uint32_t block_threads; /* threads per block */
  uint32_t smem_bytes;    /* dynamic shared memory per block */
  uint32_t family;        /* PlanKernelFamily (plan_ops.h): which template, so which launch */
  uint32_t dtypes;        /* PLAN_SLOT_*: which of its operands are bf16 (bf16 plans), else 0 */
  int64_t knobs[4];       /* template knobs the launch needs (per kernel; see kernels/README.md) */
} PlanKernelSlot;

/* PlanKernelSlot.dtypes: the kernel writes its op's out in bf16; it reads
 * the op's first input in bf16 (the attention's qkv). Every other operand of
 * a kernel is float32 (or int64). */
#define PLAN_SLOT_OUT_BF16 1u
#define PLAN_SLOT_IN_BF16 2u

typedef struct PlanKernelImage {
  uint32_t slot;
  uint32_t arch;          /* compute capability x 10, e.g. 800, 900; +1 for an "a" target (901 = sm_90a);
                           * PLAN_ARCH_EMU: the emulated device's */
  uint64_t offset;        /* of the bytes, from the section start */
  uint64_t bytes;
  uint32_t registers;     /* per thread, from ptxas (cubins) */
  uint32_t reserved;
} PlanKernelImage;

/* PlanKernelImage.arch of the emulated device's image (ditc --arch emu;
 * tools/emu/README.md), only in the cubin section, sorted before every real
 * arch: one module shared by all slots, the text "DITEMU1\n" + records (the
 * kernel headers and a translation unit naming each slot's kernel by its
 * entry) + NUL, which the emulator compiles with the host C++ compiler. A
 * real GPU never loads it. */
#define PLAN_ARCH_EMU 1u

/* Autotuning (docs/plan-format.md "Candidates and tunings").
 *
 * Section PLAN_SEC_CANDIDATES (ditc --tune-candidates K): the other kernel
 * slots each op may run, sorted by op, each op's in its family's order. An
 * op's candidate 0 is always its op_slot (the default); a candidate is a
 * slot of the same family in both kernel-image sections, with images like
 * any slot's. */
typedef struct PlanCandidate {
  uint32_t op;   /* plan op index */
  uint32_t slot; /* a kernel slot other than op_slot[op] */
} PlanCandidate;

/* Section PLAN_SEC_TUNING (written by `dit tune`, which rewrites the plan):
 *   PlanTuningHeader
 *   PlanTuning tunings[n_tunings]   one per device, each naming its choices
 *   PlanTuneChoice choices[n_choices]
 * offsets relative to the section. A device's tuning is used where the
 * device key (backend, name, arch, sm_count, driver_version) matches the
 * device that runs the plan exactly; elsewhere the plan runs its defaults. */
typedef struct PlanTuningHeader {
  uint32_t n_tunings, n_choices;
  uint64_t tunings_offset, choices_offset;
} PlanTuningHeader;

typedef enum PlanTuneBackend { PLAN_TUNE_CPU = 1, PLAN_TUNE_CUDA = 2, PLAN_TUNE_EMU = 3 } PlanTuneBackend;

typedef struct PlanTuning {
  char device[128];        /* NUL-terminated: "NVIDIA H100 80GB HBM3"; the CPU's model name */
  uint32_t backend;        /* PlanTuneBackend */
  uint32_t arch;           /* compute capability x 10, 90 for sm_90 (cuda, emu); 0 on the CPU */
  uint32_t sm_count;       /* multiprocessors; on the CPU, the threads the runtime uses */
  uint32_t driver_version; /* cuDriverGetVersion; 0 on the CPU */
  uint32_t rows;           /* the forward's rows the ops were timed at */
  uint32_t first_choice;   /* this tuning's choices are [first_choice, first_choice + n_choices) */
  uint32_t n_choices;
  uint32_t reserved;
  int64_t tuned_at;        /* Unix time */
  double default_ms, tuned_ms; /* one forward at `rows`, untuned and tuned */
  uint64_t reserved2;
} PlanTuning;

/* What one choice sets. An op has at most one choice of each kind. */
typedef enum PlanTuneKind {
  PLAN_TUNE_SLOT = 1,      /* slot: a candidate that replaces op_slot[op] */
  PLAN_TUNE_GEMM_ALGO = 2, /* algo: a linear op's cublasLtMatmulAlgo_t, checked with cublasLtMatmulAlgoCheck */
  PLAN_TUNE_CPU_KNOBS = 3, /* cpu: the CPU kernel's knobs (PlanCpuKnob) */
} PlanTuneKind;

/* PlanTuneChoice.cpu[]: 0 is the default for each. */
typedef enum PlanCpuKnob {
  PLAN_CPU_THREADS = 0,   /* OpenMP threads of the op (at most the runtime's) */
  PLAN_CPU_TILE_ROWS = 1, /* linear: rows per sgemm tile (default 256) */
  PLAN_CPU_TILE_COLS = 2, /* linear: columns per tile when the rows fit one tile (default 512) */
  PLAN_CPU_Q_BLOCK = 3,   /* attention: query rows per task (default: all T) */
} PlanCpuKnob;

typedef struct PlanTuneChoice {
  uint32_t op;             /* plan op index */
  uint32_t kind;           /* PlanTuneKind */
  uint32_t slot;           /* PLAN_TUNE_SLOT */
  uint32_t reserved;
  int32_t cpu[4];          /* PLAN_TUNE_CPU_KNOBS */
  uint64_t algo[8];        /* PLAN_TUNE_GEMM_ALGO: the algorithm's opaque bytes */
  double default_us, tuned_us; /* the op alone, as dit tune timed it */
} PlanTuneChoice;

/* A training plan's inputs and results. Ops [0, n_loss_ops) compute the
 * loss (forward); the rest compute every trainable parameter's gradient into
 * the gradient buffer (grad_bytes, laid out like the weight buffer; frozen
 * weights' gradients stay zero). */
typedef struct PlanTrain {
  uint32_t x0, t, y, noise; /* value ids: x0, noise f32 [N,C,H,W]; t, y i64 [N] */
  uint32_t x_t, out, loss;  /* q_sample's result, the model output, the per-sample loss f32 [N] */
  uint32_t recompute;       /* PlanRecompute the plan was compiled with */
  uint64_t arena_bytes, weight_bytes, grad_bytes, unplanned_bytes;
  uint32_t n_loss_ops;
  uint32_t timesteps;       /* of the training diffusion: 1000 */
  uint32_t reserved[6];
} PlanTrain;

typedef enum PlanRecompute { PLAN_RECOMPUTE_NONE = 0, PLAN_RECOMPUTE_BLOCK = 1 } PlanRecompute;

_Static_assert(sizeof(PlanHeader) == 112, "PlanHeader layout");
_Static_assert(sizeof(PlanSection) == 32, "PlanSection layout");
_Static_assert(sizeof(PlanModel) == 240, "PlanModel layout");
_Static_assert(sizeof(PlanIoName) == 16, "PlanIoName layout");
_Static_assert(sizeof(PlanWeight) == 64, "PlanWeight layout");
_Static_assert(sizeof(PlanValue) == 64, "PlanValue layout");
_Static_assert(sizeof(PlanOp) == 128, "PlanOp layout");
_Static_assert(sizeof(PlanIO) == 72, "PlanIO layout");
_Static_assert(sizeof(PlanTrain) == 96, "PlanTrain layout");
_Static_assert(sizeof(PlanCudaHeader) == 40, "PlanCudaHeader layout");
_Static_assert(sizeof(PlanKernelSlot) == 56, "PlanKernelSlot layout");
_Static_assert(sizeof(PlanKernelImage) == 32, "PlanKernelImage layout");
_Static_assert(sizeof(PlanCandidate) == 8, "PlanCandidate layout");
_Static_assert(sizeof(PlanTuningHeader) == 24, "PlanTuningHeader layout");
_Static_assert(sizeof(PlanTuning) == 192, "PlanTuning layout");
_Static_assert(sizeof(PlanTuneChoice) == 112, "PlanTuneChoice layout");

/* CRC-32 (IEEE 802.3, reflected, as zlib) used for header and sections. */
static inline uint32_t dit_plan_crc32(uint32_t crc, const void *data, uint64_t n) {
  const unsigned char *p = (const unsigned char *)data;
  crc = ~crc;
  for (uint64_t k = 0; k < n; k++) {
    crc ^= p[k];
    for (int b = 0; b < 8; b++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

#endif
