/* gemm_avx2: the AVX2+FMA variant of the packed GEMM (gemm_kern.h): 6 x 16
 * register tiles (12 of the 16 ymm registers hold sums), activation packing
 * by 8x8 transposes (also used by the AVX-512 variant), weight packing. */
#include "gemm_kern.h"

#include "activations.h"
#include "pool.h"
#include "simd.h"

#define MR 6
#define NR GEMM_NR

/* One full panel (16 rows of w from row o0), 8 depths at a time: two 8x8
 * transposes give 8 rows of 16 packed values. */
__attribute__((target("avx2,fma"))) int gemm_pack_panel_avx2(const float *w, int in, int o0,
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

/* gemm_pack_rows_c 8 depths at a time: groups of up to 8 row vectors
 * (normalised on the way), an 8x8 transpose per group, and stores of 8
 * floats at each group's place in a depth's mr values. The last group, of
 * fewer than 8 rows, is stored first: its stores spill into the next
 * depth's first values, which the whole groups (or its own next store)
 * write afterwards; the buffer has slack for the last spill. The tail (kc % 8 depths) is
 * normalised by as_layernorm_apply. */
__attribute__((target("avx2,fma"))) void gemm_pack_rows_avx2(int mr, const float *x, int n,
                                                            int ldx, int r0, int mc, int k0,
                                                            int kc, const AsGemmNorm *nm,
                                                            const float *mean, const float *rstd,
                                                            float *dst)
{
    const int kv = kc / 8 * 8;
    float t[8];
    for (int i = 0; i < mc; i += mr) {
        float *d = dst + (size_t)i * kc;
        const float *src[16];
        __m256 fm[16], rs[16];
        for (int r = 0; r < mr; r++) {
            const int row = r0 + i + r;
            src[r] = row < n ? x + (size_t)row * ldx : NULL;
            fm[r] = _mm256_set1_ps(nm && src[r] ? mean[i + r] : 0.0f);
            rs[r] = _mm256_set1_ps(nm && src[r] ? rstd[i + r] : 0.0f);
        }
        for (int k = 0; k < kv; k += 8) {
            const int kk = k0 + k;
            __m256 nw = _mm256_setzero_ps(), nb = nw;
            if (nm) {
                nw = _mm256_loadu_ps(nm->w + kk);
                nb = _mm256_loadu_ps(nm->b + kk);
            }
            float *o = d + (size_t)k * mr;
            for (int g = (mr - 1) / 8 * 8; g >= 0; g -= 8) { /* the part group first */
                __m256 v[8];
                for (int r = 0; r < 8; r++) {
                    const int rr = g + r;
                    if (rr >= mr || !src[rr]) {
                        v[r] = _mm256_setzero_ps();
                        continue;
                    }
                    v[r] = _mm256_loadu_ps(src[rr] + kk);
                    if (nm) {
                        const __m256 q = _mm256_mul_ps(_mm256_sub_ps(v[r], fm[rr]), rs[rr]);
                        v[r] = _mm256_fmadd_ps(q, nw, nb);
                    }
                }
                transpose8(v);
                for (int q = 0; q < 8; q++)
                    _mm256_storeu_ps(o + q * mr + g, v[q]);
            }
        }
        for (int r = 0; r < mr && kv < kc; r++) {
            if (src[r] && nm)
                as_layernorm_apply(src[r], k0 + kv, kc - kv, mean[i + r], rstd[i + r], nm->w,
                                   nm->b, t);
            for (int k = kv; k < kc; k++)
                d[(size_t)k * mr + r] = !src[r] ? 0.0f : nm ? t[k - kv] : src[r][k0 + k];
        }
    }
}

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
                                                           const float *restrict b, size_t bs,
                                                           float *y, int ldy, int mr, int nr,
                                                           const GemmEpi *e)
{
    (void)bs;
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
    gemm_tile_write(t, NR, y, ldy, mr, nr, e);
}

/* 12 independent chains of 8-wide FMAs, iters times each; returns a value
 * that depends on every chain so nothing is optimised away. */
__attribute__((target("avx2,fma"), noinline)) static float fma_loop_avx2(long iters, float seed)
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

const GemmKernels gemm_avx2 = {
    MR, 1, 120, { tile_avx2, NULL, NULL }, gemm_pack_rows_avx2, gemm_pack_panel_avx2,
    fma_loop_avx2, 12 * 16,
};
