/* json: a small, safe JSON DOM parser (RFC 8259). Used for safetensors
 * headers and to read exported JSON back in tests. Input is hostile: nesting
 * depth (256), node count and string sizes are bounded, every byte is
 * bounds-checked, and errors give the byte offset. Integers that fit int64
 * are kept exactly (is_int) as well as as doubles. */
#ifndef ALIGNSEG_JSON_H
#define ALIGNSEG_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define AS_JSON_MAX_DEPTH 256

typedef enum { AS_JSON_NULL, AS_JSON_BOOL, AS_JSON_NUMBER, AS_JSON_STRING, AS_JSON_ARRAY, AS_JSON_OBJECT } AsJsonType;

typedef struct AsJson AsJson;
struct AsJson {
    AsJsonType type;
    bool b;         /* BOOL */
    double num;     /* NUMBER */
    int64_t i;      /* NUMBER, exact when is_int */
    bool is_int;
    char *str;      /* STRING: UTF-8, NUL-terminated (may contain NUL: see len) */
    size_t len;
    AsJson **items; /* ARRAY elements / OBJECT values */
    char **keys;    /* OBJECT keys (NUL-terminated) */
    size_t count;
};

/* Parse text[0..len) (need not be NUL-terminated); name is used in messages. */
int as_json_parse(const char *text, size_t len, const char *name, AsJson **out, AsError *err);
int as_json_read_file(const char *path, AsJson **out, AsError *err);
void as_json_free(AsJson *j);

/* strtod that always uses '.' as the decimal point, whatever setlocale()
 * the program (e.g. the GTK viewer) has made. */
double as_strtod_c(const char *s, char **end);

/* Lookups: NULL when absent or of the wrong type. */
const AsJson *as_json_get(const AsJson *obj, const char *key); /* first match */
const AsJson *as_json_at(const AsJson *arr, size_t i);
/* Convenience: value of a number / string, or dflt when j is not one. */
double as_json_num(const AsJson *j, double dflt);
const char *as_json_str(const AsJson *j, const char *dflt);

#endif
