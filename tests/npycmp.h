/* npycmp: compare a .npy array written by alignseg with a reference .npy. */
#ifndef ALIGNSEG_NPYCMP_H
#define ALIGNSEG_NPYCMP_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "npy.h"

/* max |a-b| of two arrays of the same dtype and shape, compared as float
 * (NaN counts as infinitely wrong); -1 on a shape/dtype mismatch or a read
 * error. ndiff (may be NULL) receives the number of entries that differ. */
static inline double npy_max_abs(const char *got_path, const char *ref_path, long *ndiff)
{
    AsNpy g, r;
    AsError e;
    if (ndiff)
        *ndiff = 0;
    if (as_npy_read(got_path, &g, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    if (as_npy_read(ref_path, &r, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        as_npy_free(&g);
        return -1;
    }
    double m = -1;
    if (g.ndim == r.ndim && g.numel == r.numel &&
        !memcmp(g.shape, r.shape, sizeof(int64_t) * (size_t)g.ndim) && g.dtype == r.dtype &&
        as_npy_to_f32(&g, &e) == 0 && as_npy_to_f32(&r, &e) == 0) {
        m = 0;
        for (int64_t i = 0; i < g.numel; i++) {
            double d = fabs((double)((float *)g.data)[i] - ((float *)r.data)[i]);
            if (d != 0 && ndiff)
                (*ndiff)++;
            if (!(d <= m))
                m = isnan(d) ? INFINITY : d;
        }
    } else {
        fprintf(stderr, "%s: dtype/shape differ from %s\n", got_path, ref_path);
    }
    as_npy_free(&g);
    as_npy_free(&r);
    return m;
}

#endif
