/* resample: see resample.h */
#include "resample.h"

#include <math.h>
#include <stddef.h>

#include "pool.h"

/* Cubic convolution weights (Keys, a = -0.75) for fractional offset t in [0,1). */
static void cubic_weights(float t, float w[4])
{
    const float a = -0.75f;
    float x;
    x = t + 1.0f; /* 1 < x < 2 */
    w[0] = ((a * x - 5.0f * a) * x + 8.0f * a) * x - 4.0f * a;
    x = t; /* |x| <= 1 */
    w[1] = ((a + 2.0f) * x - (a + 3.0f)) * x * x + 1.0f;
    x = 1.0f - t;
    w[2] = ((a + 2.0f) * x - (a + 3.0f)) * x * x + 1.0f;
    x = 2.0f - t;
    w[3] = ((a * x - 5.0f * a) * x + 8.0f * a) * x - 4.0f * a;
}

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

typedef struct {
    const float *src;
    int sh, sw, c, dh, dw;
    float fsh, fsw;
    float *dst;
} BicubicJob;

/* Output rows [r0, r1): per pixel, the 4x4 clamped taps are fixed first and
 * the channel loop (contiguous, vectorisable) runs inside; every channel sums
 * in the same order as a per-channel loop would. */
static void bicubic_rows(void *ctx, int r0, int r1)
{
    const BicubicJob *j = ctx;
    const int c = j->c;
    for (int oy = r0; oy < r1; oy++) {
        const float ry = j->fsh * ((float)oy + 0.5f) - 0.5f;
        const int iy = (int)floorf(ry);
        float wy[4];
        cubic_weights(ry - (float)iy, wy);
        for (int ox = 0; ox < j->dw; ox++) {
            const float rx = j->fsw * ((float)ox + 0.5f) - 0.5f;
            const int ix = (int)floorf(rx);
            float wx[4];
            cubic_weights(rx - (float)ix, wx);
            const float *tap[4][4];
            for (int a = 0; a < 4; a++) {
                const int yy = clampi(iy - 1 + a, 0, j->sh - 1);
                for (int b = 0; b < 4; b++) {
                    const int xx = clampi(ix - 1 + b, 0, j->sw - 1);
                    tap[a][b] = j->src + ((size_t)yy * j->sw + xx) * c;
                }
            }
            float *o = j->dst + ((size_t)oy * j->dw + ox) * c;
            for (int ch = 0; ch < c; ch++) {
                float acc = 0.0f;
                for (int a = 0; a < 4; a++) {
                    float row = 0.0f;
                    for (int b = 0; b < 4; b++)
                        row += wx[b] * tap[a][b][ch];
                    acc += wy[a] * row;
                }
                o[ch] = acc;
            }
        }
    }
}

void as_bicubic_resize_hwc(const float *src, int sh, int sw, int c, int dh, int dw,
                           double scale_h, double scale_w, float *dst)
{
    BicubicJob j = { src, sh, sw, c, dh, dw, (float)scale_h, (float)scale_w, dst };
    as_parallel_rows(dh, dw * c * 16, bicubic_rows, &j);
}

void as_bilinear_index(int i, int in, int out, int *i0, int *i1, float *w0, float *w1)
{
    const float scale = (float)in / (float)out;
    float s = scale * ((float)i + 0.5f) - 0.5f;
    if (s < 0.0f)
        s = 0.0f;
    int a = (int)s;
    if (a > in - 1)
        a = in - 1;
    const int b = a + (a < in - 1 ? 1 : 0);
    const float l1 = s - (float)a;
    *i0 = a;
    *i1 = b;
    *w0 = 1.0f - l1;
    *w1 = l1;
}
