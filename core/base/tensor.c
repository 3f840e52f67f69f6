/* tensor: see tensor.h */
#include "tensor.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void as_tmap_init(AsTensorMap *m)
{
    memset(m, 0, sizeof *m);
}

/* FNV-1a */
static size_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)h;
}

static void index_put(AsTensorMap *m, size_t item)
{
    size_t mask = m->index_cap - 1;
    size_t h = name_hash(m->items[item].name) & mask;
    while (m->index[h])
        h = (h + 1) & mask;
    m->index[h] = item + 1;
}

/* (Re)build the index for room to hold want items at half load. */
static bool index_rebuild(AsTensorMap *m, size_t want)
{
    size_t cap = 64;
    while (cap < 2 * want)
        cap *= 2;
    size_t *ni = calloc(cap, sizeof *ni);
    if (!ni)
        return false;
    free(m->index);
    m->index = ni;
    m->index_cap = cap;
    for (size_t i = 0; i < m->count; i++)
        index_put(m, i);
    return true;
}

void as_tmap_free(AsTensorMap *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->count; i++) {
        free(m->items[i].name);
        if (!m->items[i].borrowed)
            free(m->items[i].data);
    }
    free(m->items);
    free(m->index);
    for (size_t i = 0; i < m->nregions; i++)
        if (m->regions[i].release)
            m->regions[i].release(m->regions[i].base, m->regions[i].len);
    free(m->regions);
    memset(m, 0, sizeof *m);
}

int as_tmap_add(AsTensorMap *m, const char *name, int ndim, const int64_t *shape,
                float *data, bool borrowed, AsError *err)
{
    int64_t numel = 1;
    if (ndim < 0 || ndim > AS_MAX_DIMS) {
        if (!borrowed)
            free(data);
        return as_error_set(err, AS_ERR_FORMAT, "tensor '%s': %d dimensions (at most %d)",
                            name, ndim, AS_MAX_DIMS);
    }
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] > 0 && numel > INT64_MAX / shape[i])) {
            if (!borrowed)
                free(data);
            return as_error_set(err, AS_ERR_FORMAT, "tensor '%s': invalid size %lld",
                                name, (long long)shape[i]);
        }
        numel *= shape[i];
    }
    if (as_tmap_find(m, name)) {
        if (!borrowed)
            free(data);
        return as_error_set(err, AS_ERR_FORMAT, "tensor '%s' appears twice", name);
    }
    if (2 * (m->count + 1) > m->index_cap && !index_rebuild(m, m->count + 1)) {
        if (!borrowed)
            free(data);
        return as_error_set(err, AS_ERR_NOMEM, "out of memory adding tensor '%s'", name);
    }
    if (m->count == m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 64;
        AsTensor *n = realloc(m->items, ncap * sizeof *n);
        if (!n) {
            if (!borrowed)
                free(data);
            return as_error_set(err, AS_ERR_NOMEM, "out of memory adding tensor '%s'", name);
        }
        m->items = n;
        m->cap = ncap;
    }
    AsTensor *t = &m->items[m->count];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name) {
        if (!borrowed)
            free(data);
        return as_error_set(err, AS_ERR_NOMEM, "out of memory adding tensor '%s'", name);
    }
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    t->numel = numel;
    t->data = data;
    t->borrowed = borrowed;
    m->count++;
    index_put(m, m->count - 1);
    return AS_OK;
}

int as_tmap_add_region(AsTensorMap *m, void *base, size_t len,
                       void (*release)(void *, size_t), AsError *err)
{
    if (m->nregions == m->cap_regions) {
        size_t ncap = m->cap_regions ? m->cap_regions * 2 : 4;
        AsRegion *n = realloc(m->regions, ncap * sizeof *n);
        if (!n) {
            if (release)
                release(base, len);
            return as_error_set(err, AS_ERR_NOMEM, "out of memory");
        }
        m->regions = n;
        m->cap_regions = ncap;
    }
    m->regions[m->nregions++] = (AsRegion){ base, len, release };
    return AS_OK;
}

int as_tmap_take(AsTensorMap *dst, AsTensorMap *src, bool (*keep)(const char *name),
                 AsError *err)
{
    for (size_t i = 0; i < src->nregions; i++) {
        AsRegion r = src->regions[i];
        src->regions[i].release = NULL; /* now owned by dst (or already released) */
        int rc = as_tmap_add_region(dst, r.base, r.len, r.release, err);
        if (rc) {
            /* the region is gone: drop src's tensors borrowing from any region */
            for (size_t j = 0; j < src->count; j++)
                if (src->items[j].borrowed)
                    src->items[j].data = NULL;
            return rc;
        }
    }
    for (size_t i = 0; i < src->count; i++) {
        AsTensor *t = &src->items[i];
        if ((keep && !keep(t->name)) || (t->borrowed && !t->data))
            continue; /* not wanted, or already taken */
        int rc = as_tmap_add(dst, t->name, t->ndim, t->shape, t->data, t->borrowed, err);
        t->borrowed = true; /* dst owns (or freed) the data now */
        t->data = NULL;
        if (rc)
            return rc;
    }
    return AS_OK;
}

AsTensor *as_tmap_find(const AsTensorMap *m, const char *name)
{
    if (!m->index_cap || !m->index) { /* no index (a map filled by hand) */
        for (size_t i = 0; i < m->count; i++)
            if (strcmp(m->items[i].name, name) == 0)
                return &m->items[i];
        return NULL;
    }
    size_t mask = m->index_cap - 1;
    for (size_t h = name_hash(name) & mask; m->index[h]; h = (h + 1) & mask) {
        AsTensor *t = &m->items[m->index[h] - 1];
        if (strcmp(t->name, name) == 0)
            return t;
    }
    return NULL;
}

bool as_tmap_remove(AsTensorMap *m, const char *name)
{
    for (size_t i = 0; i < m->count; i++) {
        if (strcmp(m->items[i].name, name) == 0) {
            free(m->items[i].name);
            if (!m->items[i].borrowed)
                free(m->items[i].data);
            memmove(&m->items[i], &m->items[i + 1], (m->count - i - 1) * sizeof m->items[0]);
            m->count--;
            free(m->index); /* stale: lookups are linear until the next add rebuilds it */
            m->index = NULL;
            m->index_cap = 0;
            return true;
        }
    }
    return false;
}

char *as_shape_str(int ndim, const int64_t *shape, char *buf, size_t len)
{
    size_t off = 0;
    if (len == 0)
        return buf;
    buf[0] = '\0';
    off += (size_t)snprintf(buf + off, len - off, "(");
    for (int i = 0; i < ndim && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (off < len)
        snprintf(buf + off, len - off, ")");
    return buf;
}
