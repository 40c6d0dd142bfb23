/* fuzz_checkpoint.c: libFuzzer entry point for the checkpoint readers. Any
 * input goes through ckpt_open_memory; a checkpoint that opens has every
 * (small enough) tensor read as float32 and is bound to a small DiT request
 * list. Failing is fine; crashing, reading outside the input, leaking or an
 * error without a message is a bug. Replayed by CTest (fuzz_checkpoint_replay). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "dit_weights.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_TENSOR_ELEMS = 1 << 20, MAX_TOTAL_ELEMS = 4 << 20, MAX_REQ = 12 };

static void check_message(const DitErr *err) {
  if (err->msg[0] == '\0') abort(); /* every failure must say why */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Checkpoint *ck = NULL;
  DitErr err;
  memset(&err, 0, sizeof err);
  if (ckpt_open_memory(data, size, "fuzz", &ck, &err) != DIT_OK) {
    check_message(&err);
    return 0;
  }
  int64_t total = 0;
  WeightRequest req[MAX_REQ];
  size_t n_req = 0;
  float *bufs[MAX_REQ];
  int64_t numels[MAX_REQ];
  for (size_t i = 0; i < ckpt_num_tensors(ck); i++) {
    const CkptTensor *t = ckpt_tensor_at(ck, i);
    if (ckpt_find(ck, t->name) != t) abort(); /* names are unique and findable */
    if (t->numel > MAX_TENSOR_ELEMS || total + t->numel > MAX_TOTAL_ELEMS) continue;
    total += t->numel;
    float *dst = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *dst);
    if (!dst) continue;
    memset(&err, 0, sizeof err);
    if (ckpt_read_f32(ck, t, dst, &err) != DIT_OK) check_message(&err);
    free(dst);
    /* Ask for the first few tensors by their own name and shape. */
    if (n_req < MAX_REQ - 2 && t->rank <= 4 && t->numel <= 4096) {
      req[n_req].name = t->name;
      req[n_req].rank = t->rank;
      memcpy(req[n_req].shape, t->shape, sizeof req[n_req].shape);
      numels[n_req++] = t->numel;
    }
  }
  /* And two DiT keys that exercise the renaming, qkv concatenation and pos_embed. */
  static const WeightRequest fixed[2] = {
    {"pos_embed", 3, {1, 4, 8, 0}, NULL},
    {"blocks.0.attn.qkv.weight", 2, {24, 8, 0, 0}, NULL},
  };
  memcpy(&req[n_req], fixed, sizeof fixed);
  n_req += 2;
  size_t ok = 1;
  for (size_t i = 0; i < n_req; i++) {
    int64_t numel = i < n_req - 2 ? numels[i] : (i == n_req - 2 ? 32 : 192);
    bufs[i] = malloc((size_t)(numel ? numel : 1) * sizeof(float));
    req[i].dst = bufs[i];
    if (!bufs[i]) ok = 0;
  }
  if (ok) {
    DitGeometry geo = {2, 8, 2};
    memset(&err, 0, sizeof err);
    if (dit_weights_bind(ck, req, n_req, &geo, &err) != DIT_OK) check_message(&err);
  }
  for (size_t i = 0; i < n_req; i++) free(bufs[i]);
  ckpt_close(ck);
  return 0;
}
