/* import_images.c: an ImageFolder tree of JPEG and PNG files -> DITDATA u8 [N, 3, S, S]
 * (see import.h). The listing follows torchvision's ImageFolder:
 *   classes = sorted(d.name for d in os.scandir(root) if d.is_dir())
 *   for each class: for root, _, files in sorted(os.walk(class_dir, followlinks=True)):
 *                     for f in sorted(files): keep f if f.lower() ends with an image extension
 * Each image is decoded with libjpeg-turbo (jpeg_read.c) or libpng, by its
 * content as PIL's Image.open, converted to RGB as PIL's .convert("RGB") does, and center-cropped as ADM's center_crop_arr
 * (resample.c). Samples are made in parallel; each owns its decoder. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dataset.h"
#include "import.h"
#include "jpeg_read.h"
#include "resample.h"

#define WALK_MAX_DEPTH 64 /* os.walk(followlinks=True) would loop forever on a cycle; we stop */
#define PNG_MAX_SIDE 65535u

/* torchvision's IMG_EXTENSIONS */
static const char *const IMG_EXTS[] = {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"};

typedef struct StrList {
  char **v;
  int64_t n, cap;
} StrList;

static void strs_free(StrList *l) {
  for (int64_t i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  memset(l, 0, sizeof *l);
}

static int strs_push(StrList *l, char *s) { /* takes s; -1 when out of memory (s freed) */
  if (!s) return -1;
  if (l->n == l->cap) {
    int64_t cap = l->cap ? l->cap * 2 : 64;
    char **p = realloc(l->v, (size_t)cap * sizeof *p);
    if (!p) {
      free(s);
      return -1;
    }
    l->v = p;
    l->cap = cap;
  }
  l->v[l->n++] = s;
  return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static void strs_sort(StrList *l) {
  if (l->n) qsort(l->v, (size_t)l->n, sizeof *l->v, cmp_str);
}

static char *join(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s/%s", dir, name);
  return p;
}

/* The file's image extension (an index into IMG_EXTS), or -1. */
static int image_ext(const char *name) {
  size_t n = strlen(name);
  for (int e = 0; e < (int)(sizeof IMG_EXTS / sizeof *IMG_EXTS); e++) {
    size_t k = strlen(IMG_EXTS[e]);
    if (n < k) continue;
    size_t i = 0;
    while (i < k && tolower((unsigned char)name[n - k + i]) == IMG_EXTS[e][i]) i++;
    if (i == k) return e;
  }
  return -1;
}

static int is_dir(const char *path) { /* follows links, as DirEntry.is_dir() */
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* Names in dir (not . or ..), split into sub-folders and the rest. */
static DitStatus read_dir(const char *dir, StrList *dirs, StrList *files, DitErr *err) {
  DIR *d = opendir(dir);
  if (!d) return dit_err(err, DIT_ERR_IO, "%s: cannot open folder: %s", dir, strerror(errno));
  DitStatus st = DIT_OK;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char *p = join(dir, e->d_name);
    if (!p) {
      st = dit_err(err, DIT_ERR_NOMEM, "out of memory");
      break;
    }
    int failed = 0;
    if (is_dir(p)) {
      failed = strs_push(dirs, p);
    } else {
      free(p);
      if (files) failed = strs_push(files, strdup(e->d_name));
    }
    if (failed) {
      st = dit_err(err, DIT_ERR_NOMEM, "out of memory");
      break;
    }
  }
  closedir(d);
  return st;
}

/* Every folder under top (top included), depth-first; sorted afterwards by the caller. */
static DitStatus walk_dirs(const char *top, int depth, StrList *out, DitErr *err) {
  if (depth > WALK_MAX_DEPTH)
    return dit_err(err, DIT_ERR_FORMAT, "%s: folders nest deeper than %d (a link cycle?)", top, WALK_MAX_DEPTH);
  StrList subs = {0};
  DitStatus st = strs_push(out, strdup(top)) ? dit_err(err, DIT_ERR_NOMEM, "out of memory") : DIT_OK;
  if (!st) st = read_dir(top, &subs, NULL, err);
  for (int64_t i = 0; !st && i < subs.n; i++) st = walk_dirs(subs.v[i], depth + 1, out, err);
  strs_free(&subs);
  return st;
}

typedef struct ImageSource {
  StrList paths;   /* [N] image files in ImageFolder order */
  int64_t *labels; /* [N] */
  int64_t S;
} ImageSource;

/* Appends one class's images (label `label`) in make_dataset's order. */
static DitStatus list_class(const char *class_dir, int64_t label, ImageSource *src, int64_t *cap, DitErr *err) {
  StrList dirs = {0};
  DitStatus st = walk_dirs(class_dir, 0, &dirs, err);
  strs_sort(&dirs); /* sorted(os.walk(...)): by the root path string */
  int64_t before = src->paths.n;
  for (int64_t i = 0; !st && i < dirs.n; i++) {
    StrList files = {0}, ignore = {0};
    st = read_dir(dirs.v[i], &ignore, &files, err);
    strs_sort(&files);
    for (int64_t f = 0; !st && f < files.n; f++) {
      int e = image_ext(files.v[f]);
      if (e < 0) continue; /* ImageFolder skips files without an image extension */
      char *p = join(dirs.v[i], files.v[f]);
      if (e > 2) { /* not .jpg, .jpeg or .png */
        st = dit_err(err, DIT_ERR_UNSUPPORTED, "%s: only JPEG and PNG images are decoded; convert %s files first",
                     p ? p : files.v[f], IMG_EXTS[e]);
        free(p);
        break;
      }
      if (strs_push(&src->paths, p)) st = dit_err(err, DIT_ERR_NOMEM, "out of memory");
      if (!st && src->paths.n > *cap) {
        int64_t nc = *cap ? *cap * 2 : 1024;
        int64_t *l = realloc(src->labels, (size_t)nc * sizeof *l);
        if (l) {
          src->labels = l;
          *cap = nc;
        } else {
          st = dit_err(err, DIT_ERR_NOMEM, "out of memory");
        }
      }
      if (!st) src->labels[src->paths.n - 1] = label;
    }
    strs_free(&files);
    strs_free(&ignore);
  }
  if (!st && src->paths.n == before)
    st = dit_err(err, DIT_ERR_FORMAT, "%s: class folder with no image files (ImageFolder refuses it too)", class_dir);
  strs_free(&dirs);
  return st;
}

typedef struct PngErr {
  char msg[256];
} PngErr;

static void png_error_cb(png_structp png, png_const_charp msg) {
  PngErr *pe = png_get_error_ptr(png);
  snprintf(pe->msg, sizeof pe->msg, "%s", msg);
  png_longjmp(png, 1);
}
static void png_warning_cb(png_structp png, png_const_charp msg) {
  (void)png;
  (void)msg;
}

/* Decodes a PNG into RGB8 [h, w, 3] as PIL's Image.open(f).convert("RGB"):
 * palette -> its colours, gray -> replicated, alpha and tRNS dropped (not
 * composited), 16-bit -> the high byte, gamma and colour profiles ignored. */
static DitStatus png_read_rgb(const char *path, uint8_t **out, int64_t *w_out, int64_t *h_out, DitErr *err) {
  DitStatus st = DIT_ERR_FORMAT;
  PngErr pe = {"unknown error"};
  png_structp png = NULL;
  png_infop info = NULL;
  uint8_t *volatile px = NULL;
  png_bytep *volatile rows = NULL;
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return dit_err(err, DIT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  uint8_t sig[8];
  if (fread(sig, 1, 8, f) != 8 || png_sig_cmp(sig, 0, 8) != 0) {
    st = dit_err(err, DIT_ERR_FORMAT, "%s: not a PNG file (bad signature)", path);
    goto done;
  }
  png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &pe, png_error_cb, png_warning_cb);
  info = png ? png_create_info_struct(png) : NULL;
  if (!png || !info) {
    st = dit_err(err, DIT_ERR_NOMEM, "%s: out of memory", path);
    goto done;
  }
  if (setjmp(png_jmpbuf(png))) { /* libpng reports errors by longjmp */
    st = dit_err(err, DIT_ERR_FORMAT, "%s: bad PNG: %s", path, pe.msg);
    goto done;
  }
  png_set_user_limits(png, PNG_MAX_SIDE, PNG_MAX_SIDE);
  png_init_io(png, f);
  png_set_sig_bytes(png, 8);
  png_read_info(png, info);
  png_set_palette_to_rgb(png);
  png_set_expand_gray_1_2_4_to_8(png);
  png_set_strip_16(png);
  png_set_strip_alpha(png);
  png_set_gray_to_rgb(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
  if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8) {
    st = dit_err(err, DIT_ERR_UNSUPPORTED, "%s: PNG did not convert to 8-bit RGB", path);
    goto done;
  }
  px = malloc((size_t)w * h * 3);
  rows = malloc((size_t)h * sizeof(png_bytep));
  if (!px || !rows) {
    st = dit_err(err, DIT_ERR_NOMEM, "%s: out of memory for %ux%u pixels", path, (unsigned)w, (unsigned)h);
    goto done;
  }
  for (png_uint_32 y = 0; y < h; y++) rows[y] = px + (size_t)y * w * 3;
  png_read_image(png, rows);
  png_read_end(png, NULL);
  *out = px;
  px = NULL;
  *w_out = w;
  *h_out = h;
  st = DIT_OK;
done:
  png_destroy_read_struct(&png, &info, NULL);
  free(px);
  free(rows);
  fclose(f);
  return st;
}

static DitStatus fill_image(void *vctx, int64_t i, void *sample, int64_t *label, DitErr *err) {
  const ImageSource *s = vctx;
  uint8_t *rgb = NULL;
  int64_t w = 0, h = 0;
  *label = s->labels[i];
  /* by content, as PIL's Image.open: a .jpg holding a PNG decodes as a PNG */
  uint8_t head[8] = {0};
  FILE *f = fopen(s->paths.v[i], "rb");
  size_t got = f ? fread(head, 1, sizeof head, f) : 0;
  if (f) fclose(f);
  DitStatus st = jpeg_sniff(head, got) ? jpeg_read_rgb(s->paths.v[i], &rgb, &w, &h, err)
                                       : png_read_rgb(s->paths.v[i], &rgb, &w, &h, err);
  if (!st) {
    st = adm_center_crop(rgb, w, h, s->S, sample, err);
    if (st) dit_err_context(err, "%s", s->paths.v[i]);
  }
  free(rgb);
  return st;
}

DitStatus import_image_folder(const char *root, int64_t image_size, int threads, const char *out, DitErr *err) {
  ImageSource src = {{0}, NULL, image_size};
  StrList classes = {0};
  int64_t cap = 0;
  DitStatus st = DIT_OK;
  if (image_size < 1 || image_size > 4096) return dit_err(err, DIT_ERR_ARG, "--image-size %lld is outside 1..4096",
                                                          (long long)image_size);
  if (!is_dir(root)) return dit_err(err, DIT_ERR_IO, "%s: not a folder", root);
  if ((st = read_dir(root, &classes, NULL, err))) goto done;
  strs_sort(&classes);
  if (classes.n == 0) {
    st = dit_err(err, DIT_ERR_FORMAT, "%s: no class folders (ImageFolder wants root/<class>/<image>.png)", root);
    goto done;
  }
  for (int64_t c = 0; c < classes.n && !st; c++) st = list_class(classes.v[c], c, &src, &cap, err);
  if (st) goto done;
  DatasetSpec spec = {src.paths.n, 3, image_size, image_size, DATASET_U8, classes.n, 0};
  st = dataset_write(out, &spec, fill_image, &src, threads, err);
done:
  strs_free(&classes);
  strs_free(&src.paths);
  free(src.labels);
  return st;
}
