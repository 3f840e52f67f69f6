/* kmeans: deterministic spherical k-means, used to make prototypes from an
 * image's own patch tokens when the model has no decoder (backbone-only
 * mode). Farthest-point initialisation (no random numbers), cosine
 * assignment, centres = normalised member sums, fixed iteration cap. */
#ifndef ALIGNSEG_KMEANS_H
#define ALIGNSEG_KMEANS_H

#include <stdint.h>

#include "error.h"

#define AS_KMEANS_MAX_ITER 100

/* Cluster the n rows of x (n, d) (need not be normalised; they are
 * L2-normalised internally) into k = min(k, n) groups. centres (k, d) receive
 * unit-length centres; labels (n) (may be NULL) the cluster of each row.
 * *k_out (may be NULL) the number of clusters made. */
int as_spherical_kmeans(const float *x, int n, int d, int k, int max_iter, float *centres,
                        int32_t *labels, int *k_out, AsError *err);

#endif
