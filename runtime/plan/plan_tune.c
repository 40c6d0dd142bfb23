/* plan_tune.c: validating a plan's autotuning sections (plan_format.h):
 * the kernel candidates of ditc --tune-candidates (section 300) and the
 * tunings `dit tune` wrote (section 301). plan_load calls plan_check_tune
 * after the kernel-image sections are checked, so slots can be trusted. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "plan_view.h"

#define PLAN_TUNE_MAX_TUNINGS 256u
#define PLAN_TUNE_MAX_CHOICES (1u << 20)
#define PLAN_TUNE_MAX_THREADS 4096
#define PLAN_TUNE_MAX_TILE (1 << 24)

static bool range_ok(uint64_t offset, uint64_t bytes, uint64_t limit) {
  return offset <= limit && bytes <= limit - offset;
}

void plan_op_candidates(const PlanView *pv, size_t op, size_t *first, size_t *count) {
  size_t lo = 0, hi = pv->n_candidates; /* the first record with .op >= op */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (pv->candidates[mid].op < op) lo = mid + 1;
    else hi = mid;
  }
  size_t end = lo;
  while (end < pv->n_candidates && pv->candidates[end].op == op) end++;
  *first = lo;
  *count = end - lo;
}

/* The kernel slots of either image section (they agree: plan_cuda.c). */
static const PlanCudaView *kernels(const PlanView *pv) { return pv->cubin.h ? &pv->cubin : pv->ptx.h ? &pv->ptx : NULL; }

static DitStatus check_candidates(const PlanView *pv, const char *name, DitErr *err) {
  const PlanCudaView *cv = kernels(pv);
  if (pv->n_candidates && !cv)
    return dit_err(err, DIT_ERR_FORMAT, "%s: the plan has kernel candidates but no GPU kernels", name);
  for (size_t i = 0; i < pv->n_candidates; i++) {
    const PlanCandidate *c = &pv->candidates[i];
    if (c->op >= pv->n_ops || c->slot >= cv->h->n_slots)
      return dit_err(err, DIT_ERR_FORMAT, "%s: kernel candidate %zu names op %u, slot %u: out of range", name, i,
                     c->op, c->slot);
    uint32_t def = cv->op_slot[c->op];
    if (def == DIT_PLAN_NONE || c->slot == def || cv->slots[c->slot].family != cv->slots[def].family)
      return dit_err(err, DIT_ERR_FORMAT, "%s: kernel candidate %zu: slot %u is not another kernel of op %u's "
                     "family", name, i, c->slot, c->op);
    if (i && (c->op < c[-1].op || (c->op == c[-1].op && c->slot == c[-1].slot)))
      return dit_err(err, DIT_ERR_FORMAT, "%s: kernel candidate %zu is out of order (records go by op) or "
                     "repeated", name, i);
  }
  return DIT_OK;
}

/* Whether slot is op's default or one of its candidates. */
static bool slot_allowed(const PlanView *pv, const PlanCudaView *cv, uint32_t op, uint32_t slot) {
  if (cv->op_slot[op] == slot) return true;
  size_t first, count;
  plan_op_candidates(pv, op, &first, &count);
  for (size_t k = first; k < first + count; k++)
    if (pv->candidates[k].slot == slot) return true;
  return false;
}

static DitStatus check_choice(const PlanView *pv, const PlanTuneChoice *c, const char *what, DitErr *err) {
  const PlanCudaView *cv = kernels(pv);
  if (c->op >= pv->n_ops || c->reserved != 0)
    return dit_err(err, DIT_ERR_FORMAT, "%s names op %u of %zu", what, c->op, pv->n_ops);
  switch ((PlanTuneKind)c->kind) {
  case PLAN_TUNE_SLOT:
    if (!cv || !slot_allowed(pv, cv, c->op, c->slot))
      return dit_err(err, DIT_ERR_FORMAT, "%s: slot %u is neither op %u's kernel nor one of its candidates", what,
                     c->slot, c->op);
    return DIT_OK;
  case PLAN_TUNE_GEMM_ALGO:
    if (pv->ops[c->op].kind != PLAN_OP_LINEAR)
      return dit_err(err, DIT_ERR_FORMAT, "%s: a GEMM algorithm for op %u, which is no linear op", what, c->op);
    return DIT_OK;
  case PLAN_TUNE_CPU_KNOBS:
    if (c->cpu[PLAN_CPU_THREADS] < 0 || c->cpu[PLAN_CPU_THREADS] > PLAN_TUNE_MAX_THREADS)
      return dit_err(err, DIT_ERR_FORMAT, "%s: %d threads", what, c->cpu[PLAN_CPU_THREADS]);
    for (int k = PLAN_CPU_TILE_ROWS; k <= PLAN_CPU_Q_BLOCK; k++)
      if (c->cpu[k] < 0 || c->cpu[k] > PLAN_TUNE_MAX_TILE)
        return dit_err(err, DIT_ERR_FORMAT, "%s: CPU knob %d is %d", what, k, c->cpu[k]);
    return DIT_OK;
  }
  return dit_err(err, DIT_ERR_FORMAT, "%s has an unknown kind %u", what, c->kind);
}

static DitStatus check_tunings(const PlanView *pv, const unsigned char *base, uint64_t bytes, PlanView *out,
                               const char *name, DitErr *err) {
  if (bytes < sizeof(PlanTuningHeader))
    return dit_err(err, DIT_ERR_FORMAT, "%s: the tuning section is too small for its header", name);
  const PlanTuningHeader *h = (const PlanTuningHeader *)base;
  if (h->n_tunings < 1 || h->n_tunings > PLAN_TUNE_MAX_TUNINGS || h->n_choices > PLAN_TUNE_MAX_CHOICES ||
      h->tunings_offset % 8 || h->choices_offset % 8 || h->tunings_offset < sizeof *h ||
      h->choices_offset < sizeof *h ||
      !range_ok(h->tunings_offset, (uint64_t)h->n_tunings * sizeof(PlanTuning), bytes) ||
      !range_ok(h->choices_offset, (uint64_t)h->n_choices * sizeof(PlanTuneChoice), bytes))
    return dit_err(err, DIT_ERR_FORMAT, "%s: the tuning section's tables lie outside it, are misaligned or "
                   "out of range", name);
  const PlanTuning *t = (const PlanTuning *)(base + h->tunings_offset);
  const PlanTuneChoice *ch = (const PlanTuneChoice *)(base + h->choices_offset);
  char what[512];
  for (uint32_t i = 0; i < h->n_tunings; i++) {
    const PlanTuning *u = &t[i];
    if (!memchr(u->device, '\0', sizeof u->device) || u->device[0] == '\0' || u->backend < PLAN_TUNE_CPU ||
        u->backend > PLAN_TUNE_EMU || u->rows < 1 || u->rows > pv->header->max_batch || u->reserved ||
        u->reserved2 || u->first_choice > h->n_choices || u->n_choices > h->n_choices - u->first_choice)
      return dit_err(err, DIT_ERR_FORMAT, "%s: tuning %u is invalid (its device, backend, rows or choices)", name,
                     i);
    for (uint32_t j = 0; j < i; j++)
      if (t[j].backend == u->backend && t[j].arch == u->arch && t[j].sm_count == u->sm_count &&
          t[j].driver_version == u->driver_version && strcmp(t[j].device, u->device) == 0)
        return dit_err(err, DIT_ERR_FORMAT, "%s: tunings %u and %u are for the same device", name, j, i);
    for (uint32_t k = u->first_choice; k < u->first_choice + u->n_choices; k++) {
      snprintf(what, sizeof what, "%s: tuning %u (%s), choice %u", name, i, u->device, k);
      const PlanTuneChoice *c = &ch[k];
      DitStatus st = check_choice(pv, c, what, err);
      if (st) return st;
      if ((c->kind == PLAN_TUNE_CPU_KNOBS) != (u->backend == PLAN_TUNE_CPU))
        return dit_err(err, DIT_ERR_FORMAT, "%s: a %s choice in a %s tuning", what,
                       c->kind == PLAN_TUNE_CPU_KNOBS ? "CPU" : "GPU", u->backend == PLAN_TUNE_CPU ? "CPU" : "GPU");
      for (uint32_t m = u->first_choice; m < k; m++)
        if (ch[m].op == c->op && ch[m].kind == c->kind)
          return dit_err(err, DIT_ERR_FORMAT, "%s: op %u has two choices of kind %u", what, c->op, c->kind);
    }
  }
  out->tunings = t;
  out->n_tunings = h->n_tunings;
  out->tune_choices = ch;
  out->n_tune_choices = h->n_choices;
  return DIT_OK;
}

DitStatus plan_check_tune(PlanView *pv, const char *name, DitErr *err) {
  const PlanSection *sec = (const PlanSection *)(pv->file + pv->header->section_table);
  pv->tuning_section = DIT_PLAN_NONE;
  bool seen_cand = false;
  for (uint32_t i = 0; i < pv->header->n_sections; i++) {
    const PlanSection *s = &sec[i];
    const unsigned char *base = pv->file + s->offset;
    if (s->kind == PLAN_SEC_CANDIDATES) {
      if (seen_cand) return dit_err(err, DIT_ERR_FORMAT, "%s: two candidates sections", name);
      seen_cand = true;
      if (s->offset % 8 || (uint64_t)s->count * sizeof(PlanCandidate) != s->bytes)
        return dit_err(err, DIT_ERR_FORMAT, "%s: the candidates section holds %llu bytes, not %u records", name,
                       (unsigned long long)s->bytes, s->count);
      pv->candidates = (const PlanCandidate *)base;
      pv->n_candidates = s->count;
      DitStatus st = check_candidates(pv, name, err);
      if (st) return st;
    }
  }
  for (uint32_t i = 0; i < pv->header->n_sections; i++) { /* after the candidates, which tunings may name */
    const PlanSection *s = &sec[i];
    if (s->kind != PLAN_SEC_TUNING) continue;
    if (pv->tuning_section != DIT_PLAN_NONE) return dit_err(err, DIT_ERR_FORMAT, "%s: two tuning sections", name);
    if (s->count != 1) return dit_err(err, DIT_ERR_FORMAT, "%s: the tuning section must hold one record", name);
    pv->tuning_section = i;
    DitStatus st = check_tunings(pv, pv->file + s->offset, s->bytes, pv, name, err);
    if (st) return st;
  }
  return DIT_OK;
}
