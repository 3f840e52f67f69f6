/* pickle_vm: internals of the pickle module shared by its files (not for
 * callers outside core/io/pickle*.c): the reading machine's state, the
 * operations the opcode handlers (pickle_ops.c) are made of, and the value
 * helpers of pickle_value.c. */
#ifndef ALIGNSEG_PICKLE_VM_H
#define ALIGNSEG_PICKLE_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "pickle.h"

/* ---- limits for reading ---- */
#define MAX_STACK (1u << 20)      /* values on the VM stack */
#define MAX_MARKS AS_PICKLE_MAX_DEPTH
#define MAX_MEMO (1u << 20)       /* memo indices */
#define MAX_NODES (1u << 22)      /* values created, including memo copies */
#define MAX_STR_BYTES ((size_t)1 << 26) /* bytes in strings, including copies */

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
    AsStatus code; /* of the last failure (pvm_fail), known even when err is NULL */
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

/* ---- value helpers (pickle_value.c) ---- */
AsPValue *as_pvi_new(AsPvKind kind);
void as_pvi_free_shallow(AsPValue *v); /* the node only, not its children */
int as_pvi_grow(AsPValue *v, bool with_keys); /* room for one more item: 0, or -1 */
void as_pvi_bump_height(AsPValue *parent, const AsPValue *child);
bool as_pvi_key_equal(const AsPValue *a, const AsPValue *b);

/* ---- the machine (pickle_vm.c) ----
 * Functions returning int give AS_OK or the error code, with vm->err set;
 * those returning a pointer give NULL on error, with vm->err set. */
int pvm_fail(Vm *vm, AsStatus code, const char *fmt, ...) AS_PRINTF(3, 4);
AsPValue *pvm_new(Vm *vm, AsPvKind kind);                                /* registered in the arena */
AsPValue *pvm_strn(Vm *vm, AsPvKind kind, const void *s, size_t len);   /* string / bytes value */
AsPValue *pvm_copy(Vm *vm, const AsPValue *v);                           /* deep copy (memo GET) */
int pvm_push(Vm *vm, AsPValue *v);                                       /* v NULL: the error of its maker */
size_t pvm_floor(const Vm *vm);                                          /* stack index of the top mark */
AsPValue *pvm_pop(Vm *vm, const char *op);
AsPValue *pvm_top(Vm *vm, const char *op);
int pvm_pop_mark(Vm *vm, const char *op, size_t *first);                /* *first: first value above it */
int pvm_add_item(Vm *vm, AsPValue *seq, AsPValue *item);
int pvm_set_item(Vm *vm, AsPValue *dict, AsPValue *key, AsPValue *val);
int pvm_need(Vm *vm, size_t n, const char *op);                          /* n more bytes of input */
uint64_t pvm_le(const uint8_t *p, int n);                                /* little-endian unsigned */
int pvm_read_line(Vm *vm, const char *op, const char **s, size_t *n);   /* protocol 0 text argument */
int pvm_parse_text_int(Vm *vm, const char *s, size_t n, const char *op, int64_t *out);
AsPValue *pvm_decode_raw_unicode(Vm *vm, const char *s, size_t n);
int pvm_memo_put(Vm *vm, uint64_t idx);
int pvm_memo_get(Vm *vm, uint64_t idx);
int pvm_push_global(Vm *vm, const char *mod, size_t mlen, const char *nm, size_t nlen); /* allow-list */
int pvm_do_call(Vm *vm, AsPValue *fn, AsPValue *args, const char *op);  /* REDUCE / NEWOBJ */
int pvm_do_build(Vm *vm);
int pvm_do_persid(Vm *vm, AsPValue *pid);

/* ---- the opcodes (pickle_ops.c) ---- */
int pvm_run(Vm *vm); /* until STOP */

#endif
