/* activations: see activations.h */
#include "activations.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "pool.h"
#include "cpu.h"
#include "simd512.h"

#ifdef AS_X86_SIMD
static bool have_avx2(void)
{
    return as_cpu_path() >= AS_CPU_AVX2;
}

static bool have_avx512(void)
{
    return as_cpu_path() == AS_CPU_AVX512;
}

/* exp(r[j] - max) in place with 16-wide exp; returns the sum. */
AS_TARGET_AVX512 static float softmax_unnorm_avx512(float *r, int m)
{
    __m512 vm = _mm512_set1_ps(-INFINITY);
    int j = 0;
    for (; j + 16 <= m; j += 16)
        vm = _mm512_max_ps(vm, _mm512_loadu_ps(r + j));
    const __mmask16 tail = (__mmask16)((1u << (m - j)) - 1);
    if (tail)
        vm = _mm512_max_ps(vm, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tail, r + j));
    const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(vm));
    __m512 acc = _mm512_setzero_ps();
    for (j = 0; j + 16 <= m; j += 16) {
        const __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(r + j), mx));
        _mm512_storeu_ps(r + j, e);
        acc = _mm512_add_ps(acc, e);
    }
    if (tail) {
        const __m512 e = _mm512_maskz_mov_ps(
            tail, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, r + j), mx)));
        _mm512_mask_storeu_ps(r + j, tail, e);
        acc = _mm512_add_ps(acc, e);
    }
    return _mm512_reduce_add_ps(acc);
}

/* x[j] = GELU(x[j] + b[j]) (b may be NULL), 16 at a time, masked tail. */
AS_TARGET_AVX512 static void bias_gelu_avx512(float *x, const float *b, long m)
{
    for (long j = 0; j < m; j += 16) {
        const __mmask16 k = m - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (m - j)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(k, x + j);
        if (b)
            v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, b + j));
        _mm512_mask_storeu_ps(x + j, k, gelu16(v));
    }
}

/* r[j] = exp(r[j] - mx) for j < m; returns the sum. */
__attribute__((target("avx2,fma"))) static float exp_sub_sum_avx2(float *r, int m, float mx)
{
    const __m256 vm = _mm256_set1_ps(mx);
    __m256 acc = _mm256_setzero_ps();
    int j = 0;
    for (; j + 8 <= m; j += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(r + j), vm));
        _mm256_storeu_ps(r + j, e);
        acc = _mm256_add_ps(acc, e);
    }
    if (j < m) { /* tail through a padded buffer */
        float buf[8];
        const int t = m - j;
        for (int i = 0; i < 8; i++)
            buf[i] = i < t ? r[j + i] : -INFINITY;
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(buf), vm));
        _mm256_storeu_ps(buf, e);
        acc = _mm256_add_ps(acc, e);
        memcpy(r + j, buf, (size_t)t * sizeof *r);
    }
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma"))) static float max_avx2(const float *r, int m)
{
    __m256 vm = _mm256_set1_ps(-INFINITY);
    int j = 0;
    for (; j + 8 <= m; j += 8)
        vm = _mm256_max_ps(vm, _mm256_loadu_ps(r + j));
    float b[8];
    _mm256_storeu_ps(b, vm);
    float mx = b[0];
    for (int i = 1; i < 8; i++)
        mx = b[i] > mx ? b[i] : mx;
    for (; j < m; j++)
        mx = r[j] > mx ? r[j] : mx;
    return mx;
}

__attribute__((target("avx2,fma"))) static void scale_avx2(float *r, int m, float s)
{
    const __m256 vs = _mm256_set1_ps(s);
    int j = 0;
    for (; j + 8 <= m; j += 8)
        _mm256_storeu_ps(r + j, _mm256_mul_ps(_mm256_loadu_ps(r + j), vs));
    for (; j < m; j++)
        r[j] *= s;
}

/* x[j] = GELU(x[j] + b[j]) (b may be NULL). */
__attribute__((target("avx2,fma"))) static void bias_gelu_avx2(float *x, const float *b, long m)
{
    long j = 0;
    for (; j + 8 <= m; j += 8) {
        __m256 v = _mm256_loadu_ps(x + j);
        if (b)
            v = _mm256_add_ps(v, _mm256_loadu_ps(b + j));
        _mm256_storeu_ps(x + j, gelu8(v));
    }
    if (j < m) {
        float buf[8] = { 0 };
        const long t = m - j;
        for (long i = 0; i < t; i++)
            buf[i] = x[j + i] + (b ? b[j + i] : 0.0f);
        _mm256_storeu_ps(buf, gelu8(_mm256_loadu_ps(buf)));
        memcpy(x + j, buf, (size_t)t * sizeof *x);
    }
}
#else
static bool have_avx2(void)
{
    return false;
}
#endif

float as_softmax_row_unnorm(float *r, int m)
{
#ifdef AS_X86_SIMD
    if (have_avx512())
        return 1.0f / softmax_unnorm_avx512(r, m);
    if (have_avx2())
        return 1.0f / exp_sub_sum_avx2(r, m, max_avx2(r, m));
#endif
    float mx = -INFINITY;
    for (int j = 0; j < m; j++)
        if (r[j] > mx)
            mx = r[j];
    double s = 0.0;
    for (int j = 0; j < m; j++) {
        r[j] = expf(r[j] - mx);
        s += r[j];
    }
    return (float)(1.0 / s);
}

static void softmax_row(float *r, int m)
{
    const float inv = as_softmax_row_unnorm(r, m);
#ifdef AS_X86_SIMD
    if (have_avx2()) {
        scale_avx2(r, m, inv);
        return;
    }
#endif
    for (int j = 0; j < m; j++)
        r[j] *= inv;
}

static void bias_gelu(float *x, const float *b, long m)
{
#ifdef AS_X86_SIMD
    if (have_avx512()) {
        bias_gelu_avx512(x, b, m);
        return;
    }
    if (have_avx2()) {
        bias_gelu_avx2(x, b, m);
        return;
    }
#endif
    for (long i = 0; i < m; i++) {
        const float v = b ? x[i] + b[i] : x[i];
        x[i] = 0.5f * v * (1.0f + erff(v * (float)M_SQRT1_2));
    }
}

void as_bias_gelu_row(float *x, const float *b, long n)
{
    bias_gelu(x, b, n);
}

typedef struct { const float *x; float *y; const AsNorm *nm; } NormJob;

#ifdef AS_X86_SIMD
/* One row: mean and variance accumulated in double, as the scalar path. */
/* mean and 1/sqrt(var + eps) of one row, summed in double */
__attribute__((target("avx2,fma"))) static void layernorm_stats_avx2(const float *xr, int d,
                                                                     float eps, float *fm,
                                                                     float *rstd)
{
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    int j = 0;
    for (; j + 8 <= d; j += 8) {
        const __m256 v = _mm256_loadu_ps(xr + j);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    }
    double b4[4];
    _mm256_storeu_pd(b4, _mm256_add_pd(s0, s1));
    double s = (b4[0] + b4[1]) + (b4[2] + b4[3]);
    for (int t = j; t < d; t++)
        s += xr[t];
    const double mean = s / d;
    const __m256d vm = _mm256_set1_pd(mean);
    s0 = _mm256_setzero_pd();
    s1 = _mm256_setzero_pd();
    for (j = 0; j + 8 <= d; j += 8) {
        const __m256 v = _mm256_loadu_ps(xr + j);
        const __m256d a = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), vm);
        const __m256d b = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), vm);
        s0 = _mm256_fmadd_pd(a, a, s0);
        s1 = _mm256_fmadd_pd(b, b, s1);
    }
    _mm256_storeu_pd(b4, _mm256_add_pd(s0, s1));
    double v = (b4[0] + b4[1]) + (b4[2] + b4[3]);
    for (int t = j; t < d; t++) {
        const double q = xr[t] - mean;
        v += q * q;
    }
    *rstd = (float)(1.0 / sqrt(v / d + (double)eps));
    *fm = (float)mean;
}

/* yr[j0 .. j0+cnt) of the normalised row (see as_layernorm_apply) */
__attribute__((target("avx2,fma"))) static void layernorm_apply_avx2(const float *xr, int j0,
                                                                     int cnt, float fm,
                                                                     float rstd, const float *w,
                                                                     const float *b, float *yr)
{
    const __m256 vfm = _mm256_set1_ps(fm), vr = _mm256_set1_ps(rstd);
    int j = j0;
    for (; j + 8 <= j0 + cnt; j += 8) {
        const __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + j), vfm), vr);
        _mm256_storeu_ps(yr + j - j0, _mm256_fmadd_ps(t, _mm256_loadu_ps(w + j),
                                                      _mm256_loadu_ps(b + j)));
    }
    for (; j < j0 + cnt; j++)
        yr[j - j0] = (xr[j] - fm) * rstd * w[j] + b[j];
}

__attribute__((target("avx2,fma"))) static void layernorm_row_avx2(const float *xr, int d,
                                                                   const AsNorm *nm, float *yr)
{
    float fm, rstd;
    layernorm_stats_avx2(xr, d, nm->eps, &fm, &rstd);
    layernorm_apply_avx2(xr, 0, d, fm, rstd, nm->w, nm->b, yr);
}
#endif

static void layernorm_stats_c(const float *xr, int d, float eps, float *fm, float *rstd)
{
    double s = 0.0;
    for (int j = 0; j < d; j++)
        s += xr[j];
    const double mean = s / d;
    double v = 0.0;
    for (int j = 0; j < d; j++) {
        const double t = xr[j] - mean;
        v += t * t;
    }
    *rstd = (float)(1.0 / sqrt(v / d + (double)eps));
    *fm = (float)mean;
}

void as_layernorm_stats(const float *x, int d, float eps, float *mean, float *rstd)
{
#ifdef AS_X86_SIMD
    if (have_avx2()) {
        layernorm_stats_avx2(x, d, eps, mean, rstd);
        return;
    }
#endif
    layernorm_stats_c(x, d, eps, mean, rstd);
}

void as_layernorm_apply(const float *x, int j0, int cnt, float mean, float rstd, const float *w,
                        const float *b, float *y)
{
#ifdef AS_X86_SIMD
    if (have_avx2()) {
        layernorm_apply_avx2(x, j0, cnt, mean, rstd, w, b, y);
        return;
    }
#endif
    for (int j = j0; j < j0 + cnt; j++)
        y[j - j0] = (x[j] - mean) * rstd * w[j] + b[j];
}

static void layernorm_rows(void *ctx, int r0, int r1)
{
    const NormJob *jb = ctx;
    const AsNorm *nm = jb->nm;
    const int d = nm->dim;
#ifdef AS_X86_SIMD
    if (have_avx2()) {
        for (int i = r0; i < r1; i++)
            layernorm_row_avx2(jb->x + (size_t)i * d, d, nm, jb->y + (size_t)i * d);
        return;
    }
#endif
    for (int i = r0; i < r1; i++) {
        const float *xr = jb->x + (size_t)i * d;
        float fm, rstd;
        layernorm_stats_c(xr, d, nm->eps, &fm, &rstd);
        float *yr = jb->y + (size_t)i * d;
        for (int j = 0; j < d; j++)
            yr[j] = (xr[j] - fm) * rstd * nm->w[j] + nm->b[j];
    }
}

void as_layernorm(const float *x, int n, const AsNorm *nm, float *y)
{
    NormJob j = { x, y, nm };
    as_parallel_rows(n, nm->dim, layernorm_rows, &j);
}

typedef struct { float *x; int m; } SoftmaxJob;

static void softmax_rows_range(void *ctx, int r0, int r1)
{
    const SoftmaxJob *j = ctx;
    for (int i = r0; i < r1; i++)
        softmax_row(j->x + (size_t)i * j->m, j->m);
}

void as_softmax_rows(float *x, int n, int m)
{
    SoftmaxJob j = { x, m };
    as_parallel_rows(n, m, softmax_rows_range, &j);
}

#define GELU_CHUNK 4096

typedef struct { float *y; const float *b; int m; } GeluJob;

static void gelu_chunks(void *ctx, int r0, int r1)
{
    const GeluJob *j = ctx;
    const long total = (long)j->m; /* here m is the element count */
    for (int c = r0; c < r1; c++) {
        const long a = (long)c * GELU_CHUNK;
        const long e = a + GELU_CHUNK < total ? a + GELU_CHUNK : total;
        bias_gelu(j->y + a, NULL, e - a);
    }
}

void as_gelu_inplace(float *x, long n)
{
    if (n <= 0)
        return;
    if (n > INT32_MAX) {
        bias_gelu(x, NULL, n);
        return;
    }
    GeluJob j = { x, NULL, (int)n };
    as_parallel_rows((int)((n + GELU_CHUNK - 1) / GELU_CHUNK), GELU_CHUNK, gelu_chunks, &j);
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
void as_add_inplace(float *x, const float *y, long n)
{
    for (long i = 0; i < n; i++)
        x[i] += y[i];
}