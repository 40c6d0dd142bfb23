/* plan_cuda.c: validation of the GPU kernel-image sections of plan.bin
 * (PLAN_SEC_CUDA_CUBIN and PLAN_SEC_CUDA_PTX, plan_format.h), called by
 * plan_load once the ops are checked. Every count, offset and string of a
 * section is checked before the view points into it, so the CUDA backend can
 * trust op_slot, the slots' launch shapes and the images' bounds. The images
 * themselves are only checked for their form (an ELF cubin, NUL-terminated
 * PTX, the emulated device's NUL-terminated text, PLAN_ARCH_EMU) and for
 * holding their slot's entry point: the driver parses them. */
#define _GNU_SOURCE /* memmem */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "plan_view.h"

#define PLAN_CUDA_MAX_SLOTS 4096u
#define PLAN_CUDA_MAX_IMAGES 65536u
#define PLAN_CUDA_MAX_ENTRY 1024u            /* bytes of a lowered name */
#define PLAN_CUDA_MAX_SMEM (227u * 1024u)    /* dynamic shared memory per block (sm_90) */

static bool range_ok(uint64_t offset, uint64_t bytes, uint64_t limit) {
  return offset <= limit && bytes <= limit - offset;
}


/* "sm_80" for 800, "sm_90a" for 901, "emu" for PLAN_ARCH_EMU */
static const char *arch_name(uint32_t arch, char *buf, size_t n) {
  if (arch == PLAN_ARCH_EMU) snprintf(buf, n, "emu");
  else snprintf(buf, n, "sm_%u%s", arch / 10, arch % 10 ? "a" : "");
  return buf;
}

#define EMU_MAGIC "DITEMU1\n" /* tools/emu/README.md, "The kernel image" */

/* Compute capability x 10, +1 for an arch-specific ("a") target: sm_50 to sm_199a. */
static bool arch_ok(uint32_t arch) { return arch >= 500 && arch < 2000 && arch % 10 <= 1; }

/* The launch knobs that the op's shapes fix (kernels/README.md). */
static bool knobs_fit(const PlanView *pv, const PlanOp *op, const PlanKernelSlot *s) {
  switch ((PlanOpKind)op->kind) {
  case PLAN_OP_LN_MODULATE:
  case PLAN_OP_RES_GATE_LN_MODULATE:
    return s->knobs[0] == pv->values[op->out].dims[2] && s->knobs[1] == (int64_t)s->block_threads &&
           s->knobs[2] == (op->kind == PLAN_OP_RES_GATE_LN_MODULATE);
  case PLAN_OP_ATTENTION:
    return s->knobs[0] == plan_attrs_ATTENTION(op).head_dim && s->knobs[1] >= 1 && s->knobs[1] <= 32 &&
           s->knobs[1] * 32 == (int64_t)s->block_threads && s->knobs[2] >= 1;
  case PLAN_OP_PATCHIFY: case PLAN_OP_LINEAR: case PLAN_OP_ADD: case PLAN_OP_TIMESTEP_FREQ:
  case PLAN_OP_EMBEDDING: case PLAN_OP_SILU: case PLAN_OP_UNPATCHIFY: case PLAN_OP_CFG_MIX:
  case PLAN_OP_DIFFUSION_STEP: case PLAN_OP_Q_SAMPLE: case PLAN_OP_DIFFUSION_LOSS: case PLAN_OP_LOSS_GRAD:
  case PLAN_OP_ZEROS: case PLAN_OP_ACT_GRAD: case PLAN_OP_LINEAR_GRAD_X: case PLAN_OP_LINEAR_GRAD_W:
  case PLAN_OP_LN_MODULATE_GRAD: case PLAN_OP_RESIDUAL_GATE_GRAD: case PLAN_OP_ATTENTION_GRAD:
  case PLAN_OP_EMBEDDING_GRAD: case PLAN_OP_UNPATCHIFY_GRAD: case PLAN_OP_SUM_ROWS:
    return true; /* one thread per element: the grid follows from the element count */
  case PLAN_OP_GROUP_NORM: /* group_norm_kernel<THREADS, SILU> */
    return s->knobs[0] == (int64_t)s->block_threads && s->knobs[1] == (plan_attrs_GROUP_NORM(op).act == PLAN_ACT_SILU);
  case PLAN_OP_CONV2D: /* conv2d_kernel<KS, BM, BN, BK>: KS the weight's, BM * BN / 16 threads */
    return s->knobs[0] == pv->values[op->in[1]].dims[2] && s->knobs[1] >= 4 && s->knobs[2] >= 4 &&
           s->knobs[1] % 4 == 0 && s->knobs[2] % 4 == 0 && s->knobs[3] >= 1 &&
           s->knobs[1] * s->knobs[2] / 16 == (int64_t)s->block_threads;
  case PLAN_OP_TO_TOKENS: /* <C>: the channels, out [N, HW, C] */
    return s->knobs[0] == pv->values[op->out].dims[2];
  case PLAN_OP_FROM_TOKENS: case PLAN_OP_LATENT_SAMPLE: /* <C>: out [N, C, H, W] */
    return s->knobs[0] == pv->values[op->out].dims[1];
  }
  return false; /* not a PlanOpKind */
}

/* One section: its tables, then its images. sec names it in messages. */
static DitStatus check_one(const PlanView *pv, PlanCudaView *cv, bool ptx, const char *name, DitErr *err) {
  const char *sec = ptx ? "cuda-ptx" : "cuda-cubin";
  if (cv->bytes < sizeof(PlanCudaHeader))
    return dit_err(err, DIT_ERR_FORMAT, "%s: the %s section is too small for its header", name, sec);
  const PlanCudaHeader *h = (const PlanCudaHeader *)cv->base;
  if (h->n_ops != pv->n_ops)
    return dit_err(err, DIT_ERR_FORMAT, "%s: the %s section maps %u ops, but the plan has %zu", name, sec,
                   h->n_ops, pv->n_ops);
  if (h->n_slots < 1 || h->n_slots > PLAN_CUDA_MAX_SLOTS || h->n_images > PLAN_CUDA_MAX_IMAGES ||
      h->reserved != 0)
    return dit_err(err, DIT_ERR_FORMAT, "%s: the %s section's counts are out of range (%u slots, %u images)",
                   name, sec, h->n_slots, h->n_images);
  if (h->op_slot_offset % 4 || h->slots_offset % 8 || h->images_offset % 8 ||
      h->op_slot_offset < sizeof *h || h->slots_offset < sizeof *h || h->images_offset < sizeof *h ||
      !range_ok(h->op_slot_offset, (uint64_t)h->n_ops * sizeof(uint32_t), cv->bytes) ||
      !range_ok(h->slots_offset, (uint64_t)h->n_slots * sizeof(PlanKernelSlot), cv->bytes) ||
      !range_ok(h->images_offset, (uint64_t)h->n_images * sizeof(PlanKernelImage), cv->bytes))
    return dit_err(err, DIT_ERR_FORMAT, "%s: the %s section's tables lie outside it or are misaligned", name,
                   sec);
  const uint32_t *op_slot = (const uint32_t *)(cv->base + h->op_slot_offset);
  const PlanKernelSlot *slots = (const PlanKernelSlot *)(cv->base + h->slots_offset);
  const PlanKernelImage *images = (const PlanKernelImage *)(cv->base + h->images_offset);

  for (uint32_t j = 0; j < h->n_slots; j++) {
    const PlanKernelSlot *s = &slots[j];
    if (s->name >= pv->strings_bytes || s->entry >= pv->strings_bytes || pv->strings[s->entry] == '\0' ||
        strnlen(pv->strings + s->entry, PLAN_CUDA_MAX_ENTRY) == PLAN_CUDA_MAX_ENTRY)
      return dit_err(err, DIT_ERR_FORMAT, "%s: the %s section: kernel slot %u names no valid string", name,
                     sec, j);
    if (s->family >= PLAN_KF_COUNT || s->family == PLAN_KF_NONE || s->family == PLAN_KF_GEMM)
      return dit_err(err, DIT_ERR_FORMAT, "%s: the %s section: kernel slot %u (%s) names no kernel family (%u)",
                     name, sec, j, plan_string(pv, s->name), s->family);
    if (!dit_kernel_family_takes((PlanKernelFamily)s->family, s->dtypes))
      return dit_err(err, DIT_ERR_FORMAT, "%s: the %s section: kernel slot %u (%s): its family has no template "
                     "for operand dtypes %u", name, sec, j, plan_string(pv, s->name), s->dtypes);
    if (s->block_threads < 32 || s->block_threads > 1024 || s->block_threads % 32 ||
        s->smem_bytes > PLAN_CUDA_MAX_SMEM)
      return dit_err(err, DIT_ERR_FORMAT,
                     "%s: the %s section: kernel slot %u (%s) launches %u threads with %u bytes of shared memory",
                     name, sec, j, plan_string(pv, s->name), s->block_threads, s->smem_bytes);
  }
  for (size_t k = 0; k < pv->n_ops; k++) {
    const PlanOp *op = &pv->ops[k];
    uint32_t j = op_slot[k];
    if (j == DIT_PLAN_NONE) continue; /* a GEMM on cuBLASLt, or a kind the backend runs otherwise */
    PlanKernelFamily want = plan_op_info(op->kind)->family;
    if (want == PLAN_KF_GEMM && plan_attrs_LINEAR(op).act == PLAN_ACT_GELU_TANH)
      want = PLAN_KF_GELU; /* its GELU after a BIAS GEMM (ditc --gelu-epilogue) */
    else if (want == PLAN_KF_GEMM && plan_attrs_LINEAR(op).act == PLAN_ACT_SILU)
      want = PLAN_KF_SILU; /* its SiLU after a BIAS GEMM */
    if (j >= h->n_slots)
      return dit_err(err, DIT_ERR_FORMAT, "%s: the %s section: op %zu has kernel slot %u of %u", name, sec, k,
                     j, h->n_slots);
    if (want == PLAN_KF_NONE || want == PLAN_KF_GEMM)
      return dit_err(err, DIT_ERR_FORMAT, "%s: the %s section: op %zu (kind %u) has a GPU kernel, but that kind "
                     "has none (linear runs on cuBLASLt)", name, sec, k, op->kind);
    const char *slot_name = plan_string(pv, slots[j].name);
    bool family_ok = slots[j].family == (uint32_t)want ||
                     (slots[j].family < PLAN_KF_COUNT && dit_kernel_family_base[slots[j].family] == want &&
                      want != PLAN_KF_GEMM);
    if (!family_ok || !knobs_fit(pv, op, &slots[j]))
      return dit_err(err, DIT_ERR_FORMAT, "%s: the %s section: op %zu (kind %u) cannot run kernel slot %u (%s)",
                     name, sec, k, op->kind, j, slot_name);
  }

  /* images: sorted by slot, then arch, each slot at least once */
  uint32_t prev_slot = 0, prev_arch = 0;
  char an[16];
  for (uint32_t i = 0; i < h->n_images; i++) {
    const PlanKernelImage *im = &images[i];
    bool first = i == 0 || im->slot != prev_slot;
    if (im->slot >= h->n_slots || (first ? im->slot != (i ? prev_slot + 1 : 0) : im->arch <= prev_arch))
      return dit_err(err, DIT_ERR_FORMAT, "%s: the %s section: image %u (slot %u) is out of order: images go by "
                     "slot, then arch, one per arch, every slot at least once", name, sec, i, im->slot);
    bool emu = im->arch == PLAN_ARCH_EMU;
    if (emu && ptx)
      return dit_err(err, DIT_ERR_FORMAT, "%s: the %s section: image %u is an emu image, which belongs in the "
                     "cuda-cubin section only", name, sec, i);
    if (!emu && !arch_ok(im->arch))
      return dit_err(err, DIT_ERR_FORMAT, "%s: the %s section: image %u has an impossible arch %u", name, sec, i,
                     im->arch);
    if (im->reserved != 0)
      return dit_err(err, DIT_ERR_FORMAT, "%s: the %s section: image %u has a nonzero reserved field", name, sec,
                     i);
    if (im->offset % 8 || im->bytes < 4 || !range_ok(im->offset, im->bytes, cv->bytes))
      return dit_err(err, DIT_ERR_FORMAT, "%s: the %s section: image %u lies outside the section (truncated?)",
                     name, sec, i);
    const unsigned char *b = cv->base + im->offset;
    const char *entry = plan_string(pv, slots[im->slot].entry);
    char needle[PLAN_CUDA_MAX_ENTRY + 16];
    size_t len;
    if (ptx) { /* ".entry <name>(" in NUL-terminated text */
      if (b[im->bytes - 1] != '\0')
        return dit_err(err, DIT_ERR_FORMAT, "%s: the %s section: image %u is not NUL-terminated PTX", name, sec,
                       i);
      len = (size_t)snprintf(needle, sizeof needle, ".entry %s(", entry);
    } else if (emu) { /* the emulated device's text, naming the entry in quotes */
      if (im->bytes < sizeof EMU_MAGIC || memcmp(b, EMU_MAGIC, sizeof EMU_MAGIC - 1) != 0)
        return dit_err(err, DIT_ERR_FORMAT, "%s: the %s section: image %u is not an emu image (no DITEMU1 "
                       "magic; recompile with ditc --arch emu)", name, sec, i);
      if (b[im->bytes - 1] != '\0')
        return dit_err(err, DIT_ERR_FORMAT, "%s: the %s section: image %u (emu) is not NUL-terminated", name, sec,
                       i);
      len = (size_t)snprintf(needle, sizeof needle, "\"%s\"", entry);
    } else { /* an ELF whose string table holds the name */
      if (memcmp(b, "\x7f" "ELF", 4) != 0)
        return dit_err(err, DIT_ERR_FORMAT, "%s: the %s section: image %u is not a cubin (no ELF header)", name,
                       sec, i);
      len = strlen(entry) + 1; /* with its NUL: no longer name that merely starts with it */
      memcpy(needle, entry, len);
    }
    if (!memmem(b, im->bytes, needle, len))
      return dit_err(err, DIT_ERR_FORMAT, "%s: the %s section: image %u (%s) lacks the entry point %s of slot %u",
                     name, sec, i, arch_name(im->arch, an, sizeof an), entry, im->slot);
    prev_slot = im->slot;
    prev_arch = im->arch;
  }
  if (h->n_images == 0 || prev_slot != h->n_slots - 1)
    return dit_err(err, DIT_ERR_FORMAT, "%s: the %s section: kernel slot %u has no image", name, sec,
                   h->n_images ? prev_slot + 1 : 0);
  cv->h = h;
  cv->op_slot = op_slot;
  cv->slots = slots;
  cv->images = images;
  return DIT_OK;
}

DitStatus plan_check_cuda(PlanView *pv, const char *name, DitErr *err) {
  DitStatus st;
  if (pv->cubin.base && (st = check_one(pv, &pv->cubin, false, name, err))) return st;
  if (pv->ptx.base && (st = check_one(pv, &pv->ptx, true, name, err))) return st;
  if (pv->cubin.h && pv->ptx.h &&
      (pv->cubin.h->n_slots != pv->ptx.h->n_slots ||
       memcmp(pv->cubin.op_slot, pv->ptx.op_slot, sizeof(uint32_t) * pv->n_ops) != 0 ||
       memcmp(pv->cubin.slots, pv->ptx.slots, sizeof(PlanKernelSlot) * pv->cubin.h->n_slots) != 0))
    return dit_err(err, DIT_ERR_FORMAT, "%s: the cuda-cubin and cuda-ptx sections disagree on the ops' kernels",
                   name);
  return DIT_OK;
}
