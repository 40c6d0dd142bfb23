/* sample_set.c: `dit sample --num-samples M --npz OUT.npz`: an evaluation
 * set as sample_ddp.py makes it (uint8 [M, H, W, 3] under arr_0, for ADM's
 * suite). Batches are written, each atomically, to OUT.npz.partial/ with a
 * manifest of the run's settings; a killed run started again with the same
 * command skips the batches it finished. Batch b draws its noise and labels
 * from (seed, b) alone, so a resumed set equals an uninterrupted one. The
 * .npz is assembled atomically at the end and the partial folder removed. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_write.h"
#include "digest.h"
#include "cli.h"
#include "image.h"
#include "sample_args.h"
#include "train/dist.h"

typedef struct SetRun {
  SampleSetCtx *c;
  char dir[4096];
  int64_t H, W, per_batch, n_batches;
} SetRun;

static void batch_path(const SetRun *r, int64_t b, char *buf, size_t n) {
  snprintf(buf, n, "%s/batch_%06lld.u8", r->dir, (long long)b);
}

/* What determines the set's images, one "key value" a line: a resume with
 * any other line is refused, naming the keys that differ. */
static int manifest_text(const SetRun *r, char *buf, size_t n) {
  const SampleArgs *a = r->c->args;
  DitRuntime *rt = r->c->rt;
  int64_t n_floats = 0;
  const float *w = dit_weights_flat(rt, &n_floats);
  uint64_t plan_digest = 0;
  DitErr e = {0};
  if (digest64_file(a->plan, &plan_digest, &e)) {
    fprintf(stderr, "dit: error: %s\n", e.msg);
    return -1;
  }
  uint64_t weights_digest = digest64(w, (size_t)n_floats * sizeof(float), 0);
  uint64_t labels_digest = digest64(a->labels, (size_t)a->n_labels * sizeof(int64_t), 0);
  char sampler[64]; /* DPM-Solver++'s order and sigmas are part of the sampler */
  if (a->sampler == DIT_DPM_SOLVER) snprintf(sampler, sizeof sampler, "dpm++ order %d karras %d", a->dpm_order, a->karras);
  else snprintf(sampler, sizeof sampler, "%s", a->sampler == DIT_DDIM ? "ddim" : "ddpm");
  snprintf(buf, n,
           "ditc sample set 2\nmodel %s\nplan %016llx\nweights %016llx\ndevice %s\nnum_samples %lld\n"
           "per_batch %lld\nsampler %s\nsteps %s\neta %.17g\ncfg_scale %.9g\nseed %llu\n"
           "labels %s%d %016llx\n",
           dit_model_info(rt)->name, (unsigned long long)plan_digest, (unsigned long long)weights_digest,
           dit_device_name(rt), (long long)a->num_samples, (long long)r->per_batch,
           sampler, a->steps, a->eta, a->cfg_scale,
           (unsigned long long)a->seed, a->n_labels ? "given " : "drawn ", a->n_labels,
           (unsigned long long)labels_digest);
  if (r->c->vae) { /* the decoder's plan and weights make the images too */
    uint64_t vae_plan = 0;
    int64_t vn = 0;
    const float *vw = dit_weights_flat(r->c->vae, &vn);
    if (digest64_file(a->vae, &vae_plan, &e)) {
      fprintf(stderr, "dit: error: %s\n", e.msg);
      return -1;
    }
    size_t len = strlen(buf);
    snprintf(buf + len, n - len, "vae %016llx\nvae_weights %016llx\n", (unsigned long long)vae_plan,
             (unsigned long long)digest64(vw, (size_t)vn * sizeof(float), 0));
  }
  return 0;
}

/* The keys whose lines differ between two manifests, as "weights, seed". */
static void manifest_diff(const char *have, const char *want, char *out, size_t n) {
  size_t len = 0;
  out[0] = '\0';
  for (const char *p = want; *p;) {
    const char *eol = strchr(p, '\n'), *sp = strchr(p, ' ');
    size_t line = eol ? (size_t)(eol - p) : strlen(p), key = sp && sp < p + line ? (size_t)(sp - p) : line;
    int found = 0;
    for (const char *q = have; *q && !found;) {
      const char *qe = strchr(q, '\n');
      size_t ql = qe ? (size_t)(qe - q) : strlen(q);
      if (ql > key && !strncmp(q, p, key) && q[key] == ' ') found = ql == line && !strncmp(q, p, line) ? 1 : -1;
      q = qe ? qe + 1 : q + ql;
    }
    if (found != 1 && len < n)
      len += (size_t)snprintf(out + len, n - len, "%s%.*s", len ? ", " : "", (int)key, p);
    p = eol ? eol + 1 : p + line;
  }
}

/* Creates the partial folder and its manifest, or checks that an existing
 * one belongs to this very run. */
static int open_partial(SetRun *r, int *created) {
  char want[1024], path[4200], have[1024] = "", diff[512];
  if (manifest_text(r, want, sizeof want)) return -1;
  snprintf(path, sizeof path, "%s/manifest.txt", r->dir);
  *created = mkdir(r->dir, 0755) == 0;
  if (!*created && errno != EEXIST) {
    fprintf(stderr, "dit: error: %s: cannot create: %s\n", r->dir, strerror(errno));
    return -1;
  }
  atomic_remove_stale(r->dir, NULL); /* batches a kill -9 left half-written */
  FILE *f = fopen(path, "r");
  if (f) {
    size_t k = fread(have, 1, sizeof have - 1, f);
    have[k] = '\0';
    fclose(f);
    if (strcmp(have, want) != 0) {
      manifest_diff(have, want, diff, sizeof diff);
      fprintf(stderr, "dit: error: %s was started by a different run (what differs: %s); resume it with the "
                      "same command, or remove it, or change --npz\n", r->dir, diff);
      return -1;
    }
    return 0;
  }
  DitErr e = {0};
  if (atomic_write_bytes(path, want, strlen(want), &e)) {
    fprintf(stderr, "dit: error: %s\n", e.msg);
    return -1;
  }
  return 0;
}

static DitStatus fill_from_batches(void *ctx, int64_t first, int64_t count, uint8_t *dst, DitErr *err) {
  const SetRun *r = ctx;
  size_t img = (size_t)(r->H * r->W * 3);
  for (int64_t i = 0; i < count;) {
    int64_t b = (first + i) / r->per_batch, off = (first + i) % r->per_batch;
    int64_t take = r->per_batch - off < count - i ? r->per_batch - off : count - i;
    char path[4200];
    batch_path(r, b, path, sizeof path);
    FILE *f = fopen(path, "rb");
    if (!f || fseek(f, (long)((size_t)off * img), SEEK_SET) != 0 ||
        fread(dst + (size_t)i * img, img, (size_t)take, f) != (size_t)take) {
      if (f) fclose(f);
      return dit_err(err, DIT_ERR_IO, "%s: missing or short batch file", path);
    }
    fclose(f);
    i += take;
  }
  return DIT_OK;
}

static void remove_partial(const SetRun *r) {
  DIR *d = opendir(r->dir);
  for (struct dirent *e; d && (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", r->dir, e->d_name);
    unlink(path);
  }
  if (d) closedir(d);
  rmdir(r->dir);
}

/* sample_ddp.py's folder: image i as DIR/%06d.png (each written atomically),
 * from the finished batches. */
static int write_sample_dir(SetRun *r, const char *dir, int64_t n) {
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
    fprintf(stderr, "dit: error: %s: cannot create: %s\n", dir, strerror(errno));
    return -1;
  }
  size_t img = (size_t)(r->H * r->W * 3);
  uint8_t *px = malloc(img);
  if (!px) return -1;
  int rc = 0;
  for (int64_t i = 0; i < n && !rc; i++) {
    DitErr e = {0};
    char path[4300];
    snprintf(path, sizeof path, "%s/%06lld.png", dir, (long long)i);
    if (fill_from_batches(r, i, 1, px, &e) || png_write_rgb(path, px, r->H, r->W, &e)) {
      fprintf(stderr, "dit: error: %s\n", e.msg);
      rc = -1;
    }
  }
  free(px);
  return rc;
}

int cmd_sample_set(const char *plan_path, void *vctx) {
  (void)plan_path;
  SampleSetCtx *c = vctx;
  SampleArgs *a = c->args;
  const DitModelInfo *mi = dit_model_info(c->rt);
  const DitVaeInfo *v = c->vae ? dit_vae_info(c->vae) : NULL;
  int64_t side = v ? v->image_size : mi->latent_size; /* a latent model's images: decoded */
  SetRun r = {.c = c, .H = side, .W = side};
  int rc = 1;
  float *lat = NULL, *img = NULL;
  uint8_t *rgb = NULL;
  if (mi->image_size != mi->latent_size && !v) {
    fprintf(stderr, "dit: error: --npz of a latent model's samples needs its VAE: --vae VAE_PLAN --vae-weights W "
                    "(ditc specs/vae/sd-vae-ft-mse.dit -o VAE_PLAN)\n");
    return 1;
  }
  int64_t rows_per_image = a->cfg_scale > 1.0f ? 2 : 1;
  r.per_batch = a->n ? a->n : mi->max_batch / rows_per_image;
  if (r.per_batch < 1 || r.per_batch * rows_per_image > mi->max_batch) {
    fprintf(stderr, "dit: error: %lld images per batch do not fit the plan (at most %lld rows)\n",
            (long long)r.per_batch, (long long)mi->max_batch);
    return 1;
  }
  r.n_batches = (a->num_samples + r.per_batch - 1) / r.per_batch;
  snprintf(r.dir, sizeof r.dir, "%s.partial", a->npz);
  int created = 0, any = 0;
  int64_t written = 0;
  /* ranks (mpirun): rank 0 opens the folder and checks its manifest; rank k samples the batches
   * b = k mod K; rank 0 assembles the .npz. A batch's noise and labels come from its index and the
   * seed alone, so the set is the same bytes for any K, and a resume may use another K. */
  Dist *dist = c->dist;
  int rank = dist ? dist_rank(dist) : 0, ranks = dist ? dist_size(dist) : 1;
  DitErr de = {0};
  int opened = rank == 0 ? open_partial(&r, &created) : 0;
  if (ranks > 1 && dist_any_failed(dist, opened != 0, &any, &de)) {
    fprintf(stderr, "dit: error: %s\n", de.msg);
    return 1;
  }
  if (opened || any) {
    if (created) remove_partial(&r);
    return 1;
  }
  int failed = 1; /* this rank's batches: until they are all written */
  int64_t C = mi->in_channels, per = C * mi->latent_size * mi->latent_size;
  lat = malloc((size_t)(r.per_batch * per) * sizeof(float));
  if (v) img = malloc((size_t)(r.per_batch * v->image_channels * r.H * r.W) * sizeof(float));
  rgb = malloc((size_t)(r.per_batch * r.H * r.W * 3));
  int64_t *labels = malloc((size_t)r.per_batch * sizeof(int64_t));
  if (!lat || !rgb || !labels || (v && !img)) goto done;
  SampleProgress prog = {0, 0, r.per_batch, r.n_batches * r.per_batch};
  const char *abort_after = getenv("DIT_TEST_ABORT_AFTER_BATCHES"); /* tests: simulate a kill */
  for (int64_t b = rank; b < r.n_batches; b += ranks) {
    char path[4200];
    batch_path(&r, b, path, sizeof path);
    struct stat sb;
    prog.images_done = b * r.per_batch;
    if (stat(path, &sb) == 0 && sb.st_size == (off_t)(r.per_batch * r.H * r.W * 3)) continue; /* done before */
    uint64_t seed = a->seed * 0x9E3779B97F4A7C15ull + (uint64_t)b + 1; /* batch b's own noise */
    sample_labels(a, mi, a->seed, b * r.per_batch, r.per_batch, labels);
    DitSampleOptions so = {r.per_batch, labels, a->sampler, a->steps, a->eta, a->cfg_scale, seed,
                           NULL, NULL, isatty(2) ? sample_progress : NULL, &prog, a->dpm_order, a->karras};
    if (dit_sample(c->rt, &so, lat)) {
      fprintf(stderr, "dit: error: %s\n", dit_last_error(c->rt));
      goto done;
    }
    if (v) { /* sample_ddp.py: vae.decode(samples / 0.18215), then its byte mapping */
      if (cli_vae_run(c->vae, true, r.per_batch, lat, NULL, img, false)) goto done;
      images_to_rgb8(img, r.per_batch, v->image_channels, r.H, r.W, rgb);
    } else {
      images_to_rgb8(lat, r.per_batch, C, r.H, r.W, rgb);
    }

    DitErr e = {0};
    if (atomic_write_bytes(path, rgb, (size_t)(r.per_batch * r.H * r.W * 3), &e)) {
      fprintf(stderr, "dit: error: %s\n", e.msg);
      goto done;
    }
    if (abort_after && ++written >= atoll(abort_after)) _exit(137);
  }
  failed = 0;
  if (ranks > 1 && (dist_any_failed(dist, 0, &any, &de) || any)) goto done; /* another rank failed */
  if (rank == 0) {
    DitErr e = {0};
    if (npz_write_images(a->npz, a->num_samples, r.H, r.W, r.per_batch, fill_from_batches, &r, &e)) {
      fprintf(stderr, "dit: error: %s\n", e.msg);
      failed = 1;
    } else if (a->sample_dir && write_sample_dir(&r, a->sample_dir, a->num_samples)) {
      failed = 1;
    } else {
      remove_partial(&r);
      if (isatty(2)) fprintf(stderr, "dit: wrote %lld images to %s\n", (long long)a->num_samples, a->npz);
    }
  }
  if (ranks > 1 && dist_any_failed(dist, failed, &any, &de)) any = 1; /* every rank exits as rank 0 does */
  rc = failed || any;
done:
  if (failed && ranks > 1) { /* a rank that failed in its batches tells the others, which wait for it */
    int ignored = 0;
    dist_any_failed(dist, 1, &ignored, &de);
  }
  if (rc && created && !written) remove_partial(&r); /* a run that failed before its first batch leaves nothing */
  free(lat);
  free(img);
  free(rgb);
  free(labels);
  return rc;
}
