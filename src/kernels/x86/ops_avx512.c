/*
 * ops_avx512.c - the elementwise operations that are worth vectorising by
 * hand: SiLU needs e^x for every intermediate of every MLP (254 M of them
 * in one 1000-token prefill), which libm computes one at a time.
 */
#include "kernels/kernels.h"

#include <math.h>

#if defined(__AVX512F__)
#include "kernels/x86/exp_avx512.h"

void dots_silu_mul_avx512(float *g, const float *u, int64_t n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 x = _mm512_maskz_loadu_ps(m, g + i);
        __m512 e = dots_exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), x));
        __m512 s = _mm512_div_ps(x, _mm512_add_ps(one, e));
        _mm512_mask_storeu_ps(g + i, m, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, u + i)));
    }
}

float dots_exp_shift_sum_avx512(float *s, int64_t n, float shift) {
    const __m512 vs = _mm512_set1_ps(shift);
    __m512 sum = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 e = _mm512_maskz_mov_ps(m, dots_exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + i), vs)));
        _mm512_mask_storeu_ps(s + i, m, e);
        sum = _mm512_add_ps(sum, e);
    }
    return _mm512_reduce_add_ps(sum);
}
#else
void dots_silu_mul_avx512(float *g, const float *u, int64_t n) { dots_silu_mul(g, u, n); }
float dots_exp_shift_sum_avx512(float *s, int64_t n, float shift) { return dots_exp_shift_sum(s, n, shift); }
#endif
