/* safetensors: see safetensors.h */
#include "safetensors.h"

#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "pth.h"
#include "zip.h"

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

bool as_safetensors_sniff(const uint8_t *buf, size_t len)
{
    if (len < 10)
        return false;
    uint64_t n = rd64(buf);
    return n >= 2 && n <= len - 8 && buf[8] == '{';
}

int as_safetensors_read_mem(const uint8_t *buf, size_t len, const char *name, bool borrow,
                            AsTensorMap *out, AsError *err)
{
    if (!name)
        name = "safetensors";
    if (len < 8)
        return as_error_set(err, AS_ERR_FORMAT, "%s: too short for a safetensors file (%zu bytes)", name, len);
    uint64_t hl = rd64(buf);
    if (hl > len - 8 || hl > (100u << 20))
        return as_error_set(err, AS_ERR_FORMAT, "%s: safetensors header of %llu bytes does not fit the file "
                            "(%zu bytes)", name, (unsigned long long)hl, len);
    AsJson *h;
    int rc = as_json_parse((const char *)buf + 8, (size_t)hl, name, &h, err);
    if (rc)
        return rc; /* "NAME: invalid JSON at byte N: ..." */
    if (h->type != AS_JSON_OBJECT) {
        as_json_free(h);
        return as_error_set(err, AS_ERR_FORMAT, "%s: safetensors header is not a JSON object", name);
    }
    if (h->count > AS_MAX_TENSORS + 1) { /* + __metadata__ */
        size_t n = h->count;
        as_json_free(h);
        return as_error_set(err, AS_ERR_FORMAT, "%s: safetensors header lists %zu tensors (limit %d)", name, n,
                            AS_MAX_TENSORS);
    }
    const uint8_t *data = buf + 8 + hl;
    uint64_t dlen = len - 8 - hl;
    for (size_t i = 0; i < h->count; i++) {
        const char *tn = h->keys[i];
        const AsJson *e = h->items[i];
        if (strcmp(tn, "__metadata__") == 0)
            continue;
        const char *dts = as_json_str(as_json_get(e, "dtype"), NULL);
        const AsJson *shape = as_json_get(e, "shape");
        const AsJson *offs = as_json_get(e, "data_offsets");
        if (!dts || !shape || shape->type != AS_JSON_ARRAY || !offs || offs->type != AS_JSON_ARRAY ||
            offs->count != 2) {
            rc = as_error_set(err, AS_ERR_FORMAT, "%s: tensor '%.200s': header entry lacks dtype, shape or "
                              "data_offsets", name, tn);
            break;
        }
        AsPDtype dt;
        if (strcmp(dts, "F32") == 0)
            dt = AS_PD_F32;
        else if (strcmp(dts, "F16") == 0)
            dt = AS_PD_F16;
        else if (strcmp(dts, "BF16") == 0)
            dt = AS_PD_BF16;
        else if (strcmp(dts, "F64") == 0)
            dt = AS_PD_F64;
        else
            continue; /* integer / bool / 8-bit float tensors are skipped */
        if (shape->count > AS_MAX_DIMS) {
            rc = as_error_set(err, AS_ERR_UNSUPPORTED, "%s: tensor '%.200s' has %zu dimensions (at most %d)",
                              name, tn, shape->count, AS_MAX_DIMS);
            break;
        }
        int64_t dims[AS_MAX_DIMS];
        int64_t numel = 1;
        bool bad = false;
        for (size_t d = 0; d < shape->count; d++) {
            const AsJson *x = shape->items[d];
            if (x->type != AS_JSON_NUMBER || !x->is_int || x->i < 0 ||
                (x->i > 0 && numel > ((int64_t)1 << 40) / x->i)) {
                bad = true;
                break;
            }
            dims[d] = x->i;
            numel *= x->i;
        }
        const AsJson *b0 = offs->items[0], *b1 = offs->items[1];
        if (bad || b0->type != AS_JSON_NUMBER || !b0->is_int || b1->type != AS_JSON_NUMBER || !b1->is_int) {
            rc = as_error_set(err, AS_ERR_FORMAT, "%s: tensor '%.200s': bad shape or data_offsets", name, tn);
            break;
        }
        size_t es = as_pdtype_size(dt);
        uint64_t need = (uint64_t)numel * es;
        if (b0->i < 0 || b1->i < b0->i || (uint64_t)b1->i > dlen || (uint64_t)(b1->i - b0->i) != need) {
            char sh[160];
            as_shape_str((int)shape->count, dims, sh, sizeof sh);
            rc = as_error_set(err, AS_ERR_FORMAT, "%s: tensor '%.200s': data_offsets [%lld, %lld] do not hold "
                              "%s %s (%llu bytes) inside the %llu data bytes", name, tn, (long long)b0->i,
                              (long long)b1->i, as_pdtype_name(dt), sh, (unsigned long long)need,
                              (unsigned long long)dlen);
            break;
        }
        const uint8_t *src = data + b0->i;
        float *f;
        bool borrowed = false;
        if (borrow && dt == AS_PD_F32 && ((uintptr_t)src & 3u) == 0) {
            f = (float *)(uintptr_t)src;
            borrowed = true;
        } else {
            f = malloc(numel ? (size_t)numel * 4 : 4);
            if (!f) {
                rc = as_error_set(err, AS_ERR_NOMEM, "%s: out of memory for tensor '%.200s'", name, tn);
                break;
            }
            as_pdtype_to_f32(dt, src, (size_t)numel, f);
        }
        rc = as_tmap_add(out, tn, (int)shape->count, dims, f, borrowed, err);
        if (rc) {
            as_error_prefix(err, "%s: ", name);
            break;
        }
    }
    as_json_free(h);
    return rc;
}

int as_safetensors_read(const char *path, AsTensorMap *out, AsError *err)
{
    uint8_t *base;
    size_t len;
    int rc = as_file_map(path, &base, &len, err);
    if (rc)
        return rc;
    size_t before = out->count;
    rc = as_safetensors_read_mem(base, len, path, true, out, err);
    if (rc) {
        /* drop what was added, then the mapping */
        while (out->count > before)
            as_tmap_remove(out, out->items[out->count - 1].name);
        as_file_unmap(base, len);
        return rc;
    }
    return as_tmap_add_region(out, base, len, as_file_unmap, err);
}
