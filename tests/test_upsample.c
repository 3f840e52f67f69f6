/* test_upsample: as_upsample_argmax (separable bilinear + argmax) against a
 * naive direct bilinear-then-argmax on random maps: non-square grids and
 * outputs, up- and down-sampling, Q = 1..20, 1 and 2 threads. */
#include <stdint.h>

#include "check.h"
#include "pool.h"
#include "resample.h"
#include "segment.h"

static uint32_t rng_state = 12345u;

static float rnd(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)(rng_state >> 8) / 16777216.0f;
}

/* PyTorch bilinear, align_corners=False, derived here from its definition:
 * source = (dst + 0.5) * in / out - 0.5, clamped at 0; right neighbour
 * clamped to the last cell. */
static void src_index(int i, int in, int out, int *a, int *b, double *l1)
{
    double s = ((double)i + 0.5) * (double)in / (double)out - 0.5;
    if (s < 0.0)
        s = 0.0;
    int f = (int)s;
    if (f > in - 1)
        f = in - 1;
    *a = f;
    *b = f < in - 1 ? f + 1 : f;
    *l1 = s - f;
}

/* Direct four-tap interpolation of every class at every pixel (in double),
 * then argmax. Returns the number of pixels where `got` disagrees with the
 * naive argmax by more than a rounding-level margin. */
static long naive_mismatches(const float *a, int gh, int gw, int q, int oh, int ow,
                             const int32_t *got)
{
    long bad = 0;
    double *v = malloc((size_t)q * sizeof *v);
    for (int y = 0; y < oh; y++) {
        int y0, y1;
        double ly;
        src_index(y, gh, oh, &y0, &y1, &ly);
        for (int x = 0; x < ow; x++) {
            int x0, x1;
            double lx;
            src_index(x, gw, ow, &x0, &x1, &lx);
            int best = 0;
            for (int c = 0; c < q; c++) {
                const double a00 = a[((size_t)y0 * gw + x0) * q + c],
                             a01 = a[((size_t)y0 * gw + x1) * q + c],
                             a10 = a[((size_t)y1 * gw + x0) * q + c],
                             a11 = a[((size_t)y1 * gw + x1) * q + c];
                v[c] = (1 - ly) * ((1 - lx) * a00 + lx * a01) + ly * ((1 - lx) * a10 + lx * a11);
                if (v[c] > v[best])
                    best = c;
            }
            const int32_t g = got[(size_t)y * ow + x];
            if (g < 0 || g >= q || v[g] < v[best] - 1e-5)
                bad++;
        }
    }
    free(v);
    return bad;
}

/* The float formula of the direct (pre-separable) implementation, for the
 * bit-identity check. */
static void direct_float(const float *a, int gh, int gw, int q, int oh, int ow, int32_t *lab)
{
    for (int y = 0; y < oh; y++) {
        int y0, y1;
        float wy0, wy1;
        as_bilinear_index(y, gh, oh, &y0, &y1, &wy0, &wy1);
        for (int x = 0; x < ow; x++) {
            int x0, x1;
            float wx0, wx1;
            as_bilinear_index(x, gw, ow, &x0, &x1, &wx0, &wx1);
            int best = 0;
            float bv = -INFINITY;
            for (int c = 0; c < q; c++) {
                const float v = wy0 * (wx0 * a[((size_t)y0 * gw + x0) * q + c] +
                                       wx1 * a[((size_t)y0 * gw + x1) * q + c]) +
                                wy1 * (wx0 * a[((size_t)y1 * gw + x0) * q + c] +
                                       wx1 * a[((size_t)y1 * gw + x1) * q + c]);
                if (v > bv) {
                    bv = v;
                    best = c;
                }
            }
            lab[(size_t)y * ow + x] = best;
        }
    }
}

int main(void)
{
    static const int sizes[][4] = { /* gh, gw, out_h, out_w */
        { 1, 1, 5, 7 },    { 1, 2, 1, 4 },     { 2, 3, 17, 9 },   { 14, 14, 224, 224 },
        { 7, 11, 112, 176 }, { 30, 20, 480, 320 }, { 9, 5, 50, 61 }, { 16, 12, 8, 6 },
        { 3, 3, 3, 3 },
    };
    for (int threads = 1; threads <= 2; threads++) {
        as_pool_set_threads(threads);
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            for (int q = 1; q <= 20; q += (q < 6 ? 1 : 7)) {
                const int gh = sizes[s][0], gw = sizes[s][1], oh = sizes[s][2], ow = sizes[s][3];
                float *a = malloc((size_t)gh * gw * q * sizeof *a);
                int32_t *got = malloc((size_t)oh * ow * sizeof *got);
                int32_t *want = malloc((size_t)oh * ow * sizeof *want);
                for (long i = 0; i < (long)gh * gw * q; i++)
                    a[i] = rnd();
                for (long i = 0; i < (long)oh * ow; i++)
                    got[i] = -1;
                as_upsample_argmax(a, gh, gw, q, oh, ow, got);
                const long bad = naive_mismatches(a, gh, gw, q, oh, ow, got);
                CHECK(bad == 0, "%dx%d -> %dx%d, Q=%d, %d thread(s): %ld pixels disagree with "
                      "the naive bilinear argmax", gh, gw, oh, ow, q, threads, bad);
                direct_float(a, gh, gw, q, oh, ow, want);
                CHECK(!memcmp(got, want, (size_t)oh * ow * sizeof *got),
                      "%dx%d -> %dx%d, Q=%d: labels differ from the direct float formula", gh, gw,
                      oh, ow, q);
                free(a);
                free(got);
                free(want);
            }
    }
    /* a hand-made case: class 1 wins only on the right half of a 1x2 grid */
    const float two[4] = { 1.0f, 0.0f, 0.0f, 1.0f };
    int32_t lab[8];
    as_upsample_argmax(two, 1, 2, 2, 2, 4, lab);
    CHECK(lab[0] == 0 && lab[1] == 0 && lab[2] == 1 && lab[3] == 1 && lab[4] == 0 && lab[7] == 1,
          "1x2 -> 2x4 labels %d%d%d%d", lab[0], lab[1], lab[2], lab[3]);
    return check_report("upsample");
}
