/* pickle_write: the protocol-2 writer of pickle.h (as_pickle_write). */
#include "pickle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pickle_opcodes.h"

typedef struct {
    uint8_t *buf;
    size_t len, cap;
    const AsPTensor **tensors;
    size_t ntensors, cap_tensors;
    AsError *err;
    bool oom;
} Wr;

static void wr_bytes(Wr *w, const void *p, size_t n)
{
    if (w->oom)
        return;
    if (w->len + n > w->cap) {
        size_t nc = w->cap ? w->cap : 1024;
        while (nc < w->len + n)
            nc *= 2;
        uint8_t *b = realloc(w->buf, nc);
        if (!b) {
            w->oom = true;
            return;
        }
        w->buf = b;
        w->cap = nc;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void wr_op(Wr *w, uint8_t op) { wr_bytes(w, &op, 1); }
static void wr_str_raw(Wr *w, const char *s) { wr_bytes(w, s, strlen(s)); }

static void wr_unicode(Wr *w, const char *s, size_t n)
{
    uint8_t h[5] = { OP_BINUNICODE, (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24) };
    wr_bytes(w, h, 5);
    wr_bytes(w, s, n);
}

static void wr_int(Wr *w, int64_t v)
{
    if (v >= 0 && v < 256) {
        uint8_t h[2] = { OP_BININT1, (uint8_t)v };
        wr_bytes(w, h, 2);
    } else if (v >= 0 && v < 65536) {
        uint8_t h[3] = { OP_BININT2, (uint8_t)v, (uint8_t)(v >> 8) };
        wr_bytes(w, h, 3);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        uint32_t u = (uint32_t)(int32_t)v;
        uint8_t h[5] = { OP_BININT, (uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24) };
        wr_bytes(w, h, 5);
    } else {
        uint8_t h[10] = { OP_LONG1, 8 };
        uint64_t u = (uint64_t)v;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)(u >> (8 * i));
        wr_bytes(w, h, 10);
    }
}

static void wr_global(Wr *w, const char *mod, const char *name)
{
    wr_op(w, OP_GLOBAL);
    wr_str_raw(w, mod);
    wr_op(w, '\n');
    wr_str_raw(w, name);
    wr_op(w, '\n');
}

static int wr_value(Wr *w, const AsPValue *v, int depth);

static int wr_tensor(Wr *w, const AsPTensor *t)
{
    /* the data decides: f32 -> FloatStorage, i64 -> LongStorage (a tensor
     * read from a float16 file holds f32 data and is written as float32) */
    bool is_f32 = t->f32 != NULL || (!t->i64 && t->dtype != AS_PD_I64);
    if (t->numel && !t->f32 && !t->i64)
        return as_error_set(w->err, AS_ERR_ARG, "pickle writer: tensor without data");
    if (w->ntensors == w->cap_tensors) {
        size_t nc = w->cap_tensors ? w->cap_tensors * 2 : 64;
        const AsPTensor **n = realloc(w->tensors, nc * sizeof *n);
        if (!n)
            return as_error_set(w->err, AS_ERR_NOMEM, "out of memory");
        w->tensors = n;
        w->cap_tensors = nc;
    }
    char key[32];
    snprintf(key, sizeof key, "%zu", w->ntensors);
    w->tensors[w->ntensors++] = t;
    wr_global(w, "torch._utils", "_rebuild_tensor_v2");
    wr_op(w, OP_MARK);
    /* persistent id ('storage', torch.XStorage, key, 'cpu', numel) */
    wr_op(w, OP_MARK);
    wr_unicode(w, "storage", 7);
    wr_global(w, "torch", is_f32 ? "FloatStorage" : "LongStorage");
    wr_unicode(w, key, strlen(key));
    wr_unicode(w, "cpu", 3);
    wr_int(w, t->numel);
    wr_op(w, OP_TUPLE);
    wr_op(w, OP_BINPERSID);
    wr_int(w, 0); /* storage offset */
    wr_op(w, OP_MARK);
    for (int i = 0; i < t->ndim; i++)
        wr_int(w, t->shape[i]);
    wr_op(w, OP_TUPLE);
    wr_op(w, OP_MARK);
    int64_t st[AS_MAX_DIMS], s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        st[i] = s;
        s *= t->shape[i] > 0 ? t->shape[i] : 1;
    }
    for (int i = 0; i < t->ndim; i++)
        wr_int(w, st[i]);
    wr_op(w, OP_TUPLE);
    wr_op(w, OP_NEWFALSE); /* requires_grad False */
    wr_global(w, "collections", "OrderedDict");
    wr_op(w, OP_EMPTY_TUPLE);
    wr_op(w, OP_REDUCE); /* backward hooks: OrderedDict() */
    wr_op(w, OP_TUPLE);
    wr_op(w, OP_REDUCE);
    return AS_OK;
}

static int wr_value(Wr *w, const AsPValue *v, int depth)
{
    int rc;
    if (!v)
        return as_error_set(w->err, AS_ERR_ARG, "pickle writer: NULL value");
    if (depth > AS_PICKLE_MAX_DEPTH)
        return as_error_set(w->err, AS_ERR_ARG, "pickle writer: values nested deeper than %d",
                            AS_PICKLE_MAX_DEPTH);
    switch (v->kind) {
    case AS_PV_NONE: wr_op(w, OP_NONE); break;
    case AS_PV_BOOL: wr_op(w, v->b ? OP_NEWTRUE : OP_NEWFALSE); break;
    case AS_PV_INT: wr_int(w, v->i); break;
    case AS_PV_FLOAT: {
        uint8_t h[9] = { OP_BINFLOAT };
        uint64_t u;
        memcpy(&u, &v->f, 8);
        for (int i = 0; i < 8; i++)
            h[1 + i] = (uint8_t)(u >> (56 - 8 * i));
        wr_bytes(w, h, 9);
        break;
    }
    case AS_PV_STR:
        if (v->len > 0xFFFFFFFFu)
            return as_error_set(w->err, AS_ERR_ARG, "pickle writer: string too long");
        wr_unicode(w, v->s, v->len);
        break;
    case AS_PV_BYTES: {
        /* protocol 2 has no bytes opcode for Python 3: _codecs.encode(latin1 str, 'latin1') */
        if (v->len > 0x7FFFFFFFu)
            return as_error_set(w->err, AS_ERR_ARG, "pickle writer: bytes too long");
        char *u = malloc(v->len * 2 + 1);
        if (!u)
            return as_error_set(w->err, AS_ERR_NOMEM, "out of memory");
        size_t n = 0;
        for (size_t i = 0; i < v->len; i++) {
            uint8_t c = (uint8_t)v->s[i];
            if (c < 0x80) {
                u[n++] = (char)c;
            } else {
                u[n++] = (char)(0xC0 | (c >> 6));
                u[n++] = (char)(0x80 | (c & 0x3F));
            }
        }
        wr_global(w, "_codecs", "encode");
        wr_unicode(w, u, n);
        free(u);
        wr_unicode(w, "latin1", 6);
        wr_op(w, OP_TUPLE2);
        wr_op(w, OP_REDUCE);
        break;
    }
    case AS_PV_TUPLE:
        wr_op(w, OP_MARK);
        for (size_t i = 0; i < v->count; i++)
            if ((rc = wr_value(w, v->items[i], depth + 1)))
                return rc;
        wr_op(w, OP_TUPLE);
        break;
    case AS_PV_LIST:
        wr_op(w, OP_EMPTY_LIST);
        if (v->count) {
            wr_op(w, OP_MARK);
            for (size_t i = 0; i < v->count; i++)
                if ((rc = wr_value(w, v->items[i], depth + 1)))
                    return rc;
            wr_op(w, OP_APPENDS);
        }
        break;
    case AS_PV_DICT:
        if (v->ordered) {
            wr_global(w, "collections", "OrderedDict");
            wr_op(w, OP_EMPTY_TUPLE);
            wr_op(w, OP_REDUCE);
        } else {
            wr_op(w, OP_EMPTY_DICT);
        }
        if (v->count) {
            wr_op(w, OP_MARK);
            for (size_t i = 0; i < v->count; i++) {
                if ((rc = wr_value(w, v->keys[i], depth + 1)) || (rc = wr_value(w, v->items[i], depth + 1)))
                    return rc;
            }
            wr_op(w, OP_SETITEMS);
        }
        break;
    case AS_PV_TENSOR:
        if ((rc = wr_tensor(w, v->t)))
            return rc;
        break;
    default:
        return as_error_set(w->err, AS_ERR_ARG, "pickle writer: cannot write a %s value",
                            as_pv_kind_name(v->kind));
    }
    return w->oom ? as_error_set(w->err, AS_ERR_NOMEM, "out of memory writing a pickle") : AS_OK;
}

int as_pickle_write(const AsPValue *root, uint8_t **out, size_t *out_len,
                    const AsPTensor ***tensors, size_t *ntensors, AsError *err)
{
    *out = NULL;
    *out_len = 0;
    if (tensors)
        *tensors = NULL;
    if (ntensors)
        *ntensors = 0;
    Wr w;
    memset(&w, 0, sizeof w);
    AsError local;
    w.err = err ? err : &local;
    uint8_t proto[2] = { OP_PROTO, 2 };
    wr_bytes(&w, proto, 2);
    int rc = wr_value(&w, root, 0);
    wr_op(&w, OP_STOP);
    if (!rc && w.oom)
        rc = as_error_set(w.err, AS_ERR_NOMEM, "out of memory writing a pickle");
    if (rc) {
        free(w.buf);
        free(w.tensors);
        return rc;
    }
    *out = w.buf;
    *out_len = w.len;
    if (tensors)
        *tensors = w.tensors;
    else
        free(w.tensors);
    if (ntensors)
        *ntensors = w.ntensors;
    return AS_OK;
}
