/*
 * attention_decode_avx512.c - one decode step of attention for the query
 * heads that share a KV head (grouped-query attention; dots.ocr: 6 per KV
 * head, head_dim 128).
 *
 * Per head, the generic path reads every key and value row once per query
 * head and sums p_j v_j in scalar code; at a page's context (1-5k tokens)
 * that cost as much as streaming the 4-bit weights. Here each key row is
 * loaded once into registers for all the group's scores, and each value row
 * once per three heads (24 accumulators of the 32 registers).
 */
#include "kernels/kernels.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#include <math.h>

#define HD 128 /* the head size this path is written for */
#define PV_HEADS 3

bool dots_attention_decode_group_avx512(float *s, float *o, const float *q, int g, const float *kk, int64_t ldk, const float *v,
                                        int64_t ldv, int64_t n, int64_t d, float scale) {
    if (d != HD || g < 1 || g > 64 || n < 1) return false;
    /* scores s[h][j] = q_h . k_j * scale */
    enum { PF_ROWS = 8 }; /* strided rows: prefetched ahead, or each arrives at DRAM latency */
    for (int64_t j = 0; j < n; j++) {
        const float *kj = kk + j * ldk;
        if (j + PF_ROWS < n)
            for (int c = 0; c < HD * 4; c += 64) _mm_prefetch((const char *)(kj + PF_ROWS * ldk) + c, _MM_HINT_T0);
        __m512 kr[HD / 16];
        for (int c = 0; c < HD / 16; c++) kr[c] = _mm512_loadu_ps(kj + 16 * c);
        for (int h = 0; h < g; h++) {
            const float *qh = q + h * HD;
            __m512 a0 = _mm512_mul_ps(_mm512_loadu_ps(qh), kr[0]), a1 = _mm512_mul_ps(_mm512_loadu_ps(qh + 16), kr[1]);
            for (int c = 2; c < HD / 16; c += 2) {
                a0 = _mm512_fmadd_ps(_mm512_loadu_ps(qh + 16 * c), kr[c], a0);
                a1 = _mm512_fmadd_ps(_mm512_loadu_ps(qh + 16 * c + 16), kr[c + 1], a1);
            }
            s[h * n + j] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) * scale;
        }
    }
    /* softmax per head, unnormalised: s = e^(s - max); 1 / sum at the end */
    float inv[64];
    for (int h = 0; h < g; h++) {
        float *sh = s + h * n;
        __m512 mx = _mm512_set1_ps(-INFINITY);
        int64_t j = 0;
        for (; j + 16 <= n; j += 16) mx = _mm512_max_ps(mx, _mm512_loadu_ps(sh + j));
        float m = _mm512_reduce_max_ps(mx);
        for (; j < n; j++) m = sh[j] > m ? sh[j] : m;
        inv[h] = 1.0f / dots_exp_shift_sum_avx512(sh, n, m);
    }
    /* o_h = sum_j p_hj v_j / sum_h, three heads per pass over V */
    for (int h0 = 0; h0 < g; h0 += PV_HEADS) {
        const int nh = g - h0 < PV_HEADS ? g - h0 : PV_HEADS;
        __m512 acc[PV_HEADS][HD / 16];
        for (int h = 0; h < PV_HEADS; h++)
            for (int c = 0; c < HD / 16; c++) acc[h][c] = _mm512_setzero_ps();
        for (int64_t j = 0; j < n; j++) {
            const float *vj = v + j * ldv;
            if (j + PF_ROWS < n)
                for (int c = 0; c < HD * 4; c += 64) _mm_prefetch((const char *)(vj + PF_ROWS * ldv) + c, _MM_HINT_T0);
            for (int c = 0; c < HD / 16; c++) {
                const __m512 vc = _mm512_loadu_ps(vj + 16 * c);
                acc[0][c] = _mm512_fmadd_ps(_mm512_set1_ps(s[h0 * n + j]), vc, acc[0][c]);
                if (nh > 1) acc[1][c] = _mm512_fmadd_ps(_mm512_set1_ps(s[(h0 + 1) * n + j]), vc, acc[1][c]);
                if (nh > 2) acc[2][c] = _mm512_fmadd_ps(_mm512_set1_ps(s[(h0 + 2) * n + j]), vc, acc[2][c]);
            }
        }
        for (int h = 0; h < nh; h++)
            for (int c = 0; c < HD / 16; c++)
                _mm512_storeu_ps(o + (h0 + h) * HD + 16 * c, _mm512_mul_ps(acc[h][c], _mm512_set1_ps(inv[h0 + h])));
    }
    return true;
}
#else
bool dots_attention_decode_group_avx512(float *s, float *o, const float *q, int g, const float *kk, int64_t ldk, const float *v,
                                        int64_t ldv, int64_t n, int64_t d, float scale) {
    (void)s, (void)o, (void)q, (void)g, (void)kk, (void)ldk, (void)v, (void)ldv, (void)n, (void)d, (void)scale;
    return false;
}
#endif
