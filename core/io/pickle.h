/* pickle: a safe subset of Python's pickle format (protocols 0-5 opcodes that
 * torch.save emits) read into a tree of plain values, and a protocol-2 writer
 * for the same kinds of value. Reading never executes anything: only a short
 * allow-list of globals is understood (collections.OrderedDict,
 * torch._utils._rebuild_tensor_v2 / _rebuild_parameter, torch.*Storage,
 * torch dtypes, _codecs.encode, argparse.Namespace as an inert object); any
 * other global is refused. Memo, stack, nesting and element counts are
 * bounded. Tensors come out as metadata (storage key, dtype, offset, shape,
 * stride); pth.h resolves their data from the zip archive.
 *
 * Ownership: every AsPValue owns its children; as_pv_free frees a whole tree.
 * Values referenced twice in a pickle (memo) are deep-copied, so the result
 * is always a tree (no sharing, no cycles). */
#ifndef ALIGNSEG_PICKLE_H
#define ALIGNSEG_PICKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "tensor.h"

/* Element type of a tensor storage (torch.FloatStorage -> AS_PD_F32 ...). */
typedef enum {
    AS_PD_F32,  /* FloatStorage */
    AS_PD_F64,  /* DoubleStorage */
    AS_PD_F16,  /* HalfStorage */
    AS_PD_BF16, /* BFloat16Storage */
    AS_PD_I64,  /* LongStorage */
    AS_PD_I32,  /* IntStorage */
    AS_PD_I16,  /* ShortStorage */
    AS_PD_I8,   /* CharStorage */
    AS_PD_U8,   /* ByteStorage */
    AS_PD_BOOL  /* BoolStorage */
} AsPDtype;

size_t as_pdtype_size(AsPDtype dt);
const char *as_pdtype_name(AsPDtype dt); /* "float32", "bfloat16", ... */
bool as_pdtype_is_float(AsPDtype dt);

typedef struct {
    /* storage, as named in the pickle's persistent id */
    AsPDtype dtype;
    char *storage_key;     /* "12" -> <archive>/data/12 */
    int64_t storage_numel; /* elements in the storage, as the pickle claims */
    /* view into the storage (elements, not bytes) */
    int64_t offset;
    int ndim;
    int64_t shape[AS_MAX_DIMS];
    int64_t stride[AS_MAX_DIMS];
    int64_t numel;
    /* data, numel values contiguous row-major, filled by pth.h (NULL right
     * after as_pickle_read; offset and stride keep describing the file's
     * view). Float dtypes land in f32, integer/bool ones in i64: exactly one
     * of them is set once the data is resolved. The writer writes f32 data as
     * torch.FloatStorage and i64 data as torch.LongStorage. */
    float *f32;
    int64_t *i64;
    bool borrowed; /* f32/i64 point into memory owned elsewhere (file map,
                      or the caller's buffer for tensors built for writing) */
} AsPTensor;

typedef enum {
    AS_PV_NONE,
    AS_PV_BOOL,    /* b */
    AS_PV_INT,     /* i */
    AS_PV_FLOAT,   /* f */
    AS_PV_STR,     /* s (NUL-terminated UTF-8), len */
    AS_PV_BYTES,   /* s, len */
    AS_PV_TUPLE,   /* items[0..count) */
    AS_PV_LIST,    /* items[0..count) */
    AS_PV_DICT,    /* keys[0..count), items[0..count) = values; ordered if
                      from collections.OrderedDict */
    AS_PV_TENSOR,  /* t */
    AS_PV_GLOBAL,  /* an allowed global used as a value (e.g. torch.float32):
                      s = "torch.float32" */
    AS_PV_STORAGE, /* a bare storage reference: s = key, i = numel, dtype */
    AS_PV_OBJECT   /* an inert object (argparse.Namespace): s = class name,
                      keys/items = its attributes if a dict state was set */
} AsPvKind;

typedef struct AsPValue AsPValue;
struct AsPValue {
    AsPvKind kind;
    bool b;
    int64_t i;
    double f;
    char *s;
    size_t len;
    AsPValue **items; /* sequence items, or dict values */
    AsPValue **keys;  /* dict keys */
    size_t count, cap;
    bool ordered;
    AsPDtype dtype;   /* AS_PV_STORAGE */
    AsPTensor *t;     /* AS_PV_TENSOR */
    int height;       /* nesting height (1 for a leaf); reading bounds it */
};

#define AS_PICKLE_MAX_DEPTH 256

/* ---- reading ---- */

/* Parse a pickle held in buf[0..len). name is used in error messages
 * ("model.pth/data.pkl"). On success *out is a new tree. */
int as_pickle_read(const uint8_t *buf, size_t len, const char *name, AsPValue **out,
                   AsError *err);

/* ---- building (for writing, and for tests) ----
 * Constructors return NULL when out of memory. Functions that add a child
 * take ownership of it, also on failure (then the child is freed). */
AsPValue *as_pv_none(void);
AsPValue *as_pv_bool(bool b);
AsPValue *as_pv_int(int64_t i);
AsPValue *as_pv_float(double f);
AsPValue *as_pv_str(const char *s);
AsPValue *as_pv_bytes(const void *data, size_t len);
AsPValue *as_pv_tuple(void);
AsPValue *as_pv_list(void);
AsPValue *as_pv_dict(bool ordered); /* ordered: written as collections.OrderedDict */
/* A float32 tensor. copy=true copies data (owned); copy=false borrows it
 * (the caller keeps it alive while the tree is used). ndim 0 = scalar. */
AsPValue *as_pv_tensor_f32(int ndim, const int64_t *shape, const float *data, bool copy);
/* An int64 tensor (written as torch.LongStorage). Same copy rule. */
AsPValue *as_pv_tensor_i64(int ndim, const int64_t *shape, const int64_t *data, bool copy);
int as_pv_append(AsPValue *seq, AsPValue *item, AsError *err);      /* list/tuple */
int as_pv_dict_set(AsPValue *dict, AsPValue *key, AsPValue *val, AsError *err);
int as_pv_dict_set_str(AsPValue *dict, const char *key, AsPValue *val, AsError *err);
int as_pv_dict_set_int(AsPValue *dict, int64_t key, AsPValue *val, AsError *err);
void as_pv_free(AsPValue *v);
AsPValue *as_pv_copy(const AsPValue *v); /* deep copy (tensor data copied if owned) */

/* ---- looking things up ---- */
/* Value under a string / int key of a dict, or NULL. */
AsPValue *as_pv_get(const AsPValue *dict, const char *key);
AsPValue *as_pv_get_int(const AsPValue *dict, int64_t key);
/* Numeric value of an int/bool/float, or of a 1-element tensor; false if none. */
bool as_pv_number(const AsPValue *v, double *out);
const char *as_pv_kind_name(AsPvKind k);

/* ---- writing ----
 * Serialise a tree as a protocol-2 pickle the way torch.save does: dicts as
 * EMPTY_DICT/SETITEMS (OrderedDict via REDUCE), tensors as
 * torch._utils._rebuild_tensor_v2(persistent ('storage', torch.XStorage, key,
 * 'cpu', numel), offset 0, shape, contiguous stride, False, OrderedDict()).
 * Storage keys are "0", "1", ... in order of appearance; *tensors (malloc'd,
 * caller frees the array only) lists the tensors in that order, so that
 * tensors[k] is the content of data/<k>. Only data-holding kinds can be
 * written (not AS_PV_GLOBAL / AS_PV_STORAGE / AS_PV_OBJECT). */
int as_pickle_write(const AsPValue *root, uint8_t **out, size_t *out_len,
                    const AsPTensor ***tensors, size_t *ntensors, AsError *err);

#endif
