/* attn_avx512: see attn_avx512.h. Scores: 6 rows x 4 key panels (24 zmm
 * sums, one broadcast per row and depth, one load per panel and depth);
 * values: 6 rows x 64 columns (24 sums); the softmax between them is
 * as_softmax_row_unnorm (exp16 on this path). */
#include "attn_avx512.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "activations.h"
#include "simd512.h"

#ifdef AS_X86_SIMD
#define HD 64
#define R_MAX 6
#define P_MAX 4

/* s (R, p0*16 .. (p0+P)*16) for P panels from p0 */
AS_TARGET_AVX512 __attribute__((always_inline)) static inline void
scores(const float *q, int ldq, const float *kp, int nkp, float *s, const int R, int p0,
       const int P)
{
    __m512 acc[R_MAX][P_MAX];
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int p = 0; p < P; p++)
            acc[r][p] = _mm512_setzero_ps();
    const float *panel = kp + (size_t)p0 * HD * 16;
    for (int d = 0; d < HD; d++) {
        __m512 kv[P_MAX];
#pragma GCC unroll 4
        for (int p = 0; p < P; p++)
            kv[p] = _mm512_loadu_ps(panel + (size_t)p * HD * 16 + d * 16);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            const __m512 qv = _mm512_set1_ps(q[(size_t)r * ldq + d]);
#pragma GCC unroll 4
            for (int p = 0; p < P; p++)
                acc[r][p] = _mm512_fmadd_ps(qv, kv[p], acc[r][p]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int p = 0; p < P; p++)
            _mm512_storeu_ps(s + (size_t)r * nkp + (size_t)(p0 + p) * 16, acc[r][p]);
}

AS_TARGET_AVX512 __attribute__((always_inline)) static inline void
scores_rows(const float *q, int ldq, const float *kp, int nkp, float *s, const int R)
{
    const int np = nkp / 16;
    int p = 0;
    for (; p + 4 <= np; p += 4)
        scores(q, ldq, kp, nkp, s, R, p, 4);
    switch (np - p) {
    case 3: scores(q, ldq, kp, nkp, s, R, p, 3); break;
    case 2: scores(q, ldq, kp, nkp, s, R, p, 2); break;
    case 1: scores(q, ldq, kp, nkp, s, R, p, 1); break;
    default: break;
    }
}

/* o (R, 64) = diag(inv) p (R, nk) vp */
AS_TARGET_AVX512 __attribute__((always_inline)) static inline void
values(const float *p, int nkp, int nk, const float *vp, const float *inv, float *o, int ldo,
       const int R)
{
    __m512 acc[R_MAX][4];
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++)
            acc[r][c] = _mm512_setzero_ps();
    for (int key = 0; key < nk; key++) {
        __m512 vv[4];
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++)
            vv[c] = _mm512_loadu_ps(vp + ((size_t)c * nk + key) * 16);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            const __m512 pv = _mm512_set1_ps(p[(size_t)r * nkp + key]);
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++)
                acc[r][c] = _mm512_fmadd_ps(pv, vv[c], acc[r][c]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
        const __m512 sc = _mm512_set1_ps(inv[r]);
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++)
            _mm512_storeu_ps(o + (size_t)r * ldo + c * 16, _mm512_mul_ps(acc[r][c], sc));
    }
}

AS_TARGET_AVX512 void attn_tile_avx512(const float *q, int ldq, const float *kp, int nkp,
                                       const float *vp, int nk, float *s, float *o, int ldo,
                                       int rows, float *row0)
{
    float inv[R_MAX] = { 0 };
    switch (rows) {
    case 6: scores_rows(q, ldq, kp, nkp, s, 6); break;
    case 5: scores_rows(q, ldq, kp, nkp, s, 5); break;
    case 4: scores_rows(q, ldq, kp, nkp, s, 4); break;
    case 3: scores_rows(q, ldq, kp, nkp, s, 3); break;
    case 2: scores_rows(q, ldq, kp, nkp, s, 2); break;
    default: scores_rows(q, ldq, kp, nkp, s, 1); break;
    }
    for (int r = 0; r < rows; r++)
        inv[r] = as_softmax_row_unnorm(s + (size_t)r * nkp, nk);
    if (row0)
        for (int c = 0; c < nk; c++)
            row0[c] = s[c] * inv[0];
    switch (rows) {
    case 6: values(s, nkp, nk, vp, inv, o, ldo, 6); break;
    case 5: values(s, nkp, nk, vp, inv, o, ldo, 5); break;
    case 4: values(s, nkp, nk, vp, inv, o, ldo, 4); break;
    case 3: values(s, nkp, nk, vp, inv, o, ldo, 3); break;
    case 2: values(s, nkp, nk, vp, inv, o, ldo, 2); break;
    default: values(s, nkp, nk, vp, inv, o, ldo, 1); break;
    }
}
#endif
