/*
 * attention_decode.h - the two halves of a grouped decode step that do not
 * depend on how the keys are stored (fp32 in attention_decode_avx512.c, a
 * bf16 cache in attention_avx512bf16.c): the softmax of each head's scores
 * and o = P V over the value rows, fp32 or bf16. Head size 128.
 * Include only from files built with AVX-512.
 */
#ifndef DOTS_ATTENTION_DECODE_H
#define DOTS_ATTENTION_DECODE_H

#include "kernels/kernels.h"

#include <immintrin.h>
#include <math.h>

#define DOTS_DECODE_HD 128   /* the head size the grouped path is written for */
#define DOTS_DECODE_PF_ROWS 8 /* strided rows are prefetched this far ahead */

/* s[h][0 .. n) = e^(s - max_h) for h < g; inv[h] = 1 / sum_h. */
static inline void dots_decode_softmax(float *s, int g, int64_t n, float *inv) {
    for (int h = 0; h < g; h++) {
        float *sh = s + h * n;
        __m512 mx = _mm512_set1_ps(-INFINITY);
        int64_t j = 0;
        for (; j + 16 <= n; j += 16) mx = _mm512_max_ps(mx, _mm512_loadu_ps(sh + j));
        float m = _mm512_reduce_max_ps(mx);
        for (; j < n; j++) m = sh[j] > m ? sh[j] : m;
        inv[h] = 1.0f / dots_exp_shift_sum_avx512(sh, n, m);
    }
}

/* o + h HD = inv[h] sum_j s[h][j] v_j for h < g, V rows at ldv elements,
 * fp32 or (v16) bf16 widened once per row and pass; three heads per pass
 * over V (24 accumulators of the 32 registers). */
static inline __attribute__((always_inline)) void dots_decode_pv(const float *s, int g, int64_t n, const void *v, int64_t ldv,
                                                                 bool v16, const float *inv, float *o) {
    enum { HD = DOTS_DECODE_HD, PVH = 3 };
    const size_t es = v16 ? 2 : 4;
    for (int h0 = 0; h0 < g; h0 += PVH) {
        const int nh = g - h0 < PVH ? g - h0 : PVH;
        __m512 acc[PVH][HD / 16];
        for (int h = 0; h < PVH; h++)
            for (int c = 0; c < HD / 16; c++) acc[h][c] = _mm512_setzero_ps();
        for (int64_t j = 0; j < n; j++) {
            const char *vj = (const char *)v + (size_t)(j * ldv) * es;
            if (j + DOTS_DECODE_PF_ROWS < n)
                for (size_t c = 0; c < HD * es; c += 64) _mm_prefetch(vj + (size_t)(DOTS_DECODE_PF_ROWS * ldv) * es + c, _MM_HINT_T0);
            for (int c = 0; c < HD / 16; c++) {
                const __m512 vc = v16 ? _mm512_castsi512_ps(_mm512_slli_epi32(
                                            _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(vj + 32 * c))), 16))
                                      : _mm512_loadu_ps((const float *)(const void *)vj + 16 * c);
                acc[0][c] = _mm512_fmadd_ps(_mm512_set1_ps(s[h0 * n + j]), vc, acc[0][c]);
                if (nh > 1) acc[1][c] = _mm512_fmadd_ps(_mm512_set1_ps(s[(h0 + 1) * n + j]), vc, acc[1][c]);
                if (nh > 2) acc[2][c] = _mm512_fmadd_ps(_mm512_set1_ps(s[(h0 + 2) * n + j]), vc, acc[2][c]);
            }
        }
        for (int h = 0; h < nh; h++)
            for (int c = 0; c < HD / 16; c++)
                _mm512_storeu_ps(o + (h0 + h) * HD + 16 * c, _mm512_mul_ps(acc[h][c], _mm512_set1_ps(inv[h0 + h])));
    }
}

#endif
