/* npy: see npy.h. Header grammar handled: the Python dict literal NumPy
 * writes, {'descr': '<f4', 'fortran_order': False, 'shape': (a, b), }. */
#include "npy.h"

#include "atomic.h"
#include "file.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPY_MAX_BYTES ((int64_t)1 << 34) /* 16 GiB: anything larger is refused */
#define AS_NPY_MAX_FILE_BYTES ((uint64_t)NPY_MAX_BYTES + 65536 + 12)

size_t as_dtype_size(AsDtype dt)
{
    switch (dt) {
    case AS_DT_F32: return 4;
    case AS_DT_F64: return 8;
    case AS_DT_I32: return 4;
    case AS_DT_I64: return 8;
    case AS_DT_U8: return 1;
    case AS_DT_BOOL: return 1;
    }
    return 0;
}

static const char *dtype_descr(AsDtype dt)
{
    switch (dt) {
    case AS_DT_F32: return "<f4";
    case AS_DT_F64: return "<f8";
    case AS_DT_I32: return "<i4";
    case AS_DT_I64: return "<i8";
    case AS_DT_U8: return "|u1";
    case AS_DT_BOOL: return "|b1";
    }
    return "?";
}

static int parse_descr(const char *d, AsDtype *dt)
{
    static const struct { const char *s; AsDtype dt; } tab[] = {
        { "<f4", AS_DT_F32 }, { "<f8", AS_DT_F64 }, { "<i4", AS_DT_I32 },
        { "<i8", AS_DT_I64 }, { "|u1", AS_DT_U8 }, { "<u1", AS_DT_U8 },
        { "|b1", AS_DT_BOOL }, { "|i1", AS_DT_U8 } /* treated as bytes */,
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (!strcmp(d, tab[i].s)) {
            *dt = tab[i].dt;
            return 0;
        }
    return -1;
}

/* Find the value text after 'key': in the header dict. */
static const char *find_key(const char *h, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(h, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    if (*p != ':')
        return NULL;
    p++;
    while (*p == ' ')
        p++;
    return p;
}

int as_npy_read_mem(const uint8_t *buf, size_t len, const char *name, AsNpy *out, AsError *err)
{
    memset(out, 0, sizeof *out);
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
        return as_error_set(err, AS_ERR_FORMAT, "%s: not a .npy file (bad magic)", name);
    int major = buf[6];
    size_t hlen, hoff;
    if (major == 1) {
        hlen = (size_t)buf[8] | ((size_t)buf[9] << 8);
        hoff = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12)
            return as_error_set(err, AS_ERR_FORMAT, "%s: truncated .npy header", name);
        hlen = (size_t)buf[8] | ((size_t)buf[9] << 8) | ((size_t)buf[10] << 16) |
               ((size_t)buf[11] << 24);
        hoff = 12;
    } else {
        return as_error_set(err, AS_ERR_UNSUPPORTED, "%s: .npy format version %d", name, major);
    }
    if (hlen > 65536 || hoff + hlen > len)
        return as_error_set(err, AS_ERR_FORMAT, "%s: .npy header length %zu exceeds file (%zu bytes)",
                            name, hlen, len);
    char *h = malloc(hlen + 1);
    if (!h)
        return as_error_set(err, AS_ERR_NOMEM, "%s: out of memory", name);
    memcpy(h, buf + hoff, hlen);
    h[hlen] = '\0';

    int rc = AS_OK;
    const char *p = find_key(h, "descr");
    char descr[16] = { 0 };
    if (!p || *p != '\'') {
        rc = as_error_set(err, AS_ERR_FORMAT, "%s: .npy header has no 'descr'", name);
        goto done;
    }
    p++;
    size_t k = 0;
    while (*p && *p != '\'' && k < sizeof descr - 1)
        descr[k++] = *p++;
    if (parse_descr(descr, &out->dtype)) {
        rc = as_error_set(err, AS_ERR_UNSUPPORTED, "%s: .npy dtype '%s' not supported", name, descr);
        goto done;
    }
    p = find_key(h, "fortran_order");
    if (!p || strncmp(p, "False", 5) != 0) {
        rc = as_error_set(err, AS_ERR_UNSUPPORTED, "%s: only C-order .npy arrays are supported", name);
        goto done;
    }
    p = find_key(h, "shape");
    if (!p || *p != '(') {
        rc = as_error_set(err, AS_ERR_FORMAT, "%s: .npy header has no 'shape'", name);
        goto done;
    }
    p++;
    int64_t numel = 1;
    out->ndim = 0;
    for (;;) {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == ')')
            break;
        if (!isdigit((unsigned char)*p)) {
            rc = as_error_set(err, AS_ERR_FORMAT, "%s: bad .npy shape", name);
            goto done;
        }
        if (out->ndim == 8) {
            rc = as_error_set(err, AS_ERR_UNSUPPORTED, "%s: .npy array has more than 8 dimensions", name);
            goto done;
        }
        errno = 0;
        char *end;
        long long v = strtoll(p, &end, 10);
        if (errno || v < 0 || v > NPY_MAX_BYTES) {
            rc = as_error_set(err, AS_ERR_FORMAT, "%s: .npy dimension out of range", name);
            goto done;
        }
        out->shape[out->ndim++] = v;
        if (v > 0 && numel > NPY_MAX_BYTES / v) {
            rc = as_error_set(err, AS_ERR_FORMAT, "%s: .npy array too large", name);
            goto done;
        }
        numel *= v;
        p = end;
    }
    size_t es = as_dtype_size(out->dtype);
    if ((int64_t)es * numel > NPY_MAX_BYTES) {
        rc = as_error_set(err, AS_ERR_FORMAT, "%s: .npy array too large", name);
        goto done;
    }
    size_t nbytes = es * (size_t)numel;
    size_t doff = hoff + hlen;
    if (len - doff < nbytes) {
        rc = as_error_set(err, AS_ERR_FORMAT, "%s: .npy data truncated: %zu bytes, shape needs %zu",
                          name, len - doff, nbytes);
        goto done;
    }
    out->numel = numel;
    out->data = malloc(nbytes ? nbytes : 1);
    if (!out->data) {
        rc = as_error_set(err, AS_ERR_NOMEM, "%s: out of memory", name);
        goto done;
    }
    memcpy(out->data, buf + doff, nbytes);
done:
    free(h);
    if (rc) {
        free(out->data);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

int as_npy_read(const char *path, AsNpy *out, AsError *err)
{
    memset(out, 0, sizeof *out);
    uint8_t *buf;
    size_t len;
    int rc = as_file_read_all(path, AS_NPY_MAX_FILE_BYTES, 1, &buf, &len, err);
    if (rc)
        return rc;
    rc = as_npy_read_mem(buf, len, path, out, err);
    free(buf);
    return rc;
}

int as_npy_to_f32(AsNpy *a, AsError *err)
{
    if (a->dtype == AS_DT_F32)
        return AS_OK;
    float *d = malloc((size_t)(a->numel ? a->numel : 1) * sizeof *d);
    if (!d)
        return as_error_set(err, AS_ERR_NOMEM, "out of memory converting array");
    for (int64_t i = 0; i < a->numel; i++) {
        switch (a->dtype) {
        case AS_DT_F64: d[i] = (float)((const double *)a->data)[i]; break;
        case AS_DT_I32: d[i] = (float)((const int32_t *)a->data)[i]; break;
        case AS_DT_I64: d[i] = (float)((const int64_t *)a->data)[i]; break;
        case AS_DT_U8:
        case AS_DT_BOOL: d[i] = (float)((const uint8_t *)a->data)[i]; break;
        case AS_DT_F32: break;
        }
    }
    free(a->data);
    a->data = d;
    a->dtype = AS_DT_F32;
    return AS_OK;
}

int as_npy_encode(const char *name, AsDtype dtype, int ndim, const int64_t *shape,
                  const void *data, uint8_t **out, size_t *outlen, AsError *err)
{
    *out = NULL;
    *outlen = 0;
    if (ndim < 0 || ndim > 8)
        return as_error_set(err, AS_ERR_ARG, "%s: %d dimensions", name, ndim);
    char h[256];
    int n = snprintf(h, sizeof h, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                     dtype_descr(dtype));
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] > 0 && numel > INT64_MAX / 16 / shape[i]))
            return as_error_set(err, AS_ERR_ARG, "%s: bad shape", name);
        n += snprintf(h + n, sizeof h - (size_t)n, "%lld%s", (long long)shape[i],
                      (ndim == 1 || i < ndim - 1) ? ", " : "");
        numel *= shape[i];
    }
    n += snprintf(h + n, sizeof h - (size_t)n, "), }");
    /* pad with spaces so that 10 + header length is a multiple of 64, end with \n */
    size_t total = 10 + (size_t)n + 1;
    size_t pad = (64 - total % 64) % 64;
    size_t hlen = (size_t)n + pad + 1;
    size_t nbytes = as_dtype_size(dtype) * (size_t)numel;
    uint8_t *b = malloc(10 + hlen + nbytes);
    if (!b)
        return as_error_set(err, AS_ERR_NOMEM, "%s: out of memory for %zu bytes", name, nbytes);
    uint8_t pre[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (uint8_t)(hlen & 0xff),
                        (uint8_t)(hlen >> 8) };
    memcpy(b, pre, 10);
    memcpy(b + 10, h, (size_t)n);
    memset(b + 10 + n, ' ', pad);
    b[10 + hlen - 1] = '\n';
    if (nbytes)
        memcpy(b + 10 + hlen, data, nbytes);
    *out = b;
    *outlen = 10 + hlen + nbytes;
    return AS_OK;
}

int as_npy_write(const char *path, AsDtype dtype, int ndim, const int64_t *shape,
                 const void *data, AsError *err)
{
    uint8_t *b;
    size_t n;
    int rc = as_npy_encode(path, dtype, ndim, shape, data, &b, &n, err);
    if (rc)
        return rc;
    rc = as_atomic_write_file(path, b, n, err);
    free(b);
    return rc;
}

void as_npy_free(AsNpy *a)
{
    if (a) {
        free(a->data);
        memset(a, 0, sizeof *a);
    }
}
