/* dit_weights.h: binding a checkpoint to the weight table of a compiled DiT
 * plan. The plan asks for tensors by their official state-dict names
 * ("blocks.3.attn.qkv.weight") and shapes; this module finds them in either
 * naming (official DiT, or diffusers' DiTTransformer2DModel as written by the
 * official conversion script), converts them to float32 and checks, like
 * PyTorch's strict load_state_dict, that nothing is missing, unexpected or
 * mis-shaped. It knows the DiT model family only. */
#ifndef DIT_RUNTIME_WEIGHTS_DIT_WEIGHTS_H
#define DIT_RUNTIME_WEIGHTS_DIT_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"
#include "err.h"

typedef struct WeightRequest {
  const char *name;  /* official state-dict key, e.g. "blocks.3.attn.qkv.weight" */
  int rank;          /* 0 .. 4 */
  int64_t shape[4];
  float *dst;        /* numel floats, row-major */
} WeightRequest;

typedef struct DitGeometry {
  int64_t depth, hidden, grid; /* grid = tokens per side */
} DitGeometry;

/* Fills every req[i].dst from ck. Errors (the first problem in request order,
 * then unexpected keys in checkpoint order, with the count of the others):
 * DIT_ERR_WEIGHTS for a missing key, an unexpected key or a shape mismatch,
 * DIT_ERR_UNSUPPORTED for a dtype that cannot be converted, DIT_ERR_ARG for
 * a bad request or geometry. Unconsumed tensors that are tolerated: "pos_embed"
 * and, in diffusers naming, the per-block copies of the timestep and class
 * embedders (which must equal block 0's). */
DitStatus dit_weights_bind(const Checkpoint *ck, const WeightRequest *req, size_t n,
                           const DitGeometry *geo, DitErr *err);

/* The fixed 2-D sin-cos position embedding of DiT (MAE recipe), [1, grid*grid, hidden]:
 * channels [0, hidden/2) encode the column, [hidden/2, hidden) the row, sines
 * before cosines in each half. Computed in double, rounded to float once.
 * hidden must be a positive multiple of 4 (otherwise dst is zero-filled). */
void dit_pos_embed_sincos(float *dst, int64_t grid, int64_t hidden);

#endif
