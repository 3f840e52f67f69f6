/* pickle_vm: the reading machine's state and the operations its opcodes are
 * made of (values, stack, marks, memo, the allowed globals, tensors), and
 * as_pickle_read. The opcodes themselves are in pickle_ops.c. */
#include "pickle.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pickle_vm.h"

/* What a pickle may make the reader allocate: what a legitimate one needs
 * (a torch state dict entry of ~120 bytes becomes ~2 KB of values), so that a
 * short pickle of memo copies cannot take gigabytes. */
#define MEM_BASE ((size_t)32 << 20)
#define MEM_PER_BYTE 8
#define MALLOC_OVERHEAD 16

int pvm_fail(Vm *vm, AsStatus code, const char *fmt, ...)
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
        return pvm_fail(vm, AS_ERR_FORMAT, "needs more than %zu MB of memory for %zu bytes of pickle at "
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

AsPValue *pvm_new(Vm *vm, AsPvKind kind)
{
    if (vm_charge(vm, sizeof(AsPValue) + sizeof(AsPValue *)))
        return NULL;
    if (vm->narena >= MAX_NODES) {
        pvm_fail(vm, AS_ERR_FORMAT, "more than %u values (limit)", (unsigned)MAX_NODES);
        return NULL;
    }
    if (vm->narena == vm->cap_arena) {
        size_t nc = vm->cap_arena ? vm->cap_arena * 2 : 256;
        AsPValue **n = realloc(vm->arena, nc * sizeof *n);
        if (!n) {
            pvm_fail(vm, AS_ERR_NOMEM, "out of memory");
            return NULL;
        }
        vm->arena = n;
        vm->cap_arena = nc;
    }
    AsPValue *v = as_pvi_new(kind);
    if (!v) {
        pvm_fail(vm, AS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    vm->arena[vm->narena++] = v;
    return v;
}

AsPValue *pvm_strn(Vm *vm, AsPvKind kind, const void *s, size_t len)
{
    if (len > MAX_STR_BYTES || vm->str_bytes > MAX_STR_BYTES - len) {
        pvm_fail(vm, AS_ERR_FORMAT, "more than %zu bytes of strings (limit)", MAX_STR_BYTES);
        return NULL;
    }
    AsPValue *v = pvm_new(vm, kind);
    if (!v || vm_charge(vm, len + 1))
        return NULL;
    v->s = malloc(len + 1);
    if (!v->s) {
        pvm_fail(vm, AS_ERR_NOMEM, "out of memory");
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
AsPValue *pvm_copy(Vm *vm, const AsPValue *v)
{
    AsPValue *c;
    if (v->s) {
        c = pvm_strn(vm, v->kind, v->s, v->len);
    } else {
        c = pvm_new(vm, v->kind);
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
            pvm_fail(vm, AS_ERR_NOMEM, "out of memory");
            return NULL;
        }
        *c->t = *v->t; /* during reading tensors carry no data */
        c->t->f32 = NULL;
        c->t->i64 = NULL;
        c->t->storage_key = NULL;
        if (v->t->storage_key && !(c->t->storage_key = strdup(v->t->storage_key))) {
            pvm_fail(vm, AS_ERR_NOMEM, "out of memory");
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
            pvm_fail(vm, AS_ERR_NOMEM, "out of memory");
            return NULL;
        }
        c->cap = v->count;
        for (size_t i = 0; i < v->count; i++) {
            if (!(c->items[i] = pvm_copy(vm, v->items[i])))
                return NULL;
            if (v->keys && !(c->keys[i] = pvm_copy(vm, v->keys[i])))
                return NULL;
            c->count = i + 1;
        }
    }
    return c;
}

int pvm_push(Vm *vm, AsPValue *v)
{
    if (!v)
        return vm->code;
    if (vm->sp >= MAX_STACK)
        return pvm_fail(vm, AS_ERR_FORMAT, "stack deeper than %u values (limit)", (unsigned)MAX_STACK);
    if (vm->sp == vm->cap_stack) {
        size_t nc = vm->cap_stack ? vm->cap_stack * 2 : 64;
        AsPValue **n = realloc(vm->stack, nc * sizeof *n);
        if (!n)
            return pvm_fail(vm, AS_ERR_NOMEM, "out of memory");
        vm->stack = n;
        vm->cap_stack = nc;
    }
    vm->stack[vm->sp++] = v;
    return AS_OK;
}

/* Values above the topmost mark must not be popped below it. */
size_t pvm_floor(const Vm *vm) { return vm->nmarks ? vm->marks[vm->nmarks - 1] : 0; }

AsPValue *pvm_pop(Vm *vm, const char *op)
{
    if (vm->sp <= pvm_floor(vm)) {
        pvm_fail(vm, AS_ERR_FORMAT, "stack underflow in %s at byte %zu", op, vm->pos);
        return NULL;
    }
    return vm->stack[--vm->sp];
}

AsPValue *pvm_top(Vm *vm, const char *op)
{
    if (vm->sp <= pvm_floor(vm)) {
        pvm_fail(vm, AS_ERR_FORMAT, "stack underflow in %s at byte %zu", op, vm->pos);
        return NULL;
    }
    return vm->stack[vm->sp - 1];
}

/* pop to the topmost mark; *first = index of the first value above it */
int pvm_pop_mark(Vm *vm, const char *op, size_t *first)
{
    if (vm->nmarks == 0)
        return pvm_fail(vm, AS_ERR_FORMAT, "%s without MARK at byte %zu", op, vm->pos);
    *first = vm->marks[--vm->nmarks];
    return AS_OK;
}

static int check_height(Vm *vm, const AsPValue *v)
{
    if (v->height > AS_PICKLE_MAX_DEPTH)
        return pvm_fail(vm, AS_ERR_FORMAT, "values nested deeper than %d levels (limit)",
                       AS_PICKLE_MAX_DEPTH);
    return AS_OK;
}

int pvm_add_item(Vm *vm, AsPValue *seq, AsPValue *item)
{
    if (vm_charge_grow(vm, seq, false))
        return vm->code;
    if (as_pvi_grow(seq, false))
        return pvm_fail(vm, AS_ERR_NOMEM, "out of memory");
    seq->items[seq->count++] = item;
    as_pvi_bump_height(seq, item);
    return check_height(vm, seq);
}

int pvm_set_item(Vm *vm, AsPValue *dict, AsPValue *key, AsPValue *val)
{
    if (dict->kind != AS_PV_DICT)
        return pvm_fail(vm, AS_ERR_FORMAT, "SETITEM on a %s at byte %zu", as_pv_kind_name(dict->kind),
                       vm->pos);
    /* a repeated key replaces the value, as in Python; checked only for
     * dicts of a plausible size so that a hostile dict cannot take O(n^2) */
    size_t scan = dict->count < 8192 ? dict->count : 0;
    for (size_t i = 0; i < scan; i++) {
        if (as_pvi_key_equal(dict->keys[i], key)) {
            dict->items[i] = val; /* the old one stays in the arena */
            as_pvi_bump_height(dict, val);
            return check_height(vm, dict);
        }
    }
    if (vm_charge_grow(vm, dict, true))
        return vm->code;
    if (as_pvi_grow(dict, true))
        return pvm_fail(vm, AS_ERR_NOMEM, "out of memory");
    dict->keys[dict->count] = key;
    dict->items[dict->count] = val;
    dict->count++;
    as_pvi_bump_height(dict, key);
    as_pvi_bump_height(dict, val);
    return check_height(vm, dict);
}

int pvm_need(Vm *vm, size_t n, const char *op)
{
    if (n > vm->len - vm->pos)
        return pvm_fail(vm, AS_ERR_FORMAT, "truncated in %s at byte %zu (needs %zu bytes, %zu left)",
                       op, vm->pos, n, vm->len - vm->pos);
    return AS_OK;
}

uint64_t pvm_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* a text line (protocol 0 opcodes), without the newline */
int pvm_read_line(Vm *vm, const char *op, const char **s, size_t *n)
{
    const uint8_t *start = vm->buf + vm->pos;
    const uint8_t *nl = memchr(start, '\n', vm->len - vm->pos);
    if (!nl)
        return pvm_fail(vm, AS_ERR_FORMAT, "truncated in %s at byte %zu (no newline)", op, vm->pos);
    *s = (const char *)start;
    *n = (size_t)(nl - start);
    vm->pos += *n + 1;
    return AS_OK;
}

int pvm_memo_put(Vm *vm, uint64_t idx)
{
    AsPValue *top = pvm_top(vm, "PUT");
    if (!top)
        return vm->code;
    if (idx >= MAX_MEMO)
        return pvm_fail(vm, AS_ERR_FORMAT, "memo index %llu too large (limit %u)", (unsigned long long)idx,
                       (unsigned)MAX_MEMO);
    if (idx >= vm->cap_memo) {
        size_t nc = vm->cap_memo ? vm->cap_memo : 64;
        while (nc <= idx)
            nc *= 2;
        AsPValue **n = realloc(vm->memo, nc * sizeof *n);
        if (!n)
            return pvm_fail(vm, AS_ERR_NOMEM, "out of memory");
        memset(n + vm->cap_memo, 0, (nc - vm->cap_memo) * sizeof *n);
        vm->memo = n;
        vm->cap_memo = nc;
    }
    if (!vm->memo[idx])
        vm->memo_count++;
    vm->memo[idx] = top; /* a live reference; GET copies it */
    return AS_OK;
}

int pvm_memo_get(Vm *vm, uint64_t idx)
{
    if (idx >= vm->cap_memo || !vm->memo[idx])
        return pvm_fail(vm, AS_ERR_FORMAT, "memo index %llu not defined (GET at byte %zu)",
                       (unsigned long long)idx, vm->pos);
    return pvm_push(vm, pvm_copy(vm, vm->memo[idx]));
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

int pvm_push_global(Vm *vm, const char *mod, size_t mlen, const char *nm, size_t nlen)
{
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        const AllowedGlobal *g = &allowed[i];
        if (strlen(g->module) == mlen && memcmp(g->module, mod, mlen) == 0 && strlen(g->name) == nlen &&
            memcmp(g->name, nm, nlen) == 0) {
            char full[128];
            snprintf(full, sizeof full, "%s.%s", g->module, g->name);
            AsPValue *v = pvm_strn(vm, AS_PV_GLOBAL, full, strlen(full));
            if (!v)
                return vm->code;
            v->i = g->id;
            v->dtype = g->dtype;
            return pvm_push(vm, v);
        }
    }
    int ml = mlen > 100 ? 100 : (int)mlen, nl = nlen > 100 ? 100 : (int)nlen;
    if (!printable(mod, (size_t)ml) || !printable(nm, (size_t)nl))
        return pvm_fail(vm, AS_ERR_FORMAT, "refuses to load a global with an unprintable name");
    return pvm_fail(vm, AS_ERR_FORMAT,
                   "refuses to load global '%.*s.%.*s' (only tensors, storages and plain containers "
                   "are allowed; nothing in a checkpoint is executed)",
                   ml, mod, nl, nm);
}

static bool is_int(const AsPValue *v) { return v && (v->kind == AS_PV_INT || v->kind == AS_PV_BOOL); }
static int64_t int_of(const AsPValue *v) { return v->kind == AS_PV_BOOL ? (int64_t)v->b : v->i; }

static int int_tuple(Vm *vm, const AsPValue *v, const char *what, int64_t *out, int *n)
{
    if (!v || (v->kind != AS_PV_TUPLE && v->kind != AS_PV_LIST))
        return pvm_fail(vm, AS_ERR_FORMAT, "tensor %s is not a tuple", what);
    if (v->count > AS_MAX_DIMS)
        return pvm_fail(vm, AS_ERR_UNSUPPORTED, "tensor with %zu dimensions (at most %d)", v->count,
                       AS_MAX_DIMS);
    for (size_t i = 0; i < v->count; i++) {
        if (!is_int(v->items[i]))
            return pvm_fail(vm, AS_ERR_FORMAT, "tensor %s holds a %s", what,
                           as_pv_kind_name(v->items[i]->kind));
        out[i] = int_of(v->items[i]);
    }
    *n = (int)v->count;
    return AS_OK;
}

static AsPValue *make_tensor(Vm *vm, const AsPValue *args, bool v2)
{
    if (args->kind != AS_PV_TUPLE || args->count < 4 || (v2 && args->count < 6)) {
        pvm_fail(vm, AS_ERR_FORMAT, "_rebuild_tensor%s called with %zu arguments", v2 ? "_v2" : "",
                args->count);
        return NULL;
    }
    const AsPValue *st = args->items[0];
    if (st->kind != AS_PV_STORAGE) {
        pvm_fail(vm, AS_ERR_FORMAT, "_rebuild_tensor: first argument is a %s, not a storage",
                as_pv_kind_name(st->kind));
        return NULL;
    }
    if (!is_int(args->items[1])) {
        pvm_fail(vm, AS_ERR_FORMAT, "tensor of storage '%s': storage offset is not an int", st->s);
        return NULL;
    }
    int64_t shape[AS_MAX_DIMS], stride[AS_MAX_DIMS];
    int nd = 0, ns = 0;
    if (int_tuple(vm, args->items[2], "size", shape, &nd) || int_tuple(vm, args->items[3], "stride", stride, &ns))
        return NULL;
    if (nd != ns) {
        pvm_fail(vm, AS_ERR_FORMAT, "tensor of storage '%s': size has %d dimensions, stride %d", st->s,
                nd, ns);
        return NULL;
    }
    int64_t off = int_of(args->items[1]);
    if (off < 0) {
        pvm_fail(vm, AS_ERR_FORMAT, "tensor of storage '%s': negative storage offset %lld", st->s,
                (long long)off);
        return NULL;
    }
    int64_t numel = 1;
    for (int i = 0; i < nd; i++) {
        if (shape[i] < 0 || stride[i] < 0) {
            pvm_fail(vm, AS_ERR_FORMAT, "tensor of storage '%s': negative %s %lld in dimension %d",
                    st->s, shape[i] < 0 ? "size" : "stride",
                    (long long)(shape[i] < 0 ? shape[i] : stride[i]), i);
            return NULL;
        }
        if (shape[i] > 0 && numel > ((int64_t)1 << 48) / shape[i]) {
            pvm_fail(vm, AS_ERR_FORMAT, "tensor of storage '%s': absurd size in dimension %d (%lld)",
                    st->s, i, (long long)shape[i]);
            return NULL;
        }
        numel *= shape[i];
    }
    AsPValue *v = pvm_new(vm, AS_PV_TENSOR);
    if (!v)
        return NULL;
    AsPTensor *t = calloc(1, sizeof *t);
    if (!t) {
        pvm_fail(vm, AS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    v->t = t;
    t->storage_key = strdup(st->s);
    if (!t->storage_key) {
        pvm_fail(vm, AS_ERR_NOMEM, "out of memory");
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
        pvm_fail(vm, AS_ERR_NOMEM, "out of memory");
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
            pvm_fail(vm, AS_ERR_FORMAT, "_codecs.encode: string not encodable as latin-1");
            return NULL;
        }
    }
    AsPValue *b = pvm_strn(vm, AS_PV_BYTES, tmp, n);
    free(tmp);
    return b;
}

int pvm_do_call(Vm *vm, AsPValue *fn, AsPValue *args, const char *op)
{
    if (fn->kind != AS_PV_GLOBAL)
        return pvm_fail(vm, AS_ERR_FORMAT, "%s on a %s (not callable) at byte %zu", op,
                       as_pv_kind_name(fn->kind), vm->pos);
    if (args->kind != AS_PV_TUPLE)
        return pvm_fail(vm, AS_ERR_FORMAT, "%s arguments are a %s, not a tuple", op,
                       as_pv_kind_name(args->kind));
    AsPValue *res = NULL;
    switch ((GlobalId)fn->i) {
    case G_ODICT:
        res = pvm_new(vm, AS_PV_DICT);
        if (!res)
            break;
        res->ordered = true;
        if (args->count == 1 && (args->items[0]->kind == AS_PV_LIST || args->items[0]->kind == AS_PV_TUPLE)) {
            const AsPValue *pairs = args->items[0];
            for (size_t i = 0; i < pairs->count; i++) {
                const AsPValue *pr = pairs->items[i];
                if ((pr->kind != AS_PV_TUPLE && pr->kind != AS_PV_LIST) || pr->count != 2)
                    return pvm_fail(vm, AS_ERR_FORMAT, "OrderedDict: item %zu is not a pair", i);
                int rc = pvm_set_item(vm, res, pr->items[0], pr->items[1]);
                if (rc)
                    return rc;
            }
        } else if (args->count != 0) {
            return pvm_fail(vm, AS_ERR_FORMAT, "OrderedDict called with %zu arguments", args->count);
        }
        break;
    case G_REBUILD_V2:
    case G_REBUILD:
        res = make_tensor(vm, args, fn->i == G_REBUILD_V2);
        break;
    case G_REBUILD_PARAM:
        if (args->count < 1 || args->items[0]->kind != AS_PV_TENSOR)
            return pvm_fail(vm, AS_ERR_FORMAT, "_rebuild_parameter: first argument is not a tensor");
        res = args->items[0];
        break;
    case G_ENCODE:
        if (args->count < 1 || args->count > 2 || args->items[0]->kind != AS_PV_STR)
            return pvm_fail(vm, AS_ERR_FORMAT, "_codecs.encode: unexpected arguments");
        if (args->count == 2) {
            const AsPValue *enc = args->items[1];
            if (enc->kind != AS_PV_STR)
                return pvm_fail(vm, AS_ERR_FORMAT, "_codecs.encode: encoding is not a str");
            if (strcmp(enc->s, "latin1") == 0 || strcmp(enc->s, "latin-1") == 0 ||
                strcmp(enc->s, "iso-8859-1") == 0) {
                res = encode_latin1(vm, args->items[0]);
                break;
            }
            if (strcmp(enc->s, "utf-8") != 0 && strcmp(enc->s, "utf8") != 0)
                return pvm_fail(vm, AS_ERR_UNSUPPORTED, "_codecs.encode: encoding '%.40s' not supported",
                               enc->s);
        }
        res = pvm_strn(vm, AS_PV_BYTES, args->items[0]->s, args->items[0]->len);
        break;
    case G_NAMESPACE:
        res = pvm_strn(vm, AS_PV_OBJECT, "argparse.Namespace", strlen("argparse.Namespace"));
        break;
    default:
        return pvm_fail(vm, AS_ERR_FORMAT, "refuses to call '%s' (%s at byte %zu)", fn->s, op, vm->pos);
    }
    if (!res)
        return vm->code;
    return pvm_push(vm, res);
}

int pvm_do_build(Vm *vm)
{
    AsPValue *state = pvm_pop(vm, "BUILD");
    AsPValue *obj = state ? pvm_top(vm, "BUILD") : NULL;
    if (!obj)
        return vm->code;
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
                return vm->code;
            if (as_pvi_grow(obj, true))
                return pvm_fail(vm, AS_ERR_NOMEM, "out of memory");
            obj->keys[obj->count] = d->keys[i];
            obj->items[obj->count] = d->items[i];
            obj->count++;
            as_pvi_bump_height(obj, d->keys[i]);
            as_pvi_bump_height(obj, d->items[i]);
        }
        return check_height(vm, obj);
    }
    default:
        return pvm_fail(vm, AS_ERR_FORMAT, "BUILD on a %s at byte %zu", as_pv_kind_name(obj->kind), vm->pos);
    }
}

int pvm_do_persid(Vm *vm, AsPValue *pid)
{
    if (pid->kind != AS_PV_TUPLE || pid->count < 5 || pid->items[0]->kind != AS_PV_STR ||
        strcmp(pid->items[0]->s, "storage") != 0)
        return pvm_fail(vm, AS_ERR_UNSUPPORTED, "unsupported persistent id (not a torch storage) at byte %zu",
                       vm->pos);
    const AsPValue *cls = pid->items[1], *key = pid->items[2], *numel = pid->items[4];
    if (cls->kind != AS_PV_GLOBAL || cls->i != G_STORAGE)
        return pvm_fail(vm, AS_ERR_FORMAT, "persistent id: storage type is a %s ('%s')",
                       as_pv_kind_name(cls->kind), cls->s ? cls->s : "");
    if (key->kind != AS_PV_STR || key->len == 0 || key->len > 64 || strchr(key->s, '/') ||
        strstr(key->s, ".."))
        return pvm_fail(vm, AS_ERR_FORMAT, "persistent id: bad storage key");
    if (!is_int(numel) || int_of(numel) < 0)
        return pvm_fail(vm, AS_ERR_FORMAT, "storage '%s': bad element count", key->s);
    AsPValue *v = pvm_strn(vm, AS_PV_STORAGE, key->s, key->len);
    if (!v)
        return vm->code;
    v->dtype = cls->dtype;
    v->i = int_of(numel);
    return pvm_push(vm, v);
}

int pvm_parse_text_int(Vm *vm, const char *s, size_t n, const char *op, int64_t *out)
{
    char tmp[32];
    if (n > 0 && s[n - 1] == 'L') /* protocol 0 LONG */
        n--;
    if (n == 0 || n >= sizeof tmp)
        return pvm_fail(vm, AS_ERR_FORMAT, "bad integer in %s at byte %zu", op, vm->pos);
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (*end != '\0' || errno == ERANGE)
        return pvm_fail(vm, AS_ERR_FORMAT, "bad integer '%s' in %s", tmp, op);
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
AsPValue *pvm_decode_raw_unicode(Vm *vm, const char *s, size_t n)
{
    if (n > MAX_STR_BYTES / 4) {
        pvm_fail(vm, AS_ERR_FORMAT, "UNICODE line too long");
        return NULL;
    }
    char *out = malloc(n * 4 + 1);
    if (!out) {
        pvm_fail(vm, AS_ERR_NOMEM, "out of memory");
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
    AsPValue *v = pvm_strn(vm, AS_PV_STR, out, o);
    free(out);
    return v;
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
    int rc = pvm_run(&vm);
    AsPValue *root = rc == AS_OK ? vm.stack[0] : NULL;
    uint8_t *keep = calloc(vm.narena ? vm.narena : 1, 1);
    if (!keep && root) {
        rc = pvm_fail(&vm, AS_ERR_NOMEM, "out of memory");
        root = NULL;
    }
    if (root) {
        qsort(vm.arena, vm.narena, sizeof *vm.arena, cmp_ptr);
        mark_reachable(root, keep, vm.arena, vm.narena);
    }
    for (size_t i = 0; i < vm.narena; i++) {
        if (!keep || !keep[i])
            as_pvi_free_shallow(vm.arena[i]);
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
