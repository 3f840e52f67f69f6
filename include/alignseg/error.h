/* alignseg/error.h: the error type of libalignseg, shared with the library's
 * internals (core/base/error.h includes this header: there is one error type).
 * Every fallible function of the API takes an AsError * (may be NULL) and
 * returns 0 on success or a non-zero AsStatus; err->msg is then one readable
 * line naming the file and the problem. Part of the public API: see
 * alignseg/alignseg.h. */
#ifndef ALIGNSEG_PUBLIC_ERROR_H
#define ALIGNSEG_PUBLIC_ERROR_H

/* ALIGNSEG_API marks the functions libalignseg.so exports; every other symbol
 * of the library is hidden (built with -fvisibility=hidden and a version
 * script, core/api/alignseg.map). */
#if defined(ALIGNSEG_BUILDING_LIBRARY) && defined(__GNUC__)
#define ALIGNSEG_API __attribute__((visibility("default")))
#else
#define ALIGNSEG_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    AS_OK = 0,
    AS_ERR_IO,          /* cannot open / read / write a file */
    AS_ERR_FORMAT,      /* file is malformed, truncated or hostile */
    AS_ERR_UNSUPPORTED, /* valid but not supported (old torch format, dtype...) */
    AS_ERR_SHAPE,       /* tensor shapes do not fit together */
    AS_ERR_NOMEM,       /* allocation failed or a size is absurd */
    AS_ERR_ARG,         /* bad argument from the caller / user */
    AS_ERR_CANCELLED    /* the caller asked to stop */
} AsStatus;

#define AS_ERROR_MSG_MAX 1024

typedef struct {
    AsStatus code;
    char msg[AS_ERROR_MSG_MAX];
} AsError;

/* "I/O error", "malformed file", ... (a static string; "unknown error" for
 * other values). */
ALIGNSEG_API const char *alignseg_status_name(AsStatus code);

#ifdef __cplusplus
}
#endif

#endif
