/* zip: see zip.h */
#include "zip.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOC64 0x07064b50u

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32); }

/* true if [off, off+n) lies inside a buffer of len bytes */
static bool in_buf(uint64_t off, uint64_t n, size_t len)
{
    return off <= (uint64_t)len && n <= (uint64_t)len - off;
}

static int cmp_entry(const void *a, const void *b);

void as_zip_close(AsZip *z)
{
    if (!z)
        return;
    for (size_t i = 0; i < z->count; i++)
        free(z->entries[i].name);
    free(z->entries);
    free(z->name);
    memset(z, 0, sizeof *z);
}

static int parse_zip64_extra(const uint8_t *ex, size_t exlen, AsZipEntry *e, uint64_t *lhoff,
                             bool need_size, bool need_comp, bool need_off)
{
    size_t p = 0;
    while (p + 4 <= exlen) {
        uint16_t id = rd16(ex + p), sz = rd16(ex + p + 2);
        if (sz > exlen - p - 4)
            return -1;
        if (id == 0x0001) {
            const uint8_t *f = ex + p + 4;
            size_t q = 0;
            if (need_size) {
                if (q + 8 > sz)
                    return -1;
                e->size = rd64(f + q);
                q += 8;
            }
            if (need_comp) {
                if (q + 8 > sz)
                    return -1;
                e->comp_size = rd64(f + q);
                q += 8;
            }
            if (need_off) {
                if (q + 8 > sz)
                    return -1;
                *lhoff = rd64(f + q);
            }
            return 0;
        }
        p += 4 + (size_t)sz;
    }
    return (need_size || need_comp || need_off) ? -1 : 0;
}

int as_zip_open(AsZip *z, const uint8_t *buf, size_t len, const char *name, AsError *err)
{
    memset(z, 0, sizeof *z);
    z->buf = buf;
    z->len = len;
    z->name = strdup(name ? name : "zip");
    if (!z->name)
        return as_error_set(err, AS_ERR_NOMEM, "out of memory");
    const char *nm_arg = name ? name : "zip";
    name = nm_arg;
    if (len < 22) {
        as_zip_close(z);
        return as_error_set(err, AS_ERR_FORMAT, "%s: not a zip archive (%zu bytes, too short)", nm_arg, len);
    }
    /* find the end-of-central-directory record, searching back over a comment */
    size_t eocd = (size_t)-1;
    size_t lo = len >= 22 + 65535 ? len - 22 - 65535 : 0;
    for (size_t p = len - 22 + 1; p-- > lo;) {
        if (rd32(buf + p) == SIG_EOCD && p + 22 + rd16(buf + p + 20) <= len) {
            eocd = p;
            break;
        }
    }
    if (eocd == (size_t)-1) {
        int rc = as_error_set(err, AS_ERR_FORMAT,
                              "%s: not a zip archive (no end-of-central-directory record; "
                              "truncated or not a torch.save file)", name);
        as_zip_close(z);
        return rc;
    }
    uint64_t n_entries = rd16(buf + eocd + 10);
    uint64_t cd_size = rd32(buf + eocd + 12);
    uint64_t cd_off = rd32(buf + eocd + 16);
    if (n_entries == 0xFFFF || cd_size == 0xFFFFFFFFu || cd_off == 0xFFFFFFFFu) {
        if (eocd < 20 || rd32(buf + eocd - 20) != SIG_LOC64) {
            as_zip_close(z);
            return as_error_set(err, AS_ERR_FORMAT, "%s: zip64 locator missing", name);
        }
        uint64_t e64 = rd64(buf + eocd - 20 + 8);
        if (!in_buf(e64, 56, len) || rd32(buf + e64) != SIG_EOCD64) {
            as_zip_close(z);
            return as_error_set(err, AS_ERR_FORMAT, "%s: bad zip64 end record at offset %llu",
                                name, (unsigned long long)e64);
        }
        n_entries = rd64(buf + e64 + 32);
        cd_size = rd64(buf + e64 + 40);
        cd_off = rd64(buf + e64 + 48);
    }
    if (!in_buf(cd_off, cd_size, len)) {
        as_zip_close(z);
        return as_error_set(err, AS_ERR_FORMAT,
                            "%s: central directory (offset %llu, %llu bytes) lies outside the "
                            "file (%zu bytes): truncated?", name, (unsigned long long)cd_off,
                            (unsigned long long)cd_size, len);
    }
    if (n_entries > cd_size / 46) {
        as_zip_close(z);
        return as_error_set(err, AS_ERR_FORMAT, "%s: central directory claims %llu entries in %llu bytes",
                            name, (unsigned long long)n_entries, (unsigned long long)cd_size);
    }
    z->entries = calloc(n_entries ? n_entries : 1, sizeof *z->entries);
    if (!z->entries) {
        as_zip_close(z);
        return as_error_set(err, AS_ERR_NOMEM, "out of memory");
    }
    uint64_t p = cd_off, end = cd_off + cd_size;
    for (uint64_t i = 0; i < n_entries; i++) {
        if (p + 46 > end || rd32(buf + p) != SIG_CENTRAL) {
            int rc = as_error_set(err, AS_ERR_FORMAT, "%s: bad central directory entry %llu at offset %llu",
                                  name, (unsigned long long)i, (unsigned long long)p);
            as_zip_close(z);
            return rc;
        }
        const uint8_t *c = buf + p;
        AsZipEntry *e = &z->entries[z->count];
        uint16_t flags = rd16(c + 8);
        e->method = rd16(c + 10);
        e->crc = rd32(c + 16);
        e->comp_size = rd32(c + 20);
        e->size = rd32(c + 24);
        size_t nlen = rd16(c + 28), xlen = rd16(c + 30), clen = rd16(c + 32);
        uint64_t lhoff = rd32(c + 42);
        if (p + 46 + nlen + xlen + clen > end) {
            int rc = as_error_set(err, AS_ERR_FORMAT, "%s: central directory entry %llu overruns the directory",
                                  name, (unsigned long long)i);
            as_zip_close(z);
            return rc;
        }
        e->name = malloc(nlen + 1);
        if (!e->name) {
            as_zip_close(z);
            return as_error_set(err, AS_ERR_NOMEM, "out of memory");
        }
        memcpy(e->name, c + 46, nlen);
        e->name[nlen] = '\0';
        z->count++;
        if (memchr(e->name, '\0', nlen)) {
            int rc = as_error_set(err, AS_ERR_FORMAT, "%s: entry %llu has a NUL byte in its name", name,
                                  (unsigned long long)i);
            as_zip_close(z);
            return rc;
        }
        if (parse_zip64_extra(c + 46 + nlen, xlen, e, &lhoff, e->size == 0xFFFFFFFFu,
                              e->comp_size == 0xFFFFFFFFu, lhoff == 0xFFFFFFFFu) != 0) {
            int rc = as_error_set(err, AS_ERR_FORMAT, "%s: entry '%s': bad zip64 extra field", name, e->name);
            as_zip_close(z);
            return rc;
        }
        if (flags & 1) {
            int rc = as_error_set(err, AS_ERR_UNSUPPORTED, "%s: entry '%s' is encrypted", name, e->name);
            as_zip_close(z);
            return rc;
        }
        if (!in_buf(lhoff, 30, len) || rd32(buf + lhoff) != SIG_LOCAL) {
            int rc = as_error_set(err, AS_ERR_FORMAT, "%s: entry '%s': bad local header at offset %llu",
                                  name, e->name, (unsigned long long)lhoff);
            as_zip_close(z);
            return rc;
        }
        uint64_t doff = lhoff + 30 + rd16(buf + lhoff + 26) + rd16(buf + lhoff + 28);
        if (!in_buf(doff, e->comp_size, len)) {
            int rc = as_error_set(err, AS_ERR_FORMAT,
                                  "%s: entry '%s': data (offset %llu, %llu bytes) lies outside the "
                                  "file (%zu bytes): truncated?", name, e->name, (unsigned long long)doff,
                                  (unsigned long long)e->comp_size, len);
            as_zip_close(z);
            return rc;
        }
        if (e->method == 0 && e->size != e->comp_size) {
            int rc = as_error_set(err, AS_ERR_FORMAT, "%s: stored entry '%s' has size %llu but %llu bytes",
                                  name, e->name, (unsigned long long)e->size,
                                  (unsigned long long)e->comp_size);
            as_zip_close(z);
            return rc;
        }
        e->data_off = doff;
        p += 46 + nlen + xlen + clen;
    }
    qsort(z->entries, z->count, sizeof *z->entries, cmp_entry);
    return AS_OK;
}

static int cmp_entry(const void *a, const void *b)
{
    const AsZipEntry *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->data_off < y->data_off ? -1 : x->data_off > y->data_off;
}

const AsZipEntry *as_zip_find(const AsZip *z, const char *entry_name)
{
    /* entries are sorted by name (as_zip_open): binary search, first match */
    size_t lo = 0, hi = z->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(z->entries[mid].name, entry_name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < z->count && strcmp(z->entries[lo].name, entry_name) == 0)
        return &z->entries[lo];
    return NULL;
}

int as_zip_get(const AsZip *z, const AsZipEntry *e, const uint8_t **data, uint8_t **owned,
               size_t *len, AsError *err)
{
    return as_zip_get_prefix(z, e, e->size, data, owned, len, err);
}

int as_zip_get_prefix(const AsZip *z, const AsZipEntry *e, uint64_t want, const uint8_t **data,
                      uint8_t **owned, size_t *len, AsError *err)
{
    *data = NULL;
    *owned = NULL;
    *len = 0;
    if (want > e->size)
        want = e->size;
    if (e->method == 0) {
        *data = z->buf + e->data_off;
        *len = (size_t)want;
        return AS_OK;
    }
    if (e->method != 8)
        return as_error_set(err, AS_ERR_UNSUPPORTED, "%s: entry '%s' uses compression method %u "
                            "(only stored and deflated are supported)", z->name, e->name, e->method);
    if (e->size > e->comp_size * 1032 + 64 || e->size > (uint64_t)SIZE_MAX / 2 ||
        e->comp_size > UINT_MAX || e->size >= UINT_MAX)
        return as_error_set(err, AS_ERR_FORMAT, "%s: entry '%s': implausible size %llu for %llu "
                            "compressed bytes", z->name, e->name, (unsigned long long)e->size,
                            (unsigned long long)e->comp_size);
    bool whole = want == e->size;
    /* one byte more than declared when inflating everything: a stream that
     * fills it inflates past its declared size */
    size_t cap = (size_t)want + (whole ? 1 : 0);
    uint8_t *out = malloc(cap ? cap : 1);
    if (!out)
        return as_error_set(err, AS_ERR_NOMEM, "%s: out of memory inflating '%s'", z->name, e->name);
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, -15) != Z_OK) {
        free(out);
        return as_error_set(err, AS_ERR_NOMEM, "%s: zlib init failed", z->name);
    }
    s.next_in = (Bytef *)(uintptr_t)(z->buf + e->data_off);
    s.avail_in = (uInt)e->comp_size;
    s.next_out = out;
    s.avail_out = (uInt)cap;
    int zr = Z_OK;
    while (s.avail_out > 0 && zr == Z_OK)
        zr = inflate(&s, Z_SYNC_FLUSH);
    size_t got = (size_t)s.total_out;
    inflateEnd(&s);
    const char *bad = NULL;
    if (got > want)
        bad = "inflates past its declared size";
    else if (zr != Z_OK && zr != Z_STREAM_END)
        bad = "corrupt deflate data";
    else if (got < want)
        bad = "deflate data ends before its declared size";
    if (bad) {
        free(out);
        return as_error_set(err, AS_ERR_FORMAT, "%s: entry '%s': %s (%llu bytes)", z->name, e->name, bad,
                            (unsigned long long)e->size);
    }
    if (whole && (uint32_t)crc32(0L, out, (uInt)got) != e->crc) {
        free(out);
        return as_error_set(err, AS_ERR_FORMAT, "%s: entry '%s': CRC mismatch", z->name, e->name);
    }
    *data = out;
    *owned = out;
    *len = got;
    return AS_OK;
}

/* ---- writer ---- */

struct AsZipWEntry {
    char *name;
    uint64_t lhoff, size;
    uint32_t crc;
};

void as_zipw_init(AsZipWriter *w)
{
    memset(w, 0, sizeof *w);
}

void as_zipw_init_stream(AsZipWriter *w, FILE *f)
{
    memset(w, 0, sizeof *w);
    w->out = f;
}

/* the archive offset of the next byte */
static uint64_t wpos(const AsZipWriter *w)
{
    return w->flushed + w->len;
}

/* streaming: the buffered bytes, then data (len bytes, may be NULL), to the file */
static int wflush(AsZipWriter *w, const void *data, size_t len, AsError *err)
{
    if (!w->out)
        return AS_OK;
    if ((w->len && fwrite(w->buf, 1, w->len, w->out) != w->len) ||
        (len && fwrite(data, 1, len, w->out) != len)) {
        w->failed = true;
        return as_error_set(err, AS_ERR_IO, "write failed: %s", strerror(errno));
    }
    w->flushed += w->len + len;
    w->len = 0;
    return AS_OK;
}

void as_zipw_free(AsZipWriter *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->count; i++)
        free(w->entries[i].name);
    free(w->entries);
    free(w->buf);
    memset(w, 0, sizeof *w);
}

static int wreserve(AsZipWriter *w, size_t extra, AsError *err)
{
    if (extra > SIZE_MAX - w->len)
        return as_error_set(err, AS_ERR_NOMEM, "zip too large");
    if (w->len + extra <= w->cap)
        return AS_OK;
    size_t ncap = w->cap ? w->cap : 4096;
    while (ncap < w->len + extra)
        ncap = ncap > SIZE_MAX / 2 ? w->len + extra : ncap * 2;
    uint8_t *n = realloc(w->buf, ncap);
    if (!n)
        return as_error_set(err, AS_ERR_NOMEM, "out of memory writing zip (%zu bytes)", ncap);
    w->buf = n;
    w->cap = ncap;
    return AS_OK;
}

static void w16(AsZipWriter *w, uint16_t v)
{
    w->buf[w->len++] = (uint8_t)v;
    w->buf[w->len++] = (uint8_t)(v >> 8);
}
static void w32(AsZipWriter *w, uint32_t v)
{
    w16(w, (uint16_t)v);
    w16(w, (uint16_t)(v >> 16));
}

int as_zipw_add(AsZipWriter *w, const char *name, const void *data, size_t len, size_t align,
                AsError *err)
{
    size_t nlen = strlen(name);
    if (nlen > 0xFFFF)
        return as_error_set(err, AS_ERR_ARG, "zip entry name too long");
    if (w->failed)
        return as_error_set(err, AS_ERR_IO, "zip entry '%s': an earlier write failed", name);
    if (len >= 0xFFFFFFFFu || wpos(w) >= 0xFFFFFFFFu - len - 0x20000)
        return as_error_set(err, AS_ERR_UNSUPPORTED, "zip entry '%s': archives of 4 GiB or more are "
                            "not supported by the writer", name);
    if (align == 0)
        align = 1;
    size_t base = (size_t)wpos(w) + 30 + nlen;
    size_t pad = 0;
    if (align > 1) {
        pad = (align - (base + 4) % align) % align;
    }
    size_t xlen = align > 1 ? 4 + pad : 0;
    if (w->count == w->cap_entries) {
        size_t nc = w->cap_entries ? w->cap_entries * 2 : 16;
        struct AsZipWEntry *ne = realloc(w->entries, nc * sizeof *ne);
        if (!ne)
            return as_error_set(err, AS_ERR_NOMEM, "out of memory");
        w->entries = ne;
        w->cap_entries = nc;
    }
    int rc = wreserve(w, 30 + nlen + xlen + (w->out ? 0 : len), err);
    if (rc)
        return rc;
    char *nm = strdup(name);
    if (!nm)
        return as_error_set(err, AS_ERR_NOMEM, "out of memory");
    uint32_t crc = (uint32_t)crc32(0L, Z_NULL, 0);
    const uint8_t *d = data;
    size_t left = len;
    while (left) {
        uInt chunk = left > (1u << 30) ? (1u << 30) : (uInt)left;
        crc = (uint32_t)crc32(crc, d, chunk);
        d += chunk;
        left -= chunk;
    }
    struct AsZipWEntry *e = &w->entries[w->count++];
    e->name = nm;
    e->lhoff = wpos(w);
    e->size = len;
    e->crc = crc;
    w32(w, SIG_LOCAL);
    w16(w, 20); /* version needed */
    w16(w, 0);  /* flags */
    w16(w, 0);  /* stored */
    w16(w, 0);  /* time */
    w16(w, 0x21); /* date: 1980-01-01 */
    w32(w, crc);
    w32(w, (uint32_t)len);
    w32(w, (uint32_t)len);
    w16(w, (uint16_t)nlen);
    w16(w, (uint16_t)xlen);
    memcpy(w->buf + w->len, name, nlen);
    w->len += nlen;
    if (xlen) {
        w16(w, 0x4246); /* "FB": padding field, as torch writes */
        w16(w, (uint16_t)pad);
        memset(w->buf + w->len, 'Z', pad);
        w->len += pad;
    }
    if (w->out)
        return wflush(w, data, len, err);
    if (len)
        memcpy(w->buf + w->len, data, len);
    w->len += len;
    return AS_OK;
}

int as_zipw_finish(AsZipWriter *w, uint8_t **out, size_t *out_len, AsError *err)
{
    *out = NULL;
    *out_len = 0;
    if (w->count > 0xFFFE)
        return as_error_set(err, AS_ERR_UNSUPPORTED, "zip: too many entries (%zu)", w->count);
    size_t need = 22;
    for (size_t i = 0; i < w->count; i++)
        need += 46 + strlen(w->entries[i].name);
    int rc = wreserve(w, need, err);
    if (rc)
        return rc;
    const uint64_t cd_off = wpos(w);
    if (w->failed)
        return as_error_set(err, AS_ERR_IO, "zip: an earlier write failed");
    if (cd_off >= 0xFFFFFFFFu - need)
        return as_error_set(err, AS_ERR_UNSUPPORTED, "zip: archives of 4 GiB or more are not supported");
    for (size_t i = 0; i < w->count; i++) {
        const struct AsZipWEntry *e = &w->entries[i];
        size_t nlen = strlen(e->name);
        w32(w, SIG_CENTRAL);
        w16(w, 20); /* made by */
        w16(w, 20); /* needed */
        w16(w, 0);
        w16(w, 0);
        w16(w, 0);
        w16(w, 0x21);
        w32(w, e->crc);
        w32(w, (uint32_t)e->size);
        w32(w, (uint32_t)e->size);
        w16(w, (uint16_t)nlen);
        w16(w, 0); /* extra */
        w16(w, 0); /* comment */
        w16(w, 0); /* disk */
        w16(w, 0); /* internal attrs */
        w32(w, 0); /* external attrs */
        w32(w, (uint32_t)e->lhoff);
        memcpy(w->buf + w->len, e->name, nlen);
        w->len += nlen;
    }
    const uint64_t cd_size = wpos(w) - cd_off;
    w32(w, SIG_EOCD);
    w16(w, 0);
    w16(w, 0);
    w16(w, (uint16_t)w->count);
    w16(w, (uint16_t)w->count);
    w32(w, (uint32_t)cd_size);
    w32(w, (uint32_t)cd_off);
    w16(w, 0);
    if (w->out) {
        rc = wflush(w, NULL, 0, err);
        if (rc)
            return rc;
        *out_len = (size_t)w->flushed;
        return AS_OK;
    }
    *out = w->buf;
    *out_len = w->len;
    w->buf = NULL;
    w->len = w->cap = 0;
    return AS_OK;
}
