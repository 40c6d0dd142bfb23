/* fuzz_plan.c: libFuzzer entry point for the runtime's plan.bin loader. Any
 * bytes are a plan; loading must succeed or fail cleanly. When a mutated
 * plan does load (its checksums were fixed up below, so mutations reach the
 * record checks), it is executed once on zeroed buffers: every check the
 * loader made must keep each kernel inside its buffers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "executor.h"
#include "plan/plan_view.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Recomputes the checksums so that the fuzzer explores past them. */
static void reseal(unsigned char *b, size_t n) {
  if (n < sizeof(PlanHeader)) return;
  PlanHeader *h = (PlanHeader *)b;
  if (h->section_table > n || h->section_table % 8 || h->n_sections > 64 ||
      (uint64_t)h->n_sections * sizeof(PlanSection) > n - h->section_table)
    return;
  PlanSection *s = (PlanSection *)(b + h->section_table);
  for (uint32_t i = 0; i < h->n_sections; i++)
    if (s[i].offset <= n && s[i].bytes <= n - s[i].offset)
      s[i].crc32 = dit_plan_crc32(0, b + s[i].offset, s[i].bytes);
  h->header_crc32 = 0;
  h->header_crc32 = dit_plan_crc32(0, h, sizeof *h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  unsigned char *buf = malloc(size ? size : 1);
  if (!buf) return 0;
  memcpy(buf, data, size);
  /* odd sizes keep the mutated checksums, even sizes get them fixed */
  if ((size & 1) == 0 && size >= 8 && size % 8 == 0) reseal(buf, size);
  PlanView pv;
  DitErr err = {0};
  if (plan_load_buffer(buf, size, "fuzz.plan", &pv, &err) != DIT_OK) {
    if (err.msg[0] == '\0') abort(); /* every failure says why */
    return 0;
  }
  /* small plans only: run one forward (or training step) of one row; the
   * zeroed inputs are valid labels and timesteps */
  if (pv.arena_bytes <= (1u << 24) && pv.weight_bytes <= (1u << 24)) {
    Executor ex = {.pv = &pv, .arena = calloc(1, exec_arena_bytes(&pv) + 1), .weights = calloc(1, pv.weight_bytes + 1),
                   .grads = calloc(1, pv.grad_bytes + 1), .cpu = {1, NULL, 0}, .grad_scale = 1.0f};
    float table[8] = {0.5f, 0.5f, 2.0f, 1.7f, 0.1f, 0.9f, -9.0f, -9.2f};
    DitLossTable tab = {1, table, table + 1, table + 2, table + 3, table + 4, table + 5, table + 6, table + 7};
    ex.loss_table = &tab;
    ex.cpu.scratch_per_thread = exec_scratch_per_thread(&pv);
    if (ex.cpu.scratch_per_thread <= (1 << 22)) ex.cpu.scratch = calloc((size_t)ex.cpu.scratch_per_thread, sizeof(float));
    if (ex.arena && ex.weights && ex.grads && ex.cpu.scratch) {
      if (pv.train) exec_train(&ex, 1);
      else exec_forward(&ex, 1);
    }
    free(ex.arena);
    free(ex.weights);
    free(ex.grads);
    free(ex.cpu.scratch);
  }
  plan_view_free(&pv);
  return 0;
}
