/* kfam.c: the registry of GPU kernel families (kfam.h) and what they share. */
#include "kfam.h"

int kfam_all(const KernelFamily **out, int max) {
  int n = 0, k = 0;
  if (n < max) out[n++] = kfam_adaln_norm();
  if (n < max) out[n++] = kfam_attention_mma(); /* before the CUDA-core attention: bf16 plans' */
  if (n < max) out[n++] = kfam_attention();
  const KernelFamily *const *e = kfam_elementwise(&k);
  for (int i = 0; i < k && n < max; i++) out[n++] = e[i];
  const KernelFamily *const *s = kfam_sampler(&k);
  for (int i = 0; i < k && n < max; i++) out[n++] = s[i];
  const KernelFamily *const *v = kfam_vae(&k);
  for (int i = 0; i < k && n < max; i++) out[n++] = v[i];
  return n;
}

void kfam_fill(const KernelFamily *f, KernelChoice *k, int block_threads, const KernelKnobs *knobs) {
  k->family = f->id;
  k->header = f->header;
  k->block_threads = block_threads;
  k->smem_bytes = 0;
  k->dtypes = 0;
  k->knobs = *knobs;
}
