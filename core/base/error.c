/* error: see error.h */
#include "error.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* length of the valid, printable UTF-8 sequence at s[0..n), 0 if there is none */
static size_t utf8_printable(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return c >= 0x20 && c != 0x7f;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07u;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp < 0xE000))
        return 0; /* overlong or surrogate */
    if (cp < 0xA0 || (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069))
        return 0; /* C1 controls, bidirectional overrides */
    return len;
}

char *as_escape(const char *s, size_t n, char *out, size_t cap)
{
    if (!out || cap == 0)
        return out;
    const unsigned char *u = (const unsigned char *)(s ? s : "");
    if (!s)
        n = 0;
    size_t o = 0, i = 0;
    bool cut = false;
    while (i < n) {
        size_t k = utf8_printable(u + i, n - i);
        size_t need = k ? k : 4;
        if (o + need + 1 > cap) {
            cut = true;
            break;
        }
        if (k) {
            memcpy(out + o, u + i, k);
            o += k;
            i += k;
        } else {
            static const char hex[] = "0123456789abcdef";
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[u[i] >> 4];
            out[o++] = hex[u[i] & 15];
            i++;
        }
    }
    if (cut) { /* room for "..." */
        while (o > 0 && o + 4 > cap)
            o--;
        while (o > 0 && ((unsigned char)out[o] & 0xC0) == 0x80)
            o--; /* not inside a UTF-8 sequence */
        if (o + 4 <= cap) {
            memcpy(out + o, "...", 3);
            o += 3;
        }
    }
    out[o] = '\0';
    return out;
}

int as_error_set(AsError *err, AsStatus code, const char *fmt, ...)
{
    if (err) {
        char raw[AS_ERROR_MSG_MAX];
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(raw, sizeof raw, fmt, ap);
        va_end(ap);
        as_escape(raw, strlen(raw), err->msg, sizeof err->msg);
    }
    return (int)code;
}

int as_error_prefix(AsError *err, const char *fmt, ...)
{
    if (!err)
        return AS_ERR_ARG;
    char head[AS_ERROR_MSG_MAX];
    char old[AS_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t hl = strnlen(head, sizeof head - 1);
    size_t ol = strnlen(old, sizeof old - 1);
    if (hl > sizeof err->msg - 1)
        hl = sizeof err->msg - 1;
    if (ol > sizeof err->msg - 1 - hl)
        ol = sizeof err->msg - 1 - hl;
    memcpy(err->msg, head, hl);
    memcpy(err->msg + hl, old, ol);
    err->msg[hl + ol] = '\0';
    memcpy(old, err->msg, hl + ol + 1);
    as_escape(old, hl + ol, err->msg, sizeof err->msg);
    return (int)err->code;
}

void as_error_clear(AsError *err)
{
    if (err) {
        err->code = AS_OK;
        err->msg[0] = '\0';
    }
}

const char *as_status_name(AsStatus code)
{
    switch (code) {
    case AS_OK: return "ok";
    case AS_ERR_IO: return "I/O error";
    case AS_ERR_FORMAT: return "malformed file";
    case AS_ERR_UNSUPPORTED: return "unsupported";
    case AS_ERR_SHAPE: return "shape mismatch";
    case AS_ERR_NOMEM: return "out of memory";
    case AS_ERR_ARG: return "invalid argument";
    case AS_ERR_CANCELLED: return "cancelled";
    }
    return "unknown error";
}
