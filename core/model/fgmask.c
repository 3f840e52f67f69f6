/* fgmask: see fgmask.h */
#include "fgmask.h"

#include <math.h>
#include <stdlib.h>

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
