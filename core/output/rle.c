/* rle: see rle.h */
#include "rle.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void as_rle_free(AsRle *r)
{
    if (!r)
        return;
    free(r->cnts);
    r->cnts = NULL;
    r->m = 0;
}

static int check_size(int w, int h, AsError *err)
{
    if (w < 0 || h < 0 || (int64_t)w * h > (int64_t)UINT32_MAX)
        return as_error_set(err, AS_ERR_ARG, "rle: bad mask size %dx%d", w, h);
    return 0;
}

/* Shared encoder: is1(i) tells whether row-major pixel i is set. */
#define ENCODE_BODY(IS1)                                                              \
    do {                                                                              \
        size_t cap = 16, m = 0;                                                       \
        uint32_t *c = malloc(cap * sizeof *c);                                        \
        if (!c)                                                                       \
            return as_error_set(err, AS_ERR_NOMEM, "rle: out of memory");             \
        bool cur = false;                                                             \
        uint32_t run = 0;                                                             \
        for (int x = 0; x < w; x++)                                                   \
            for (int y = 0; y < h; y++) {                                             \
                size_t i = (size_t)y * w + x;                                         \
                bool v = IS1;                                                         \
                if (v != cur) {                                                       \
                    if (m + 1 >= cap) {                                               \
                        cap *= 2;                                                     \
                        uint32_t *nc = realloc(c, cap * sizeof *c);                   \
                        if (!nc) {                                                    \
                            free(c);                                                  \
                            return as_error_set(err, AS_ERR_NOMEM, "rle: out of memory"); \
                        }                                                             \
                        c = nc;                                                       \
                    }                                                                 \
                    c[m++] = run;                                                     \
                    run = 0;                                                          \
                    cur = v;                                                          \
                }                                                                     \
                run++;                                                                \
            }                                                                         \
        c[m++] = run;                                                                 \
        out->h = h;                                                                   \
        out->w = w;                                                                   \
        out->m = m;                                                                   \
        out->cnts = c;                                                                \
        return 0;                                                                     \
    } while (0)

int as_rle_encode_labels(const int32_t *labels, int w, int h, int32_t value, AsRle *out,
                         AsError *err)
{
    memset(out, 0, sizeof *out);
    int rc = check_size(w, h, err);
    if (rc)
        return rc;
    ENCODE_BODY(labels[i] == value);
}

int as_rle_encode_mask(const uint8_t *mask, int w, int h, AsRle *out, AsError *err)
{
    memset(out, 0, sizeof *out);
    int rc = check_size(w, h, err);
    if (rc)
        return rc;
    ENCODE_BODY(mask[i] != 0);
}

char *as_rle_to_string(const AsRle *r)
{
    /* a 64-bit difference needs at most 13 groups of 5 bits */
    char *s = malloc(r->m * 13 + 1);
    if (!s)
        return NULL;
    size_t p = 0;
    for (size_t i = 0; i < r->m; i++) {
        int64_t x = (int64_t)r->cnts[i];
        if (i > 2)
            x -= (int64_t)r->cnts[i - 2];
        bool more = true;
        while (more) {
            int c = (int)(x & 0x1f);
            x >>= 5; /* arithmetic shift: gcc defines it for negative values */
            more = (c & 0x10) ? x != -1 : x != 0;
            if (more)
                c |= 0x20;
            s[p++] = (char)(c + 48);
        }
    }
    s[p] = '\0';
    return s;
}

int as_rle_from_string(const char *s, int h, int w, AsRle *out, AsError *err)
{
    memset(out, 0, sizeof *out);
    int rc = check_size(w, h, err);
    if (rc)
        return rc;
    size_t len = strlen(s);
    uint32_t *c = malloc((len + 1) * sizeof *c);
    if (!c)
        return as_error_set(err, AS_ERR_NOMEM, "rle: out of memory");
    uint64_t total = 0, npix = (uint64_t)w * (uint64_t)h;
    size_t m = 0, p = 0;
    while (p < len) {
        int64_t x = 0;
        int k = 0;
        bool more = true;
        while (more) {
            if (p >= len) {
                rc = as_error_set(err, AS_ERR_FORMAT,
                                  "rle: counts string ends inside a number at character %zu", p);
                goto fail;
            }
            int ch = (unsigned char)s[p];
            if (ch < 48 || ch > 48 + 63) {
                rc = as_error_set(err, AS_ERR_FORMAT,
                                  "rle: bad character 0x%02x at position %zu of the counts", ch,
                                  p);
                goto fail;
            }
            if (k >= 7) { /* 35 bits: more than any count of a 2^32-pixel mask */
                rc = as_error_set(err, AS_ERR_FORMAT, "rle: number too long at position %zu", p);
                goto fail;
            }
            int v = ch - 48;
            x |= (int64_t)(v & 0x1f) << (5 * k);
            more = (v & 0x20) != 0;
            p++;
            k++;
            if (!more && (v & 0x10))
                x -= (int64_t)1 << (5 * k); /* sign-extend */
        }
        if (m > 2)
            x += (int64_t)c[m - 2];
        if (x < 0 || (uint64_t)x > npix - total) {
            rc = as_error_set(err, AS_ERR_FORMAT,
                              "rle: count %zu is %lld, outside 0..%llu for a %dx%d mask", m,
                              (long long)x, (unsigned long long)(npix - total), w, h);
            goto fail;
        }
        total += (uint64_t)x;
        c[m++] = (uint32_t)x;
    }
    out->h = h;
    out->w = w;
    out->m = m;
    out->cnts = c;
    return 0;
fail:
    free(c);
    return rc;
}

int as_rle_decode(const AsRle *r, uint8_t *mask, AsError *err)
{
    uint64_t npix = (uint64_t)r->w * (uint64_t)r->h, total = 0;
    for (size_t i = 0; i < r->m; i++)
        total += r->cnts[i];
    if (total != npix)
        return as_error_set(err, AS_ERR_FORMAT, "rle: counts sum to %llu, mask %dx%d has %llu",
                            (unsigned long long)total, r->w, r->h, (unsigned long long)npix);
    uint64_t pos = 0;
    for (size_t i = 0; i < r->m; i++) {
        uint8_t v = (uint8_t)(i & 1);
        for (uint32_t j = 0; j < r->cnts[i]; j++, pos++) {
            uint64_t x = pos / (uint64_t)r->h, y = pos % (uint64_t)r->h;
            mask[y * (uint64_t)r->w + x] = v;
        }
    }
    return 0;
}

uint64_t as_rle_area(const AsRle *r)
{
    uint64_t a = 0;
    for (size_t i = 1; i < r->m; i += 2)
        a += r->cnts[i];
    return a;
}

void as_rle_bbox(const AsRle *r, double bbox[4])
{
    size_t m = (r->m / 2) * 2; /* a trailing run of 0s does not matter */
    bbox[0] = bbox[1] = bbox[2] = bbox[3] = 0;
    if (m == 0 || r->h == 0)
        return;
    uint64_t h = (uint64_t)r->h;
    uint64_t xs = (uint64_t)r->w, ys = h, xe = 0, ye = 0, xp = 0, cc = 0;
    bool any = false;
    for (size_t j = 0; j < m; j++) {
        cc += r->cnts[j];
        if (j % 2 == 1 && r->cnts[j] == 0)
            continue; /* empty run of 1s (only in hand-made counts) */
        uint64_t t = cc - (j % 2); /* first pixel of a 1-run, or its last */
        uint64_t y = t % h, x = t / h;
        if (j % 2 == 0) {
            xp = x;
            continue; /* the start is recorded with the end below */
        }
        /* run from (xp, y0) to (x, y): record both ends */
        uint64_t t0 = cc - r->cnts[j];
        uint64_t y0 = t0 % h;
        any = true;
        if (xp < x) {
            ys = 0;
            ye = h - 1;
        }
        if (xp < xs) xs = xp;
        if (x > xe) xe = x;
        if (y0 < ys) ys = y0;
        if (y < ys) ys = y;
        if (y0 > ye) ye = y0;
        if (y > ye) ye = y;
    }
    if (!any)
        return;
    bbox[0] = (double)xs;
    bbox[1] = (double)ys;
    bbox[2] = (double)(xe - xs + 1);
    bbox[3] = (double)(ye - ys + 1);
}
