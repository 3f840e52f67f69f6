/* gemm: see gemm.h */
#include "gemm.h"

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "activations.h"
#include "pool.h"
#include "simd.h"

#define MR 6   /* rows of a register tile */
#define NR 16  /* columns of a register tile = width of a packed weight panel */
#define KC 256 /* depth of one pass: a 16 KiB weight micro-panel stays in L1 */
#define MC 120 /* rows of activations packed per pass (120 x 256 floats in L2) */

#ifdef AS_X86_SIMD
#define AS_GEMM_X86 1
#endif

bool as_gemm_available(void)
{
#ifdef AS_GEMM_X86
    return as_kernels_simd(); /* the same AVX2+FMA check as the other kernels */
#else
    return false;
#endif
}

size_t as_gemm_packed_floats(int out, int in)
{
    if (out <= 0 || in <= 0)
        return 0;
    return (size_t)(out + NR - 1) / NR * NR * (size_t)in;
}

#ifdef AS_GEMM_X86
/* One full panel (16 rows of w from row o0), 8 depths at a time: two 8x8
 * transposes give 8 rows of 16 packed values. */
__attribute__((target("avx2,fma"))) static int pack_panel_avx2(const float *w, int in, int o0,
                                                               float *d)
{
    int k = 0;
    for (; k + 8 <= in; k += 8) {
        __m256 lo[8], hi[8];
        for (int j = 0; j < 8; j++) {
            lo[j] = _mm256_loadu_ps(w + (size_t)(o0 + j) * in + k);
            hi[j] = _mm256_loadu_ps(w + (size_t)(o0 + 8 + j) * in + k);
        }
        transpose8(lo);
        transpose8(hi);
        for (int q = 0; q < 8; q++) {
            _mm256_storeu_ps(d + (size_t)(k + q) * NR, lo[q]);
            _mm256_storeu_ps(d + (size_t)(k + q) * NR + 8, hi[q]);
        }
    }
    return k;
}
#endif

void as_gemm_pack(const float *w, int out, int in, float *dst)
{
    const int panels = (out + NR - 1) / NR;
    for (int p = 0; p < panels; p++) {
        float *d = dst + (size_t)p * in * NR;
        int k0 = 0; /* depths [0, k0) already packed */
#ifdef AS_GEMM_X86
        if ((p + 1) * NR <= out)
            k0 = pack_panel_avx2(w, in, p * NR, d);
#endif
        for (int j = 0; j < NR; j++) {
            const int o = p * NR + j;
            for (int k = k0; k < in; k++)
                d[(size_t)k * NR + j] = o < out ? w[(size_t)o * in + k] : 0.0f;
        }
    }
}

/* Rows [r0, r0+mc) and depth [k0, k0+kc) of x into MR-row panels: panel i
 * holds x'[r0 + MR i + r][k0 + k] at (k MR + r), zero rows past n, where x'
 * is x or, with nm, its LayerNorm (row statistics mean/rstd indexed from r0;
 * the numbers of as_layernorm_apply). */
#ifndef AS_GEMM_X86
static void pack_rows_c(const float *x, int n, int ldx, int r0, int mc, int k0, int kc,
                        const AsGemmNorm *nm, const float *mean, const float *rstd, float *dst)
{
    float t[KC];
    for (int i = 0; i < mc; i += MR) {
        float *d = dst + (size_t)i * kc;
        for (int r = 0; r < MR; r++) {
            const int row = r0 + i + r;
            const float *src = NULL;
            if (row < n && nm) {
                as_layernorm_apply(x + (size_t)row * ldx, k0, kc, mean[i + r], rstd[i + r],
                                   nm->w, nm->b, t);
                src = t;
            } else if (row < n) {
                src = x + (size_t)row * ldx + k0;
            }
            for (int k = 0; k < kc; k++)
                d[(size_t)k * MR + r] = src ? src[k] : 0.0f;
        }
    }
}

#else
/* The same, 8 depths at a time: six row vectors (normalised on the way),
 * an 8x8 transpose, and overlapping stores of 8 floats every 6 (each store's
 * last two lanes are overwritten by the next one; the buffer has slack for
 * the last). The tail (kc % 8 depths) is normalised by as_layernorm_apply. */
__attribute__((target("avx2,fma"))) static void pack_rows_avx2(const float *x, int n, int ldx,
                                                               int r0, int mc, int k0, int kc,
                                                               const AsGemmNorm *nm,
                                                               const float *mean,
                                                               const float *rstd, float *dst)
{
    const int kv = kc / 8 * 8;
    float t[8];
    for (int i = 0; i < mc; i += MR) {
        float *d = dst + (size_t)i * kc;
        const float *src[MR];
        __m256 fm[MR], rs[MR];
        for (int r = 0; r < MR; r++) {
            const int row = r0 + i + r;
            src[r] = row < n ? x + (size_t)row * ldx : NULL;
            fm[r] = _mm256_set1_ps(nm && src[r] ? mean[i + r] : 0.0f);
            rs[r] = _mm256_set1_ps(nm && src[r] ? rstd[i + r] : 0.0f);
        }
        for (int k = 0; k < kv; k += 8) {
            __m256 v[8];
            const int kk = k0 + k;
            for (int r = 0; r < MR; r++) {
                if (!src[r]) {
                    v[r] = _mm256_setzero_ps();
                    continue;
                }
                v[r] = _mm256_loadu_ps(src[r] + kk);
                if (nm) {
                    const __m256 q = _mm256_mul_ps(_mm256_sub_ps(v[r], fm[r]), rs[r]);
                    v[r] = _mm256_fmadd_ps(q, _mm256_loadu_ps(nm->w + kk),
                                           _mm256_loadu_ps(nm->b + kk));
                }
            }
            v[6] = v[7] = _mm256_setzero_ps();
            transpose8(v);
            float *o = d + (size_t)k * MR;
            for (int q = 0; q < 8; q++)
                _mm256_storeu_ps(o + q * MR, v[q]);
        }
        for (int r = 0; r < MR && kv < kc; r++) {
            if (src[r] && nm)
                as_layernorm_apply(src[r], k0 + kv, kc - kv, mean[i + r], rstd[i + r], nm->w,
                                   nm->b, t);
            for (int k = kv; k < kc; k++)
                d[(size_t)k * MR + r] = !src[r] ? 0.0f : nm ? t[k - kv] : src[r][k0 + k];
        }
    }
}
#endif

static void pack_rows(const float *x, int n, int ldx, int r0, int mc, int k0, int kc,
                      const AsGemmNorm *nm, const float *mean, const float *rstd, float *dst)
{
#ifdef AS_GEMM_X86
    pack_rows_avx2(x, n, ldx, r0, mc, k0, kc, nm, mean, rstd, dst);
#else
    pack_rows_c(x, n, ldx, r0, mc, k0, kc, nm, mean, rstd, dst);
#endif
}

/* What a tile does with its sums. */
typedef struct {
    bool load;          /* add the values already in y */
    const float *bias;  /* add this row of NR biases (NULL: none) */
    bool gelu;          /* then apply GELU */
} TileEpi;

/* Write a tile held as MR x NR floats in t into y (mr x nr valid). */
static void tile_write(const float *t, float *y, int ldy, int mr, int nr, const TileEpi *e)
{
    for (int r = 0; r < mr; r++) {
        float *yr = y + (size_t)r * ldy;
        const float *tr = t + r * NR;
        for (int j = 0; j < nr; j++) {
            float v = tr[j];
            if (e->load)
                v += yr[j];
            if (e->bias)
                v += e->bias[j];
            yr[j] = v;
        }
        if (e->gelu)
            as_bias_gelu_row(yr, NULL, nr);
    }
}

#ifdef AS_GEMM_X86
#define FMA_ROW(r)                                                                               \
    do {                                                                                         \
        const __m256 av = _mm256_broadcast_ss(a + (r));                                          \
        c##r##0 = _mm256_fmadd_ps(av, b0, c##r##0);                                              \
        c##r##1 = _mm256_fmadd_ps(av, b1, c##r##1);                                              \
    } while (0)

#define STORE_ROW(r)                                                                             \
    do {                                                                                         \
        float *yr = y + (size_t)(r) * ldy;                                                       \
        __m256 v0 = c##r##0, v1 = c##r##1;                                                       \
        if (e->load) {                                                                           \
            v0 = _mm256_add_ps(v0, _mm256_loadu_ps(yr));                                         \
            v1 = _mm256_add_ps(v1, _mm256_loadu_ps(yr + 8));                                     \
        }                                                                                        \
        if (e->bias) {                                                                           \
            v0 = _mm256_add_ps(v0, bb0);                                                         \
            v1 = _mm256_add_ps(v1, bb1);                                                         \
        }                                                                                        \
        if (e->gelu) {                                                                           \
            v0 = gelu8(v0);                                                                      \
            v1 = gelu8(v1);                                                                      \
        }                                                                                        \
        _mm256_storeu_ps(yr, v0);                                                                \
        _mm256_storeu_ps(yr + 8, v1);                                                            \
    } while (0)

/* y tile (mr x nr) <- epilogue(sum over kc of a panel (kc x MR) times b panel (kc x NR)) */
__attribute__((target("avx2,fma"))) static void tile_avx2(int kc, const float *restrict a,
                                                           const float *restrict b, float *y,
                                                           int ldy, int mr, int nr,
                                                           const TileEpi *e)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int k = 0; k < kc; k++) {
        const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        FMA_ROW(0);
        FMA_ROW(1);
        FMA_ROW(2);
        FMA_ROW(3);
        FMA_ROW(4);
        FMA_ROW(5);
        a += MR;
        b += NR;
    }
    if (mr == MR && nr == NR) {
        __m256 bb0 = _mm256_setzero_ps(), bb1 = bb0;
        if (e->bias) {
            bb0 = _mm256_loadu_ps(e->bias);
            bb1 = _mm256_loadu_ps(e->bias + 8);
        }
        STORE_ROW(0);
        STORE_ROW(1);
        STORE_ROW(2);
        STORE_ROW(3);
        STORE_ROW(4);
        STORE_ROW(5);
        return;
    }
    /* a partial tile: spill the sums, write the valid part */
    float t[MR * NR];
#define SPILL_ROW(r)                                                                             \
    do {                                                                                         \
        _mm256_storeu_ps(t + (r) * NR, c##r##0);                                                 \
        _mm256_storeu_ps(t + (r) * NR + 8, c##r##1);                                             \
    } while (0)
    SPILL_ROW(0);
    SPILL_ROW(1);
    SPILL_ROW(2);
    SPILL_ROW(3);
    SPILL_ROW(4);
    SPILL_ROW(5);
#undef SPILL_ROW
    tile_write(t, y, ldy, mr, nr, e);
}
#else
/* The same tile in portable C (other CPUs never reach it: as_gemm_available). */
static void tile_c(int kc, const float *a, const float *b, float *y, int ldy, int mr, int nr,
                   const TileEpi *e)
{
    float t[MR * NR] = { 0 };
    for (int k = 0; k < kc; k++)
        for (int r = 0; r < MR; r++)
            for (int j = 0; j < NR; j++)
                t[r * NR + j] += a[k * MR + r] * b[k * NR + j];
    tile_write(t, y, ldy, mr, nr, e);
}
#endif

typedef struct {
    const float *x, *packed, *bias;
    const AsGemmNorm *norm;
    int n, ldx, out, in, ldy, rows_per;
    AsEpilogue epi;
    float *y;
} PackedJob;

/* packed activations: one buffer per thread (two callers on different threads
 * may both run as tid 0 when one finds the pool busy) */
static _Thread_local float g_abuf[MC * KC + 8] __attribute__((aligned(64))); /* + store slack */

static void packed_item(void *ctx, int item, int tid)
{
    (void)tid;
    const PackedJob *j = ctx;
    float *abuf = g_abuf;
    const int panels = (j->out + NR - 1) / NR;
    const int r_begin = item * j->rows_per;
    const int r_end = r_begin + j->rows_per < j->n ? r_begin + j->rows_per : j->n;
    const int passes = (j->in + KC - 1) / KC;
    const int kc_even = (j->in + passes - 1) / passes; /* equal depths, at most KC */
    for (int r0 = r_begin; r0 < r_end; r0 += MC) {
        const int mc = r_end - r0 < MC ? r_end - r0 : MC;
        const int mc_pad = (mc + MR - 1) / MR * MR;
        float mean[MC], rstd[MC];
        if (j->norm)
            for (int r = 0; r < mc; r++)
                as_layernorm_stats(j->x + (size_t)(r0 + r) * j->ldx, j->in, j->norm->eps,
                                   &mean[r], &rstd[r]);
        for (int k0 = 0; k0 < j->in; k0 += kc_even) {
            const int kc = j->in - k0 < kc_even ? j->in - k0 : kc_even;
            const bool first = k0 == 0, last = k0 + kc == j->in;
            pack_rows(j->x, r0 + mc, j->ldx, r0, mc_pad, k0, kc, j->norm, mean, rstd, abuf);
            for (int p = 0; p < panels; p++) {
                const int c0 = p * NR;
                const int nr = j->out - c0 < NR ? j->out - c0 : NR;
                const float *bp = j->packed + (size_t)p * j->in * NR + (size_t)k0 * NR;
                const TileEpi e = { !first || j->epi == AS_EPI_ACCUMULATE,
                                    first && j->bias ? j->bias + c0 : NULL,
                                    last && j->epi == AS_EPI_GELU };
                for (int i = 0; i < mc; i += MR) {
                    const int mr = mc - i < MR ? mc - i : MR;
                    float *y = j->y + (size_t)(r0 + i) * j->ldy + c0;
                    const float *ap = abuf + (size_t)i * kc;
#ifdef AS_GEMM_X86
                    tile_avx2(kc, ap, bp, y, j->ldy, mr, nr, &e);
#else
                    tile_c(kc, ap, bp, y, j->ldy, mr, nr, &e);
#endif
                }
            }
        }
    }
}

#define GEMM_PAR_FLOPS 2e6 /* below this the caller's thread does it all */

void as_gemm_packed(const float *x, int n, int ldx, const AsGemmNorm *norm, const float *packed,
                    int out, int in, const float *bias, AsEpilogue epi, float *y, int ldy)
{
    if (n <= 0 || out <= 0 || in <= 0)
        return;
    int nt = as_threads();
    if (2.0 * n * out * (double)in < GEMM_PAR_FLOPS)
        nt = 1;
    /* blocks of whole tiles, at most MC rows, their count a multiple of the
     * threads so that every thread gets the same share; as few as that allows
     * (one block per thread measured 65-69 ms for the ViT-S/16 encoder at 224,
     * two or four 71-73 ms: each block re-reads all of the weights) */
    const int tiles = (n + MR - 1) / MR;
    int items = nt;
    if (items > tiles)
        items = tiles;
    while ((tiles + items - 1) / items * MR > MC)
        items += nt;
    const int per = (tiles + items - 1) / items * MR;
    items = (n + per - 1) / per;
    PackedJob j = { x, packed, bias, norm, n, ldx, out, in, ldy, per, epi, y };
    if (nt > 1 && items > 1)
        as_parallel_for(items, packed_item, &j);
    else
        for (int i = 0; i < items; i++)
            packed_item(&j, i, 0);
}

/* ---- arithmetic ceiling ---------------------------------------------------------- */

#ifdef AS_GEMM_X86
/* 12 independent chains of 8-wide FMAs, iters times each; returns a value
 * that depends on every chain so nothing is optimised away. */
__attribute__((target("avx2,fma"), noinline)) static float fma_loop(long iters, float seed)
{
    const __m256 m = _mm256_set1_ps(0.999f), a = _mm256_set1_ps(1e-4f);
    __m256 c0 = _mm256_set1_ps(seed), c1 = _mm256_add_ps(c0, a), c2 = _mm256_add_ps(c1, a),
           c3 = _mm256_add_ps(c2, a), c4 = _mm256_add_ps(c3, a), c5 = _mm256_add_ps(c4, a),
           c6 = _mm256_add_ps(c5, a), c7 = _mm256_add_ps(c6, a), c8 = _mm256_add_ps(c7, a),
           c9 = _mm256_add_ps(c8, a), c10 = _mm256_add_ps(c9, a), c11 = _mm256_add_ps(c10, a);
    for (long i = 0; i < iters; i++) {
        c0 = _mm256_fmadd_ps(c0, m, a);
        c1 = _mm256_fmadd_ps(c1, m, a);
        c2 = _mm256_fmadd_ps(c2, m, a);
        c3 = _mm256_fmadd_ps(c3, m, a);
        c4 = _mm256_fmadd_ps(c4, m, a);
        c5 = _mm256_fmadd_ps(c5, m, a);
        c6 = _mm256_fmadd_ps(c6, m, a);
        c7 = _mm256_fmadd_ps(c7, m, a);
        c8 = _mm256_fmadd_ps(c8, m, a);
        c9 = _mm256_fmadd_ps(c9, m, a);
        c10 = _mm256_fmadd_ps(c10, m, a);
        c11 = _mm256_fmadd_ps(c11, m, a);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                             _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0];
}

typedef struct {
    long iters;
    float sink[64];
} FmaJob;

static void fma_item(void *ctx, int item, int tid)
{
    (void)tid;
    FmaJob *j = ctx;
    j->sink[item & 63] = fma_loop(j->iters, (float)item);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}
#endif

double as_gemm_fma_peak(double seconds)
{
#ifdef AS_GEMM_X86
    if (!as_gemm_available())
        return 0.0;
    const int nt = as_threads();
    FmaJob j = { 200000, { 0 } };
    double best = 0.0;
    const double end = now_s() + seconds;
    do {
        const double t0 = now_s();
        as_parallel_for(nt, fma_item, &j);
        const double dt = now_s() - t0;
        const double g = (double)nt * j.iters * 12 * 16 / dt * 1e-9;
        if (g > best)
            best = g;
    } while (now_s() < end);
    return best;
#else
    (void)seconds;
    return 0.0;
#endif
}
