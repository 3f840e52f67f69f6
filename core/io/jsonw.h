/* jsonw: a small JSON writer into a growing memory buffer, for the exports
 * (COCO, labelme) and the evaluation report. Strings are escaped as RFC 8259
 * requires (quote, backslash, control characters); bytes that are not valid
 * UTF-8 are written as U+FFFD so the output is always valid JSON. Numbers are
 * locale-independent; non-finite doubles become null. Commas and nesting are
 * tracked by the writer; an out-of-memory condition is remembered and
 * reported by as_jw_finish / as_jw_write_file. */
#ifndef ALIGNSEG_JSONW_H
#define ALIGNSEG_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define AS_JW_MAX_DEPTH 64

typedef struct {
    char *buf;
    size_t len, cap;
    int indent; /* spaces per level; 0 = compact */
    int depth;
    int compact_from; /* depth from which containers are written on one line (0 = none) */
    int count[AS_JW_MAX_DEPTH + 1]; /* values written in each open container */
    bool after_key;
    bool failed; /* out of memory, too deep, or misuse */
} AsJsonW;

void as_jw_init(AsJsonW *w, int indent);
void as_jw_free(AsJsonW *w);

void as_jw_object_begin(AsJsonW *w);
void as_jw_object_end(AsJsonW *w);
void as_jw_array_begin(AsJsonW *w);
/* An array written on one line whatever the indent (e.g. a point [x, y]). */
void as_jw_array_begin_inline(AsJsonW *w);
void as_jw_array_end(AsJsonW *w);
void as_jw_key(AsJsonW *w, const char *key);
void as_jw_string(AsJsonW *w, const char *s);
void as_jw_int(AsJsonW *w, int64_t v);
void as_jw_double(AsJsonW *w, double v);
void as_jw_bool(AsJsonW *w, bool v);
void as_jw_null(AsJsonW *w);
/* Insert an already-encoded JSON value (e.g. built by another writer) as
 * the next value; the caller guarantees it is valid JSON. */
void as_jw_raw_value(AsJsonW *w, const char *json, size_t n);

/* Append s as a JSON string literal (with quotes) to a plain buffer; used
 * internally and by callers building text by hand. Returns false on OOM. */
bool as_jw_escape_into(char **buf, size_t *len, size_t *cap, const char *s);

/* Check that every container is closed and nothing failed; name is used in
 * the error message (e.g. the output file). */
int as_jw_finish(AsJsonW *w, const char *name, AsError *err);
/* After as_jw_finish: end the text with a newline (as files are written). */
bool as_jw_append_newline(AsJsonW *w);
/* as_jw_finish, then write the text (plus a final newline) to path. */
int as_jw_write_file(AsJsonW *w, const char *path, AsError *err);

#endif
