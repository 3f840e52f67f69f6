/* zip: a minimal ZIP archive reader over a memory buffer (e.g. an mmap'd
 * file) and an in-memory writer, enough for PyTorch checkpoints. Reading
 * parses the central directory (with ZIP64 extra fields), bounds-checks every
 * offset and length against the buffer, returns stored entries as pointers
 * into the buffer and inflates deflated ones with zlib. Writing produces
 * stored entries whose data can be aligned (torch aligns to 64 bytes). */
#ifndef ALIGNSEG_ZIP_H
#define ALIGNSEG_ZIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "error.h"
#include "file.h"

typedef struct {
    char *name;         /* NUL-terminated copy of the entry's name */
    uint64_t data_off;  /* offset of the (possibly compressed) data in the buffer */
    uint64_t comp_size; /* bytes in the buffer */
    uint64_t size;      /* uncompressed bytes */
    uint32_t crc;
    uint16_t method;    /* 0 stored, 8 deflated */
} AsZipEntry;

typedef struct {
    const uint8_t *buf; /* not owned */
    size_t len;
    AsZipEntry *entries; /* sorted by name */
    size_t count;
    char *name;         /* file name used in messages */
} AsZip;

/* Parse the archive in buf[0..len); buf must outlive z. */
int as_zip_open(AsZip *z, const uint8_t *buf, size_t len, const char *name, AsError *err);
void as_zip_close(AsZip *z);
const AsZipEntry *as_zip_find(const AsZip *z, const char *entry_name);
/* Get an entry's bytes. Stored entries: *data points into the buffer and
 * *owned is NULL. Deflated: *data == *owned, malloc'd, caller frees *owned
 * (the uncompressed size is bounded by 1032 x the compressed size, deflate's
 * maximum ratio). */
int as_zip_get(const AsZip *z, const AsZipEntry *e, const uint8_t **data, uint8_t **owned,
               size_t *len, AsError *err);
/* The same for only the first want bytes (at most e->size): a deflated entry
 * is inflated no further than that, so a storage that inflates to gigabytes
 * costs what its tensor needs. Only a whole entry's CRC can be checked; a
 * stream that inflates past its declared size is refused. */
int as_zip_get_prefix(const AsZip *z, const AsZipEntry *e, uint64_t want, const uint8_t **data,
                      uint8_t **owned, size_t *len, AsError *err);

/* ---- writing (in memory, or streamed to a file) ---- */
typedef struct {
    uint8_t *buf;
    size_t len, cap;
    struct AsZipWEntry *entries;
    size_t count, cap_entries;
    bool failed;
    FILE *out;       /* streaming: headers and data go here as they come */
    uint64_t flushed; /* streaming: bytes already written to out */
} AsZipWriter;

void as_zipw_init(AsZipWriter *w);
/* A writer that streams to f (which stays the caller's): entry data is
 * written straight from the caller's memory, never copied into one archive
 * buffer (a 108 MB training checkpoint cost 0.4 s that way, most of it page
 * faults); as_zipw_finish then writes the central directory to f and gives
 * back no buffer (*out NULL, *out_len the archive's size). */
void as_zipw_init_stream(AsZipWriter *w, FILE *f);
/* Append a stored entry; its data starts at a multiple of align (1 = none). */
int as_zipw_add(AsZipWriter *w, const char *name, const void *data, size_t len, size_t align,
                AsError *err);
/* Write the central directory; out and out_len take the buffer (caller frees). */
int as_zipw_finish(AsZipWriter *w, uint8_t **out, size_t *out_len, AsError *err);
void as_zipw_free(AsZipWriter *w);

#endif
