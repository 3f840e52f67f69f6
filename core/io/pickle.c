/* pickle: see pickle.h */
#include "pickle.h"

#include "json.h" /* as_strtod_c */

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- limits for reading ---- */
#define MAX_STACK (1u << 20)      /* values on the VM stack */
#define MAX_MARKS AS_PICKLE_MAX_DEPTH
#define MAX_MEMO (1u << 20)       /* memo indices */
#define MAX_NODES (1u << 22)      /* values created, including memo copies */
#define MAX_STR_BYTES ((size_t)1 << 26) /* bytes in strings, including copies */

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

static AsPValue *pv_new(AsPvKind kind)
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
static void pv_free_shallow(AsPValue *v)
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
    pv_free_shallow(v);
}

AsPValue *as_pv_none(void) { return pv_new(AS_PV_NONE); }

AsPValue *as_pv_bool(bool b)
{
    AsPValue *v = pv_new(AS_PV_BOOL);
    if (v)
        v->b = b;
    return v;
}

AsPValue *as_pv_int(int64_t i)
{
    AsPValue *v = pv_new(AS_PV_INT);
    if (v)
        v->i = i;
    return v;
}

AsPValue *as_pv_float(double f)
{
    AsPValue *v = pv_new(AS_PV_FLOAT);
    if (v)
        v->f = f;
    return v;
}

static AsPValue *pv_strn(AsPvKind kind, const void *s, size_t len)
{
    if (len == SIZE_MAX)
        return NULL;
    AsPValue *v = pv_new(kind);
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
AsPValue *as_pv_tuple(void) { return pv_new(AS_PV_TUPLE); }
AsPValue *as_pv_list(void) { return pv_new(AS_PV_LIST); }

AsPValue *as_pv_dict(bool ordered)
{
    AsPValue *v = pv_new(AS_PV_DICT);
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
    AsPValue *v = pv_new(AS_PV_TENSOR);
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

static int grow(AsPValue *v, bool with_keys)
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

static void bump_height(AsPValue *parent, const AsPValue *child)
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
    if (grow(seq, false)) {
        as_pv_free(item);
        return as_error_set(err, AS_ERR_NOMEM, "out of memory building a list");
    }
    seq->items[seq->count++] = item;
    bump_height(seq, item);
    return AS_OK;
}

static bool key_equal(const AsPValue *a, const AsPValue *b)
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
        if (key_equal(dict->keys[i], key)) {
            as_pv_free(dict->items[i]);
            as_pv_free(key);
            dict->items[i] = val;
            bump_height(dict, val);
            return AS_OK;
        }
    }
    if (grow(dict, true)) {
        as_pv_free(key);
        as_pv_free(val);
        return as_error_set(err, AS_ERR_NOMEM, "out of memory building a dict");
    }
    dict->keys[dict->count] = key;
    dict->items[dict->count] = val;
    dict->count++;
    bump_height(dict, key);
    bump_height(dict, val);
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
    AsPValue *c = pv_new(v->kind);
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

/* =================== reading: the VM =================== */

typedef enum {
    G_ODICT = 1,
    G_REBUILD_V2,
    G_REBUILD,
    G_REBUILD_PARAM,
    G_STORAGE,
    G_DTYPE,
    G_ENCODE,
    G_NAMESPACE
} GlobalId;

typedef struct {
    const uint8_t *buf;
    size_t len, pos;
    const char *name;
    AsError *err;
    AsStatus code; /* of the last failure (vm_fail), known even when err is NULL */
    /* every node created is registered here; nodes not reachable from the
     * result are freed at the end (no ownership tracking during the run) */
    AsPValue **arena;
    size_t narena, cap_arena;
    AsPValue **stack;
    size_t sp, cap_stack;
    size_t marks[MAX_MARKS];
    size_t nmarks;
    AsPValue **memo;
    size_t cap_memo, memo_count;
    size_t str_bytes;
    size_t mem, mem_budget; /* bytes the tree may take, and has taken */
} Vm;

/* What a pickle may make the reader allocate: what a legitimate one needs
 * (a torch state dict entry of ~120 bytes becomes ~2 KB of values), so that a
 * short pickle of memo copies cannot take gigabytes. */
#define MEM_BASE ((size_t)32 << 20)
#define MEM_PER_BYTE 8
#define MALLOC_OVERHEAD 16

static int vm_fail(Vm *vm, AsStatus code, const char *fmt, ...) AS_PRINTF(3, 4);
static int vm_fail(Vm *vm, AsStatus code, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    vm->code = code;
    return as_error_set(vm->err, code, "%s: %s", vm->name, msg);
}

static int vm_charge(Vm *vm, size_t bytes)
{
    bytes += MALLOC_OVERHEAD;
    if (bytes > vm->mem_budget - vm->mem)
        return vm_fail(vm, AS_ERR_FORMAT, "needs more than %zu MB of memory for %zu bytes of pickle at "
                       "byte %zu (limit)", vm->mem_budget >> 20, vm->len, vm->pos);
    vm->mem += bytes;
    return AS_OK;
}

/* charge for the growth of v's item (and key) arrays before an append */
static int vm_charge_grow(Vm *vm, const AsPValue *v, bool with_keys)
{
    if (v->count < v->cap)
        return AS_OK;
    size_t nc = v->cap ? v->cap * 2 : 4;
    return vm_charge(vm, (nc - v->cap) * sizeof(AsPValue *) * (with_keys ? 2 : 1));
}

static AsPValue *vm_new(Vm *vm, AsPvKind kind)
{
    if (vm_charge(vm, sizeof(AsPValue) + sizeof(AsPValue *)))
        return NULL;
    if (vm->narena >= MAX_NODES) {
        vm_fail(vm, AS_ERR_FORMAT, "more than %u values (limit)", (unsigned)MAX_NODES);
        return NULL;
    }
    if (vm->narena == vm->cap_arena) {
        size_t nc = vm->cap_arena ? vm->cap_arena * 2 : 256;
        AsPValue **n = realloc(vm->arena, nc * sizeof *n);
        if (!n) {
            vm_fail(vm, AS_ERR_NOMEM, "out of memory");
            return NULL;
        }
        vm->arena = n;
        vm->cap_arena = nc;
    }
    AsPValue *v = pv_new(kind);
    if (!v) {
        vm_fail(vm, AS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    vm->arena[vm->narena++] = v;
    return v;
}

static AsPValue *vm_strn(Vm *vm, AsPvKind kind, const void *s, size_t len)
{
    if (len > MAX_STR_BYTES || vm->str_bytes > MAX_STR_BYTES - len) {
        vm_fail(vm, AS_ERR_FORMAT, "more than %zu bytes of strings (limit)", MAX_STR_BYTES);
        return NULL;
    }
    AsPValue *v = vm_new(vm, kind);
    if (!v || vm_charge(vm, len + 1))
        return NULL;
    v->s = malloc(len + 1);
    if (!v->s) {
        vm_fail(vm, AS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (len)
        memcpy(v->s, s, len);
    v->s[len] = '\0';
    v->len = len;
    vm->str_bytes += len;
    return v;
}

/* Deep copy registered in the arena (children too); bounded by the limits. */
static AsPValue *vm_copy(Vm *vm, const AsPValue *v)
{
    AsPValue *c;
    if (v->s) {
        c = vm_strn(vm, v->kind, v->s, v->len);
    } else {
        c = vm_new(vm, v->kind);
    }
    if (!c)
        return NULL;
    c->b = v->b;
    c->i = v->i;
    c->f = v->f;
    c->ordered = v->ordered;
    c->dtype = v->dtype;
    c->height = v->height;
    if (v->t) {
        if (vm_charge(vm, sizeof *c->t + (v->t->storage_key ? strlen(v->t->storage_key) + 1 : 0)))
            return NULL;
        if (vm_charge(vm, sizeof *c->t + (v->t->storage_key ? strlen(v->t->storage_key) + 1 : 0)))
            return NULL;
        c->t = calloc(1, sizeof *c->t);
        if (!c->t) {
            vm_fail(vm, AS_ERR_NOMEM, "out of memory");
            return NULL;
        }
        *c->t = *v->t; /* during reading tensors carry no data */
        c->t->f32 = NULL;
        c->t->i64 = NULL;
        c->t->storage_key = NULL;
        if (v->t->storage_key && !(c->t->storage_key = strdup(v->t->storage_key))) {
            vm_fail(vm, AS_ERR_NOMEM, "out of memory");
            return NULL;
        }
    }
    if (v->count) {
        if (vm_charge(vm, v->count * sizeof *c->items * (v->keys ? 2 : 1)))
            return NULL;
        if (vm_charge(vm, v->count * sizeof *c->items * (v->keys ? 2 : 1)))
            return NULL;
        c->items = calloc(v->count, sizeof *c->items);
        if (v->keys)
            c->keys = calloc(v->count, sizeof *c->keys);
        if (!c->items || (v->keys && !c->keys)) {
            vm_fail(vm, AS_ERR_NOMEM, "out of memory");
            return NULL;
        }
        c->cap = v->count;
        for (size_t i = 0; i < v->count; i++) {
            if (!(c->items[i] = vm_copy(vm, v->items[i])))
                return NULL;
            if (v->keys && !(c->keys[i] = vm_copy(vm, v->keys[i])))
                return NULL;
            c->count = i + 1;
        }
    }
    return c;
}

static int vm_push(Vm *vm, AsPValue *v)
{
    if (!v)
        return vm->code; /* the constructor that failed recorded it */
    if (vm->sp >= MAX_STACK)
        return vm_fail(vm, AS_ERR_FORMAT, "stack deeper than %u values (limit)", (unsigned)MAX_STACK);
    if (vm->sp == vm->cap_stack) {
        size_t nc = vm->cap_stack ? vm->cap_stack * 2 : 64;
        AsPValue **n = realloc(vm->stack, nc * sizeof *n);
        if (!n)
            return vm_fail(vm, AS_ERR_NOMEM, "out of memory");
        vm->stack = n;
        vm->cap_stack = nc;
    }
    vm->stack[vm->sp++] = v;
    return AS_OK;
}

/* Values above the topmost mark must not be popped below it. */
static size_t vm_floor(const Vm *vm) { return vm->nmarks ? vm->marks[vm->nmarks - 1] : 0; }

static AsPValue *vm_pop(Vm *vm, const char *op)
{
    if (vm->sp <= vm_floor(vm)) {
        vm_fail(vm, AS_ERR_FORMAT, "stack underflow in %s at byte %zu", op, vm->pos);
        return NULL;
    }
    return vm->stack[--vm->sp];
}

static AsPValue *vm_top(Vm *vm, const char *op)
{
    if (vm->sp <= vm_floor(vm)) {
        vm_fail(vm, AS_ERR_FORMAT, "stack underflow in %s at byte %zu", op, vm->pos);
        return NULL;
    }
    return vm->stack[vm->sp - 1];
}

/* pop to the topmost mark; *first = index of the first value above it */
static int vm_pop_mark(Vm *vm, const char *op, size_t *first)
{
    if (vm->nmarks == 0)
        return vm_fail(vm, AS_ERR_FORMAT, "%s without MARK at byte %zu", op, vm->pos);
    *first = vm->marks[--vm->nmarks];
    return AS_OK;
}

static int check_height(Vm *vm, const AsPValue *v)
{
    if (v->height > AS_PICKLE_MAX_DEPTH)
        return vm_fail(vm, AS_ERR_FORMAT, "values nested deeper than %d levels (limit)",
                       AS_PICKLE_MAX_DEPTH);
    return AS_OK;
}

static int vm_add_item(Vm *vm, AsPValue *seq, AsPValue *item)
{
    if (vm_charge_grow(vm, seq, false))
        return vm->err->code;
    if (grow(seq, false))
        return vm_fail(vm, AS_ERR_NOMEM, "out of memory");
    seq->items[seq->count++] = item;
    bump_height(seq, item);
    return check_height(vm, seq);
}

static int vm_set_item(Vm *vm, AsPValue *dict, AsPValue *key, AsPValue *val)
{
    if (dict->kind != AS_PV_DICT)
        return vm_fail(vm, AS_ERR_FORMAT, "SETITEM on a %s at byte %zu", as_pv_kind_name(dict->kind),
                       vm->pos);
    /* a repeated key replaces the value, as in Python; checked only for
     * dicts of a plausible size so that a hostile dict cannot take O(n^2) */
    size_t scan = dict->count < 8192 ? dict->count : 0;
    for (size_t i = 0; i < scan; i++) {
        if (key_equal(dict->keys[i], key)) {
            dict->items[i] = val; /* the old one stays in the arena */
            bump_height(dict, val);
            return check_height(vm, dict);
        }
    }
    if (vm_charge_grow(vm, dict, true))
        return vm->err->code;
    if (grow(dict, true))
        return vm_fail(vm, AS_ERR_NOMEM, "out of memory");
    dict->keys[dict->count] = key;
    dict->items[dict->count] = val;
    dict->count++;
    bump_height(dict, key);
    bump_height(dict, val);
    return check_height(vm, dict);
}

static int need(Vm *vm, size_t n, const char *op)
{
    if (n > vm->len - vm->pos)
        return vm_fail(vm, AS_ERR_FORMAT, "truncated in %s at byte %zu (needs %zu bytes, %zu left)",
                       op, vm->pos, n, vm->len - vm->pos);
    return AS_OK;
}

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* a text line (protocol 0 opcodes), without the newline */
static int read_line(Vm *vm, const char *op, const char **s, size_t *n)
{
    const uint8_t *start = vm->buf + vm->pos;
    const uint8_t *nl = memchr(start, '\n', vm->len - vm->pos);
    if (!nl)
        return vm_fail(vm, AS_ERR_FORMAT, "truncated in %s at byte %zu (no newline)", op, vm->pos);
    *s = (const char *)start;
    *n = (size_t)(nl - start);
    vm->pos += *n + 1;
    return AS_OK;
}

static int memo_put(Vm *vm, uint64_t idx)
{
    AsPValue *top = vm_top(vm, "PUT");
    if (!top)
        return vm->code;
    if (idx >= MAX_MEMO)
        return vm_fail(vm, AS_ERR_FORMAT, "memo index %llu too large (limit %u)", (unsigned long long)idx,
                       (unsigned)MAX_MEMO);
    if (idx >= vm->cap_memo) {
        size_t nc = vm->cap_memo ? vm->cap_memo : 64;
        while (nc <= idx)
            nc *= 2;
        AsPValue **n = realloc(vm->memo, nc * sizeof *n);
        if (!n)
            return vm_fail(vm, AS_ERR_NOMEM, "out of memory");
        memset(n + vm->cap_memo, 0, (nc - vm->cap_memo) * sizeof *n);
        vm->memo = n;
        vm->cap_memo = nc;
    }
    if (!vm->memo[idx])
        vm->memo_count++;
    vm->memo[idx] = top; /* a live reference; GET copies it */
    return AS_OK;
}

static int memo_get(Vm *vm, uint64_t idx)
{
    if (idx >= vm->cap_memo || !vm->memo[idx])
        return vm_fail(vm, AS_ERR_FORMAT, "memo index %llu not defined (GET at byte %zu)",
                       (unsigned long long)idx, vm->pos);
    return vm_push(vm, vm_copy(vm, vm->memo[idx]));
}

typedef struct {
    const char *module, *name;
    GlobalId id;
    AsPDtype dtype;
} AllowedGlobal;

static const AllowedGlobal allowed[] = {
    { "collections", "OrderedDict", G_ODICT, AS_PD_F32 },
    { "torch._utils", "_rebuild_tensor_v2", G_REBUILD_V2, AS_PD_F32 },
    { "torch._utils", "_rebuild_tensor", G_REBUILD, AS_PD_F32 },
    { "torch._utils", "_rebuild_parameter", G_REBUILD_PARAM, AS_PD_F32 },
    { "torch", "FloatStorage", G_STORAGE, AS_PD_F32 },
    { "torch", "DoubleStorage", G_STORAGE, AS_PD_F64 },
    { "torch", "HalfStorage", G_STORAGE, AS_PD_F16 },
    { "torch", "BFloat16Storage", G_STORAGE, AS_PD_BF16 },
    { "torch", "LongStorage", G_STORAGE, AS_PD_I64 },
    { "torch", "IntStorage", G_STORAGE, AS_PD_I32 },
    { "torch", "ShortStorage", G_STORAGE, AS_PD_I16 },
    { "torch", "CharStorage", G_STORAGE, AS_PD_I8 },
    { "torch", "ByteStorage", G_STORAGE, AS_PD_U8 },
    { "torch", "BoolStorage", G_STORAGE, AS_PD_BOOL },
    { "torch", "float32", G_DTYPE, AS_PD_F32 },
    { "torch", "float", G_DTYPE, AS_PD_F32 },
    { "torch", "float64", G_DTYPE, AS_PD_F64 },
    { "torch", "double", G_DTYPE, AS_PD_F64 },
    { "torch", "float16", G_DTYPE, AS_PD_F16 },
    { "torch", "half", G_DTYPE, AS_PD_F16 },
    { "torch", "bfloat16", G_DTYPE, AS_PD_BF16 },
    { "torch", "int64", G_DTYPE, AS_PD_I64 },
    { "torch", "long", G_DTYPE, AS_PD_I64 },
    { "torch", "int32", G_DTYPE, AS_PD_I32 },
    { "torch", "int", G_DTYPE, AS_PD_I32 },
    { "torch", "int16", G_DTYPE, AS_PD_I16 },
    { "torch", "int8", G_DTYPE, AS_PD_I8 },
    { "torch", "uint8", G_DTYPE, AS_PD_U8 },
    { "torch", "bool", G_DTYPE, AS_PD_BOOL },
    { "_codecs", "encode", G_ENCODE, AS_PD_F32 },
    /* DINO's full checkpoints store the training arguments; they become an
     * inert object holding the attribute dict (nothing is called). */
    { "argparse", "Namespace", G_NAMESPACE, AS_PD_F32 },
};

static bool printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

static int push_global(Vm *vm, const char *mod, size_t mlen, const char *nm, size_t nlen)
{
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        const AllowedGlobal *g = &allowed[i];
        if (strlen(g->module) == mlen && memcmp(g->module, mod, mlen) == 0 && strlen(g->name) == nlen &&
            memcmp(g->name, nm, nlen) == 0) {
            char full[128];
            snprintf(full, sizeof full, "%s.%s", g->module, g->name);
            AsPValue *v = vm_strn(vm, AS_PV_GLOBAL, full, strlen(full));
            if (!v)
                return vm->code; /* the constructor that failed recorded it */
            v->i = g->id;
            v->dtype = g->dtype;
            return vm_push(vm, v);
        }
    }
    int ml = mlen > 100 ? 100 : (int)mlen, nl = nlen > 100 ? 100 : (int)nlen;
    if (!printable(mod, (size_t)ml) || !printable(nm, (size_t)nl))
        return vm_fail(vm, AS_ERR_FORMAT, "refuses to load a global with an unprintable name");
    return vm_fail(vm, AS_ERR_FORMAT,
                   "refuses to load global '%.*s.%.*s' (only tensors, storages and plain containers "
                   "are allowed; nothing in a checkpoint is executed)",
                   ml, mod, nl, nm);
}

static bool is_int(const AsPValue *v) { return v && (v->kind == AS_PV_INT || v->kind == AS_PV_BOOL); }
static int64_t int_of(const AsPValue *v) { return v->kind == AS_PV_BOOL ? (int64_t)v->b : v->i; }

static int int_tuple(Vm *vm, const AsPValue *v, const char *what, int64_t *out, int *n)
{
    if (!v || (v->kind != AS_PV_TUPLE && v->kind != AS_PV_LIST))
        return vm_fail(vm, AS_ERR_FORMAT, "tensor %s is not a tuple", what);
    if (v->count > AS_MAX_DIMS)
        return vm_fail(vm, AS_ERR_UNSUPPORTED, "tensor with %zu dimensions (at most %d)", v->count,
                       AS_MAX_DIMS);
    for (size_t i = 0; i < v->count; i++) {
        if (!is_int(v->items[i]))
            return vm_fail(vm, AS_ERR_FORMAT, "tensor %s holds a %s", what,
                           as_pv_kind_name(v->items[i]->kind));
        out[i] = int_of(v->items[i]);
    }
    *n = (int)v->count;
    return AS_OK;
}

static AsPValue *make_tensor(Vm *vm, const AsPValue *args, bool v2)
{
    if (args->kind != AS_PV_TUPLE || args->count < 4 || (v2 && args->count < 6)) {
        vm_fail(vm, AS_ERR_FORMAT, "_rebuild_tensor%s called with %zu arguments", v2 ? "_v2" : "",
                args->count);
        return NULL;
    }
    const AsPValue *st = args->items[0];
    if (st->kind != AS_PV_STORAGE) {
        vm_fail(vm, AS_ERR_FORMAT, "_rebuild_tensor: first argument is a %s, not a storage",
                as_pv_kind_name(st->kind));
        return NULL;
    }
    if (!is_int(args->items[1])) {
        vm_fail(vm, AS_ERR_FORMAT, "tensor of storage '%s': storage offset is not an int", st->s);
        return NULL;
    }
    int64_t shape[AS_MAX_DIMS], stride[AS_MAX_DIMS];
    int nd = 0, ns = 0;
    if (int_tuple(vm, args->items[2], "size", shape, &nd) || int_tuple(vm, args->items[3], "stride", stride, &ns))
        return NULL;
    if (nd != ns) {
        vm_fail(vm, AS_ERR_FORMAT, "tensor of storage '%s': size has %d dimensions, stride %d", st->s,
                nd, ns);
        return NULL;
    }
    int64_t off = int_of(args->items[1]);
    if (off < 0) {
        vm_fail(vm, AS_ERR_FORMAT, "tensor of storage '%s': negative storage offset %lld", st->s,
                (long long)off);
        return NULL;
    }
    int64_t numel = 1;
    for (int i = 0; i < nd; i++) {
        if (shape[i] < 0 || stride[i] < 0) {
            vm_fail(vm, AS_ERR_FORMAT, "tensor of storage '%s': negative %s %lld in dimension %d",
                    st->s, shape[i] < 0 ? "size" : "stride",
                    (long long)(shape[i] < 0 ? shape[i] : stride[i]), i);
            return NULL;
        }
        if (shape[i] > 0 && numel > ((int64_t)1 << 48) / shape[i]) {
            vm_fail(vm, AS_ERR_FORMAT, "tensor of storage '%s': absurd size in dimension %d (%lld)",
                    st->s, i, (long long)shape[i]);
            return NULL;
        }
        numel *= shape[i];
    }
    AsPValue *v = vm_new(vm, AS_PV_TENSOR);
    if (!v)
        return NULL;
    AsPTensor *t = calloc(1, sizeof *t);
    if (!t) {
        vm_fail(vm, AS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    v->t = t;
    t->storage_key = strdup(st->s);
    if (!t->storage_key) {
        vm_fail(vm, AS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    t->dtype = st->dtype;
    t->storage_numel = st->i;
    t->offset = off;
    t->ndim = nd;
    for (int i = 0; i < nd; i++) {
        t->shape[i] = shape[i];
        t->stride[i] = stride[i];
    }
    t->numel = numel;
    return v;
}

/* decode UTF-8 to latin-1 bytes (what _codecs.encode(s, 'latin1') does) */
static AsPValue *encode_latin1(Vm *vm, const AsPValue *s)
{
    uint8_t *tmp = malloc(s->len + 1);
    if (!tmp) {
        vm_fail(vm, AS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    size_t n = 0;
    const uint8_t *p = (const uint8_t *)s->s;
    for (size_t i = 0; i < s->len;) {
        if (p[i] < 0x80) {
            tmp[n++] = p[i++];
        } else if ((p[i] & 0xE0) == 0xC0 && i + 1 < s->len && (p[i + 1] & 0xC0) == 0x80 &&
                   (((p[i] & 0x1F) << 6) | (p[i + 1] & 0x3F)) < 256) {
            tmp[n++] = (uint8_t)(((p[i] & 0x1F) << 6) | (p[i + 1] & 0x3F));
            i += 2;
        } else {
            free(tmp);
            vm_fail(vm, AS_ERR_FORMAT, "_codecs.encode: string not encodable as latin-1");
            return NULL;
        }
    }
    AsPValue *b = vm_strn(vm, AS_PV_BYTES, tmp, n);
    free(tmp);
    return b;
}

static int do_call(Vm *vm, AsPValue *fn, AsPValue *args, const char *op)
{
    if (fn->kind != AS_PV_GLOBAL)
        return vm_fail(vm, AS_ERR_FORMAT, "%s on a %s (not callable) at byte %zu", op,
                       as_pv_kind_name(fn->kind), vm->pos);
    if (args->kind != AS_PV_TUPLE)
        return vm_fail(vm, AS_ERR_FORMAT, "%s arguments are a %s, not a tuple", op,
                       as_pv_kind_name(args->kind));
    AsPValue *res = NULL;
    switch ((GlobalId)fn->i) {
    case G_ODICT:
        res = vm_new(vm, AS_PV_DICT);
        if (!res)
            break;
        res->ordered = true;
        if (args->count == 1 && (args->items[0]->kind == AS_PV_LIST || args->items[0]->kind == AS_PV_TUPLE)) {
            const AsPValue *pairs = args->items[0];
            for (size_t i = 0; i < pairs->count; i++) {
                const AsPValue *pr = pairs->items[i];
                if ((pr->kind != AS_PV_TUPLE && pr->kind != AS_PV_LIST) || pr->count != 2)
                    return vm_fail(vm, AS_ERR_FORMAT, "OrderedDict: item %zu is not a pair", i);
                int rc = vm_set_item(vm, res, pr->items[0], pr->items[1]);
                if (rc)
                    return rc;
            }
        } else if (args->count != 0) {
            return vm_fail(vm, AS_ERR_FORMAT, "OrderedDict called with %zu arguments", args->count);
        }
        break;
    case G_REBUILD_V2:
    case G_REBUILD:
        res = make_tensor(vm, args, fn->i == G_REBUILD_V2);
        break;
    case G_REBUILD_PARAM:
        if (args->count < 1 || args->items[0]->kind != AS_PV_TENSOR)
            return vm_fail(vm, AS_ERR_FORMAT, "_rebuild_parameter: first argument is not a tensor");
        res = args->items[0];
        break;
    case G_ENCODE:
        if (args->count < 1 || args->count > 2 || args->items[0]->kind != AS_PV_STR)
            return vm_fail(vm, AS_ERR_FORMAT, "_codecs.encode: unexpected arguments");
        if (args->count == 2) {
            const AsPValue *enc = args->items[1];
            if (enc->kind != AS_PV_STR)
                return vm_fail(vm, AS_ERR_FORMAT, "_codecs.encode: encoding is not a str");
            if (strcmp(enc->s, "latin1") == 0 || strcmp(enc->s, "latin-1") == 0 ||
                strcmp(enc->s, "iso-8859-1") == 0) {
                res = encode_latin1(vm, args->items[0]);
                break;
            }
            if (strcmp(enc->s, "utf-8") != 0 && strcmp(enc->s, "utf8") != 0)
                return vm_fail(vm, AS_ERR_UNSUPPORTED, "_codecs.encode: encoding '%.40s' not supported",
                               enc->s);
        }
        res = vm_strn(vm, AS_PV_BYTES, args->items[0]->s, args->items[0]->len);
        break;
    case G_NAMESPACE:
        res = vm_strn(vm, AS_PV_OBJECT, "argparse.Namespace", strlen("argparse.Namespace"));
        break;
    default:
        return vm_fail(vm, AS_ERR_FORMAT, "refuses to call '%s' (%s at byte %zu)", fn->s, op, vm->pos);
    }
    if (!res)
        return vm->code;
    return vm_push(vm, res);
}

static int do_build(Vm *vm)
{
    AsPValue *state = vm_pop(vm, "BUILD");
    AsPValue *obj = state ? vm_top(vm, "BUILD") : NULL;
    if (!obj)
        return vm->err->code;
    switch (obj->kind) {
    case AS_PV_DICT:   /* OrderedDict's instance state (_metadata): dropped */
    case AS_PV_TENSOR: /* tensor attributes: dropped */
        return AS_OK;
    case AS_PV_OBJECT: {
        const AsPValue *d = state;
        if (d->kind == AS_PV_TUPLE && d->count == 2)
            d = d->items[0];
        if (d->kind != AS_PV_DICT)
            return AS_OK;
        for (size_t i = 0; i < d->count; i++) {
            if (vm_charge_grow(vm, obj, true))
                return vm->err->code;
            if (grow(obj, true))
                return vm_fail(vm, AS_ERR_NOMEM, "out of memory");
            obj->keys[obj->count] = d->keys[i];
            obj->items[obj->count] = d->items[i];
            obj->count++;
            bump_height(obj, d->keys[i]);
            bump_height(obj, d->items[i]);
        }
        return check_height(vm, obj);
    }
    default:
        return vm_fail(vm, AS_ERR_FORMAT, "BUILD on a %s at byte %zu", as_pv_kind_name(obj->kind), vm->pos);
    }
}

static int do_persid(Vm *vm, AsPValue *pid)
{
    if (pid->kind != AS_PV_TUPLE || pid->count < 5 || pid->items[0]->kind != AS_PV_STR ||
        strcmp(pid->items[0]->s, "storage") != 0)
        return vm_fail(vm, AS_ERR_UNSUPPORTED, "unsupported persistent id (not a torch storage) at byte %zu",
                       vm->pos);
    const AsPValue *cls = pid->items[1], *key = pid->items[2], *numel = pid->items[4];
    if (cls->kind != AS_PV_GLOBAL || cls->i != G_STORAGE)
        return vm_fail(vm, AS_ERR_FORMAT, "persistent id: storage type is a %s ('%s')",
                       as_pv_kind_name(cls->kind), cls->s ? cls->s : "");
    if (key->kind != AS_PV_STR || key->len == 0 || key->len > 64 || strchr(key->s, '/') ||
        strstr(key->s, ".."))
        return vm_fail(vm, AS_ERR_FORMAT, "persistent id: bad storage key");
    if (!is_int(numel) || int_of(numel) < 0)
        return vm_fail(vm, AS_ERR_FORMAT, "storage '%s': bad element count", key->s);
    AsPValue *v = vm_strn(vm, AS_PV_STORAGE, key->s, key->len);
    if (!v)
        return vm->err->code;
    v->dtype = cls->dtype;
    v->i = int_of(numel);
    return vm_push(vm, v);
}

static int parse_text_int(Vm *vm, const char *s, size_t n, const char *op, int64_t *out)
{
    char tmp[32];
    if (n > 0 && s[n - 1] == 'L') /* protocol 0 LONG */
        n--;
    if (n == 0 || n >= sizeof tmp)
        return vm_fail(vm, AS_ERR_FORMAT, "bad integer in %s at byte %zu", op, vm->pos);
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (*end != '\0' || errno == ERANGE)
        return vm_fail(vm, AS_ERR_FORMAT, "bad integer '%s' in %s", tmp, op);
    *out = v;
    return AS_OK;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* raw-unicode-escape: bytes are Latin-1 characters, except \uXXXX and
 * \UXXXXXXXX escapes; the result is UTF-8 (at most 4 bytes per input byte) */
static AsPValue *decode_raw_unicode(Vm *vm, const char *s, size_t n)
{
    if (n > MAX_STR_BYTES / 4) {
        vm_fail(vm, AS_ERR_FORMAT, "UNICODE line too long");
        return NULL;
    }
    char *out = malloc(n * 4 + 1);
    if (!out) {
        vm_fail(vm, AS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp = (uint8_t)s[i];
        size_t digits = 0;
        if (s[i] == '\\' && i + 1 < n && (s[i + 1] == 'u' || s[i + 1] == 'U'))
            digits = s[i + 1] == 'u' ? 4 : 8;
        if (digits && i + 2 + digits <= n) {
            uint32_t v = 0;
            bool ok = true;
            for (size_t k = 0; k < digits; k++) {
                int h = hexval(s[i + 2 + k]);
                ok = ok && h >= 0;
                v = (v << 4) | (uint32_t)(h < 0 ? 0 : h);
            }
            if (ok && v <= 0x10FFFF) {
                cp = v;
                i += 2 + digits;
            } else {
                i++;
            }
        } else {
            i++;
        }
        if (cp < 0x80) {
            out[o++] = (char)cp;
        } else if (cp < 0x800) {
            out[o++] = (char)(0xC0 | (cp >> 6));
            out[o++] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out[o++] = (char)(0xE0 | (cp >> 12));
            out[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            out[o++] = (char)(0x80 | (cp & 0x3F));
        } else {
            out[o++] = (char)(0xF0 | (cp >> 18));
            out[o++] = (char)(0x80 | ((cp >> 12) & 0x3F));
            out[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            out[o++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    AsPValue *v = vm_strn(vm, AS_PV_STR, out, o);
    free(out);
    return v;
}

static int run(Vm *vm)
{
    int rc;
    for (;;) {
        if (vm->pos >= vm->len)
            return vm_fail(vm, AS_ERR_FORMAT, "truncated: no STOP opcode");
        size_t at = vm->pos;
        uint8_t op = vm->buf[vm->pos++];
        const uint8_t *p = vm->buf + vm->pos;
        switch (op) {
        case 0x80: /* PROTO */
            if ((rc = need(vm, 1, "PROTO")))
                return rc;
            if (p[0] > 5)
                return vm_fail(vm, AS_ERR_UNSUPPORTED, "pickle protocol %d (at most 5 is supported)", p[0]);
            vm->pos++;
            break;
        case 0x95: /* FRAME */
            if ((rc = need(vm, 8, "FRAME")))
                return rc;
            vm->pos += 8;
            break;
        case '.': { /* STOP */
            if (vm->sp != 1 || vm->nmarks)
                return vm_fail(vm, AS_ERR_FORMAT, "STOP with %zu values on the stack (and %zu marks)",
                               vm->sp, vm->nmarks);
            return AS_OK;
        }
        case '(': /* MARK */
            if (vm->nmarks >= MAX_MARKS)
                return vm_fail(vm, AS_ERR_FORMAT, "more than %d nested MARKs (limit)", MAX_MARKS);
            vm->marks[vm->nmarks++] = vm->sp;
            break;
        case '0': /* POP */
            if (vm->sp > vm_floor(vm)) {
                vm->sp--;
            } else if (vm->nmarks) { /* POP of a mark */
                vm->nmarks--;
            } else {
                return vm_fail(vm, AS_ERR_FORMAT, "stack underflow in POP at byte %zu", at);
            }
            break;
        case '1': { /* POP_MARK */
            size_t first = 0;
            if ((rc = vm_pop_mark(vm, "POP_MARK", &first)))
                return rc;
            vm->sp = first;
            break;
        }
        case '2': { /* DUP */
            AsPValue *t = vm_top(vm, "DUP");
            if (!t)
                return vm->err->code;
            if ((rc = vm_push(vm, vm_copy(vm, t))))
                return rc;
            break;
        }
        case 'N':
            if ((rc = vm_push(vm, vm_new(vm, AS_PV_NONE))))
                return rc;
            break;
        case 0x88:
        case 0x89: {
            AsPValue *v = vm_new(vm, AS_PV_BOOL);
            if (v)
                v->b = op == 0x88;
            if ((rc = vm_push(vm, v)))
                return rc;
            break;
        }
        case 'J':
        case 'K':
        case 'M': {
            int n = op == 'J' ? 4 : op == 'K' ? 1 : 2;
            if ((rc = need(vm, (size_t)n, "BININT")))
                return rc;
            AsPValue *v = vm_new(vm, AS_PV_INT);
            if (v)
                v->i = op == 'J' ? (int64_t)(int32_t)(uint32_t)le(p, 4) : (int64_t)le(p, n);
            vm->pos += (size_t)n;
            if ((rc = vm_push(vm, v)))
                return rc;
            break;
        }
        case 0x8a:   /* LONG1 */
        case 0x8b: { /* LONG4 */
            size_t hdr = op == 0x8a ? 1 : 4;
            if ((rc = need(vm, hdr, "LONG")))
                return rc;
            uint64_t n = le(p, (int)hdr);
            vm->pos += hdr;
            if (n > 8)
                return vm_fail(vm, AS_ERR_UNSUPPORTED, "integer of %llu bytes at byte %zu (at most 8)",
                               (unsigned long long)n, at);
            if ((rc = need(vm, (size_t)n, "LONG")))
                return rc;
            uint64_t u = le(vm->buf + vm->pos, (int)n);
            if (n > 0 && n < 8 && (vm->buf[vm->pos + n - 1] & 0x80))
                u |= ~(uint64_t)0 << (8 * n); /* sign-extend */
            vm->pos += (size_t)n;
            AsPValue *v = vm_new(vm, AS_PV_INT);
            if (v)
                v->i = (int64_t)u;
            if ((rc = vm_push(vm, v)))
                return rc;
            break;
        }
        case 'I':
        case 'L': {
            const char *s = NULL;
            size_t n = 0;
            if ((rc = read_line(vm, "INT", &s, &n)))
                return rc;
            AsPValue *v;
            if (op == 'I' && n == 2 && s[0] == '0' && (s[1] == '0' || s[1] == '1')) {
                v = vm_new(vm, AS_PV_BOOL);
                if (v)
                    v->b = s[1] == '1';
            } else {
                int64_t x = 0;
                if ((rc = parse_text_int(vm, s, n, "INT", &x)))
                    return rc;
                v = vm_new(vm, AS_PV_INT);
                if (v)
                    v->i = x;
            }
            if ((rc = vm_push(vm, v)))
                return rc;
            break;
        }
        case 'G': { /* BINFLOAT, big-endian */
            if ((rc = need(vm, 8, "BINFLOAT")))
                return rc;
            uint64_t u = 0;
            for (int i = 0; i < 8; i++)
                u = (u << 8) | p[i];
            double d;
            memcpy(&d, &u, 8);
            vm->pos += 8;
            AsPValue *v = vm_new(vm, AS_PV_FLOAT);
            if (v)
                v->f = d;
            if ((rc = vm_push(vm, v)))
                return rc;
            break;
        }
        case 'F': {
            const char *s = NULL;
            size_t n = 0;
            char tmp[64];
            if ((rc = read_line(vm, "FLOAT", &s, &n)))
                return rc;
            if (n == 0 || n >= sizeof tmp)
                return vm_fail(vm, AS_ERR_FORMAT, "bad FLOAT at byte %zu", at);
            memcpy(tmp, s, n);
            tmp[n] = '\0';
            char *end;
            double d = as_strtod_c(tmp, &end);
            if (*end)
                return vm_fail(vm, AS_ERR_FORMAT, "bad FLOAT at byte %zu", at);
            AsPValue *v = vm_new(vm, AS_PV_FLOAT);
            if (v)
                v->f = d;
            if ((rc = vm_push(vm, v)))
                return rc;
            break;
        }
        case 'X':    /* BINUNICODE */
        case 0x8c:   /* SHORT_BINUNICODE */
        case 0x8d:   /* BINUNICODE8 */
        case 'B':    /* BINBYTES */
        case 'C':    /* SHORT_BINBYTES */
        case 0x8e:   /* BINBYTES8 */
        case 'T':    /* BINSTRING (python 2 str) */
        case 'U': {  /* SHORT_BINSTRING */
            size_t hdr = (op == 0x8c || op == 'C' || op == 'U') ? 1 : (op == 0x8d || op == 0x8e) ? 8 : 4;
            if ((rc = need(vm, hdr, "string length")))
                return rc;
            uint64_t n = le(p, (int)hdr);
            if (op == 'T' && n > 0x7fffffffu)
                return vm_fail(vm, AS_ERR_FORMAT, "negative BINSTRING length at byte %zu", at);
            vm->pos += hdr;
            if (n > vm->len - vm->pos)
                return vm_fail(vm, AS_ERR_FORMAT, "string of %llu bytes at byte %zu runs past the end "
                               "(%zu bytes left)", (unsigned long long)n, at, vm->len - vm->pos);
            AsPvKind k = (op == 'B' || op == 'C' || op == 0x8e) ? AS_PV_BYTES : AS_PV_STR;
            AsPValue *v = vm_strn(vm, k, vm->buf + vm->pos, (size_t)n);
            vm->pos += (size_t)n;
            if ((rc = vm_push(vm, v)))
                return rc;
            break;
        }
        case 'V': { /* UNICODE (protocol 0): raw-unicode-escape text line */
            const char *s = NULL;
            size_t n = 0;
            if ((rc = read_line(vm, "UNICODE", &s, &n)))
                return rc;
            AsPValue *v = decode_raw_unicode(vm, s, n);
            if ((rc = vm_push(vm, v)))
                return rc;
            break;
        }
        case ')':
        case ']':
        case '}': {
            AsPValue *v = vm_new(vm, op == ')' ? AS_PV_TUPLE : op == ']' ? AS_PV_LIST : AS_PV_DICT);
            if ((rc = vm_push(vm, v)))
                return rc;
            break;
        }
        case 't':
        case 'l': { /* TUPLE / LIST from mark */
            size_t first = 0;
            if ((rc = vm_pop_mark(vm, op == 't' ? "TUPLE" : "LIST", &first)))
                return rc;
            AsPValue *v = vm_new(vm, op == 't' ? AS_PV_TUPLE : AS_PV_LIST);
            if (!v)
                return vm->err->code;
            for (size_t i = first; i < vm->sp; i++)
                if ((rc = vm_add_item(vm, v, vm->stack[i])))
                    return rc;
            vm->sp = first;
            if ((rc = vm_push(vm, v)))
                return rc;
            break;
        }
        case 0x85:
        case 0x86:
        case 0x87: { /* TUPLE1..3 */
            size_t n = (size_t)(op - 0x84);
            if (vm->sp < vm_floor(vm) + n)
                return vm_fail(vm, AS_ERR_FORMAT, "stack underflow in TUPLE%zu at byte %zu", n, at);
            AsPValue *v = vm_new(vm, AS_PV_TUPLE);
            if (!v)
                return vm->err->code;
            for (size_t i = vm->sp - n; i < vm->sp; i++)
                if ((rc = vm_add_item(vm, v, vm->stack[i])))
                    return rc;
            vm->sp -= n;
            if ((rc = vm_push(vm, v)))
                return rc;
            break;
        }
        case 'd': { /* DICT from mark */
            size_t first = 0;
            if ((rc = vm_pop_mark(vm, "DICT", &first)))
                return rc;
            if ((vm->sp - first) % 2)
                return vm_fail(vm, AS_ERR_FORMAT, "DICT with an odd number of values at byte %zu", at);
            AsPValue *v = vm_new(vm, AS_PV_DICT);
            if (!v)
                return vm->err->code;
            for (size_t i = first; i < vm->sp; i += 2)
                if ((rc = vm_set_item(vm, v, vm->stack[i], vm->stack[i + 1])))
                    return rc;
            vm->sp = first;
            if ((rc = vm_push(vm, v)))
                return rc;
            break;
        }
        case 'a': { /* APPEND */
            AsPValue *item = vm_pop(vm, "APPEND");
            AsPValue *lst = item ? vm_top(vm, "APPEND") : NULL;
            if (!lst)
                return vm->err->code;
            if (lst->kind != AS_PV_LIST)
                return vm_fail(vm, AS_ERR_FORMAT, "APPEND to a %s at byte %zu", as_pv_kind_name(lst->kind), at);
            if ((rc = vm_add_item(vm, lst, item)))
                return rc;
            break;
        }
        case 'e': { /* APPENDS */
            size_t first = 0;
            if ((rc = vm_pop_mark(vm, "APPENDS", &first)))
                return rc;
            if (first == 0 || first <= vm_floor(vm))
                return vm_fail(vm, AS_ERR_FORMAT, "stack underflow in APPENDS at byte %zu", at);
            AsPValue *lst = vm->stack[first - 1];
            if (lst->kind != AS_PV_LIST)
                return vm_fail(vm, AS_ERR_FORMAT, "APPENDS to a %s at byte %zu", as_pv_kind_name(lst->kind), at);
            for (size_t i = first; i < vm->sp; i++)
                if ((rc = vm_add_item(vm, lst, vm->stack[i])))
                    return rc;
            vm->sp = first;
            break;
        }
        case 's': { /* SETITEM */
            AsPValue *val = vm_pop(vm, "SETITEM");
            AsPValue *key = val ? vm_pop(vm, "SETITEM") : NULL;
            AsPValue *d = key ? vm_top(vm, "SETITEM") : NULL;
            if (!d)
                return vm->err->code;
            if ((rc = vm_set_item(vm, d, key, val)))
                return rc;
            break;
        }
        case 'u': { /* SETITEMS */
            size_t first = 0;
            if ((rc = vm_pop_mark(vm, "SETITEMS", &first)))
                return rc;
            if (first == 0 || first <= vm_floor(vm))
                return vm_fail(vm, AS_ERR_FORMAT, "stack underflow in SETITEMS at byte %zu", at);
            if ((vm->sp - first) % 2)
                return vm_fail(vm, AS_ERR_FORMAT, "SETITEMS with an odd number of values at byte %zu", at);
            AsPValue *d = vm->stack[first - 1];
            for (size_t i = first; i < vm->sp; i += 2)
                if ((rc = vm_set_item(vm, d, vm->stack[i], vm->stack[i + 1])))
                    return rc;
            vm->sp = first;
            break;
        }
        case 'q':
        case 'r': { /* BINPUT / LONG_BINPUT */
            int n = op == 'q' ? 1 : 4;
            if ((rc = need(vm, (size_t)n, "BINPUT")))
                return rc;
            vm->pos += (size_t)n;
            if ((rc = memo_put(vm, le(p, n))))
                return rc;
            break;
        }
        case 0x94: /* MEMOIZE */
            if ((rc = memo_put(vm, vm->memo_count)))
                return rc;
            break;
        case 'h':
        case 'j': { /* BINGET / LONG_BINGET */
            int n = op == 'h' ? 1 : 4;
            if ((rc = need(vm, (size_t)n, "BINGET")))
                return rc;
            vm->pos += (size_t)n;
            if ((rc = memo_get(vm, le(p, n))))
                return rc;
            break;
        }
        case 'p':
        case 'g': { /* PUT / GET (text) */
            const char *s = NULL;
            size_t n = 0;
            int64_t idx = 0;
            if ((rc = read_line(vm, op == 'p' ? "PUT" : "GET", &s, &n)) ||
                (rc = parse_text_int(vm, s, n, op == 'p' ? "PUT" : "GET", &idx)))
                return rc;
            if (idx < 0)
                return vm_fail(vm, AS_ERR_FORMAT, "negative memo index at byte %zu", at);
            if ((rc = op == 'p' ? memo_put(vm, (uint64_t)idx) : memo_get(vm, (uint64_t)idx)))
                return rc;
            break;
        }
        case 'c': { /* GLOBAL "module\nname\n" */
            const char *m = NULL, *nm = NULL;
            size_t ml = 0, nl = 0;
            if ((rc = read_line(vm, "GLOBAL", &m, &ml)) || (rc = read_line(vm, "GLOBAL", &nm, &nl)))
                return rc;
            if ((rc = push_global(vm, m, ml, nm, nl)))
                return rc;
            break;
        }
        case 0x93: { /* STACK_GLOBAL */
            AsPValue *nm = vm_pop(vm, "STACK_GLOBAL");
            AsPValue *m = nm ? vm_pop(vm, "STACK_GLOBAL") : NULL;
            if (!m)
                return vm->err->code;
            if (m->kind != AS_PV_STR || nm->kind != AS_PV_STR)
                return vm_fail(vm, AS_ERR_FORMAT, "STACK_GLOBAL on non-strings at byte %zu", at);
            if ((rc = push_global(vm, m->s, m->len, nm->s, nm->len)))
                return rc;
            break;
        }
        case 'R': { /* REDUCE */
            AsPValue *args = vm_pop(vm, "REDUCE");
            AsPValue *fn = args ? vm_pop(vm, "REDUCE") : NULL;
            if (!fn)
                return vm->err->code;
            if ((rc = do_call(vm, fn, args, "REDUCE")))
                return rc;
            break;
        }
        case 0x81: { /* NEWOBJ cls args */
            AsPValue *args = vm_pop(vm, "NEWOBJ");
            AsPValue *cls = args ? vm_pop(vm, "NEWOBJ") : NULL;
            if (!cls)
                return vm->err->code;
            if (cls->kind != AS_PV_GLOBAL || (cls->i != G_ODICT && cls->i != G_NAMESPACE))
                return vm_fail(vm, AS_ERR_FORMAT, "refuses NEWOBJ of '%s' at byte %zu",
                               cls->kind == AS_PV_GLOBAL ? cls->s : as_pv_kind_name(cls->kind), at);
            if ((rc = do_call(vm, cls, args, "NEWOBJ")))
                return rc;
            break;
        }
        case 'b':
            if ((rc = do_build(vm)))
                return rc;
            break;
        case 'Q': { /* BINPERSID */
            AsPValue *pid = vm_pop(vm, "BINPERSID");
            if (!pid)
                return vm->err->code;
            if ((rc = do_persid(vm, pid)))
                return rc;
            break;
        }
        case 'P':
            return vm_fail(vm, AS_ERR_UNSUPPORTED, "text persistent id (PERSID) at byte %zu not supported", at);
        case 'i':
        case 'o':
        case 0x92:
            return vm_fail(vm, AS_ERR_FORMAT, "refuses object-creating opcode 0x%02x at byte %zu", op, at);
        case 0x82:
        case 0x83:
        case 0x84:
            return vm_fail(vm, AS_ERR_FORMAT, "refuses extension-registry opcode 0x%02x at byte %zu", op, at);
        default:
            return vm_fail(vm, AS_ERR_UNSUPPORTED, "unsupported pickle opcode 0x%02x at byte %zu", op, at);
        }
    }
}

static void mark_reachable(AsPValue *v, uint8_t *keep, AsPValue **sorted, size_t n)
{
    /* binary search v in sorted arena */
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((uintptr_t)sorted[mid] < (uintptr_t)v)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < n && sorted[lo] == v)
        keep[lo] = 1;
    for (size_t i = 0; i < v->count; i++) {
        if (v->items && v->items[i])
            mark_reachable(v->items[i], keep, sorted, n);
        if (v->keys && v->keys[i])
            mark_reachable(v->keys[i], keep, sorted, n);
    }
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (AsPValue *const *)a, y = (uintptr_t) * (AsPValue *const *)b;
    return x < y ? -1 : x > y;
}

int as_pickle_read(const uint8_t *buf, size_t len, const char *name, AsPValue **out, AsError *err)
{
    *out = NULL;
    Vm vm;
    memset(&vm, 0, sizeof vm);
    vm.buf = buf;
    vm.len = buf ? len : 0;
    vm.name = name ? name : "pickle";
    AsError local;
    vm.err = err ? err : &local;
    as_error_clear(vm.err);
    vm.mem_budget = MEM_BASE + (vm.len < (SIZE_MAX / 2 - MEM_BASE) / MEM_PER_BYTE ? vm.len * MEM_PER_BYTE
                                                                                 : SIZE_MAX / 2);
    int rc = run(&vm);
    AsPValue *root = rc == AS_OK ? vm.stack[0] : NULL;
    uint8_t *keep = calloc(vm.narena ? vm.narena : 1, 1);
    if (!keep && root) {
        rc = vm_fail(&vm, AS_ERR_NOMEM, "out of memory");
        root = NULL;
    }
    if (root) {
        qsort(vm.arena, vm.narena, sizeof *vm.arena, cmp_ptr);
        mark_reachable(root, keep, vm.arena, vm.narena);
    }
    for (size_t i = 0; i < vm.narena; i++) {
        if (!keep || !keep[i])
            pv_free_shallow(vm.arena[i]);
    }
    free(keep);
    free(vm.arena);
    free(vm.stack);
    free(vm.memo);
    if (rc)
        return rc;
    *out = root;
    return AS_OK;
}

/* =================== writing =================== */

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
    uint8_t h[5] = { 'X', (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24) };
    wr_bytes(w, h, 5);
    wr_bytes(w, s, n);
}

static void wr_int(Wr *w, int64_t v)
{
    if (v >= 0 && v < 256) {
        uint8_t h[2] = { 'K', (uint8_t)v };
        wr_bytes(w, h, 2);
    } else if (v >= 0 && v < 65536) {
        uint8_t h[3] = { 'M', (uint8_t)v, (uint8_t)(v >> 8) };
        wr_bytes(w, h, 3);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        uint32_t u = (uint32_t)(int32_t)v;
        uint8_t h[5] = { 'J', (uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24) };
        wr_bytes(w, h, 5);
    } else {
        uint8_t h[10] = { 0x8a, 8 };
        uint64_t u = (uint64_t)v;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)(u >> (8 * i));
        wr_bytes(w, h, 10);
    }
}

static void wr_global(Wr *w, const char *mod, const char *name)
{
    wr_op(w, 'c');
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
    wr_op(w, '(');
    /* persistent id ('storage', torch.XStorage, key, 'cpu', numel) */
    wr_op(w, '(');
    wr_unicode(w, "storage", 7);
    wr_global(w, "torch", is_f32 ? "FloatStorage" : "LongStorage");
    wr_unicode(w, key, strlen(key));
    wr_unicode(w, "cpu", 3);
    wr_int(w, t->numel);
    wr_op(w, 't');
    wr_op(w, 'Q');
    wr_int(w, 0); /* storage offset */
    wr_op(w, '(');
    for (int i = 0; i < t->ndim; i++)
        wr_int(w, t->shape[i]);
    wr_op(w, 't');
    wr_op(w, '(');
    int64_t st[AS_MAX_DIMS], s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        st[i] = s;
        s *= t->shape[i] > 0 ? t->shape[i] : 1;
    }
    for (int i = 0; i < t->ndim; i++)
        wr_int(w, st[i]);
    wr_op(w, 't');
    wr_op(w, 0x89); /* requires_grad False */
    wr_global(w, "collections", "OrderedDict");
    wr_op(w, ')');
    wr_op(w, 'R'); /* backward hooks: OrderedDict() */
    wr_op(w, 't');
    wr_op(w, 'R');
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
    case AS_PV_NONE: wr_op(w, 'N'); break;
    case AS_PV_BOOL: wr_op(w, v->b ? 0x88 : 0x89); break;
    case AS_PV_INT: wr_int(w, v->i); break;
    case AS_PV_FLOAT: {
        uint8_t h[9] = { 'G' };
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
        wr_op(w, 0x86);
        wr_op(w, 'R');
        break;
    }
    case AS_PV_TUPLE:
        wr_op(w, '(');
        for (size_t i = 0; i < v->count; i++)
            if ((rc = wr_value(w, v->items[i], depth + 1)))
                return rc;
        wr_op(w, 't');
        break;
    case AS_PV_LIST:
        wr_op(w, ']');
        if (v->count) {
            wr_op(w, '(');
            for (size_t i = 0; i < v->count; i++)
                if ((rc = wr_value(w, v->items[i], depth + 1)))
                    return rc;
            wr_op(w, 'e');
        }
        break;
    case AS_PV_DICT:
        if (v->ordered) {
            wr_global(w, "collections", "OrderedDict");
            wr_op(w, ')');
            wr_op(w, 'R');
        } else {
            wr_op(w, '}');
        }
        if (v->count) {
            wr_op(w, '(');
            for (size_t i = 0; i < v->count; i++) {
                if ((rc = wr_value(w, v->keys[i], depth + 1)) || (rc = wr_value(w, v->items[i], depth + 1)))
                    return rc;
            }
            wr_op(w, 'u');
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
    uint8_t proto[2] = { 0x80, 2 };
    wr_bytes(&w, proto, 2);
    int rc = wr_value(&w, root, 0);
    wr_op(&w, '.');
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
