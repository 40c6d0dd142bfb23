/* cuda_weights.c: the weights on the device, and the bf16 values' way in
 * and out. fp32 and tf32 plans keep the host weight buffer's layout (one
 * copy at upload). A bf16 plan's device buffer holds each weight in its own
 * dtype, bf16 ones in 2 bytes: the weights are packed in the order of their
 * host offsets, each 256-byte aligned, a view (a reshape of a weight) on its
 * source's bytes; the upload narrows the host's float32. A bf16 arena value
 * goes to and from the host as float32 (the backend interface's), widened or
 * narrowed here. */
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"
#include "util/bf16.h"

static uint64_t align256(uint64_t x) { return (x + 255) / 256 * 256; }

typedef struct WeightAt {
  uint64_t offset; /* host */
  uint32_t id;
} WeightAt;

static int by_host_offset(const void *a, const void *b) {
  const WeightAt *x = a, *y = b;
  if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
  return x->id < y->id ? -1 : x->id > y->id;
}

DitStatus cuda_weights_layout(CudaBackend *cb, DitErr *err) {
  const PlanView *pv = cb->pv;
  DitStatus st = DIT_OK;
  WeightAt *w = NULL;
  uint32_t n = 0;
  cb->wdev_offset = calloc(pv->n_values ? pv->n_values : 1, sizeof *cb->wdev_offset);
  if (!cb->wdev_offset) return dit_err(err, DIT_ERR_NOMEM, "out of memory");
  if (pv->header->dtype != PLAN_DT_BF16) {
    for (uint32_t id = 0; id < pv->n_values; id++) cb->wdev_offset[id] = pv->values[id].offset;
    cb->wdev_bytes = pv->weight_bytes;
    return DIT_OK;
  }
  w = malloc((pv->n_values ? pv->n_values : 1) * sizeof *w);
  if (!w) return dit_err(err, DIT_ERR_NOMEM, "out of memory");
  for (uint32_t id = 0; id < pv->n_values; id++)
    if (pv->values[id].storage == PLAN_STORE_WEIGHTS) w[n++] = (WeightAt){pv->values[id].offset, id};
  qsort(w, n, sizeof *w, by_host_offset);
  uint64_t end = 0;
  for (uint32_t k = 0; k < n; k++) {
    const PlanValue *v = &pv->values[w[k].id], *prev = k ? &pv->values[w[k - 1].id] : NULL;
    if (prev && prev->offset == v->offset) { /* a view of the previous one */
      if (prev->bytes != v->bytes || prev->dtype != v->dtype) {
        st = dit_err(err, DIT_ERR_FORMAT, "weight values %u and %u share bytes but differ in size or dtype",
                     w[k - 1].id, w[k].id);
        goto done;
      }
      cb->wdev_offset[w[k].id] = cb->wdev_offset[w[k - 1].id];
      continue;
    }
    if (prev && prev->offset + prev->bytes > v->offset) {
      st = dit_err(err, DIT_ERR_FORMAT, "weight values %u and %u overlap", w[k - 1].id, w[k].id);
      goto done;
    }
    cb->wdev_offset[w[k].id] = align256(end);
    end = cb->wdev_offset[w[k].id] + (v->dtype == PLAN_VDT_BF16 ? v->bytes / 2 : v->bytes);
  }
  cb->wdev_bytes = end;
done:
  free(w);
  return st;
}

DitStatus cuda_upload_weights(Backend *b, const void *weights, DitErr *err) {
  CudaBackend *cb = (CudaBackend *)(void *)b;
  const PlanView *pv = cb->pv;
  unsigned char *dev = NULL;
  DitStatus st = cuda_enter(cb, err);
  if (st) return st;
  if (pv->header->dtype == PLAN_DT_BF16) { /* into the device's layout, bf16 weights narrowed */
    if (!(dev = calloc(1, cb->wdev_bytes ? cb->wdev_bytes : 1)))
      return dit_err(err, DIT_ERR_NOMEM, "out of memory for the device copy of the weights");
    for (uint32_t id = 0; id < pv->n_values; id++) {
      const PlanValue *v = &pv->values[id];
      if (v->storage != PLAN_STORE_WEIGHTS) continue;
      const float *src = (const float *)((const unsigned char *)weights + v->offset);
      if (v->dtype == PLAN_VDT_BF16) {
        uint16_t *dst = (uint16_t *)(void *)(dev + cb->wdev_offset[id]);
        for (uint64_t i = 0; i < v->bytes / 4; i++) dst[i] = dit_bf16_from_float(src[i]);
      } else {
        memcpy(dev + cb->wdev_offset[id], src, v->bytes);
      }
    }
    weights = dev;
  }
  CU_TRY(&cb->drv, err, cuMemcpyHtoDAsync(cb->weights, weights, cb->wdev_bytes, cb->stream));
  CU_TRY(&cb->drv, err, cuStreamSynchronize(cb->stream));
fail:
  free(dev);
  return st;
}

/* Entering for a value's way in or out: its device bytes for n rows, and
 * for a bf16 value a host buffer of them (*h, the caller frees it). */
static DitStatus value_io(CudaBackend *cb, uint32_t id, int64_t n, uint64_t *bytes, uint16_t **h, DitErr *err) {
  DitStatus st = cuda_enter(cb, err);
  if (st) return st;
  *bytes = cuda_value_bytes(cb->pv, id, n);
  *h = NULL;
  if (cb->pv->values[id].dtype == PLAN_VDT_BF16 && !(*h = malloc(*bytes ? *bytes : 1)))
    return dit_err(err, DIT_ERR_NOMEM, "out of memory");
  return DIT_OK;
}

DitStatus cuda_fetch(Backend *b, uint32_t id, int64_t n, void *dst, DitErr *err) {
  CudaBackend *cb = (CudaBackend *)(void *)b;
  uint64_t bytes;
  uint16_t *h;
  DitStatus st = value_io(cb, id, n, &bytes, &h, err);
  if (st) return st;
  CU_TRY(&cb->drv, err, cuMemcpyDtoHAsync(h ? (void *)h : dst, cuda_value_ptr(cb, id), bytes, cb->stream));
  CU_TRY(&cb->drv, err, cuStreamSynchronize(cb->stream));
  for (uint64_t i = 0; h && i < bytes / 2; i++) ((float *)dst)[i] = dit_bf16_to_float(h[i]);
  free(h);
  return DIT_OK;
fail: /* launches fail asynchronously: the error surfaces here */
  free(h);
  dit_err_context(err, "running the plan on %s (DIT_CUDA_SYNC=1 DIT_CUDA_GRAPH=0 name the failing op)", cb->name);
  return st;
}

/* The interface's put (backend.h): one value overwritten from the host. */
DitStatus cuda_put(Backend *b, uint32_t id, int64_t n, const void *src, DitErr *err) {
  CudaBackend *cb = (CudaBackend *)(void *)b;
  uint64_t bytes;
  uint16_t *h;
  DitStatus st = value_io(cb, id, n, &bytes, &h, err);
  if (st) return st;
  for (uint64_t i = 0; h && i < bytes / 2; i++) h[i] = dit_bf16_from_float(((const float *)src)[i]);
  CU_TRY(&cb->drv, err, cuMemcpyHtoDAsync(cuda_value_ptr(cb, id), h ? (const void *)h : src, bytes, cb->stream));
  CU_TRY(&cb->drv, err, cuStreamSynchronize(cb->stream));
fail:
  free(h);
  return st;
}
