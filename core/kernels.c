/* kernels: see kernels.h */
#include "kernels.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void as_linear(const float *x, int n, const AsLinear *l, float *y)
{
    if (n <= 0)
        return;
    float beta = 0.0f;
    if (l->b) {
        for (int i = 0; i < n; i++)
            memcpy(y + (size_t)i * l->out, l->b, (size_t)l->out * sizeof *y);
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, l->out, l->in, 1.0f, x, l->in,
                l->w, l->in, beta, y, l->out);
}

void as_layernorm(const float *x, int n, const AsNorm *nm, float *y)
{
    const int d = nm->dim;
    for (int i = 0; i < n; i++) {
        const float *xr = x + (size_t)i * d;
        float *yr = y + (size_t)i * d;
        double s = 0.0;
        for (int j = 0; j < d; j++)
            s += xr[j];
        const double mean = s / d;
        double v = 0.0;
        for (int j = 0; j < d; j++) {
            const double t = xr[j] - mean;
            v += t * t;
        }
        const float rstd = (float)(1.0 / sqrt(v / d + (double)nm->eps));
        const float fm = (float)mean;
        for (int j = 0; j < d; j++)
            yr[j] = (xr[j] - fm) * rstd * nm->w[j] + nm->b[j];
    }
}

void as_softmax_rows(float *x, int n, int m)
{
    for (int i = 0; i < n; i++) {
        float *r = x + (size_t)i * m;
        float mx = -INFINITY;
        for (int j = 0; j < m; j++)
            if (r[j] > mx)
                mx = r[j];
        double s = 0.0;
        for (int j = 0; j < m; j++) {
            r[j] = expf(r[j] - mx);
            s += r[j];
        }
        const float inv = (float)(1.0 / s);
        for (int j = 0; j < m; j++)
            r[j] *= inv;
    }
}

void as_gelu_inplace(float *x, long n)
{
    for (long i = 0; i < n; i++)
        x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

void as_relu_inplace(float *x, long n)
{
    for (long i = 0; i < n; i++)
        if (!(x[i] > 0.0f))
            x[i] = 0.0f;
}

void as_l2norm_rows(const float *x, int n, int d, float eps, float *y)
{
    for (int i = 0; i < n; i++) {
        const float *xr = x + (size_t)i * d;
        float *yr = y + (size_t)i * d;
        double s = 0.0;
        for (int j = 0; j < d; j++)
            s += (double)xr[j] * xr[j];
        double nrm = sqrt(s);
        if (nrm < eps)
            nrm = eps;
        const float inv = (float)(1.0 / nrm);
        for (int j = 0; j < d; j++)
            yr[j] = xr[j] * inv;
    }
}

/* One head: scratch (nq, nk) = softmax(q_h k_h^T * scale); out_h = scratch v_h. */
static void attn_head(const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
                      int nq, int nk, int hd, float scale, float *scratch, float *out, int ldo)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, hd, scale, q, ldq, k, ldk,
                0.0f, scratch, nk);
    as_softmax_rows(scratch, nq, nk);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, hd, nk, 1.0f, scratch, nk, v,
                ldv, 0.0f, out, ldo);
}

void as_mha(const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
            int nq, int nk, int dim, int heads, float *probs, float *out)
{
    const int hd = dim / heads;
    const float scale = 1.0f / sqrtf((float)hd);
    for (int h = 0; h < heads; h++)
        attn_head(q + (size_t)h * hd, ldq, k + (size_t)h * hd, ldk, v + (size_t)h * hd, ldv, nq,
                  nk, hd, scale, probs + (size_t)h * nq * nk, out + (size_t)h * hd, dim);
}

void as_mha_lowmem(const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
                   int nq, int nk, int dim, int heads, float *scratch, float *row0,
                   float *out)
{
    const int hd = dim / heads;
    const float scale = 1.0f / sqrtf((float)hd);
    for (int h = 0; h < heads; h++) {
        attn_head(q + (size_t)h * hd, ldq, k + (size_t)h * hd, ldk, v + (size_t)h * hd, ldv, nq,
                  nk, hd, scale, scratch, out + (size_t)h * hd, dim);
        if (row0)
            memcpy(row0 + (size_t)h * nk, scratch, (size_t)nk * sizeof *row0);
    }
}

void as_add_inplace(float *x, const float *y, long n)
{
    for (long i = 0; i < n; i++)
        x[i] += y[i];
}

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

void as_bicubic_resize_hwc(const float *src, int sh, int sw, int c, int dh, int dw,
                           double scale_h, double scale_w, float *dst)
{
    const float fsh = (float)scale_h, fsw = (float)scale_w;
    for (int oy = 0; oy < dh; oy++) {
        const float ry = fsh * ((float)oy + 0.5f) - 0.5f;
        const int iy = (int)floorf(ry);
        float wy[4];
        cubic_weights(ry - (float)iy, wy);
        for (int ox = 0; ox < dw; ox++) {
            const float rx = fsw * ((float)ox + 0.5f) - 0.5f;
            const int ix = (int)floorf(rx);
            float wx[4];
            cubic_weights(rx - (float)ix, wx);
            float *o = dst + ((size_t)oy * dw + ox) * c;
            for (int ch = 0; ch < c; ch++) {
                float acc = 0.0f;
                for (int a = 0; a < 4; a++) {
                    const int yy = clampi(iy - 1 + a, 0, sh - 1);
                    float row = 0.0f;
                    for (int b = 0; b < 4; b++) {
                        const int xx = clampi(ix - 1 + b, 0, sw - 1);
                        row += wx[b] * src[((size_t)yy * sw + xx) * c + ch];
                    }
                    acc += wy[a] * row;
                }
                o[ch] = acc;
            }
        }
    }
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

void as_gaussian_kernel(int taps, float sigma, float *k)
{
    const float half = (float)(taps - 1) * 0.5f;
    float s = 0.0f;
    for (int i = 0; i < taps; i++) {
        const float x = ((float)i - half) / sigma;
        k[i] = expf(-0.5f * x * x);
        s += k[i];
    }
    for (int i = 0; i < taps; i++)
        k[i] /= s;
}

/* Mirror index i into [0, n) without repeating the edge (period 2n-2). */
static int reflect_index(int i, int n)
{
    if (n == 1)
        return 0;
    const int period = 2 * n - 2;
    i %= period;
    if (i < 0)
        i += period;
    return i < n ? i : period - i;
}

int as_blur_separable(const float *in, int h, int w, const float *k, int taps, float *out,
                      AsError *err)
{
    float *tmp = malloc((size_t)h * w * sizeof *tmp);
    if (!tmp)
        return as_error_set(err, AS_ERR_NOMEM, "out of memory blurring a %dx%d map", h, w);
    const int r = taps / 2;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float acc = 0.0f;
            for (int t = 0; t < taps; t++)
                acc += k[t] * in[(size_t)y * w + reflect_index(x + t - r, w)];
            tmp[(size_t)y * w + x] = acc;
        }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float acc = 0.0f;
            for (int t = 0; t < taps; t++)
                acc += k[t] * tmp[(size_t)reflect_index(y + t - r, h) * w + x];
            out[(size_t)y * w + x] = acc;
        }
    free(tmp);
    return 0;
}

typedef struct { float v; int i; } ValIdx;

static int cmp_validx(const void *a, const void *b)
{
    const ValIdx *x = a, *y = b;
    if (x->v < y->v)
        return -1;
    if (x->v > y->v)
        return 1;
    return (x->i > y->i) - (x->i < y->i);
}

int as_mass_threshold(const float *v, int n, float keep, uint8_t *mask, AsError *err)
{
    if (n <= 0)
        return 0;
    ValIdx *s = malloc((size_t)n * sizeof *s);
    if (!s)
        return as_error_set(err, AS_ERR_NOMEM, "out of memory sorting %d values", n);
    for (int i = 0; i < n; i++) /* NaN would make the order inconsistent */
        s[i] = (ValIdx){ isnan(v[i]) ? -INFINITY : v[i], i };
    qsort(s, (size_t)n, sizeof *s, cmp_validx);
    double sum = 0.0;
    for (int i = 0; i < n; i++)
        sum += s[i].v;
    const float fsum = (float)sum;
    const float limit = 1.0f - keep;
    double cum = 0.0; /* PyTorch's CPU cumsum accumulates in double */
    for (int i = 0; i < n; i++) {
        cum += (double)(s[i].v / fsum);
        mask[s[i].i] = (float)cum > limit ? 1 : 0;
    }
    free(s);
    return 0;
}

int as_drop_small_components(uint8_t *mask, int h, int w, int max_size)
{
    const size_t n = (size_t)h * w;
    if (n == 0)
        return 0;
    int *stack = malloc(n * sizeof *stack);
    int *comp = malloc(n * sizeof *comp);
    uint8_t *seen = calloc(n, 1);
    if (!stack || !comp || !seen) {
        free(stack);
        free(comp);
        free(seen);
        return -1;
    }
    int removed = 0;
    for (size_t start = 0; start < n; start++) {
        if (!mask[start] || seen[start])
            continue;
        size_t sp = 0, nc = 0;
        stack[sp++] = (int)start;
        seen[start] = 1;
        while (sp) {
            const int c = stack[--sp];
            comp[nc++] = c;
            const int cy = c / w, cx = c % w;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    const int y = cy + dy, x = cx + dx;
                    if (y < 0 || y >= h || x < 0 || x >= w)
                        continue;
                    const size_t j = (size_t)y * w + x;
                    if (mask[j] && !seen[j]) {
                        seen[j] = 1;
                        stack[sp++] = (int)j;
                    }
                }
        }
        if (nc <= (size_t)max_size) {
            for (size_t i = 0; i < nc; i++)
                mask[comp[i]] = 0;
            removed++;
        }
    }
    free(stack);
    free(comp);
    free(seen);
    return removed;
}
