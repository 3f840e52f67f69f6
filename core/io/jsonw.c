/* jsonw: see jsonw.h */
#include "jsonw.h"

#include "atomic.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool grow(char **buf, size_t *len, size_t *cap, size_t add)
{
    if (*len + add + 1 <= *cap)
        return true;
    size_t nc = *cap ? *cap : 256;
    while (nc < *len + add + 1) {
        if (nc > SIZE_MAX / 2)
            return false;
        nc *= 2;
    }
    char *nb = realloc(*buf, nc);
    if (!nb)
        return false;
    *buf = nb;
    *cap = nc;
    return true;
}

static bool put(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (!grow(buf, len, cap, n))
        return false;
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
    return true;
}

/* Length of the valid UTF-8 sequence starting at s (1..4), or 0 if invalid. */
static int utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    int n;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) /* also stops at the terminating NUL */
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

bool as_jw_escape_into(char **buf, size_t *len, size_t *cap, const char *str)
{
    const unsigned char *s = (const unsigned char *)(str ? str : "");
    if (!put(buf, len, cap, "\"", 1))
        return false;
    while (*s) {
        unsigned char c = *s;
        char esc[8];
        const char *e = NULL;
        size_t en = 0;
        switch (c) {
        case '"': e = "\\\""; en = 2; break;
        case '\\': e = "\\\\"; en = 2; break;
        case '\b': e = "\\b"; en = 2; break;
        case '\f': e = "\\f"; en = 2; break;
        case '\n': e = "\\n"; en = 2; break;
        case '\r': e = "\\r"; en = 2; break;
        case '\t': e = "\\t"; en = 2; break;
        default:
            if (c < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", c);
                e = esc;
                en = 6;
            }
        }
        if (e) {
            if (!put(buf, len, cap, e, en))
                return false;
            s++;
            continue;
        }
        int n = utf8_len(s);
        if (n == 0) {
            if (!put(buf, len, cap, "\\ufffd", 6))
                return false;
            s++;
        } else {
            if (!put(buf, len, cap, (const char *)s, (size_t)n))
                return false;
            s += n;
        }
    }
    return put(buf, len, cap, "\"", 1);
}

void as_jw_init(AsJsonW *w, int indent)
{
    memset(w, 0, sizeof *w);
    w->indent = indent < 0 ? 0 : indent;
}

void as_jw_free(AsJsonW *w)
{
    free(w->buf);
    memset(w, 0, sizeof *w);
}

static void raw(AsJsonW *w, const char *s, size_t n)
{
    if (!w->failed && !put(&w->buf, &w->len, &w->cap, s, n))
        w->failed = true;
}

static bool compact(const AsJsonW *w)
{
    return w->indent == 0 || (w->compact_from > 0 && w->depth >= w->compact_from);
}

static void newline(AsJsonW *w)
{
    if (compact(w))
        return;
    raw(w, "\n", 1);
    for (int i = 0; i < w->depth * w->indent; i++)
        raw(w, " ", 1);
}

/* Separator and indentation before a value (or a key). */
static void before_value(AsJsonW *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->depth > 0) {
        if (w->count[w->depth] > 0)
            raw(w, compact(w) && w->indent ? ", " : ",", compact(w) && w->indent ? 2 : 1);
        newline(w);
    } else if (w->len > 0) {
        w->failed = true; /* two top-level values */
    }
    w->count[w->depth]++;
}

static void jw_open(AsJsonW *w, char c, bool inline_)
{
    before_value(w);
    if (w->depth >= AS_JW_MAX_DEPTH) {
        w->failed = true;
        return;
    }
    raw(w, &c, 1);
    w->depth++;
    w->count[w->depth] = 0;
    if (inline_ && w->compact_from == 0)
        w->compact_from = w->depth;
}

static void close_(AsJsonW *w, char c)
{
    if (w->depth <= 0 || w->after_key) {
        w->failed = true;
        return;
    }
    bool had = w->count[w->depth] > 0;
    w->depth--;
    if (had && !(w->compact_from > 0 && w->depth + 1 >= w->compact_from))
        newline(w);
    raw(w, &c, 1);
    if (w->compact_from > w->depth)
        w->compact_from = 0;
}

void as_jw_object_begin(AsJsonW *w) { jw_open(w, '{', false); }
void as_jw_object_end(AsJsonW *w) { close_(w, '}'); }
void as_jw_array_begin(AsJsonW *w) { jw_open(w, '[', false); }
void as_jw_array_begin_inline(AsJsonW *w) { jw_open(w, '[', true); }
void as_jw_array_end(AsJsonW *w) { close_(w, ']'); }

void as_jw_key(AsJsonW *w, const char *key)
{
    if (w->depth == 0 || w->after_key) {
        w->failed = true;
        return;
    }
    before_value(w);
    if (!w->failed && !as_jw_escape_into(&w->buf, &w->len, &w->cap, key))
        w->failed = true;
    raw(w, w->indent ? ": " : ":", w->indent ? 2 : 1);
    w->after_key = true;
}

void as_jw_string(AsJsonW *w, const char *s)
{
    before_value(w);
    if (!w->failed && !as_jw_escape_into(&w->buf, &w->len, &w->cap, s))
        w->failed = true;
}

void as_jw_int(AsJsonW *w, int64_t v)
{
    char b[32];
    int n = snprintf(b, sizeof b, "%" PRId64, v);
    before_value(w);
    raw(w, b, (size_t)n);
}

void as_jw_double(AsJsonW *w, double v)
{
    if (!isfinite(v)) {
        as_jw_null(w);
        return;
    }
    char t[64], b[64];
    /* shortest of %.15g / %.17g that reads back exactly */
    snprintf(t, sizeof t, "%.15g", v);
    if (strtod(t, NULL) != v)
        snprintf(t, sizeof t, "%.17g", v);
    /* locale independence: any byte that is not a digit, sign or exponent is
     * the decimal separator (one or more bytes) and becomes '.' */
    size_t n = 0;
    bool has_point = false;
    for (const char *p = t; *p;) {
        char c = *p;
        if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == 'e' || c == 'E') {
            b[n++] = c;
            p++;
        } else {
            b[n++] = '.';
            has_point = true;
            while (*p && !((*p >= '0' && *p <= '9') || *p == 'e' || *p == 'E'))
                p++;
        }
    }
    /* integral values keep a ".0" so readers see a floating-point number */
    if (!has_point && !strchr(t, 'e') && !strchr(t, 'E')) {
        b[n++] = '.';
        b[n++] = '0';
    }
    b[n] = '\0';
    before_value(w);
    raw(w, b, n);
}

void as_jw_bool(AsJsonW *w, bool v)
{
    before_value(w);
    raw(w, v ? "true" : "false", v ? 4 : 5);
}

void as_jw_null(AsJsonW *w)
{
    before_value(w);
    raw(w, "null", 4);
}

void as_jw_raw_value(AsJsonW *w, const char *json, size_t n)
{
    before_value(w);
    raw(w, json, n);
}

int as_jw_finish(AsJsonW *w, const char *name, AsError *err)
{
    if (w->failed)
        return as_error_set(err, AS_ERR_NOMEM, "%s: cannot build the JSON text (out of memory)",
                            name ? name : "json");
    if (w->depth != 0 || w->after_key || w->len == 0)
        return as_error_set(err, AS_ERR_ARG, "%s: JSON text is incomplete (internal error)",
                            name ? name : "json");
    return 0;
}

bool as_jw_append_newline(AsJsonW *w)
{
    if (w->len + 2 > w->cap) {
        char *nb = realloc(w->buf, w->len + 2);
        if (!nb)
            return false;
        w->buf = nb;
        w->cap = w->len + 2;
    }
    w->buf[w->len++] = '\n';
    w->buf[w->len] = '\0';
    return true;
}

int as_jw_write_file(AsJsonW *w, const char *path, AsError *err)
{
    int rc = as_jw_finish(w, path, err);
    if (rc)
        return rc;
    AsAtomicFile af;
    if ((rc = as_atomic_begin(&af, path, err)))
        return rc;
    if (fwrite(w->buf, 1, w->len, af.f) != w->len || fputc('\n', af.f) == EOF) {
        rc = as_error_set(err, AS_ERR_IO, "%s: write failed (%s); the previous file is kept",
                          path, strerror(errno));
        as_atomic_abort(&af);
        return rc;
    }
    return as_atomic_commit(&af, err);
}
