/* tensor: named float32 tensors (row-major, contiguous) and a map that owns them.
 * Checkpoint loaders fill an AsTensorMap; the model points into it. Data is
 * either malloc'd (owned by the tensor) or borrowed from a region the map
 * owns (e.g. an mmap'd checkpoint), released by as_tmap_free. */
#ifndef ALIGNSEG_TENSOR_H
#define ALIGNSEG_TENSOR_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "error.h"

#define AS_MAX_DIMS 8

typedef struct {
    char *name;
    int ndim;
    int64_t shape[AS_MAX_DIMS];
    int64_t numel;
    float *data;
    bool borrowed; /* data points into a region owned by the map */
} AsTensor;

typedef struct {
    void *base;
    size_t len;
    void (*release)(void *base, size_t len);
} AsRegion;

typedef struct {
    AsTensor *items;
    size_t count, cap;
    AsRegion *regions;
    size_t nregions, cap_regions;
    size_t *index;     /* open-addressing hash of names: item number + 1, 0 = empty */
    size_t index_cap;  /* a power of two, or 0 (no index yet) */
} AsTensorMap;

/* Far above any real model (ViT-g: ~600 tensors); checkpoint readers refuse more. */
#define AS_MAX_TENSORS 20000

void as_tmap_init(AsTensorMap *m);
void as_tmap_free(AsTensorMap *m);
/* Add a tensor; takes ownership of data (malloc'd) unless borrowed is true.
 * On failure data is freed (if owned). A duplicate name is an error. */
int as_tmap_add(AsTensorMap *m, const char *name, int ndim, const int64_t *shape,
                float *data, bool borrowed, AsError *err);
/* Register a region (e.g. mmap) to be released with the map. */
int as_tmap_add_region(AsTensorMap *m, void *base, size_t len,
                       void (*release)(void *, size_t), AsError *err);
/* Move to dst the tensors of src that keep accepts (keep NULL: all), and all
 * of src's regions (borrowed tensors may point into them). Moved tensors stay
 * in src as empty borrowed entries; free src afterwards. */
int as_tmap_take(AsTensorMap *dst, AsTensorMap *src, bool (*keep)(const char *name),
                 AsError *err);
AsTensor *as_tmap_find(const AsTensorMap *m, const char *name);
/* Remove and free a tensor by name; returns true if it existed. */
bool as_tmap_remove(AsTensorMap *m, const char *name);
/* Format a shape as "(384, 3, 16, 16)" into buf. Returns buf. */
char *as_shape_str(int ndim, const int64_t *shape, char *buf, size_t len);

#endif
