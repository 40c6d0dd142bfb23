/* zip_reader.h: a read-only ZIP reader over a memory buffer (an mmap'ed
 * torch.save file). It finds the End Of Central Directory (classic or ZIP64),
 * walks the central directory and locates an entry's bytes through its local
 * header, checking every offset and size against the buffer first. Only
 * stored (method 0) entries can be read: that is what torch.save writes.
 * It does not decompress, verify CRCs, or write. */
#ifndef DIT_RUNTIME_WEIGHTS_ZIP_READER_H
#define DIT_RUNTIME_WEIGHTS_ZIP_READER_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "wt_arena.h"

typedef struct ZipEntry {
  const char *name;       /* points into the buffer; NOT NUL-terminated */
  size_t name_len;
  uint16_t flags, method; /* general-purpose flags; 0 = stored, 8 = deflate */
  uint64_t comp_size;     /* bytes as stored */
  uint64_t size;          /* bytes uncompressed */
  uint64_t local_offset;  /* of the local file header */
} ZipEntry;

typedef struct ZipReader {
  const unsigned char *buf;
  size_t len;
  ZipEntry *entries;      /* [n], central-directory order */
  size_t n;
  const ZipEntry **by_name; /* [n] pointers into entries, sorted by name */
} ZipReader;

/* Parses the directory of the archive buf[0..len); allocations go to arena.
 * Errors are DIT_ERR_FORMAT (malformed, truncated) or DIT_ERR_UNSUPPORTED
 * (multi-disk, encrypted). */
DitStatus zip_open(ZipReader *z, const unsigned char *buf, size_t len, WtArena *arena,
                   DitErr *err);

/* The entry named exactly name[0..name_len), or NULL. */
const ZipEntry *zip_find(const ZipReader *z, const char *name, size_t name_len);

/* Points *data at the entry's e->size bytes inside the buffer, after checking
 * its local header. A compressed entry gives DIT_ERR_UNSUPPORTED. */
DitStatus zip_entry_data(const ZipReader *z, const ZipEntry *e, const unsigned char **data,
                         DitErr *err);

#endif
