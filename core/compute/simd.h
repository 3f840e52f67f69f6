/* simd: AVX2+FMA building blocks shared by the kernels (activations.c, gemm.c):
 * 8-wide exp and exact-erf GELU and an 8x8 transpose, as inline functions
 * compiled for AVX2+FMA.
 * Callers check the path (cpu.h: as_cpu_path() >= AS_CPU_AVX2) before use.
 * Defines AS_X86_SIMD where these exist (x86-64 with GCC or clang). */
#ifndef ALIGNSEG_SIMD_H
#define ALIGNSEG_SIMD_H

#if defined(__x86_64__) && defined(__GNUC__)
#define AS_X86_SIMD 1
#include <immintrin.h>

/* exp(x), relative error ~2e-7; 0 below -87.3 (where expf gives subnormals). */
__attribute__((target("avx2,fma"))) static inline __m256 exp8(__m256 x)
{
    const __m256 lo = _mm256_set1_ps(-87.33654f);
    const __m256 under = _mm256_cmp_ps(x, lo, _CMP_GE_OQ);
    x = _mm256_max_ps(x, lo);
    x = _mm256_min_ps(x, _mm256_set1_ps(88.72283f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), under);
}

/* erf(x / sqrt(2)) for |x| below 1 by an odd polynomial, above by
 * 1 - exp(-a^2) P(1 / (1 + a/2)); both fitted to erf, max error ~1.5e-7. */
__attribute__((target("avx2,fma"))) static inline __m256 gelu8(__m256 x)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 a = _mm256_mul_ps(_mm256_andnot_ps(sign, x), _mm256_set1_ps(0.70710678118654752f));
    const __m256 s = _mm256_mul_ps(a, a);
    __m256 p = _mm256_set1_ps(-9.8092584870890436e-06f);
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(1.1313115211480929e-04f));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(-8.4901953931483531e-04f));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(5.2214229193899980e-03f));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(-2.6865558327003769e-02f));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(1.1283784462435099e-01f));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(-3.7612638580694224e-01f));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(1.1283791670719574e+00f));
    const __m256 e1 = _mm256_mul_ps(a, p);
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(a, _mm256_set1_ps(0.5f), one));
    __m256 q = _mm256_set1_ps(-4.6458204263596724e-02f);
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(2.0560585672224163e-01f));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(-2.7679491636557896e-01f));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(-3.6857763969535981e-02f));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(2.6642524299182452e-01f));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(2.6262395217458052e-02f));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(3.1204019708481601e-01f));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(2.6546195698825920e-01f));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(2.8445870894752684e-01f));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(-1.4542694154856539e-04f));
    const __m256 e2 = _mm256_fnmadd_ps(exp8(_mm256_sub_ps(_mm256_setzero_ps(), s)), q, one);
    __m256 erf = _mm256_blendv_ps(e2, e1, _mm256_cmp_ps(a, one, _CMP_LT_OQ));
    erf = _mm256_or_ps(erf, _mm256_and_ps(x, sign)); /* erf is odd */
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(one, erf));
}

/* Transpose 8 rows of 8 floats in place: afterwards v[k] holds element k of
 * every row (row i in lane i). */
__attribute__((target("avx2,fma"))) static inline void transpose8(__m256 v[8])
{
    const __m256 a0 = _mm256_unpacklo_ps(v[0], v[1]), a1 = _mm256_unpackhi_ps(v[0], v[1]);
    const __m256 a2 = _mm256_unpacklo_ps(v[2], v[3]), a3 = _mm256_unpackhi_ps(v[2], v[3]);
    const __m256 a4 = _mm256_unpacklo_ps(v[4], v[5]), a5 = _mm256_unpackhi_ps(v[4], v[5]);
    const __m256 a6 = _mm256_unpacklo_ps(v[6], v[7]), a7 = _mm256_unpackhi_ps(v[6], v[7]);
    const __m256 b0 = _mm256_shuffle_ps(a0, a2, 0x44), b1 = _mm256_shuffle_ps(a0, a2, 0xEE);
    const __m256 b2 = _mm256_shuffle_ps(a1, a3, 0x44), b3 = _mm256_shuffle_ps(a1, a3, 0xEE);
    const __m256 b4 = _mm256_shuffle_ps(a4, a6, 0x44), b5 = _mm256_shuffle_ps(a4, a6, 0xEE);
    const __m256 b6 = _mm256_shuffle_ps(a5, a7, 0x44), b7 = _mm256_shuffle_ps(a5, a7, 0xEE);
    v[0] = _mm256_permute2f128_ps(b0, b4, 0x20);
    v[1] = _mm256_permute2f128_ps(b1, b5, 0x20);
    v[2] = _mm256_permute2f128_ps(b2, b6, 0x20);
    v[3] = _mm256_permute2f128_ps(b3, b7, 0x20);
    v[4] = _mm256_permute2f128_ps(b0, b4, 0x31);
    v[5] = _mm256_permute2f128_ps(b1, b5, 0x31);
    v[6] = _mm256_permute2f128_ps(b2, b6, 0x31);
    v[7] = _mm256_permute2f128_ps(b3, b7, 0x31);
}
#endif

#endif
