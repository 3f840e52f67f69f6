/* resize: as_image_resize, PIL's Image.resize(size, BILINEAR) reproduced:
 * antialiased triangle filter, 22-bit fixed-point weights, horizontal pass
 * (rounded to 8 bits) then vertical pass. */
#include "image.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* PIL keeps 8-bit resampling weights in fixed point with 32 - 8 - 2 bits. */
#define FIX_BITS 22

typedef struct {
    int ksize;      /* weights per output sample */
    int *first;     /* first input index used by output i */
    int *count;     /* number of inputs used by output i */
    int32_t *k;     /* out_size * ksize fixed-point weights */
} Coeffs;

static void coeffs_free(Coeffs *c)
{
    free(c->first);
    free(c->count);
    free(c->k);
}

static double triangle(double x)
{
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Weights mapping in_size samples to out_size: when shrinking, the filter is
 * stretched by the scale factor (antialiasing); each output's window is
 * centred on (i + 0.5) * scale, weights normalised to sum 1 then rounded to
 * fixed point (half away from zero), in double precision as PIL does. */
static int coeffs_make(int in_size, int out_size, Coeffs *c)
{
    memset(c, 0, sizeof *c);
    const double scale = (double)in_size / (double)out_size;
    const double fscale = scale < 1.0 ? 1.0 : scale;
    const double support = 1.0 * fscale; /* bilinear support is 1 */
    const double ss = 1.0 / fscale;
    const int ksize = (int)ceil(support) * 2 + 1;
    c->ksize = ksize;
    c->first = malloc((size_t)out_size * sizeof *c->first);
    c->count = malloc((size_t)out_size * sizeof *c->count);
    c->k = calloc((size_t)out_size * (size_t)ksize, sizeof *c->k);
    double *w = malloc((size_t)ksize * sizeof *w);
    if (!c->first || !c->count || !c->k || !w) {
        free(w);
        coeffs_free(c);
        return -1;
    }
    for (int i = 0; i < out_size; i++) {
        const double center = ((double)i + 0.5) * scale;
        int lo = (int)(center - support + 0.5);
        int hi = (int)(center + support + 0.5);
        if (lo < 0)
            lo = 0;
        if (hi > in_size)
            hi = in_size;
        int n = hi - lo;
        if (n > ksize)
            n = ksize;
        if (n < 0)
            n = 0;
        double sum = 0.0;
        for (int j = 0; j < n; j++) {
            w[j] = triangle(((double)(j + lo) - center + 0.5) * ss);
            sum += w[j];
        }
        int32_t *k = c->k + (size_t)i * (size_t)ksize;
        for (int j = 0; j < n; j++) {
            double v = sum != 0.0 ? w[j] / sum : w[j];
            v *= (double)(1 << FIX_BITS);
            k[j] = (int32_t)(v < 0 ? v - 0.5 : v + 0.5);
        }
        c->first[i] = lo;
        c->count[i] = n;
    }
    free(w);
    return 0;
}

/* Sums fit in 32 bits: the weights are >= 0 (triangle filter) and sum to
 * 2^22 give or take half a unit per tap, so a sum is at most about
 * 255 * 2^22 + 2^21 < 2^31 (PIL also sums 8-bit images in int). */
static inline uint8_t fix_to_u8(int32_t acc)
{
    int32_t v = acc >> FIX_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Rows [y0, y1) of src (width sw) -> dst rows 0.., width dw. */
static void pass_horizontal(const uint8_t *src, int sw, int y0, int y1, uint8_t *dst, int dw,
                            const Coeffs *c)
{
    for (int y = y0; y < y1; y++) {
        const uint8_t *s = src + (size_t)y * (size_t)sw * 3;
        uint8_t *d = dst + (size_t)(y - y0) * (size_t)dw * 3;
        for (int x = 0; x < dw; x++) {
            const int32_t *k = c->k + (size_t)x * (size_t)c->ksize;
            const uint8_t *p = s + (size_t)c->first[x] * 3;
            int32_t a0 = 1 << (FIX_BITS - 1), a1 = a0, a2 = a0;
            for (int j = 0; j < c->count[x]; j++) {
                a0 += (int32_t)p[3 * j] * k[j];
                a1 += (int32_t)p[3 * j + 1] * k[j];
                a2 += (int32_t)p[3 * j + 2] * k[j];
            }
            d[3 * x] = fix_to_u8(a0);
            d[3 * x + 1] = fix_to_u8(a1);
            d[3 * x + 2] = fix_to_u8(a2);
        }
    }
}

/* src rows are numbered from row0 (src holds rows row0..); width w. One
 * output row at a time, input row by input row over a row of sums (loops the
 * compiler vectorises; the same sums in the same order as per sample). */
#define VROW 1024 /* sums per chunk of a row */
static void pass_vertical(const uint8_t *src, int row0, int w, uint8_t *dst, int dh, const Coeffs *c)
{
    const size_t stride = (size_t)w * 3;
    int32_t acc[VROW];
    for (int y = 0; y < dh; y++) {
        const int32_t *k = c->k + (size_t)y * (size_t)c->ksize;
        const uint8_t *s = src + (size_t)(c->first[y] - row0) * stride;
        uint8_t *d = dst + (size_t)y * stride;
        for (size_t x0 = 0; x0 < stride; x0 += VROW) {
            const size_t nx = stride - x0 < VROW ? stride - x0 : VROW;
            for (size_t x = 0; x < nx; x++)
                acc[x] = 1 << (FIX_BITS - 1);
            for (int j = 0; j < c->count[y]; j++) {
                const uint8_t *sr = s + (size_t)j * stride + x0;
                const int32_t kj = k[j];
                for (size_t x = 0; x < nx; x++)
                    acc[x] += (int32_t)sr[x] * kj;
            }
            for (size_t x = 0; x < nx; x++)
                d[x0 + x] = fix_to_u8(acc[x]);
        }
    }
}

int as_image_resize(const AsImage *src, int out_w, int out_h, AsImage *dst, AsError *err)
{
    if (!src || !src->rgb || src->w <= 0 || src->h <= 0)
        return as_error_set(err, AS_ERR_ARG, "resize: empty source image");
    if (out_w <= 0 || out_h <= 0 || out_w > AS_IMAGE_MAX_SIDE || out_h > AS_IMAGE_MAX_SIDE ||
        (long long)out_w * out_h > AS_IMAGE_MAX_PIXELS)
        return as_error_set(err, AS_ERR_ARG, "resize: bad output size %dx%d", out_w, out_h);
    const int sw = src->w, sh = src->h;
    uint8_t *out = malloc((size_t)out_w * (size_t)out_h * 3);
    if (!out)
        return as_error_set(err, AS_ERR_NOMEM, "resize: out of memory for %dx%d", out_w, out_h);
    const int need_h = out_w != sw, need_v = out_h != sh;
    Coeffs ch = {0}, cv = {0};
    uint8_t *tmp = NULL;
    int st = 0;
    if ((need_h && coeffs_make(sw, out_w, &ch)) || (need_v && coeffs_make(sh, out_h, &cv))) {
        st = as_error_set(err, AS_ERR_NOMEM, "resize: out of memory for filter weights");
        goto done;
    }
    if (need_h && need_v) {
        /* Only the rows the vertical pass reads go through the horizontal one. */
        const int r0 = cv.first[0];
        const int r1 = cv.first[out_h - 1] + cv.count[out_h - 1];
        tmp = malloc((size_t)out_w * (size_t)(r1 - r0 > 0 ? r1 - r0 : 1) * 3);
        if (!tmp) {
            st = as_error_set(err, AS_ERR_NOMEM, "resize: out of memory for %dx%d", out_w, r1 - r0);
            goto done;
        }
        pass_horizontal(src->rgb, sw, r0, r1, tmp, out_w, &ch);
        pass_vertical(tmp, r0, out_w, out, out_h, &cv);
    } else if (need_h) {
        pass_horizontal(src->rgb, sw, 0, sh, out, out_w, &ch);
    } else if (need_v) {
        pass_vertical(src->rgb, 0, sw, out, out_h, &cv);
    } else {
        memcpy(out, src->rgb, (size_t)sw * (size_t)sh * 3);
    }
done:
    coeffs_free(&ch);
    coeffs_free(&cv);
    free(tmp);
    if (st) {
        free(out);
        return st;
    }
    if (dst == src)
        free(dst->rgb);
    dst->w = out_w;
    dst->h = out_h;
    dst->rgb = out;
    return 0;
}
