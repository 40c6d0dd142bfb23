/* zip_reader.c: ZIP directory parsing and entry lookup over a memory buffer
 * (see zip_reader.h). Layouts follow PKWARE APPNOTE 6.3: End Of Central
 * Directory (EOCD), ZIP64 EOCD locator and record, central directory file
 * headers with the ZIP64 extra field (id 0x0001), local file headers. */
#include "zip_reader.h"

#include <stdlib.h>
#include <string.h>

enum {
  SIG_LOCAL = 0x04034b50,
  SIG_CENTRAL = 0x02014b50,
  SIG_EOCD = 0x06054b50,
  SIG_EOCD64 = 0x06064b50,
  SIG_LOCATOR64 = 0x07064b50,
  LOCAL_BYTES = 30,
  CENTRAL_BYTES = 46,
  EOCD_BYTES = 22,
  EOCD64_BYTES = 56,
  LOCATOR64_BYTES = 20,
  MAX_COMMENT = 0xFFFF
};

static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t rd32(const unsigned char *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t rd64(const unsigned char *p) { return rd32(p) | ((uint64_t)rd32(p + 4) << 32); }

/* True when [off, off+n) lies inside [0, len). */
static int in_bounds(uint64_t off, uint64_t n, uint64_t len) { return off <= len && n <= len - off; }

/* Finds the classic EOCD: the last signature whose comment ends inside the buffer. */
static int find_eocd(const unsigned char *buf, size_t len, size_t *pos) {
  if (len < EOCD_BYTES) return 0;
  size_t last = len - EOCD_BYTES;
  size_t first = last > MAX_COMMENT ? last - MAX_COMMENT : 0;
  for (size_t i = last + 1; i-- > first;) {
    if (rd32(buf + i) == SIG_EOCD && rd16(buf + i + 20) <= len - EOCD_BYTES - i) {
      *pos = i;
      return 1;
    }
  }
  return 0;
}

/* Applies the ZIP64 extra field of a central header to the fields that were saturated. */
static DitStatus apply_zip64_extra(ZipEntry *e, const unsigned char *extra, size_t extra_len,
                                   int need_size, int need_csize, int need_off, size_t index,
                                   DitErr *err) {
  size_t i = 0;
  while (extra_len - i >= 4) {
    uint16_t id = rd16(extra + i), n = rd16(extra + i + 2);
    if (n > extra_len - i - 4)
      return dit_err(err, DIT_ERR_FORMAT, "zip: central entry %zu has an extra field past its end",
                     index);
    if (id == 0x0001) {
      const unsigned char *p = extra + i + 4;
      size_t need = 8u * (size_t)(need_size + need_csize + need_off);
      if (n < need)
        return dit_err(err, DIT_ERR_FORMAT, "zip: central entry %zu has a ZIP64 extra field of "
                       "%u bytes, needs %zu", index, n, need);
      if (need_size) { e->size = rd64(p); p += 8; }
      if (need_csize) { e->comp_size = rd64(p); p += 8; }
      if (need_off) e->local_offset = rd64(p);
      return DIT_OK;
    }
    i += 4u + n;
  }
  return dit_err(err, DIT_ERR_FORMAT,
                 "zip: central entry %zu has saturated sizes but no ZIP64 extra field", index);
}

static int cmp_entry_ptr(const void *a, const void *b) {
  const ZipEntry *x = *(const ZipEntry *const *)a, *y = *(const ZipEntry *const *)b;
  size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
  int c = memcmp(x->name, y->name, n);
  if (c) return c;
  return (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

/* Reads the EOCD (and the ZIP64 records when present): directory offset, size and count. */
static DitStatus read_end_records(const unsigned char *buf, size_t len, uint64_t *cd_off,
                                  uint64_t *cd_size, uint64_t *count, uint64_t *cd_limit,
                                  DitErr *err) {
  size_t eocd;
  if (!find_eocd(buf, len, &eocd))
    return dit_err(err, DIT_ERR_FORMAT, "zip: no end-of-central-directory record "
                   "(the file is truncated or not a zip archive)");
  const unsigned char *e = buf + eocd;
  uint16_t disk = rd16(e + 4), cd_disk = rd16(e + 6);
  uint64_t n_disk = rd16(e + 8), n_total = rd16(e + 10);
  *cd_size = rd32(e + 12);
  *cd_off = rd32(e + 16);
  *count = n_total;
  *cd_limit = eocd;
  int zip64 = n_total == 0xFFFF || n_disk == 0xFFFF || *cd_size == 0xFFFFFFFFu ||
              *cd_off == 0xFFFFFFFFu || disk == 0xFFFF || cd_disk == 0xFFFF;
  if (eocd >= LOCATOR64_BYTES && rd32(buf + eocd - LOCATOR64_BYTES) == SIG_LOCATOR64) zip64 = 1;
  if (zip64) {
    if (eocd < LOCATOR64_BYTES || rd32(buf + eocd - LOCATOR64_BYTES) != SIG_LOCATOR64)
      return dit_err(err, DIT_ERR_FORMAT, "zip: saturated end record at offset %zu but no "
                     "ZIP64 locator before it", eocd);
    const unsigned char *loc = buf + eocd - LOCATOR64_BYTES;
    uint64_t rec = rd64(loc + 8);
    if (rd32(loc + 16) > 1)
      return dit_err(err, DIT_ERR_UNSUPPORTED, "zip: multi-disk archives are not supported");
    if (!in_bounds(rec, EOCD64_BYTES, eocd - LOCATOR64_BYTES) || rd32(buf + rec) != SIG_EOCD64)
      return dit_err(err, DIT_ERR_FORMAT, "zip: the ZIP64 locator points at offset %llu, "
                     "where there is no ZIP64 end record", (unsigned long long)rec);
    const unsigned char *r = buf + rec;
    disk = (uint16_t)(rd32(r + 16) != 0);
    cd_disk = (uint16_t)(rd32(r + 20) != 0);
    n_disk = rd64(r + 24);
    *count = rd64(r + 32);
    *cd_size = rd64(r + 40);
    *cd_off = rd64(r + 48);
    *cd_limit = rec;
    n_total = *count;
  }
  if (disk != 0 || cd_disk != 0 || n_disk != n_total)
    return dit_err(err, DIT_ERR_UNSUPPORTED, "zip: multi-disk archives are not supported");
  if (!in_bounds(*cd_off, *cd_size, *cd_limit))
    return dit_err(err, DIT_ERR_FORMAT, "zip: central directory [%llu, +%llu) lies outside the "
                   "archive (%llu bytes before the end records)", (unsigned long long)*cd_off,
                   (unsigned long long)*cd_size, (unsigned long long)*cd_limit);
  if (*count > *cd_size / CENTRAL_BYTES)
    return dit_err(err, DIT_ERR_FORMAT, "zip: %llu entries cannot fit a central directory of "
                   "%llu bytes", (unsigned long long)*count, (unsigned long long)*cd_size);
  return DIT_OK;
}

DitStatus zip_open(ZipReader *z, const unsigned char *buf, size_t len, WtArena *arena,
                   DitErr *err) {
  memset(z, 0, sizeof *z);
  z->buf = buf;
  z->len = len;
  uint64_t cd_off = 0, cd_size = 0, count = 0, cd_limit = 0;
  DitStatus st = read_end_records(buf, len, &cd_off, &cd_size, &count, &cd_limit, err);
  if (st) return st;
  z->entries = wt_arena_array(arena, (size_t)count, sizeof *z->entries);
  z->by_name = wt_arena_array(arena, (size_t)count, sizeof *z->by_name);
  if (!z->entries || !z->by_name)
    return dit_err(err, DIT_ERR_NOMEM, "zip: no memory for %llu directory entries",
                   (unsigned long long)count);
  uint64_t pos = cd_off, end = cd_off + cd_size;
  for (size_t i = 0; i < count; i++) {
    if (!in_bounds(pos, CENTRAL_BYTES, end) || rd32(buf + pos) != SIG_CENTRAL)
      return dit_err(err, DIT_ERR_FORMAT, "zip: central entry %zu at offset %llu is missing "
                     "or has a bad signature", i, (unsigned long long)pos);
    const unsigned char *h = buf + pos;
    size_t name_len = rd16(h + 28), extra_len = rd16(h + 30), comment_len = rd16(h + 32);
    uint64_t total = CENTRAL_BYTES + (uint64_t)name_len + extra_len + comment_len;
    if (!in_bounds(pos, total, end))
      return dit_err(err, DIT_ERR_FORMAT, "zip: central entry %zu at offset %llu runs past the "
                     "central directory", i, (unsigned long long)pos);
    ZipEntry *e = &z->entries[i];
    e->flags = rd16(h + 8);
    e->method = rd16(h + 10);
    e->comp_size = rd32(h + 20);
    e->size = rd32(h + 24);
    e->local_offset = rd32(h + 42);
    e->name = (const char *)(h + CENTRAL_BYTES);
    e->name_len = name_len;
    int need_size = e->size == 0xFFFFFFFFu, need_csize = e->comp_size == 0xFFFFFFFFu;
    int need_off = e->local_offset == 0xFFFFFFFFu;
    if (need_size || need_csize || need_off) {
      st = apply_zip64_extra(e, h + CENTRAL_BYTES + name_len, extra_len, need_size, need_csize,
                             need_off, i, err);
      if (st) return st;
    }
    if (e->flags & 1u)
      return dit_err(err, DIT_ERR_UNSUPPORTED, "zip: entry '%.*s' is encrypted", (int)name_len,
                     e->name);
    if (!in_bounds(e->local_offset, LOCAL_BYTES, cd_off) ||
        !in_bounds(e->local_offset, e->comp_size, cd_off))
      return dit_err(err, DIT_ERR_FORMAT, "zip: entry '%.*s' claims data at offset %llu "
                     "(+%llu bytes), past the start of the central directory at %llu",
                     (int)name_len, e->name, (unsigned long long)e->local_offset,
                     (unsigned long long)e->comp_size, (unsigned long long)cd_off);
    z->by_name[i] = e;
    pos += total;
  }
  z->n = (size_t)count;
  if (z->n > 1) qsort((void *)z->by_name, z->n, sizeof *z->by_name, cmp_entry_ptr);
  for (size_t i = 1; i < z->n; i++)
    if (cmp_entry_ptr(&z->by_name[i - 1], &z->by_name[i]) == 0)
      return dit_err(err, DIT_ERR_FORMAT, "zip: duplicate entry '%.*s'",
                     (int)z->by_name[i]->name_len, z->by_name[i]->name);
  return DIT_OK;
}

const ZipEntry *zip_find(const ZipReader *z, const char *name, size_t name_len) {
  ZipEntry key;
  key.name = name;
  key.name_len = name_len;
  const ZipEntry *kp = &key;
  size_t lo = 0, hi = z->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = cmp_entry_ptr(&kp, &z->by_name[mid]);
    if (c == 0) return z->by_name[mid];
    if (c < 0) hi = mid;
    else lo = mid + 1;
  }
  return NULL;
}

DitStatus zip_entry_data(const ZipReader *z, const ZipEntry *e, const unsigned char **data,
                         DitErr *err) {
  *data = NULL;
  int nl = (int)e->name_len;
  if (e->method != 0)
    return dit_err(err, DIT_ERR_UNSUPPORTED, "zip: entry '%.*s' is compressed (method %u%s); "
                   "only stored entries are supported, as torch.save writes them: re-save the "
                   "file with torch.save or convert it to safetensors", nl, e->name, e->method,
                   e->method == 8 ? ", deflate" : "");
  if (e->comp_size != e->size)
    return dit_err(err, DIT_ERR_FORMAT, "zip: stored entry '%.*s' has compressed size %llu but "
                   "size %llu", nl, e->name, (unsigned long long)e->comp_size,
                   (unsigned long long)e->size);
  if (!in_bounds(e->local_offset, LOCAL_BYTES, z->len) ||
      rd32(z->buf + e->local_offset) != SIG_LOCAL)
    return dit_err(err, DIT_ERR_FORMAT, "zip: entry '%.*s' has no local header at offset %llu",
                   nl, e->name, (unsigned long long)e->local_offset);
  const unsigned char *h = z->buf + e->local_offset;
  uint64_t name_len = rd16(h + 26), extra_len = rd16(h + 28);
  uint64_t off = e->local_offset + LOCAL_BYTES;
  if (name_len != e->name_len || !in_bounds(off, name_len, z->len) ||
      memcmp(z->buf + off, e->name, e->name_len) != 0)
    return dit_err(err, DIT_ERR_FORMAT, "zip: the local header of entry '%.*s' names another "
                   "entry", nl, e->name);
  off += name_len + extra_len;
  if (!in_bounds(off, e->size, z->len))
    return dit_err(err, DIT_ERR_FORMAT, "zip: the data of entry '%.*s' [%llu, +%llu) run past "
                   "the end of the file (%zu bytes)", nl, e->name, (unsigned long long)off,
                   (unsigned long long)e->size, z->len);
  *data = z->buf + off;
  return DIT_OK;
}
