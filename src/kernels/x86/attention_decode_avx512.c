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
#include "kernels/x86/attention_decode.h"

#define HD DOTS_DECODE_HD

bool dots_attention_decode_group_avx512(float *s, float *o, const float *q, int g, const float *kk, int64_t ldk, const float *v,
                                        int64_t ldv, int64_t n, int64_t d, float scale) {
    if (d != HD || g < 1 || g > 64 || n < 1) return false;
    /* scores s[h][j] = q_h . k_j * scale */
    for (int64_t j = 0; j < n; j++) {
        const float *kj = kk + j * ldk;
        if (j + DOTS_DECODE_PF_ROWS < n)
            for (int c = 0; c < HD * 4; c += 64) _mm_prefetch((const char *)(kj + DOTS_DECODE_PF_ROWS * ldk) + c, _MM_HINT_T0);
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
    float inv[64];
    dots_decode_softmax(s, g, n, inv);
    dots_decode_pv(s, g, n, v, ldv, false, inv, o);
    return true;
}
#else
bool dots_attention_decode_group_avx512(float *s, float *o, const float *q, int g, const float *kk, int64_t ldk, const float *v,
                                        int64_t ldv, int64_t n, int64_t d, float scale) {
    (void)s, (void)o, (void)q, (void)g, (void)kk, (void)ldk, (void)v, (void)ldv, (void)n, (void)d, (void)scale;
    return false;
}
#endif
