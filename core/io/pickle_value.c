/* pickle_value: the value tree of pickle.h (dtypes, constructors, lookups,
 * deep copies), shared by the reader (pickle_vm.c, pickle_ops.c) and the
 * writer (pickle_write.c). */
#include "pickle.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pickle_vm.h"

/* ---- dtypes ---- */

size_t as_pdtype_size(AsPDtype dt)
{
    switch (dt) {
    case AS_PD_F64:
    case AS_PD_I64: return 8;
    case AS_PD_F32:
    case AS_PD_I32: return 4;
    case AS_PD_F16:
    case AS_PD_BF16:
    case AS_PD_I16: return 2;
    case AS_PD_I8:
    case AS_PD_U8:
    case AS_PD_BOOL: return 1;
    }
    return 1;
}

const char *as_pdtype_name(AsPDtype dt)
{
    switch (dt) {
    case AS_PD_F32: return "float32";
    case AS_PD_F64: return "float64";
    case AS_PD_F16: return "float16";
    case AS_PD_BF16: return "bfloat16";
    case AS_PD_I64: return "int64";
    case AS_PD_I32: return "int32";
    case AS_PD_I16: return "int16";
    case AS_PD_I8: return "int8";
    case AS_PD_U8: return "uint8";
    case AS_PD_BOOL: return "bool";
    }
    return "?";
}

bool as_pdtype_is_float(AsPDtype dt)
{
    return dt == AS_PD_F32 || dt == AS_PD_F64 || dt == AS_PD_F16 || dt == AS_PD_BF16;
}

const char *as_pv_kind_name(AsPvKind k)
{
    switch (k) {
    case AS_PV_NONE: return "None";
    case AS_PV_BOOL: return "bool";
    case AS_PV_INT: return "int";
    case AS_PV_FLOAT: return "float";
    case AS_PV_STR: return "str";
    case AS_PV_BYTES: return "bytes";
    case AS_PV_TUPLE: return "tuple";
    case AS_PV_LIST: return "list";
    case AS_PV_DICT: return "dict";
    case AS_PV_TENSOR: return "tensor";
    case AS_PV_GLOBAL: return "global";
    case AS_PV_STORAGE: return "storage";
    case AS_PV_OBJECT: return "object";
    }
    return "?";
}

/* ---- building and freeing ---- */

AsPValue *as_pvi_new(AsPvKind kind)
{
    AsPValue *v = calloc(1, sizeof *v);
    if (v) {
        v->kind = kind;
        v->height = 1;
    }
    return v;
}

static void tensor_free(AsPTensor *t)
{
    if (!t)
        return;
    free(t->storage_key);
    if (!t->borrowed) {
        free(t->f32);
        free(t->i64);
    }
    free(t);
}

/* frees v's own allocations, not its children */
void as_pvi_free_shallow(AsPValue *v)
{
    free(v->s);
    free(v->items);
    free(v->keys);
    tensor_free(v->t);
    free(v);
}

void as_pv_free(AsPValue *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->count; i++) {
        if (v->items)
            as_pv_free(v->items[i]);
        if (v->keys)
            as_pv_free(v->keys[i]);
    }
    as_pvi_free_shallow(v);
}

AsPValue *as_pv_none(void) { return as_pvi_new(AS_PV_NONE); }

AsPValue *as_pv_bool(bool b)
{
    AsPValue *v = as_pvi_new(AS_PV_BOOL);
    if (v)
        v->b = b;
    return v;
}

AsPValue *as_pv_int(int64_t i)
{
    AsPValue *v = as_pvi_new(AS_PV_INT);
    if (v)
        v->i = i;
    return v;
}

AsPValue *as_pv_float(double f)
{
    AsPValue *v = as_pvi_new(AS_PV_FLOAT);
    if (v)
        v->f = f;
    return v;
}

static AsPValue *pv_strn(AsPvKind kind, const void *s, size_t len)
{
    if (len == SIZE_MAX)
        return NULL;
    AsPValue *v = as_pvi_new(kind);
    if (!v)
        return NULL;
    v->s = malloc(len + 1);
    if (!v->s) {
        free(v);
        return NULL;
    }
    if (len)
        memcpy(v->s, s, len);
    v->s[len] = '\0';
    v->len = len;
    return v;
}

AsPValue *as_pv_str(const char *s) { return pv_strn(AS_PV_STR, s, strlen(s)); }
AsPValue *as_pv_bytes(const void *data, size_t len) { return pv_strn(AS_PV_BYTES, data, len); }
AsPValue *as_pv_tuple(void) { return as_pvi_new(AS_PV_TUPLE); }
AsPValue *as_pv_list(void) { return as_pvi_new(AS_PV_LIST); }

AsPValue *as_pv_dict(bool ordered)
{
    AsPValue *v = as_pvi_new(AS_PV_DICT);
    if (v)
        v->ordered = ordered;
    return v;
}

static bool shape_numel(int ndim, const int64_t *shape, int64_t *numel)
{
    int64_t n = 1;
    if (ndim < 0 || ndim > AS_MAX_DIMS)
        return false;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] > 0 && n > INT64_MAX / 8 / shape[i]))
            return false;
        n *= shape[i];
    }
    *numel = n;
    return true;
}

static AsPValue *pv_tensor(AsPDtype dt, int ndim, const int64_t *shape, const void *data, bool copy)
{
    int64_t numel;
    if (!shape_numel(ndim, shape, &numel) || (numel > 0 && !data))
        return NULL;
    AsPValue *v = as_pvi_new(AS_PV_TENSOR);
    if (!v)
        return NULL;
    AsPTensor *t = calloc(1, sizeof *t);
    if (!t) {
        free(v);
        return NULL;
    }
    v->t = t;
    t->dtype = dt;
    t->ndim = ndim;
    t->numel = numel;
    t->storage_numel = numel;
    int64_t st = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        t->shape[i] = shape[i];
        t->stride[i] = st;
        st *= shape[i] > 0 ? shape[i] : 1;
    }
    size_t bytes = (size_t)numel * 8;
    if (dt == AS_PD_F32)
        bytes = (size_t)numel * 4;
    void *p = (void *)(uintptr_t)data;
    if (copy) {
        p = malloc(bytes ? bytes : 1);
        if (!p) {
            as_pv_free(v);
            return NULL;
        }
        if (bytes)
            memcpy(p, data, bytes);
    } else {
        t->borrowed = true;
    }
    if (dt == AS_PD_F32)
        t->f32 = p;
    else
        t->i64 = p;
    return v;
}

AsPValue *as_pv_tensor_f32(int ndim, const int64_t *shape, const float *data, bool copy)
{
    return pv_tensor(AS_PD_F32, ndim, shape, data, copy);
}

AsPValue *as_pv_tensor_i64(int ndim, const int64_t *shape, const int64_t *data, bool copy)
{
    return pv_tensor(AS_PD_I64, ndim, shape, data, copy);
}

int as_pvi_grow(AsPValue *v, bool with_keys)
{
    if (v->count < v->cap)
        return 0;
    size_t nc = v->cap ? v->cap * 2 : 4;
    AsPValue **n = realloc(v->items, nc * sizeof *n);
    if (!n)
        return -1;
    v->items = n;
    if (with_keys) {
        AsPValue **k = realloc(v->keys, nc * sizeof *k);
        if (!k)
            return -1;
        v->keys = k;
    }
    v->cap = nc;
    return 0;
}

void as_pvi_bump_height(AsPValue *parent, const AsPValue *child)
{
    if (child->height + 1 > parent->height)
        parent->height = child->height + 1;
}

int as_pv_append(AsPValue *seq, AsPValue *item, AsError *err)
{
    if (!item)
        return as_error_set(err, AS_ERR_NOMEM, "out of memory building a value");
    if (!seq || (seq->kind != AS_PV_LIST && seq->kind != AS_PV_TUPLE)) {
        as_pv_free(item);
        return as_error_set(err, AS_ERR_ARG, "append to a %s", seq ? as_pv_kind_name(seq->kind) : "NULL");
    }
    if (as_pvi_grow(seq, false)) {
        as_pv_free(item);
        return as_error_set(err, AS_ERR_NOMEM, "out of memory building a list");
    }
    seq->items[seq->count++] = item;
    as_pvi_bump_height(seq, item);
    return AS_OK;
}

bool as_pvi_key_equal(const AsPValue *a, const AsPValue *b)
{
    if (a->kind != b->kind)
        return false;
    if (a->kind == AS_PV_STR || a->kind == AS_PV_BYTES)
        return a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
    if (a->kind == AS_PV_INT)
        return a->i == b->i;
    if (a->kind == AS_PV_NONE)
        return true;
    if (a->kind == AS_PV_BOOL)
        return a->b == b->b;
    return false;
}

int as_pv_dict_set(AsPValue *dict, AsPValue *key, AsPValue *val, AsError *err)
{
    if (!key || !val || !dict || dict->kind != AS_PV_DICT) {
        int bad_arg = key && val;
        as_pv_free(key);
        as_pv_free(val);
        return bad_arg ? as_error_set(err, AS_ERR_ARG, "set an item of a non-dict")
                       : as_error_set(err, AS_ERR_NOMEM, "out of memory building a dict");
    }
    for (size_t i = 0; i < dict->count; i++) {
        if (as_pvi_key_equal(dict->keys[i], key)) {
            as_pv_free(dict->items[i]);
            as_pv_free(key);
            dict->items[i] = val;
            as_pvi_bump_height(dict, val);
            return AS_OK;
        }
    }
    if (as_pvi_grow(dict, true)) {
        as_pv_free(key);
        as_pv_free(val);
        return as_error_set(err, AS_ERR_NOMEM, "out of memory building a dict");
    }
    dict->keys[dict->count] = key;
    dict->items[dict->count] = val;
    dict->count++;
    as_pvi_bump_height(dict, key);
    as_pvi_bump_height(dict, val);
    return AS_OK;
}

int as_pv_dict_set_str(AsPValue *dict, const char *key, AsPValue *val, AsError *err)
{
    return as_pv_dict_set(dict, as_pv_str(key), val, err);
}

int as_pv_dict_set_int(AsPValue *dict, int64_t key, AsPValue *val, AsError *err)
{
    return as_pv_dict_set(dict, as_pv_int(key), val, err);
}

AsPValue *as_pv_get(const AsPValue *dict, const char *key)
{
    if (!dict || (dict->kind != AS_PV_DICT && dict->kind != AS_PV_OBJECT) || !dict->keys)
        return NULL;
    size_t kl = strlen(key);
    for (size_t i = 0; i < dict->count; i++) {
        const AsPValue *k = dict->keys[i];
        if (k->kind == AS_PV_STR && k->len == kl && memcmp(k->s, key, kl) == 0)
            return dict->items[i];
    }
    return NULL;
}

AsPValue *as_pv_get_int(const AsPValue *dict, int64_t key)
{
    if (!dict || dict->kind != AS_PV_DICT)
        return NULL;
    for (size_t i = 0; i < dict->count; i++)
        if (dict->keys[i]->kind == AS_PV_INT && dict->keys[i]->i == key)
            return dict->items[i];
    return NULL;
}

bool as_pv_number(const AsPValue *v, double *out)
{
    if (!v)
        return false;
    switch (v->kind) {
    case AS_PV_INT: *out = (double)v->i; return true;
    case AS_PV_BOOL: *out = v->b ? 1.0 : 0.0; return true;
    case AS_PV_FLOAT: *out = v->f; return true;
    case AS_PV_TENSOR:
        if (v->t->numel != 1)
            return false;
        if (v->t->f32) {
            *out = v->t->f32[0];
            return true;
        }
        if (v->t->i64) {
            *out = (double)v->t->i64[0];
            return true;
        }
        return false;
    default: return false;
    }
}

AsPValue *as_pv_copy(const AsPValue *v)
{
    if (!v)
        return NULL;
    AsPValue *c = as_pvi_new(v->kind);
    if (!c)
        return NULL;
    c->b = v->b;
    c->i = v->i;
    c->f = v->f;
    c->ordered = v->ordered;
    c->dtype = v->dtype;
    c->height = v->height;
    if (v->s) {
        c->s = malloc(v->len + 1);
        if (!c->s)
            goto fail;
        memcpy(c->s, v->s, v->len + 1);
        c->len = v->len;
    }
    if (v->t) {
        c->t = calloc(1, sizeof *c->t);
        if (!c->t)
            goto fail;
        *c->t = *v->t;
        c->t->storage_key = NULL;
        c->t->f32 = NULL;
        c->t->i64 = NULL;
        if (v->t->storage_key && !(c->t->storage_key = strdup(v->t->storage_key)))
            goto fail;
        if (v->t->borrowed) {
            c->t->f32 = v->t->f32;
            c->t->i64 = v->t->i64;
        } else if (v->t->f32 || v->t->i64) {
            size_t bytes = (size_t)v->t->numel * (v->t->f32 ? 4 : 8);
            void *p = malloc(bytes ? bytes : 1);
            if (!p)
                goto fail;
            memcpy(p, v->t->f32 ? (const void *)v->t->f32 : (const void *)v->t->i64, bytes);
            if (v->t->f32)
                c->t->f32 = p;
            else
                c->t->i64 = p;
        }
    }
    if (v->count) {
        c->items = calloc(v->count, sizeof *c->items);
        if (!c->items)
            goto fail;
        if (v->keys) {
            c->keys = calloc(v->count, sizeof *c->keys);
            if (!c->keys)
                goto fail;
        }
        c->cap = v->count;
        for (size_t i = 0; i < v->count; i++) {
            c->count = i + 1;
            if (!(c->items[i] = as_pv_copy(v->items[i])))
                goto fail;
            if (v->keys && !(c->keys[i] = as_pv_copy(v->keys[i])))
                goto fail;
        }
    }
    return c;
fail:
    as_pv_free(c);
    return NULL;
}
