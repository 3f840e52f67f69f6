/* error: see error.h */
#include "error.h"

#include <stdio.h>
#include <string.h>

int as_error_set(AsError *err, AsStatus code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
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
