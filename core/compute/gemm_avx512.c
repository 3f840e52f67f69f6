/* gemm_avx512: the AVX-512 variant of the packed GEMM (gemm_kern.h):
 * register tiles of MR rows x NP weight panels (16 columns each); a full
 * tile keeps MR x NP zmm sums, NP weight vectors and the broadcast operand
 * in the 32 zmm registers. Activations are packed by gemm_pack_rows_avx2
 * (8x8 transposes; 1-2% of the time). Partial tiles are written with masked
 * loads and stores. Measured single-threaded on the encoder's shapes
 * (bench/gemm_micro, docs/PERFORMANCE.md): 8 x 48 and 12 x 32 about 177
 * GFLOPS, 14 x 32 168, 10 x 32 163, 9 x 48 151. */
#include "gemm_kern.h"

#include "simd512.h"

#ifndef GEMM512_MR
#define GEMM512_MR 8 /* rows of a tile */
#endif
#ifndef GEMM512_NP
#define GEMM512_NP 3 /* weight panels of a full tile: 8 x 48 columns, 24 sums */
#endif
#define MR GEMM512_MR
#define NP GEMM512_NP
#define NR GEMM_NR

AS_TARGET_AVX512 __attribute__((always_inline)) static inline void
tile_np(const int np, int kc, const float *restrict a, const float *restrict b, size_t bs,
        float *y, int ldy, int mr, int nr, const GemmEpi *e)
{
    __m512 c[MR][GEMM_NP_MAX];
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 3
        for (int p = 0; p < np; p++)
            c[r][p] = _mm512_setzero_ps();
    for (int k = 0; k < kc; k++) {
        __m512 bv[GEMM_NP_MAX];
#pragma GCC unroll 3
        for (int p = 0; p < np; p++)
            bv[p] = _mm512_loadu_ps(b + p * bs + (size_t)k * NR);
#pragma GCC unroll 16
        for (int r = 0; r < MR; r++) {
            const __m512 av = _mm512_set1_ps(a[(size_t)k * MR + r]);
#pragma GCC unroll 3
            for (int p = 0; p < np; p++)
                c[r][p] = _mm512_fmadd_ps(av, bv[p], c[r][p]);
        }
    }
    __mmask16 cm[GEMM_NP_MAX];
    __m512 bb[GEMM_NP_MAX];
#pragma GCC unroll 3
    for (int p = 0; p < np; p++) {
        const int w = nr - p * NR;
        cm[p] = w >= NR ? (__mmask16)0xFFFF : w <= 0 ? 0 : (__mmask16)((1u << w) - 1);
        bb[p] = e->bias ? _mm512_maskz_loadu_ps(cm[p], e->bias + p * NR) : _mm512_setzero_ps();
    }
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++) {
        if (r >= mr)
            break;
        float *yr = y + (size_t)r * ldy;
#pragma GCC unroll 3
        for (int p = 0; p < np; p++) {
            __m512 v = c[r][p];
            if (e->load)
                v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(cm[p], yr + p * NR));
            v = _mm512_add_ps(v, bb[p]);
            _mm512_mask_storeu_ps(yr + p * NR, cm[p], v);
        }
    }
    /* GELU on the stored tile (in L1) once the sums are dead: applied to the
     * live sums it spilled them (fc1 with GELU measured 90-123 GFLOPS in
     * bench/gemm_micro, without 144-165) */
    if (e->gelu)
        for (int r = 0; r < mr; r++) {
            float *yr = y + (size_t)r * ldy;
#pragma GCC unroll 1
            for (int p = 0; p < np; p++)
                _mm512_mask_storeu_ps(yr + p * NR, cm[p],
                                      gelu16(_mm512_maskz_loadu_ps(cm[p], yr + p * NR)));
        }
}

#define TILE_FN(np_)                                                                             \
    AS_TARGET_AVX512 static void tile##np_(int kc, const float *restrict a,                      \
                                           const float *restrict b, size_t bs, float *y,        \
                                           int ldy, int mr, int nr, const GemmEpi *e)            \
    {                                                                                            \
        tile_np(np_, kc, a, b, bs, y, ldy, mr, nr, e);                                           \
    }
TILE_FN(1)
TILE_FN(2)
#if NP >= 3
TILE_FN(3)
#define TILE3 tile3
#else
#define TILE3 NULL
#endif

/* 12 independent chains of 16-wide FMAs (as the AVX2 loop, twice as wide) */
AS_TARGET_AVX512 __attribute__((noinline)) static float fma_loop_avx512(long iters, float seed)
{
    const __m512 m = _mm512_set1_ps(0.999f), a = _mm512_set1_ps(1e-4f);
    __m512 c[12];
    c[0] = _mm512_set1_ps(seed);
#pragma GCC unroll 12
    for (int j = 1; j < 12; j++)
        c[j] = _mm512_add_ps(c[j - 1], a);
    for (long i = 0; i < iters; i++) {
#pragma GCC unroll 12
        for (int j = 0; j < 12; j++)
            c[j] = _mm512_fmadd_ps(c[j], m, a);
    }
    __m512 s = c[0];
#pragma GCC unroll 12
    for (int j = 1; j < 12; j++)
        s = _mm512_add_ps(s, c[j]);
    return _mm512_reduce_add_ps(s);
}

const GemmKernels gemm_avx512 = {
    MR, NP, (GEMM_MC_MAX / MR) * MR, { tile1, tile2, TILE3 }, gemm_pack_rows_avx2,
    gemm_pack_panel_avx2, fma_loop_avx512, 12 * 32,
};

/* ---- bfloat16 products (AVX512_BF16, gemm.h as_gemm_packed_bf16) ------------------- */

#define AS_TARGET_BF16                                                                          \
    __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,avx2,fma")))

/* As tile_np with bfloat16 operands: a holds kc2 depth pairs of MR rows (one
 * 32-bit pair per row and pair), b np panels of kc2 pairs x 16 columns (bs
 * uint16 apart); each vdpbf16ps adds both products of a pair in float32. */
AS_TARGET_BF16 __attribute__((always_inline)) static inline void
tile_bf16_np(const int np, int kc2, const uint16_t *restrict a, const uint16_t *restrict b,
             size_t bs, float *y, int ldy, int mr, int nr, const GemmEpi *e)
{
    __m512 c[MR][GEMM_NP_MAX];
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 3
        for (int p = 0; p < np; p++)
            c[r][p] = _mm512_setzero_ps();
    const int32_t *a32 = (const int32_t *)(const void *)a;
    for (int k = 0; k < kc2; k++) {
        __m512bh bv[GEMM_NP_MAX];
#pragma GCC unroll 3
        for (int p = 0; p < np; p++)
            bv[p] = (__m512bh)_mm512_loadu_si512((const void *)(b + p * bs + (size_t)k * 32));
#pragma GCC unroll 16
        for (int r = 0; r < MR; r++) {
            const __m512bh av = (__m512bh)_mm512_set1_epi32(a32[(size_t)k * MR + r]);
#pragma GCC unroll 3
            for (int p = 0; p < np; p++)
                c[r][p] = _mm512_dpbf16_ps(c[r][p], av, bv[p]);
        }
    }
    __mmask16 cm[GEMM_NP_MAX];
    __m512 bb[GEMM_NP_MAX];
#pragma GCC unroll 3
    for (int p = 0; p < np; p++) {
        const int w = nr - p * NR;
        cm[p] = w >= NR ? (__mmask16)0xFFFF : w <= 0 ? 0 : (__mmask16)((1u << w) - 1);
        bb[p] = e->bias ? _mm512_maskz_loadu_ps(cm[p], e->bias + p * NR) : _mm512_setzero_ps();
    }
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++) {
        if (r >= mr)
            break;
        float *yr = y + (size_t)r * ldy;
#pragma GCC unroll 3
        for (int p = 0; p < np; p++) {
            __m512 v = c[r][p];
            if (e->load)
                v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(cm[p], yr + p * NR));
            v = _mm512_add_ps(v, bb[p]);
            _mm512_mask_storeu_ps(yr + p * NR, cm[p], v);
        }
    }
    if (e->gelu)
        for (int r = 0; r < mr; r++) {
            float *yr = y + (size_t)r * ldy;
#pragma GCC unroll 1
            for (int p = 0; p < np; p++)
                _mm512_mask_storeu_ps(yr + p * NR, cm[p],
                                      gelu16(_mm512_maskz_loadu_ps(cm[p], yr + p * NR)));
        }
}

#define TILE_BF16_FN(np_)                                                                        \
    AS_TARGET_BF16 static void tile_bf16_##np_(int kc2, const uint16_t *restrict a,             \
                                               const uint16_t *restrict b, size_t bs, float *y, \
                                               int ldy, int mr, int nr, const GemmEpi *e)        \
    {                                                                                            \
        tile_bf16_np(np_, kc2, a, b, bs, y, ldy, mr, nr, e);                                     \
    }
TILE_BF16_FN(1)
TILE_BF16_FN(2)
TILE_BF16_FN(3)

const GemmBf16Kernels gemm_bf16 = {
    MR, NP, (GEMM_MC_MAX / MR) * MR, { tile_bf16_1, tile_bf16_2, tile_bf16_3 },
};
