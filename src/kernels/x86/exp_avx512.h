/*
 * exp_avx512.h - a vector e^x for the AVX-512 kernels (softmax, SiLU).
 * Include only from files built with -mavx512f.
 */
#ifndef DOTS_EXP_AVX512_H
#define DOTS_EXP_AVX512_H

#include <immintrin.h>

/* e^x: n = round(x / ln 2) and r = x - n ln 2 in two steps (Cody-Waite,
 * |r| <= 0.347), e^r by its degree-7 Taylor polynomial (truncation < 1e-8),
 * scaled by 2^n with vscalefps: within a few ulps of expf. Far below -87
 * the result flushes to 0, above 88 it overflows to infinity, as expf. */
static inline __m512 dots_exp_ps(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(100.0f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-6f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

#endif
