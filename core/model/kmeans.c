/* kmeans: see kmeans.h */
#include "kmeans.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "activations.h"
#include "linear.h"

int as_spherical_kmeans(const float *x, int n, int d, int k, int max_iter, float *centres,
                        int32_t *labels, int *k_out, AsError *err)
{
    if (n <= 0 || d <= 0 || k <= 0)
        return as_error_set(err, AS_ERR_ARG, "k-means: %d points of width %d into %d clusters",
                            n, d, k);
    if (k > n)
        k = n;
    const size_t nd = (size_t)n * d;
    float *xn = malloc(nd * sizeof *xn);
    float *sim = malloc((size_t)n * k * sizeof *sim);
    float *best = malloc((size_t)n * sizeof *best);
    int32_t *lab = malloc((size_t)n * sizeof *lab);
    double *acc = malloc((size_t)k * d * sizeof *acc);
    int *count = malloc((size_t)k * sizeof *count);
    float *mean = malloc((size_t)d * sizeof *mean);
    int rc = 0;
    if (!xn || !sim || !best || !lab || !acc || !count || !mean) {
        rc = as_error_set(err, AS_ERR_NOMEM, "k-means: out of memory for %d points", n);
        goto fail;
    }
    as_l2norm_rows(x, n, d, 1e-10f, xn);

    /* Farthest-point initialisation: first the point closest to the mean
     * direction, then repeatedly the point least similar to every centre so far. */
    for (int j = 0; j < d; j++) {
        double s = 0.0;
        for (int i = 0; i < n; i++)
            s += xn[(size_t)i * d + j];
        mean[j] = (float)s;
    }
    int pick = 0;
    float pv = -INFINITY;
    for (int i = 0; i < n; i++) {
        const float v = as_sdot(d, xn + (size_t)i * d, mean);
        if (v > pv) {
            pv = v;
            pick = i;
        }
    }
    for (int i = 0; i < n; i++)
        best[i] = -INFINITY; /* max similarity to the chosen centres */
    for (int c = 0; c < k; c++) {
        memcpy(centres + (size_t)c * d, xn + (size_t)pick * d, (size_t)d * sizeof *centres);
        float lo = INFINITY;
        int next = 0;
        for (int i = 0; i < n; i++) {
            const float v = as_sdot(d, xn + (size_t)i * d, centres + (size_t)c * d);
            if (v > best[i])
                best[i] = v;
            if (best[i] < lo) {
                lo = best[i];
                next = i;
            }
        }
        pick = next;
    }

    for (int i = 0; i < n; i++)
        lab[i] = -1;
    for (int it = 0; it < max_iter; it++) {
        as_sgemm(false, true, n, k, d, 1.0f, xn, d, centres, d, 0.0f, sim, k);
        int changed = 0;
        for (int i = 0; i < n; i++) {
            const float *r = sim + (size_t)i * k;
            int a = 0;
            for (int c = 1; c < k; c++)
                if (r[c] > r[a])
                    a = c;
            best[i] = r[a];
            if (lab[i] != a) {
                lab[i] = a;
                changed++;
            }
        }
        if (!changed)
            break;
        memset(acc, 0, (size_t)k * d * sizeof *acc);
        memset(count, 0, (size_t)k * sizeof *count);
        for (int i = 0; i < n; i++) {
            double *a = acc + (size_t)lab[i] * d;
            const float *xi = xn + (size_t)i * d;
            for (int j = 0; j < d; j++)
                a[j] += xi[j];
            count[lab[i]]++;
        }
        for (int c = 0; c < k; c++) {
            float *ce = centres + (size_t)c * d;
            if (count[c] == 0) {
                /* empty cluster: restart it at the worst-fitting point */
                int w = 0;
                for (int i = 1; i < n; i++)
                    if (best[i] < best[w])
                        w = i;
                memcpy(ce, xn + (size_t)w * d, (size_t)d * sizeof *ce);
                best[w] = INFINITY;
                continue;
            }
            const double *a = acc + (size_t)c * d;
            double s = 0.0;
            for (int j = 0; j < d; j++)
                s += a[j] * a[j];
            const double inv = s > 0.0 ? 1.0 / sqrt(s) : 0.0;
            for (int j = 0; j < d; j++)
                ce[j] = (float)(a[j] * inv);
        }
    }
    if (labels)
        memcpy(labels, lab, (size_t)n * sizeof *labels);
    if (k_out)
        *k_out = k;
fail:
    free(xn);
    free(sim);
    free(best);
    free(lab);
    free(acc);
    free(count);
    free(mean);
    return rc;
}
