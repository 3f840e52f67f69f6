/* checkpoint: see checkpoint.h */
#include "checkpoint.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pth.h"
#include "safetensors.h"
#include "zip.h"

static bool has_tensor_values(const AsPValue *d)
{
    if (!d || d->kind != AS_PV_DICT)
        return false;
    for (size_t i = 0; i < d->count; i++)
        if (d->items[i]->kind == AS_PV_TENSOR && d->keys[i]->kind == AS_PV_STR)
            return true;
    return false;
}

/* "module.backbone.blocks.0..." -> "blocks.0..." */
static const char *strip_prefixes(const char *k)
{
    if (strncmp(k, "module.", 7) == 0)
        k += 7;
    if (strncmp(k, "backbone.", 9) == 0)
        k += 9;
    else if (strncmp(k, "model.", 6) == 0)
        k += 6;
    return k;
}

static int load_pth(const char *path, uint8_t *base, size_t len, AsTensorMap *tmp, bool *uses_map,
                    AsError *err)
{
    AsPth p;
    int rc = as_pth_read_mem(base, len, path, &p, AS_PTH_BORROW, err);
    if (rc)
        return rc;
    static const char *const nests[] = { "state_dict", "model", "teacher", "student" };
    const AsPValue *sd = NULL;
    const char *where = NULL;
    if (has_tensor_values(p.root)) {
        sd = p.root;
    } else {
        for (size_t i = 0; i < sizeof nests / sizeof nests[0] && !sd; i++) {
            const AsPValue *c = as_pv_get(p.root, nests[i]);
            if (has_tensor_values(c)) {
                sd = c;
                where = nests[i];
            }
        }
    }
    if (!sd) {
        as_pth_free(&p);
        return as_error_set(err, AS_ERR_FORMAT, "%s: no tensors found (looked at the top level and under "
                            "'state_dict', 'model', 'teacher' and 'student')", path);
    }
    if (sd->count > AS_MAX_TENSORS) {
        as_pth_free(&p);
        return as_error_set(err, AS_ERR_FORMAT, "%s: state dict with more than %d entries", path, AS_MAX_TENSORS);
    }
    size_t nfloat = 0;
    for (size_t i = 0; i < sd->count; i++) {
        const AsPValue *k = sd->keys[i], *v = sd->items[i];
        if (k->kind != AS_PV_STR || v->kind != AS_PV_TENSOR || !v->t->f32)
            continue; /* plain values and integer tensors are skipped */
        AsPTensor *t = v->t;
        const char *name = strip_prefixes(k->s);
        rc = as_tmap_add(tmp, name, t->ndim, t->shape, t->f32, t->borrowed, err);
        if (t->borrowed)
            *uses_map = true;
        t->f32 = NULL; /* the map owns (or has freed) it now */
        t->borrowed = false;
        if (rc) {
            as_error_prefix(err, "%s%s%s: key '%s': ", path, where ? ": " : "", where ? where : "", k->s);
            as_pth_free(&p);
            return rc;
        }
        nfloat++;
    }
    as_pth_free(&p);
    if (nfloat == 0)
        return as_error_set(err, AS_ERR_FORMAT, "%s: no float tensors found%s%s", path,
                            where ? " under " : "", where ? where : "");
    return AS_OK;
}

static int load_safetensors(const char *path, uint8_t *base, size_t len, AsTensorMap *tmp, bool *uses_map,
                            AsError *err)
{
    AsTensorMap raw;
    as_tmap_init(&raw);
    int rc = as_safetensors_read_mem(base, len, path, true, &raw, err);
    if (!rc && raw.count > AS_MAX_TENSORS)
        rc = as_error_set(err, AS_ERR_FORMAT, "%s: more than %d tensors", path, AS_MAX_TENSORS);
    for (size_t i = 0; !rc && i < raw.count; i++) {
        AsTensor *t = &raw.items[i];
        rc = as_tmap_add(tmp, strip_prefixes(t->name), t->ndim, t->shape, t->data, t->borrowed, err);
        if (t->borrowed)
            *uses_map = true;
        t->data = NULL;
        t->borrowed = true;
        if (rc)
            as_error_prefix(err, "%s: key '%s': ", path, t->name);
    }
    if (!rc && raw.count == 0)
        rc = as_error_set(err, AS_ERR_FORMAT, "%s: no float tensors found", path);
    as_tmap_free(&raw);
    return rc;
}

/* Weights beyond this overflow float32 arithmetic (their squares exceed
 * FLT_MAX in a norm or a dot product); no trained network holds them. */
#define ABSURD_WEIGHT 1e20f

/* The first value of t that is NaN, infinite or absurdly large, if any. */
static bool first_bad_value(const AsTensor *t, int64_t *at)
{
    const float *d = t->data;
    for (int64_t i = 0; i < t->numel; i += 4096) {
        int64_t n = t->numel - i < 4096 ? t->numel - i : 4096;
        bool ok = true;
        for (int64_t k = 0; k < n; k++)
            ok &= fabsf(d[i + k]) <= ABSURD_WEIGHT; /* false for NaN */
        if (ok)
            continue;
        for (int64_t k = 0; k < n; k++) {
            if (!(fabsf(d[i + k]) <= ABSURD_WEIGHT)) {
                *at = i + k;
                return true;
            }
        }
    }
    return false;
}

static int check_values(const char *path, const AsTensorMap *m, AsError *err)
{
    for (size_t i = 0; i < m->count; i++) {
        const AsTensor *t = &m->items[i];
        int64_t at;
        if (t->data && first_bad_value(t, &at)) {
            float v = t->data[at];
            char what[64];
            if (isnan(v))
                snprintf(what, sizeof what, "NaN");
            else if (isinf(v))
                snprintf(what, sizeof what, "%sinfinity", v < 0 ? "-" : "");
            else
                snprintf(what, sizeof what, "the absurd value %g", (double)v);
            return as_error_set(err, AS_ERR_FORMAT, "%s: tensor '%s' holds %s at index %lld (weights must be "
                                "finite and within +-%g)", path, t->name, what, (long long)at,
                                (double)ABSURD_WEIGHT);
        }
    }
    return AS_OK;
}

int as_checkpoint_load(const char *path, AsTensorMap *out, AsError *err)
{
    if (!path || !out)
        return as_error_set(err, AS_ERR_ARG, "as_checkpoint_load: no path or map");
    uint8_t *base;
    size_t len;
    int rc = as_file_map(path, &base, &len, err);
    if (rc)
        return rc;
    AsTensorMap tmp;
    as_tmap_init(&tmp);
    bool uses_map = false;
    if (len >= 4 && memcmp(base, "PK\x03\x04", 4) == 0) {
        rc = load_pth(path, base, len, &tmp, &uses_map, err);
    } else if (as_pth_is_legacy(base, len)) {
        rc = as_pth_read_mem(base, len, path, &(AsPth){ 0 }, 0, err);
    } else if (as_safetensors_sniff(base, len)) {
        rc = load_safetensors(path, base, len, &tmp, &uses_map, err);
    } else {
        rc = as_error_set(err, AS_ERR_FORMAT, "%s: not a checkpoint (neither a PyTorch zip file nor "
                          "safetensors)", path);
    }
    if (rc) {
        as_tmap_free(&tmp);
        as_file_unmap(base, len);
        return rc;
    }
    if (uses_map) {
        rc = as_tmap_add_region(&tmp, base, len, as_file_unmap, err);
        if (rc) { /* the mapping was released: borrowed tensors are gone */
            for (size_t i = 0; i < tmp.count; i++)
                if (tmp.items[i].borrowed)
                    tmp.items[i].data = NULL;
            as_tmap_free(&tmp);
            return rc;
        }
    } else {
        as_file_unmap(base, len);
    }
    rc = check_values(path, &tmp, err);
    if (rc) {
        as_tmap_free(&tmp);
        return rc;
    }
    rc = as_tmap_take(out, &tmp, NULL, err);
    as_tmap_free(&tmp);
    if (rc)
        return as_error_prefix(err, "%s: ", path);
    return AS_OK;
}
