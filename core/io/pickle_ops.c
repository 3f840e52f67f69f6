/* pickle_ops: the opcodes the reader understands, one small function each,
 * and the table that dispatches on the opcode byte. Opcodes that would build
 * arbitrary objects are refused; the others are unsupported (torch.save never
 * writes them). */
#include "pickle.h"

#include <stdlib.h>
#include <string.h>

#include "json.h" /* as_strtod_c */
#include "pickle_opcodes.h"
#include "pickle_vm.h"

/* A handler runs with vm->pos just after the opcode byte; op is that byte and
 * at its offset (for messages). It returns AS_OK or an error code, or
 * STOPPED when the pickle is complete. */
#define STOPPED (-1)
typedef int (*OpFn)(Vm *vm, uint8_t op, size_t at);

static const uint8_t *arg(const Vm *vm) { return vm->buf + vm->pos; }

/* ---- framing ---- */

static int op_proto(Vm *vm, uint8_t op, size_t at)
{
    (void)op;
    (void)at;
    int rc = pvm_need(vm, 1, "PROTO");
    if (rc)
        return rc;
    if (arg(vm)[0] > 5)
        return pvm_fail(vm, AS_ERR_UNSUPPORTED, "pickle protocol %d (at most 5 is supported)", arg(vm)[0]);
    vm->pos++;
    return AS_OK;
}

static int op_frame(Vm *vm, uint8_t op, size_t at)
{
    (void)op;
    (void)at;
    int rc = pvm_need(vm, 8, "FRAME");
    if (rc)
        return rc;
    vm->pos += 8;
    return AS_OK;
}

static int op_stop(Vm *vm, uint8_t op, size_t at)
{
    (void)op;
    (void)at;
    if (vm->sp != 1 || vm->nmarks)
        return pvm_fail(vm, AS_ERR_FORMAT, "STOP with %zu values on the stack (and %zu marks)", vm->sp,
                        vm->nmarks);
    return STOPPED;
}

/* ---- stack ---- */

static int op_mark(Vm *vm, uint8_t op, size_t at)
{
    (void)op;
    (void)at;
    if (vm->nmarks >= MAX_MARKS)
        return pvm_fail(vm, AS_ERR_FORMAT, "more than %d nested MARKs (limit)", MAX_MARKS);
    vm->marks[vm->nmarks++] = vm->sp;
    return AS_OK;
}

static int op_pop(Vm *vm, uint8_t op, size_t at)
{
    (void)op;
    if (vm->sp > pvm_floor(vm))
        vm->sp--;
    else if (vm->nmarks) /* POP of a mark */
        vm->nmarks--;
    else
        return pvm_fail(vm, AS_ERR_FORMAT, "stack underflow in POP at byte %zu", at);
    return AS_OK;
}

static int op_pop_mark(Vm *vm, uint8_t op, size_t at)
{
    (void)op;
    (void)at;
    size_t first = 0;
    int rc = pvm_pop_mark(vm, "POP_MARK", &first);
    if (!rc)
        vm->sp = first;
    return rc;
}

static int op_dup(Vm *vm, uint8_t op, size_t at)
{
    (void)op;
    (void)at;
    AsPValue *t = pvm_top(vm, "DUP");
    if (!t)
        return vm->code;
    return pvm_push(vm, pvm_copy(vm, t));
}

/* ---- scalars ---- */

static int op_none(Vm *vm, uint8_t op, size_t at)
{
    (void)op;
    (void)at;
    return pvm_push(vm, pvm_new(vm, AS_PV_NONE));
}

static int op_bool(Vm *vm, uint8_t op, size_t at) /* NEWTRUE, NEWFALSE */
{
    (void)at;
    AsPValue *v = pvm_new(vm, AS_PV_BOOL);
    if (v)
        v->b = op == OP_NEWTRUE;
    return pvm_push(vm, v);
}

static int push_int(Vm *vm, int64_t i)
{
    AsPValue *v = pvm_new(vm, AS_PV_INT);
    if (v)
        v->i = i;
    return pvm_push(vm, v);
}

static int push_float(Vm *vm, double f)
{
    AsPValue *v = pvm_new(vm, AS_PV_FLOAT);
    if (v)
        v->f = f;
    return pvm_push(vm, v);
}

static int op_binint(Vm *vm, uint8_t op, size_t at) /* BININT, BININT1, BININT2 */
{
    (void)at;
    int n = op == OP_BININT ? 4 : op == OP_BININT1 ? 1 : 2;
    int rc = pvm_need(vm, (size_t)n, "BININT");
    if (rc)
        return rc;
    const uint8_t *p = arg(vm);
    int64_t i = op == OP_BININT ? (int64_t)(int32_t)(uint32_t)pvm_le(p, 4) : (int64_t)pvm_le(p, n);
    vm->pos += (size_t)n;
    return push_int(vm, i);
}

static int op_long_bin(Vm *vm, uint8_t op, size_t at) /* LONG1, LONG4 */
{
    size_t hdr = op == OP_LONG1 ? 1 : 4;
    int rc = pvm_need(vm, hdr, "LONG");
    if (rc)
        return rc;
    uint64_t n = pvm_le(arg(vm), (int)hdr);
    vm->pos += hdr;
    if (n > 8)
        return pvm_fail(vm, AS_ERR_UNSUPPORTED, "integer of %llu bytes at byte %zu (at most 8)",
                        (unsigned long long)n, at);
    if ((rc = pvm_need(vm, (size_t)n, "LONG")))
        return rc;
    uint64_t u = pvm_le(arg(vm), (int)n);
    if (n > 0 && n < 8 && (vm->buf[vm->pos + n - 1] & 0x80))
        u |= ~(uint64_t)0 << (8 * n); /* sign-extend */
    vm->pos += (size_t)n;
    return push_int(vm, (int64_t)u);
}

static int op_int_text(Vm *vm, uint8_t op, size_t at) /* INT, LONG (protocol 0) */
{
    (void)at;
    const char *s = NULL;
    size_t n = 0;
    int rc = pvm_read_line(vm, "INT", &s, &n);
    if (rc)
        return rc;
    if (op == OP_INT && n == 2 && s[0] == '0' && (s[1] == '0' || s[1] == '1')) { /* I00 / I01 */
        AsPValue *v = pvm_new(vm, AS_PV_BOOL);
        if (v)
            v->b = s[1] == '1';
        return pvm_push(vm, v);
    }
    int64_t x = 0;
    if ((rc = pvm_parse_text_int(vm, s, n, "INT", &x)))
        return rc;
    return push_int(vm, x);
}

static int op_binfloat(Vm *vm, uint8_t op, size_t at) /* big-endian double */
{
    (void)op;
    (void)at;
    int rc = pvm_need(vm, 8, "BINFLOAT");
    if (rc)
        return rc;
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = (u << 8) | arg(vm)[i];
    double d;
    memcpy(&d, &u, 8);
    vm->pos += 8;
    return push_float(vm, d);
}

static int op_float_text(Vm *vm, uint8_t op, size_t at)
{
    (void)op;
    const char *s = NULL;
    size_t n = 0;
    char tmp[64];
    int rc = pvm_read_line(vm, "FLOAT", &s, &n);
    if (rc)
        return rc;
    if (n == 0 || n >= sizeof tmp)
        return pvm_fail(vm, AS_ERR_FORMAT, "bad FLOAT at byte %zu", at);
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end;
    double d = as_strtod_c(tmp, &end);
    if (*end)
        return pvm_fail(vm, AS_ERR_FORMAT, "bad FLOAT at byte %zu", at);
    return push_float(vm, d);
}

/* ---- strings ---- */

/* BINUNICODE, SHORT_BINUNICODE, BINUNICODE8, BINBYTES, SHORT_BINBYTES,
 * BINBYTES8, BINSTRING, SHORT_BINSTRING: a length, then the bytes */
static int op_counted_string(Vm *vm, uint8_t op, size_t at)
{
    size_t hdr = (op == OP_SHORT_BINUNICODE || op == OP_SHORT_BINBYTES || op == OP_SHORT_BINSTRING) ? 1
                 : (op == OP_BINUNICODE8 || op == OP_BINBYTES8)                                     ? 8
                                                                                                    : 4;
    int rc = pvm_need(vm, hdr, "string length");
    if (rc)
        return rc;
    uint64_t n = pvm_le(arg(vm), (int)hdr);
    if (op == OP_BINSTRING && n > 0x7fffffffu)
        return pvm_fail(vm, AS_ERR_FORMAT, "negative BINSTRING length at byte %zu", at);
    vm->pos += hdr;
    if (n > vm->len - vm->pos)
        return pvm_fail(vm, AS_ERR_FORMAT, "string of %llu bytes at byte %zu runs past the end (%zu bytes left)",
                        (unsigned long long)n, at, vm->len - vm->pos);
    bool bytes = op == OP_BINBYTES || op == OP_SHORT_BINBYTES || op == OP_BINBYTES8;
    AsPValue *v = pvm_strn(vm, bytes ? AS_PV_BYTES : AS_PV_STR, arg(vm), (size_t)n);
    vm->pos += (size_t)n;
    return pvm_push(vm, v);
}

static int op_unicode_text(Vm *vm, uint8_t op, size_t at) /* raw-unicode-escape line */
{
    (void)op;
    (void)at;
    const char *s = NULL;
    size_t n = 0;
    int rc = pvm_read_line(vm, "UNICODE", &s, &n);
    if (rc)
        return rc;
    return pvm_push(vm, pvm_decode_raw_unicode(vm, s, n));
}

/* ---- containers ---- */

static int op_empty(Vm *vm, uint8_t op, size_t at) /* EMPTY_TUPLE, EMPTY_LIST, EMPTY_DICT */
{
    (void)at;
    return pvm_push(vm, pvm_new(vm, op == OP_EMPTY_TUPLE ? AS_PV_TUPLE : op == OP_EMPTY_LIST ? AS_PV_LIST
                                                                                             : AS_PV_DICT));
}

/* a new sequence of kind k from the stack values [first, sp), which it replaces */
static int make_seq(Vm *vm, AsPvKind k, size_t first)
{
    AsPValue *v = pvm_new(vm, k);
    if (!v)
        return vm->code;
    for (size_t i = first; i < vm->sp; i++) {
        int rc = pvm_add_item(vm, v, vm->stack[i]);
        if (rc)
            return rc;
    }
    vm->sp = first;
    return pvm_push(vm, v);
}

static int op_seq_from_mark(Vm *vm, uint8_t op, size_t at) /* TUPLE, LIST */
{
    (void)at;
    size_t first = 0;
    int rc = pvm_pop_mark(vm, op == OP_TUPLE ? "TUPLE" : "LIST", &first);
    if (rc)
        return rc;
    return make_seq(vm, op == OP_TUPLE ? AS_PV_TUPLE : AS_PV_LIST, first);
}

static int op_tuple_n(Vm *vm, uint8_t op, size_t at) /* TUPLE1, TUPLE2, TUPLE3 */
{
    size_t n = (size_t)(op - OP_TUPLE1 + 1);
    if (vm->sp < pvm_floor(vm) + n)
        return pvm_fail(vm, AS_ERR_FORMAT, "stack underflow in TUPLE%zu at byte %zu", n, at);
    return make_seq(vm, AS_PV_TUPLE, vm->sp - n);
}

/* set the key/value pairs [first, sp) into d and drop them from the stack */
static int set_pairs(Vm *vm, AsPValue *d, size_t first, const char *op, size_t at)
{
    if ((vm->sp - first) % 2)
        return pvm_fail(vm, AS_ERR_FORMAT, "%s with an odd number of values at byte %zu", op, at);
    for (size_t i = first; i < vm->sp; i += 2) {
        int rc = pvm_set_item(vm, d, vm->stack[i], vm->stack[i + 1]);
        if (rc)
            return rc;
    }
    vm->sp = first;
    return AS_OK;
}

static int op_dict(Vm *vm, uint8_t op, size_t at)
{
    (void)op;
    size_t first = 0;
    int rc = pvm_pop_mark(vm, "DICT", &first);
    if (rc)
        return rc;
    if ((vm->sp - first) % 2)
        return pvm_fail(vm, AS_ERR_FORMAT, "DICT with an odd number of values at byte %zu", at);
    AsPValue *v = pvm_new(vm, AS_PV_DICT);
    if (!v)
        return vm->code;
    if ((rc = set_pairs(vm, v, first, "DICT", at)))
        return rc;
    return pvm_push(vm, v);
}

static int op_append(Vm *vm, uint8_t op, size_t at)
{
    (void)op;
    AsPValue *item = pvm_pop(vm, "APPEND");
    AsPValue *lst = item ? pvm_top(vm, "APPEND") : NULL;
    if (!lst)
        return vm->code;
    if (lst->kind != AS_PV_LIST)
        return pvm_fail(vm, AS_ERR_FORMAT, "APPEND to a %s at byte %zu", as_pv_kind_name(lst->kind), at);
    return pvm_add_item(vm, lst, item);
}

/* APPENDS / SETITEMS: pop to the mark; the container is the value below it */
static int container_below_mark(Vm *vm, const char *op, size_t at, size_t *first, AsPValue **c)
{
    int rc = pvm_pop_mark(vm, op, first);
    if (rc)
        return rc;
    if (*first == 0 || *first <= pvm_floor(vm))
        return pvm_fail(vm, AS_ERR_FORMAT, "stack underflow in %s at byte %zu", op, at);
    *c = vm->stack[*first - 1];
    return AS_OK;
}

static int op_appends(Vm *vm, uint8_t op, size_t at)
{
    (void)op;
    size_t first = 0;
    AsPValue *lst = NULL;
    int rc = container_below_mark(vm, "APPENDS", at, &first, &lst);
    if (rc)
        return rc;
    if (lst->kind != AS_PV_LIST)
        return pvm_fail(vm, AS_ERR_FORMAT, "APPENDS to a %s at byte %zu", as_pv_kind_name(lst->kind), at);
    for (size_t i = first; i < vm->sp; i++)
        if ((rc = pvm_add_item(vm, lst, vm->stack[i])))
            return rc;
    vm->sp = first;
    return AS_OK;
}

static int op_setitem(Vm *vm, uint8_t op, size_t at)
{
    (void)op;
    (void)at;
    AsPValue *val = pvm_pop(vm, "SETITEM");
    AsPValue *key = val ? pvm_pop(vm, "SETITEM") : NULL;
    AsPValue *d = key ? pvm_top(vm, "SETITEM") : NULL;
    if (!d)
        return vm->code;
    return pvm_set_item(vm, d, key, val);
}

static int op_setitems(Vm *vm, uint8_t op, size_t at)
{
    (void)op;
    size_t first = 0;
    AsPValue *d = NULL;
    int rc = container_below_mark(vm, "SETITEMS", at, &first, &d);
    if (rc)
        return rc;
    return set_pairs(vm, d, first, "SETITEMS", at);
}

/* ---- memo ---- */

static int op_binput(Vm *vm, uint8_t op, size_t at) /* BINPUT, LONG_BINPUT */
{
    (void)at;
    int n = op == OP_BINPUT ? 1 : 4;
    int rc = pvm_need(vm, (size_t)n, "BINPUT");
    if (rc)
        return rc;
    uint64_t idx = pvm_le(arg(vm), n);
    vm->pos += (size_t)n;
    return pvm_memo_put(vm, idx);
}

static int op_memoize(Vm *vm, uint8_t op, size_t at)
{
    (void)op;
    (void)at;
    return pvm_memo_put(vm, vm->memo_count);
}

static int op_binget(Vm *vm, uint8_t op, size_t at) /* BINGET, LONG_BINGET */
{
    (void)at;
    int n = op == OP_BINGET ? 1 : 4;
    int rc = pvm_need(vm, (size_t)n, "BINGET");
    if (rc)
        return rc;
    uint64_t idx = pvm_le(arg(vm), n);
    vm->pos += (size_t)n;
    return pvm_memo_get(vm, idx);
}

static int op_memo_text(Vm *vm, uint8_t op, size_t at) /* PUT, GET (protocol 0) */
{
    const char *name = op == OP_PUT ? "PUT" : "GET";
    const char *s = NULL;
    size_t n = 0;
    int64_t idx = 0;
    int rc;
    if ((rc = pvm_read_line(vm, name, &s, &n)) || (rc = pvm_parse_text_int(vm, s, n, name, &idx)))
        return rc;
    if (idx < 0)
        return pvm_fail(vm, AS_ERR_FORMAT, "negative memo index at byte %zu", at);
    return op == OP_PUT ? pvm_memo_put(vm, (uint64_t)idx) : pvm_memo_get(vm, (uint64_t)idx);
}

/* ---- globals, calls, objects ---- */

static int op_global(Vm *vm, uint8_t op, size_t at) /* "module\nname\n" */
{
    (void)op;
    (void)at;
    const char *m = NULL, *nm = NULL;
    size_t ml = 0, nl = 0;
    int rc;
    if ((rc = pvm_read_line(vm, "GLOBAL", &m, &ml)) || (rc = pvm_read_line(vm, "GLOBAL", &nm, &nl)))
        return rc;
    return pvm_push_global(vm, m, ml, nm, nl);
}

static int op_stack_global(Vm *vm, uint8_t op, size_t at)
{
    (void)op;
    AsPValue *nm = pvm_pop(vm, "STACK_GLOBAL");
    AsPValue *m = nm ? pvm_pop(vm, "STACK_GLOBAL") : NULL;
    if (!m)
        return vm->code;
    if (m->kind != AS_PV_STR || nm->kind != AS_PV_STR)
        return pvm_fail(vm, AS_ERR_FORMAT, "STACK_GLOBAL on non-strings at byte %zu", at);
    return pvm_push_global(vm, m->s, m->len, nm->s, nm->len);
}

static int op_reduce(Vm *vm, uint8_t op, size_t at)
{
    (void)op;
    (void)at;
    AsPValue *args = pvm_pop(vm, "REDUCE");
    AsPValue *fn = args ? pvm_pop(vm, "REDUCE") : NULL;
    if (!fn)
        return vm->code;
    return pvm_do_call(vm, fn, args, "REDUCE");
}

static int op_newobj(Vm *vm, uint8_t op, size_t at) /* cls args */
{
    (void)op;
    AsPValue *args = pvm_pop(vm, "NEWOBJ");
    AsPValue *cls = args ? pvm_pop(vm, "NEWOBJ") : NULL;
    if (!cls)
        return vm->code;
    if (cls->kind != AS_PV_GLOBAL || (cls->i != G_ODICT && cls->i != G_NAMESPACE))
        return pvm_fail(vm, AS_ERR_FORMAT, "refuses NEWOBJ of '%s' at byte %zu",
                        cls->kind == AS_PV_GLOBAL ? cls->s : as_pv_kind_name(cls->kind), at);
    return pvm_do_call(vm, cls, args, "NEWOBJ");
}

static int op_build(Vm *vm, uint8_t op, size_t at)
{
    (void)op;
    (void)at;
    return pvm_do_build(vm);
}

static int op_binpersid(Vm *vm, uint8_t op, size_t at)
{
    (void)op;
    (void)at;
    AsPValue *pid = pvm_pop(vm, "BINPERSID");
    if (!pid)
        return vm->code;
    return pvm_do_persid(vm, pid);
}

static int op_persid_text(Vm *vm, uint8_t op, size_t at)
{
    (void)op;
    return pvm_fail(vm, AS_ERR_UNSUPPORTED, "text persistent id (PERSID) at byte %zu not supported", at);
}

static int op_refuse_object(Vm *vm, uint8_t op, size_t at) /* INST, OBJ, NEWOBJ_EX */
{
    return pvm_fail(vm, AS_ERR_FORMAT, "refuses object-creating opcode 0x%02x at byte %zu", op, at);
}

static int op_refuse_ext(Vm *vm, uint8_t op, size_t at) /* EXT1, EXT2, EXT4 */
{
    return pvm_fail(vm, AS_ERR_FORMAT, "refuses extension-registry opcode 0x%02x at byte %zu", op, at);
}

/* ---- dispatch ---- */

static const OpFn ops[256] = {
    [OP_PROTO] = op_proto,
    [OP_FRAME] = op_frame,
    [OP_STOP] = op_stop,
    [OP_MARK] = op_mark,
    [OP_POP] = op_pop,
    [OP_POP_MARK] = op_pop_mark,
    [OP_DUP] = op_dup,
    [OP_NONE] = op_none,
    [OP_NEWTRUE] = op_bool,
    [OP_NEWFALSE] = op_bool,
    [OP_BININT] = op_binint,
    [OP_BININT1] = op_binint,
    [OP_BININT2] = op_binint,
    [OP_LONG1] = op_long_bin,
    [OP_LONG4] = op_long_bin,
    [OP_INT] = op_int_text,
    [OP_LONG] = op_int_text,
    [OP_BINFLOAT] = op_binfloat,
    [OP_FLOAT] = op_float_text,
    [OP_BINUNICODE] = op_counted_string,
    [OP_SHORT_BINUNICODE] = op_counted_string,
    [OP_BINUNICODE8] = op_counted_string,
    [OP_BINBYTES] = op_counted_string,
    [OP_SHORT_BINBYTES] = op_counted_string,
    [OP_BINBYTES8] = op_counted_string,
    [OP_BINSTRING] = op_counted_string,
    [OP_SHORT_BINSTRING] = op_counted_string,
    [OP_UNICODE] = op_unicode_text,
    [OP_EMPTY_TUPLE] = op_empty,
    [OP_EMPTY_LIST] = op_empty,
    [OP_EMPTY_DICT] = op_empty,
    [OP_TUPLE] = op_seq_from_mark,
    [OP_LIST] = op_seq_from_mark,
    [OP_TUPLE1] = op_tuple_n,
    [OP_TUPLE2] = op_tuple_n,
    [OP_TUPLE3] = op_tuple_n,
    [OP_DICT] = op_dict,
    [OP_APPEND] = op_append,
    [OP_APPENDS] = op_appends,
    [OP_SETITEM] = op_setitem,
    [OP_SETITEMS] = op_setitems,
    [OP_BINPUT] = op_binput,
    [OP_LONG_BINPUT] = op_binput,
    [OP_MEMOIZE] = op_memoize,
    [OP_BINGET] = op_binget,
    [OP_LONG_BINGET] = op_binget,
    [OP_PUT] = op_memo_text,
    [OP_GET] = op_memo_text,
    [OP_GLOBAL] = op_global,
    [OP_STACK_GLOBAL] = op_stack_global,
    [OP_REDUCE] = op_reduce,
    [OP_NEWOBJ] = op_newobj,
    [OP_BUILD] = op_build,
    [OP_BINPERSID] = op_binpersid,
    [OP_PERSID] = op_persid_text,
    [OP_INST] = op_refuse_object,
    [OP_OBJ] = op_refuse_object,
    [OP_NEWOBJ_EX] = op_refuse_object,
    [OP_EXT1] = op_refuse_ext,
    [OP_EXT2] = op_refuse_ext,
    [OP_EXT4] = op_refuse_ext,
};

int pvm_run(Vm *vm)
{
    for (;;) {
        if (vm->pos >= vm->len)
            return pvm_fail(vm, AS_ERR_FORMAT, "truncated: no STOP opcode");
        size_t at = vm->pos;
        uint8_t op = vm->buf[vm->pos++];
        if (!ops[op])
            return pvm_fail(vm, AS_ERR_UNSUPPORTED, "unsupported pickle opcode 0x%02x at byte %zu", op, at);
        int rc = ops[op](vm, op, at);
        if (rc == STOPPED)
            return AS_OK;
        if (rc)
            return rc;
    }
}
