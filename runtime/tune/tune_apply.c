/* tune_apply.c: a plan's tunings at run time. At open, the tuning whose
 * device key matches the device that runs the plan is applied (each choice
 * checked by the backend: a refused one leaves its op at the default); on
 * another device the plan runs its defaults, and dit_tuning_info says so in
 * one line. dit_save_plan writes the plan with this device's tuning. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../plan/plan_rewrite.h"
#include "../runtime_internal.h"

static bool same_device(const PlanTuning *a, const PlanTuning *b) {
  return a->backend == b->backend && a->arch == b->arch && a->sm_count == b->sm_count &&
         a->driver_version == b->driver_version && strncmp(a->device, b->device, sizeof a->device) == 0;
}

static const char *backend_name(uint32_t b) {
  return b == PLAN_TUNE_CPU ? "cpu" : b == PLAN_TUNE_CUDA ? "cuda" : "emu";
}

static void key_text(const PlanTuning *k, char *b, size_t cap) {
  if (k->backend == PLAN_TUNE_CPU) snprintf(b, cap, "cpu: %s, %u threads", k->device, k->sm_count);
  else
    snprintf(b, cap, "%s: %s, sm_%u, %u SMs, driver %u", backend_name(k->backend), k->device, k->arch,
             k->sm_count, k->driver_version);
}

DitStatus rt_tuning_open(DitRuntime *rt, int ignore, DitErr *err) {
  const PlanView *pv = &rt->pv;
  rt->tuning_info[0] = '\0';
  if (!pv->n_tunings || pv->train) return DIT_OK;
  PlanTuning key;
  char here[200];
  rt->be->vt->device_key(rt->be, &key);
  key_text(&key, here, sizeof here);
  if (ignore) {
    snprintf(rt->tuning_info, sizeof rt->tuning_info, "the plan's %zu tuning(s) are ignored (--no-tuning): "
             "defaults on %.200s", pv->n_tunings, here);
    return DIT_OK;
  }
  const PlanTuning *t = NULL;
  for (size_t i = 0; i < pv->n_tunings && !t; i++)
    if (same_device(&pv->tunings[i], &key)) t = &pv->tunings[i];
  if (!t) {
    snprintf(rt->tuning_info, sizeof rt->tuning_info, "the plan is tuned for %zu other device(s), not for %.200s: "
             "it runs its defaults (dit tune tunes it here)", pv->n_tunings, here);
    return DIT_OK;
  }
  rt->tune_choices = calloc(t->n_choices ? t->n_choices : 1, sizeof *rt->tune_choices);
  if (!rt->tune_choices) return dit_err(err, DIT_ERR_NOMEM, "out of memory");
  size_t kept = 0, refused = 0;
  char first_refusal[160] = "";
  for (uint32_t k = 0; k < t->n_choices; k++) {
    const PlanTuneChoice *c = &pv->tune_choices[t->first_choice + k];
    DitErr e = {0};
    if (rt->be->vt->apply(rt->be, c, &e) == DIT_OK) {
      rt->tune_choices[kept++] = *c;
    } else {
      if (!refused) snprintf(first_refusal, sizeof first_refusal, "%.150s", e.msg);
      refused++;
    }
  }
  rt->tuning = *t;
  rt->tuning.n_choices = (uint32_t)kept;
  rt->tuning.first_choice = 0;
  rt->tuned = 1;
  int len = snprintf(rt->tuning_info, sizeof rt->tuning_info, "tuned for this device (%.200s): %zu ops, forward "
                     "%.3g ms -> %.3g ms at %u rows", here, kept, t->default_ms, t->tuned_ms, t->rows);
  if (refused && len > 0 && (size_t)len < sizeof rt->tuning_info)
    snprintf(rt->tuning_info + len, sizeof rt->tuning_info - (size_t)len, "; %zu choice(s) refused, those ops "
             "run their defaults (%.150s)", refused, first_refusal);
  return DIT_OK;
}

const char *dit_tuning_info(const DitRuntime *rt) { return rt->tuning_info; }

DitStatus dit_save_plan(DitRuntime *rt, const char *path) {
  const PlanView *pv = &rt->pv;
  PlanTuning *ts = calloc(pv->n_tunings + 1, sizeof *ts);
  PlanTuneChoice *cs = calloc(pv->n_tune_choices + rt->tuning.n_choices + 1, sizeof *cs);
  size_t n_t = 0, n_c = 0;
  DitStatus st = DIT_OK;
  if (!ts || !cs) {
    st = dit_err(&rt->err, DIT_ERR_NOMEM, "out of memory");
    goto done;
  }
  /* the other devices' tunings as they are, then this device's */
  for (size_t i = 0; i < pv->n_tunings; i++) {
    const PlanTuning *t = &pv->tunings[i];
    if (rt->tuned && same_device(t, &rt->tuning)) continue;
    ts[n_t] = *t;
    ts[n_t++].first_choice = (uint32_t)n_c;
    if (t->n_choices) memcpy(cs + n_c, pv->tune_choices + t->first_choice, t->n_choices * sizeof *cs);
    n_c += t->n_choices;
  }
  if (rt->tuned) {
    ts[n_t] = rt->tuning;
    ts[n_t++].first_choice = (uint32_t)n_c;
    if (rt->tuning.n_choices) memcpy(cs + n_c, rt->tune_choices, rt->tuning.n_choices * sizeof *cs);
    n_c += rt->tuning.n_choices;
  }
  st = plan_write_with_tunings(pv, ts, n_t, cs, n_c, path, &rt->err);
done:
  free(ts);
  free(cs);
  return rt_fail(rt, st);
}
