/* simd512: AVX-512 building blocks shared by the AVX-512 kernels: 16-wide
 * exp and exact-erf GELU, the same operations lane for lane as exp8 and
 * gelu8 in simd.h (so both paths give the same values). Callers check
 * as_cpu_path() == AS_CPU_AVX512 before use. */
#ifndef ALIGNSEG_SIMD512_H
#define ALIGNSEG_SIMD512_H

#include "simd.h"

#ifdef AS_X86_SIMD
#define AS_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))

/* exp(x), relative error ~2e-7; 0 below -87.3 (as exp8). */
AS_TARGET_AVX512 static inline __m512 exp16(__m512 x)
{
    const __m512 lo = _mm512_set1_ps(-87.33654f);
    const __mmask16 keep = _mm512_cmp_ps_mask(x, lo, _CMP_GE_OQ);
    x = _mm512_max_ps(x, lo);
    x = _mm512_min_ps(x, _mm512_set1_ps(88.72283f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    const __m512i e = _mm512_slli_epi32(
        _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_maskz_mul_ps(keep, p, _mm512_castsi512_ps(e));
}

/* GELU with exact erf, the polynomials of gelu8. */
AS_TARGET_AVX512 static inline __m512 gelu16(__m512 x)
{
    const __m512 sign = _mm512_set1_ps(-0.0f);
    const __m512 a = _mm512_mul_ps(_mm512_andnot_ps(sign, x), _mm512_set1_ps(0.70710678118654752f));
    const __m512 s = _mm512_mul_ps(a, a);
    __m512 p = _mm512_set1_ps(-9.8092584870890436e-06f);
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(1.1313115211480929e-04f));
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(-8.4901953931483531e-04f));
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(5.2214229193899980e-03f));
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(-2.6865558327003769e-02f));
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(1.1283784462435099e-01f));
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(-3.7612638580694224e-01f));
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(1.1283791670719574e+00f));
    const __m512 e1 = _mm512_mul_ps(a, p);
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(a, _mm512_set1_ps(0.5f), one));
    __m512 q = _mm512_set1_ps(-4.6458204263596724e-02f);
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(2.0560585672224163e-01f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(-2.7679491636557896e-01f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(-3.6857763969535981e-02f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(2.6642524299182452e-01f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(2.6262395217458052e-02f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(3.1204019708481601e-01f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(2.6546195698825920e-01f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(2.8445870894752684e-01f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(-1.4542694154856539e-04f));
    const __m512 e2 = _mm512_fnmadd_ps(exp16(_mm512_sub_ps(_mm512_setzero_ps(), s)), q, one);
    __m512 erf = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, one, _CMP_LT_OQ), e2, e1);
    erf = _mm512_or_ps(erf, _mm512_and_ps(x, sign)); /* erf is odd */
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), _mm512_add_ps(one, erf));
}
#endif

#endif
