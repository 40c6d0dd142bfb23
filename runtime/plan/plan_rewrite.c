/* plan_rewrite.c: a loaded plan written back with a new tuning section
 * (plan_rewrite.h). The sections keep their order and bytes, each at the
 * next 64-byte boundary; the tuning section (PLAN_SECTION_OPTIONAL) goes
 * last, then the section table; the header gets the new size, table and
 * checksum. The file is checked by loading it before it is written. */
#include <stdlib.h>
#include <string.h>

#include "atomic_write.h"
#include "plan_rewrite.h"

static uint64_t align_up(uint64_t x) { return (x + DIT_PLAN_ALIGN - 1) / DIT_PLAN_ALIGN * DIT_PLAN_ALIGN; }

DitStatus plan_write_with_tunings(const PlanView *pv, const PlanTuning *tunings, size_t n_tunings,
                                  const PlanTuneChoice *choices, size_t n_choices, const char *path, DitErr *err) {
  const PlanHeader *h = pv->header;
  const PlanSection *old = (const PlanSection *)(pv->file + h->section_table);
  PlanSection *sec = calloc(h->n_sections + 1, sizeof *sec);
  unsigned char *buf = NULL;
  DitStatus st = DIT_ERR_NOMEM;
  if (!sec) goto nomem;
  /* the tuning section's bytes */
  PlanTuningHeader th = {.n_tunings = (uint32_t)n_tunings, .n_choices = (uint32_t)n_choices};
  th.tunings_offset = sizeof th;
  th.choices_offset = th.tunings_offset + n_tunings * sizeof(PlanTuning);
  uint64_t tune_bytes = th.choices_offset + n_choices * sizeof(PlanTuneChoice);
  /* layout: header, the kept sections, the tuning section, the table */
  uint32_t n = 0;
  uint64_t end = align_up(sizeof(PlanHeader));
  for (uint32_t i = 0; i < h->n_sections; i++) {
    if (old[i].kind == PLAN_SEC_TUNING) continue;
    sec[n] = old[i];
    sec[n].offset = end;
    end = align_up(end + old[i].bytes);
    n++;
  }
  uint32_t tune_index = n;
  if (n_tunings) {
    sec[n] = (PlanSection){.kind = PLAN_SEC_TUNING, .count = 1, .offset = end, .bytes = tune_bytes,
                           .flags = PLAN_SECTION_OPTIONAL};
    end = align_up(end + tune_bytes);
    n++;
  }
  uint64_t table = end, total = table + (uint64_t)n * sizeof(PlanSection);
  if (!(buf = calloc(1, (size_t)total))) goto nomem;
  for (uint32_t i = 0, j = 0; i < h->n_sections; i++) {
    if (old[i].kind == PLAN_SEC_TUNING) continue;
    memcpy(buf + sec[j].offset, pv->file + old[i].offset, old[i].bytes);
    j++;
  }
  if (n_tunings) {
    unsigned char *t = buf + sec[tune_index].offset;
    memcpy(t, &th, sizeof th);
    memcpy(t + th.tunings_offset, tunings, n_tunings * sizeof(PlanTuning));
    if (n_choices) memcpy(t + th.choices_offset, choices, n_choices * sizeof(PlanTuneChoice));
    sec[tune_index].crc32 = dit_plan_crc32(0, t, tune_bytes);
  }
  memcpy(buf + table, sec, (size_t)n * sizeof *sec);
  PlanHeader nh = *h;
  nh.file_bytes = total;
  nh.section_table = table;
  nh.n_sections = n;
  nh.header_crc32 = 0;
  nh.header_crc32 = dit_plan_crc32(0, &nh, sizeof nh);
  memcpy(buf, &nh, sizeof nh);
  /* what a reader will see: loaded and checked before it replaces anything */
  unsigned char *copy = malloc((size_t)total);
  if (!copy) goto nomem;
  memcpy(copy, buf, (size_t)total);
  PlanView check;
  st = plan_load_buffer(copy, (size_t)total, path, &check, err); /* takes copy */
  if (st) {
    dit_err_context(err, "internal error: the rewritten plan does not load");
    goto done;
  }
  plan_view_free(&check);
  st = atomic_write_bytes(path, buf, (size_t)total, err);
  goto done;
nomem:
  st = dit_err(err, DIT_ERR_NOMEM, "out of memory for the rewritten plan");
done:
  free(sec);
  free(buf);
  return st;
}
