/* pth: see pth.h */
#include "pth.h"

#include "atomic.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zip.h"

/* ---- dtype conversion ---- */

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t man = h & 0x3FFu;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400u));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3FFu) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

void as_pdtype_to_f32(AsPDtype dt, const uint8_t *src, size_t n, float *dst)
{
    switch (dt) {
    case AS_PD_F32:
        memcpy(dst, src, n * 4);
        return;
    case AS_PD_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, src + 8 * i, 8);
            dst[i] = (float)d;
        }
        return;
    case AS_PD_F16:
        for (size_t i = 0; i < n; i++)
            dst[i] = half_to_float((uint16_t)(src[2 * i] | (src[2 * i + 1] << 8)));
        return;
    case AS_PD_BF16:
        for (size_t i = 0; i < n; i++) {
            uint32_t bits = ((uint32_t)src[2 * i] << 16) | ((uint32_t)src[2 * i + 1] << 24);
            memcpy(&dst[i], &bits, 4);
        }
        return;
    default: {
        /* integers: go through int64 in small chunks */
        int64_t tmp[256];
        size_t es = as_pdtype_size(dt);
        for (size_t i = 0; i < n; i += 256) {
            size_t m = n - i < 256 ? n - i : 256;
            as_pdtype_to_i64(dt, src + i * es, m, tmp);
            for (size_t k = 0; k < m; k++)
                dst[i + k] = (float)tmp[k];
        }
        return;
    }
    }
}

void as_pdtype_to_i64(AsPDtype dt, const uint8_t *src, size_t n, int64_t *dst)
{
    for (size_t i = 0; i < n; i++) {
        switch (dt) {
        case AS_PD_I64: memcpy(&dst[i], src + 8 * i, 8); break;
        case AS_PD_I32: {
            int32_t v;
            memcpy(&v, src + 4 * i, 4);
            dst[i] = v;
            break;
        }
        case AS_PD_I16: {
            int16_t v;
            memcpy(&v, src + 2 * i, 2);
            dst[i] = v;
            break;
        }
        case AS_PD_I8: dst[i] = (int8_t)src[i]; break;
        case AS_PD_U8: dst[i] = src[i]; break;
        case AS_PD_BOOL: dst[i] = src[i] != 0; break;
        default: {
            float f;
            as_pdtype_to_f32(dt, src + as_pdtype_size(dt) * i, 1, &f);
            dst[i] = (int64_t)f;
            break;
        }
        }
    }
}

/* ---- reading ---- */

bool as_pth_is_legacy(const uint8_t *buf, size_t len)
{
    /* torch < 1.6 starts with a pickled magic number: PROTO 2, LONG1 10 bytes */
    return len >= 3 && buf[0] == 0x80 && buf[1] <= 5 && buf[2] == 0x8a;
}

typedef struct {
    const AsZip *z;
    const char *prefix; /* "archive/" */
    const char *name;   /* file name for messages */
    unsigned flags;
    AsError *err;
    int64_t budget; /* elements all tensors may still take (views may share storage) */
} Resolver;

static int resolve_tensor(Resolver *r, AsPTensor *t, const char *label)
{
    char entry[512];
    snprintf(entry, sizeof entry, "%sdata/%s", r->prefix, t->storage_key);
    const AsZipEntry *e = as_zip_find(r->z, entry);
    if (!e)
        return as_error_set(r->err, AS_ERR_FORMAT, "%s: tensor '%s': storage '%s' is missing (no entry '%s')",
                            r->name, label, t->storage_key, entry);
    size_t es = as_pdtype_size(t->dtype);
    const uint8_t *data = NULL;
    uint8_t *owned = NULL;
    size_t len;
    /* what the storage holds, as its zip entry declares (checked when read) */
    int64_t holds = (int64_t)(e->size / es);
    /* elements the view needs: offset + sum (size-1)*stride + 1 */
    int64_t needed = 0;
    bool absurd = false;
    if (t->numel > 0) {
        int64_t span = 0;
        for (int i = 0; i < t->ndim; i++) {
            int64_t ext = t->shape[i] - 1;
            if (ext > 0 && t->stride[i] > 0) {
                if (t->stride[i] > (INT64_MAX / 4 - span) / ext) {
                    absurd = true;
                    break;
                }
                span += ext * t->stride[i];
            }
        }
        if (!absurd && t->offset > INT64_MAX / 4 - span - 1)
            absurd = true;
        needed = absurd ? INT64_MAX : t->offset + span + 1;
    }
    if (needed > holds) {
        char sh[160];
        as_shape_str(t->ndim, t->shape, sh, sizeof sh);
        free(owned);
        if (absurd)
            return as_error_set(r->err, AS_ERR_FORMAT, "%s: tensor '%s': storage '%s' holds %lld values, "
                                "shape %s with its strides at offset %lld needs an absurd number",
                                r->name, label, t->storage_key, (long long)holds, sh, (long long)t->offset);
        return as_error_set(r->err, AS_ERR_FORMAT, "%s: tensor '%s': storage '%s' holds %lld values, shape %s "
                            "at offset %lld needs %lld", r->name, label, t->storage_key, (long long)holds, sh,
                            (long long)t->offset, (long long)needed);
    }
    if (t->numel > ((int64_t)1 << 32) || (t->numel > holds && t->numel > ((int64_t)1 << 26))) {
        char sh[160];
        as_shape_str(t->ndim, t->shape, sh, sizeof sh);
        free(owned);
        return as_error_set(r->err, AS_ERR_FORMAT, "%s: tensor '%s': shape %s (%lld values) from storage '%s' "
                            "of %lld values is implausibly large", r->name, label, sh, (long long)t->numel,
                            t->storage_key, (long long)holds);
    }
    if (t->numel > r->budget) {
        free(owned);
        return as_error_set(r->err, AS_ERR_FORMAT, "%s: tensor '%s': the tensors' views of storage '%s' add "
                            "up to implausibly many values for a file of this size", r->name, label,
                            t->storage_key);
    }
    r->budget -= t->numel;
    /* only the bytes the view needs are read (inflated) */
    int rc = as_zip_get_prefix(r->z, e, (uint64_t)needed * es, &data, &owned, &len, r->err);
    if (rc) { /* "NAME: entry '...': what" -> "NAME: tensor '...': entry '...': what" */
        size_t nl = strlen(r->name);
        if (r->err && strncmp(r->err->msg, r->name, nl) == 0 && strncmp(r->err->msg + nl, ": ", 2) == 0) {
            char rest[AS_ERROR_MSG_MAX];
            snprintf(rest, sizeof rest, "%s", r->err->msg + nl + 2);
            return as_error_set(r->err, rc, "%s: tensor '%s': %s", r->name, label, rest);
        }
        return as_error_prefix(r->err, "tensor '%s': ", label);
    }
    bool contiguous = true;
    int64_t expect = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != expect)
            contiguous = false;
        expect *= t->shape[i];
    }
    bool is_float = as_pdtype_is_float(t->dtype);
    size_t n = (size_t)t->numel;
    const uint8_t *base = n ? data + (size_t)t->offset * es : data;
    if (is_float && t->dtype == AS_PD_F32 && contiguous && (r->flags & AS_PTH_BORROW) && !owned &&
        ((uintptr_t)base & 3u) == 0) {
        t->f32 = (float *)(uintptr_t)base;
        t->borrowed = true;
        return AS_OK;
    }
    void *out = malloc(n ? n * (is_float ? 4 : 8) : 8);
    if (!out) {
        free(owned);
        return as_error_set(r->err, AS_ERR_NOMEM, "%s: tensor '%s': out of memory (%zu elements)", r->name,
                            label, n);
    }
    if (contiguous) {
        if (is_float)
            as_pdtype_to_f32(t->dtype, base, n, out);
        else
            as_pdtype_to_i64(t->dtype, base, n, out);
    } else {
        /* gather: iterate over all but the last dimension, convert rows */
        int nd = t->ndim;
        int64_t idx[AS_MAX_DIMS] = { 0 };
        int64_t inner = nd ? t->shape[nd - 1] : 1, istride = nd ? t->stride[nd - 1] : 1;
        size_t o = 0;
        while (o < n) {
            int64_t off = t->offset;
            for (int d = 0; d < nd - 1; d++)
                off += idx[d] * t->stride[d];
            for (int64_t k = 0; k < inner; k++) {
                const uint8_t *src = data + (size_t)(off + k * istride) * es;
                if (is_float)
                    as_pdtype_to_f32(t->dtype, src, 1, (float *)out + o);
                else
                    as_pdtype_to_i64(t->dtype, src, 1, (int64_t *)out + o);
                o++;
            }
            for (int d = nd - 2; d >= 0; d--) {
                if (++idx[d] < t->shape[d])
                    break;
                idx[d] = 0;
            }
        }
    }
    free(owned);
    if (is_float)
        t->f32 = out;
    else
        t->i64 = out;
    t->borrowed = false;
    return AS_OK;
}

static int resolve_all(Resolver *r, AsPValue *v, const char *label, int depth)
{
    if (depth > AS_PICKLE_MAX_DEPTH + 2)
        return as_error_set(r->err, AS_ERR_FORMAT, "%s: values nested too deeply", r->name);
    if (v->kind == AS_PV_TENSOR)
        return resolve_tensor(r, v->t, label[0] ? label : "(root)");
    for (size_t i = 0; i < v->count; i++) {
        char sub[512];
        if (v->keys) {
            const AsPValue *k = v->keys[i];
            if (k->kind == AS_PV_STR)
                snprintf(sub, sizeof sub, "%s%s%.200s", label, label[0] ? "/" : "", k->s);
            else if (k->kind == AS_PV_INT)
                snprintf(sub, sizeof sub, "%s%s%lld", label, label[0] ? "/" : "", (long long)k->i);
            else
                snprintf(sub, sizeof sub, "%s%s?", label, label[0] ? "/" : "");
        } else {
            snprintf(sub, sizeof sub, "%.300s[%zu]", label, i);
        }
        int rc = resolve_all(r, v->items[i], sub, depth + 1);
        if (rc)
            return rc;
    }
    return AS_OK;
}

int as_pth_read_mem(const uint8_t *buf, size_t len, const char *name, AsPth *out, unsigned flags,
                    AsError *err)
{
    memset(out, 0, sizeof *out);
    if (!name)
        name = "checkpoint";
    if (len == 0)
        return as_error_set(err, AS_ERR_FORMAT, "%s: empty file", name);
    if (as_pth_is_legacy(buf, len))
        return as_error_set(err, AS_ERR_UNSUPPORTED,
                            "%s: legacy PyTorch format (saved by PyTorch < 1.6, not a zip archive); re-save "
                            "it with PyTorch >= 1.6: torch.save(torch.load(f), f2)", name);
    if (len < 4 || memcmp(buf, "PK\x03\x04", 4) != 0)
        return as_error_set(err, AS_ERR_FORMAT, "%s: not a PyTorch checkpoint (no zip signature)", name);
    AsZip z;
    int rc = as_zip_open(&z, buf, len, name, err);
    if (rc)
        return rc;
    /* the pickle: <archive>/data.pkl (the first one) */
    const AsZipEntry *pkl = NULL;
    for (size_t i = 0; i < z.count && !pkl; i++) {
        const char *nm = z.entries[i].name;
        size_t nl = strlen(nm);
        const char *slash = strchr(nm, '/');
        if ((nl == 8 && strcmp(nm, "data.pkl") == 0) ||
            (nl > 9 && strcmp(nm + nl - 9, "/data.pkl") == 0 && slash == nm + nl - 9))
            pkl = &z.entries[i];
    }
    if (!pkl) {
        as_zip_close(&z);
        return as_error_set(err, AS_ERR_FORMAT, "%s: zip archive without data.pkl (not a torch.save file)", name);
    }
    char prefix[300];
    size_t plen = strlen(pkl->name) - 8;
    if (plen >= sizeof prefix) {
        as_zip_close(&z);
        return as_error_set(err, AS_ERR_FORMAT, "%s: archive name too long", name);
    }
    memcpy(prefix, pkl->name, plen);
    prefix[plen] = '\0';
    char bo_name[320];
    snprintf(bo_name, sizeof bo_name, "%sbyteorder", prefix);
    const AsZipEntry *bo = as_zip_find(&z, bo_name);
    if (bo) {
        const uint8_t *d;
        uint8_t *own;
        size_t dl;
        rc = as_zip_get_prefix(&z, bo, 3, &d, &own, &dl, err);
        if (rc) {
            as_zip_close(&z);
            return rc;
        }
        bool big = dl >= 3 && memcmp(d, "big", 3) == 0;
        free(own);
        if (big) {
            as_zip_close(&z);
            return as_error_set(err, AS_ERR_UNSUPPORTED, "%s: big-endian checkpoint not supported", name);
        }
    }
    const uint8_t *pd;
    uint8_t *pown;
    size_t pl;
    /* a stored pickle is part of the file; a deflated one may not inflate to
     * much more (the reader's memory budget scales with the pickle's size) */
    if (pkl->size > (uint64_t)len + ((uint64_t)4 << 20)) {
        rc = as_error_set(err, AS_ERR_FORMAT, "%s: entry '%s' inflates to %llu bytes, implausibly many for a "
                          "file of %zu bytes", name, pkl->name, (unsigned long long)pkl->size, len);
        as_zip_close(&z);
        return rc;
    }
    rc = as_zip_get(&z, pkl, &pd, &pown, &pl, err);
    if (rc) {
        as_zip_close(&z);
        return rc;
    }
    char pname[400];
    snprintf(pname, sizeof pname, "%s: %s", name, pkl->name);
    AsPValue *root = NULL;
    rc = as_pickle_read(pd, pl, pname, &root, err);
    free(pown);
    if (rc) {
        as_zip_close(&z);
        return rc;
    }
    Resolver r = { &z, prefix, name, flags, err, (int64_t)len * 4 + ((int64_t)1 << 24) };
    rc = resolve_all(&r, root, "", 0);
    as_zip_close(&z);
    if (rc) {
        as_pv_free(root);
        return rc;
    }
    out->root = root;
    return AS_OK;
}

int as_pth_read(const char *path, AsPth *out, unsigned flags, AsError *err)
{
    memset(out, 0, sizeof *out);
    uint8_t *base;
    size_t len;
    int rc = as_file_map(path, &base, &len, err);
    if (rc)
        return rc;
    rc = as_pth_read_mem(base, len, path, out, flags, err);
    if (rc || !(flags & AS_PTH_BORROW)) {
        as_file_unmap(base, len);
        return rc;
    }
    out->map = base;
    out->map_len = len;
    return AS_OK;
}

void as_pth_free(AsPth *p)
{
    if (!p)
        return;
    as_pv_free(p->root);
    as_file_unmap(p->map, p->map_len);
    memset(p, 0, sizeof *p);
}

/* ---- writing ---- */

/* The archive's entries into w (in memory or streaming). */
static int pth_build(const char *archive_name, const AsPValue *root, AsZipWriter *w, AsError *err)
{
    if (!archive_name || !archive_name[0] || strchr(archive_name, '/') || strlen(archive_name) > 200)
        return as_error_set(err, AS_ERR_ARG, "pth writer: bad archive name");
    uint8_t *pkl;
    size_t pkl_len;
    const AsPTensor **tensors;
    size_t nt;
    int rc = as_pickle_write(root, &pkl, &pkl_len, &tensors, &nt, err);
    if (rc)
        return rc;
    char name[300];
    snprintf(name, sizeof name, "%s/data.pkl", archive_name);
    rc = as_zipw_add(w, name, pkl, pkl_len, 64, err);
    free(pkl);
    for (size_t i = 0; !rc && i < nt; i++) {
        const AsPTensor *t = tensors[i];
        snprintf(name, sizeof name, "%s/data/%zu", archive_name, i);
        const void *d = t->f32 ? (const void *)t->f32 : (const void *)t->i64;
        size_t bytes = (size_t)t->numel * (t->f32 ? 4 : 8);
        rc = as_zipw_add(w, name, d, bytes, 64, err);
    }
    free(tensors);
    if (!rc) {
        snprintf(name, sizeof name, "%s/version", archive_name);
        rc = as_zipw_add(w, name, "3\n", 2, 64, err);
    }
    return rc;
}

int as_pth_write_mem(const char *archive_name, const AsPValue *root, uint8_t **out, size_t *out_len,
                     AsError *err)
{
    *out = NULL;
    *out_len = 0;
    AsZipWriter w;
    as_zipw_init(&w);
    int rc = pth_build(archive_name, root, &w, err);
    if (!rc)
        rc = as_zipw_finish(&w, out, out_len, err);
    as_zipw_free(&w);
    return rc;
}

int as_pth_write(const char *path, const char *archive_name, const AsPValue *root, AsError *err)
{
    char derived[256];
    if (!archive_name) {
        const char *b = strrchr(path, '/');
        b = b ? b + 1 : path;
        snprintf(derived, sizeof derived, "%s", b);
        char *dot = strrchr(derived, '.');
        if (dot && dot != derived)
            *dot = '\0';
        for (char *c = derived; *c; c++)
            if (*c == '/' || *c == '\\')
                *c = '_';
        if (!derived[0])
            snprintf(derived, sizeof derived, "archive");
        archive_name = derived;
    }
    /* streamed into the temporary: the tensors are written from where they
     * are, with no copy of the whole archive in memory */
    AsAtomicFile a;
    int rc = as_atomic_begin(&a, path, err);
    if (rc)
        return rc;
    AsZipWriter w;
    as_zipw_init_stream(&w, a.f);
    rc = pth_build(archive_name, root, &w, err);
    uint8_t *none = NULL;
    size_t len = 0;
    if (!rc)
        rc = as_zipw_finish(&w, &none, &len, err);
    as_zipw_free(&w);
    if (rc) {
        as_atomic_abort(&a);
        return as_error_prefix(err, "%s: ", path);
    }
    return as_atomic_commit(&a, err);
}
