/* resample: interpolation on grids in PyTorch's semantics: bicubic resizing
 * of a channels-last grid (the encoder's position embedding) and bilinear
 * source indices and weights (upsampling the segmentation). */
#ifndef ALIGNSEG_RESAMPLE_H
#define ALIGNSEG_RESAMPLE_H

/* Bicubic resampling in PyTorch's semantics (a = -0.75, align_corners=False,
 * clamped borders) of a (sh, sw, c) grid, channels last, to (dh, dw, c).
 * scale_h/scale_w are source pixels per destination pixel:
 * src = (dst + 0.5) * scale - 0.5. Rows split over the thread pool. */
void as_bicubic_resize_hwc(const float *src, int sh, int sw, int c, int dh, int dw,
                           double scale_h, double scale_w, float *dst);

/* Bilinear (align_corners=False, PyTorch semantics) source index and weights
 * for destination index i of an out-sized axis sampled from an in-sized one:
 * value = w0 * src[*i0] + w1 * src[*i1]. */
void as_bilinear_index(int i, int in, int out, int *i0, int *i1, float *w0, float *w1);

#endif
