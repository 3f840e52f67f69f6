/* fgmask: the steps of the foreground mask (METHOD.md 4.6) on a patch
 * grid: Gaussian blur, cumulative-mass threshold, removal of small
 * connected components. as_foreground_mask (segment.h) chains them. */
#ifndef ALIGNSEG_FGMASK_H
#define ALIGNSEG_FGMASK_H

#include <stdint.h>

#include "error.h"

/* Normalised 1-D Gaussian of `taps` (odd) values with standard deviation sigma,
 * sampled at integer offsets -taps/2 .. taps/2. */
void as_gaussian_kernel(int taps, float sigma, float *k);
/* Separable 2-D convolution of an h x w map with the same 1-D kernel along
 * rows and columns, reflect padding (mirror without repeating the edge). */
int as_blur_separable(const float *in, int h, int w, const float *k, int taps, float *out,
                      AsError *err);
/* Cumulative-mass threshold: sort the n values ascending, divide by their sum,
 * cumulative sum; mask[i] = 1 where the cumulative mass up to and including
 * value i exceeds 1 - keep. Ties keep index order. */
int as_mass_threshold(const float *v, int n, float keep, uint8_t *mask, AsError *err);
/* Remove 8-connected components of mask (h x w, 0/1) with at most max_size
 * cells. Returns the number of components removed, or -1 if out of memory. */
int as_drop_small_components(uint8_t *mask, int h, int w, int max_size);

#endif
