/* json: see json.h */
#include "json.h"

#include "file.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NODES (1u << 24)

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void make_c_locale(void)
{
    c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

double as_strtod_c(const char *s, char **end)
{
    pthread_once(&c_locale_once, make_c_locale);
    if (c_locale)
        return strtod_l(s, end, c_locale);
    return strtod(s, end);
}

typedef struct {
    const char *s;
    size_t len, pos;
    const char *name;
    AsError *err;
    size_t nodes;
    size_t used, budget; /* bytes allocated for the tree, and the most allowed */
} P;

/* What a tree may take: what a legitimate document needs (a safetensors
 * header entry of ~90 bytes becomes ~1 KB of nodes), so that a small file
 * cannot make the parser allocate without bound. */
#define BUDGET_PER_BYTE 16
#define BUDGET_BASE ((size_t)1 << 20)
#define MALLOC_OVERHEAD 16

static int charge(P *p, size_t bytes)
{
    bytes += MALLOC_OVERHEAD;
    if (bytes > p->budget - p->used)
        return as_error_set(p->err, AS_ERR_FORMAT, "%s: JSON at byte %zu needs more than %zu MB of memory "
                            "for %zu bytes of text (limit)", p->name, p->pos, p->budget >> 20, p->len);
    p->used += bytes;
    return AS_OK;
}

static int fail(P *p, const char *what)
{
    return as_error_set(p->err, AS_ERR_FORMAT, "%s: invalid JSON at byte %zu: %s", p->name, p->pos, what);
}

static void skip_ws(P *p)
{
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

void as_json_free(AsJson *j)
{
    if (!j)
        return;
    for (size_t i = 0; i < j->count; i++) {
        if (j->items)
            as_json_free(j->items[i]);
        if (j->keys)
            free(j->keys[i]);
    }
    free(j->items);
    free(j->keys);
    free(j->str);
    free(j);
}

static int hex4(P *p, unsigned *out)
{
    if (p->len - p->pos < 4)
        return fail(p, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos++];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return fail(p, "bad \\u escape");
    }
    *out = v;
    return AS_OK;
}

/* parse a string starting at '"'; output is at most as long as the input */
static int parse_string(P *p, char **out, size_t *outlen)
{
    p->pos++; /* opening quote */
    size_t start = p->pos, end = start;
    /* the closing quote (escapes may hide quotes); the text decodes to at
     * most as many bytes as it has */
    while (end < p->len && p->s[end] != '"')
        end += p->s[end] == '\\' ? 2 : 1;
    if (end >= p->len)
        return fail(p, "unterminated string");
    size_t cap = end - start + 1;
    if (charge(p, cap))
        return p->err->code;
    char *b = malloc(cap);
    if (!b)
        return as_error_set(p->err, AS_ERR_NOMEM, "%s: out of memory", p->name);
    size_t n = 0;
    for (;;) {
        if (p->pos >= p->len) {
            free(b);
            return fail(p, "unterminated string");
        }
        unsigned char c = (unsigned char)p->s[p->pos++];
        if (c == '"')
            break;
        if (c < 0x20) {
            free(b);
            p->pos--;
            return fail(p, "control character in string");
        }
        if (c != '\\') {
            b[n++] = (char)c;
            continue;
        }
        if (p->pos >= p->len) {
            free(b);
            return fail(p, "unterminated escape");
        }
        char e = p->s[p->pos++];
        switch (e) {
        case '"': b[n++] = '"'; break;
        case '\\': b[n++] = '\\'; break;
        case '/': b[n++] = '/'; break;
        case 'b': b[n++] = '\b'; break;
        case 'f': b[n++] = '\f'; break;
        case 'n': b[n++] = '\n'; break;
        case 'r': b[n++] = '\r'; break;
        case 't': b[n++] = '\t'; break;
        case 'u': {
            unsigned cp;
            const int rc = hex4(p, &cp);
            if (rc) {
                free(b);
                return rc;
            }
            if (cp >= 0xD800 && cp < 0xDC00 && p->len - p->pos >= 6 && p->s[p->pos] == '\\' &&
                p->s[p->pos + 1] == 'u') {
                size_t save = p->pos;
                unsigned lo;
                p->pos += 2;
                if (hex4(p, &lo) == AS_OK && lo >= 0xDC00 && lo < 0xE000)
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                else
                    p->pos = save;
            }
            /* \uXXXX is 6 input bytes, at most 4 output bytes: fits */
            if (cp < 0x80) {
                b[n++] = (char)cp;
            } else if (cp < 0x800) {
                b[n++] = (char)(0xC0 | (cp >> 6));
                b[n++] = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                b[n++] = (char)(0xE0 | (cp >> 12));
                b[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                b[n++] = (char)(0x80 | (cp & 0x3F));
            } else {
                b[n++] = (char)(0xF0 | (cp >> 18));
                b[n++] = (char)(0x80 | ((cp >> 12) & 0x3F));
                b[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                b[n++] = (char)(0x80 | (cp & 0x3F));
            }
            break;
        }
        default:
            free(b);
            return fail(p, "bad escape");
        }
    }
    b[n] = '\0';
    *out = b;
    *outlen = n;
    return AS_OK;
}

static int parse_number(P *p, AsJson *j)
{
    size_t st = p->pos;
    if (p->pos < p->len && p->s[p->pos] == '-')
        p->pos++;
    size_t digits = p->pos;
    while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
        p->pos++;
    if (p->pos == digits)
        return fail(p, "bad number");
    if (p->s[digits] == '0' && p->pos - digits > 1)
        return fail(p, "leading zero in number");
    bool integral = true;
    if (p->pos < p->len && p->s[p->pos] == '.') {
        integral = false;
        p->pos++;
        size_t f = p->pos;
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            p->pos++;
        if (p->pos == f)
            return fail(p, "bad fraction");
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        integral = false;
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
            p->pos++;
        size_t f = p->pos;
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            p->pos++;
        if (p->pos == f)
            return fail(p, "bad exponent");
    }
    size_t n = p->pos - st;
    char tmp[64];
    char *buf = n < sizeof tmp ? tmp : malloc(n + 1);
    if (!buf)
        return as_error_set(p->err, AS_ERR_NOMEM, "%s: out of memory", p->name);
    memcpy(buf, p->s + st, n);
    buf[n] = '\0';
    j->type = AS_JSON_NUMBER;
    j->num = as_strtod_c(buf, NULL);
    if (integral) {
        errno = 0;
        long long v = strtoll(buf, NULL, 10);
        if (errno == 0) {
            j->i = v;
            j->is_int = true;
        }
    }
    if (buf != tmp)
        free(buf);
    return AS_OK;
}

static int parse_value(P *p, AsJson **out, int depth);

static int add_child(P *p, AsJson *j, AsJson *child, char *key, size_t *cap)
{
    if (j->count == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        if (charge(p, (nc - *cap) * sizeof(AsJson *) * (j->type == AS_JSON_OBJECT ? 2 : 1))) {
            as_json_free(child);
            free(key);
            return p->err->code;
        }
        AsJson **ni = realloc(j->items, nc * sizeof *ni);
        if (!ni)
            goto oom;
        j->items = ni;
        if (j->type == AS_JSON_OBJECT) {
            char **nk = realloc(j->keys, nc * sizeof *nk);
            if (!nk)
                goto oom;
            j->keys = nk;
        }
        *cap = nc;
    }
    j->items[j->count] = child;
    if (j->type == AS_JSON_OBJECT)
        j->keys[j->count] = key;
    j->count++;
    return AS_OK;
oom:
    as_json_free(child);
    free(key);
    return as_error_set(p->err, AS_ERR_NOMEM, "%s: out of memory", p->name);
}

static int parse_value(P *p, AsJson **out, int depth)
{
    *out = NULL;
    if (depth > AS_JSON_MAX_DEPTH)
        return fail(p, "nested deeper than 256 levels");
    if (++p->nodes > MAX_NODES)
        return fail(p, "too many values");
    skip_ws(p);
    if (p->pos >= p->len)
        return fail(p, "unexpected end");
    if (charge(p, sizeof(AsJson)))
        return p->err->code;
    AsJson *j = calloc(1, sizeof *j);
    if (!j)
        return as_error_set(p->err, AS_ERR_NOMEM, "%s: out of memory", p->name);
    int rc = AS_OK;
    char c = p->s[p->pos];
    if (c == '{' || c == '[') {
        bool obj = c == '{';
        j->type = obj ? AS_JSON_OBJECT : AS_JSON_ARRAY;
        p->pos++;
        size_t cap = 0;
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == (obj ? '}' : ']')) {
            p->pos++;
            *out = j;
            return AS_OK;
        }
        for (;;) {
            char *key = NULL;
            size_t klen;
            skip_ws(p);
            if (obj) {
                if (p->pos >= p->len || p->s[p->pos] != '"') {
                    rc = fail(p, "expected a string key");
                    break;
                }
                if ((rc = parse_string(p, &key, &klen)))
                    break;
                skip_ws(p);
                if (p->pos >= p->len || p->s[p->pos] != ':') {
                    free(key);
                    rc = fail(p, "expected ':'");
                    break;
                }
                p->pos++;
            }
            AsJson *child;
            if ((rc = parse_value(p, &child, depth + 1))) {
                free(key);
                break;
            }
            if ((rc = add_child(p, j, child, key, &cap)))
                break;
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == ',') {
                p->pos++;
                continue;
            }
            if (p->pos < p->len && p->s[p->pos] == (obj ? '}' : ']')) {
                p->pos++;
                break;
            }
            rc = fail(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
            break;
        }
    } else if (c == '"') {
        j->type = AS_JSON_STRING;
        rc = parse_string(p, &j->str, &j->len);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        rc = parse_number(p, j);
    } else if (p->len - p->pos >= 4 && memcmp(p->s + p->pos, "true", 4) == 0) {
        j->type = AS_JSON_BOOL;
        j->b = true;
        p->pos += 4;
    } else if (p->len - p->pos >= 5 && memcmp(p->s + p->pos, "false", 5) == 0) {
        j->type = AS_JSON_BOOL;
        p->pos += 5;
    } else if (p->len - p->pos >= 4 && memcmp(p->s + p->pos, "null", 4) == 0) {
        j->type = AS_JSON_NULL;
        p->pos += 4;
    } else {
        rc = fail(p, "unexpected character");
    }
    if (rc) {
        as_json_free(j);
        return rc;
    }
    *out = j;
    return AS_OK;
}

int as_json_parse(const char *text, size_t len, const char *name, AsJson **out, AsError *err)
{
    *out = NULL;
    AsError local;
    P p = { text, text ? len : 0, 0, name ? name : "json", err ? err : &local, 0, 0, 0 };
    p.budget = BUDGET_BASE + (p.len < (SIZE_MAX - BUDGET_BASE) / BUDGET_PER_BYTE ? p.len * BUDGET_PER_BYTE
                                                                                  : SIZE_MAX / 2);
    AsJson *j;
    int rc = parse_value(&p, &j, 0);
    if (rc)
        return rc;
    skip_ws(&p);
    if (p.pos != p.len) {
        as_json_free(j);
        return fail(&p, "trailing characters");
    }
    *out = j;
    return AS_OK;
}

int as_json_read_file(const char *path, AsJson **out, AsError *err)
{
    *out = NULL;
    uint8_t *buf;
    size_t len;
    int rc = as_file_read_all(path, (uint64_t)1 << 30, 1, &buf, &len, err);
    if (rc)
        return rc;
    rc = as_json_parse((const char *)buf, len, path, out, err);
    free(buf);
    return rc;
}

const AsJson *as_json_get(const AsJson *obj, const char *key)
{
    if (!obj || obj->type != AS_JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < obj->count; i++)
        if (strcmp(obj->keys[i], key) == 0)
            return obj->items[i];
    return NULL;
}

const AsJson *as_json_at(const AsJson *arr, size_t i)
{
    if (!arr || arr->type != AS_JSON_ARRAY || i >= arr->count)
        return NULL;
    return arr->items[i];
}

double as_json_num(const AsJson *j, double dflt)
{
    return j && j->type == AS_JSON_NUMBER ? j->num : dflt;
}

const char *as_json_str(const AsJson *j, const char *dflt)
{
    return j && j->type == AS_JSON_STRING ? j->str : dflt;
}
