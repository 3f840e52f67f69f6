/* error: the one error type of alignseg. Every fallible function takes an
 * AsError* (may be NULL) and returns 0 on success or a non-zero AsStatus.
 * Messages are one readable line: what is wrong and where (file, tensor, offset). */
#ifndef ALIGNSEG_ERROR_H
#define ALIGNSEG_ERROR_H

#include <stdarg.h>
#include <stddef.h>

/* AsStatus, AsError and AS_ERROR_MSG_MAX are public (the API of libalignseg). */
#include <alignseg/error.h>

#if defined(__GNUC__)
#define AS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define AS_PRINTF(a, b)
#endif

/* Set err (if non-NULL) and return code, so callers can write
 *   return as_error_set(err, AS_ERR_FORMAT, "%s: bad magic", path); */
int as_error_set(AsError *err, AsStatus code, const char *fmt, ...) AS_PRINTF(3, 4);
/* Prepend context ("model.pth: ") to an error already set. Returns err->code. */
int as_error_prefix(AsError *err, const char *fmt, ...) AS_PRINTF(2, 3);
void as_error_clear(AsError *err);

/* The one escaping function for text that comes from a file (tensor names,
 * zip entry names, JSON keys) or goes to a terminal: control bytes (C0, DEL,
 * C1), bidirectional overrides and bytes that are not valid UTF-8 become
 * \xNN; printable UTF-8 is kept. Writes at most cap bytes including the NUL,
 * ending in "..." when cut. Returns out. as_error_set and as_error_prefix run
 * every message through it, so no error reaches the terminal with a control
 * byte in it. */
char *as_escape(const char *s, size_t n, char *out, size_t cap);
const char *as_status_name(AsStatus code);

#endif
