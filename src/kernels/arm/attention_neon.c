/*
 * attention_neon.c - one decode step of attention for the query heads that
 * share a KV head (grouped-query attention: dots.ocr has 6 per KV head,
 * head size 128) on AdvSIMD, as attention_decode_avx512.c on x86: each key
 * row meets all the group's queries while it is in L1, the softmax
 * exponentials are vector ones, and each value row is read once per three
 * heads and 32 columns (24 accumulators of the 32 registers). The portable
 * twin is the per-head path of dots_attention_decode_group.
 */
#include "kernels/kernels.h"

#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#include <math.h>

enum { HD = 128, PVH = 3, CB = 32 };

bool dots_attention_decode_group_neon(float *s, float *o, const float *q, int g, const float *kk, int64_t ldk,
                                      const float *v, int64_t ldv, int64_t n, int64_t d, float scale) {
    if (d != HD || g < 1 || g > 64 || n < 1) return false;
    /* scores s[h][j] = q_h . k_j * scale */
    for (int64_t j = 0; j < n; j++) {
        const float *kj = kk + j * ldk;
        for (int h = 0; h < g; h++) {
            const float *qh = q + h * HD;
            float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
            for (int c = 0; c < HD; c += 16) {
                a0 = vfmaq_f32(a0, vld1q_f32(qh + c), vld1q_f32(kj + c));
                a1 = vfmaq_f32(a1, vld1q_f32(qh + c + 4), vld1q_f32(kj + c + 4));
                a2 = vfmaq_f32(a2, vld1q_f32(qh + c + 8), vld1q_f32(kj + c + 8));
                a3 = vfmaq_f32(a3, vld1q_f32(qh + c + 12), vld1q_f32(kj + c + 12));
            }
            s[h * n + j] = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3))) * scale;
        }
    }
    float inv[64];
    for (int h = 0; h < g; h++) {
        float *sh = s + h * n, m = -INFINITY;
        for (int64_t j = 0; j < n; j++) m = sh[j] > m ? sh[j] : m;
        inv[h] = 1.0f / dots_exp_shift_sum_neon(sh, n, m);
    }
    /* o_h = inv_h sum_j s[h][j] v_j, three heads x 32 columns at a time */
    for (int h0 = 0; h0 < g; h0 += PVH) {
        const int nh = g - h0 < PVH ? g - h0 : PVH;
        for (int c0 = 0; c0 < HD; c0 += CB) {
            float32x4_t acc[PVH][CB / 4];
            for (int h = 0; h < PVH; h++)
                for (int c = 0; c < CB / 4; c++) acc[h][c] = vdupq_n_f32(0.0f);
            for (int64_t j = 0; j < n; j++) {
                const float *vj = v + j * ldv + c0;
                for (int c = 0; c < CB / 4; c++) {
                    const float32x4_t vc = vld1q_f32(vj + 4 * c);
                    acc[0][c] = vfmaq_n_f32(acc[0][c], vc, s[h0 * n + j]);
                    if (nh > 1) acc[1][c] = vfmaq_n_f32(acc[1][c], vc, s[(h0 + 1) * n + j]);
                    if (nh > 2) acc[2][c] = vfmaq_n_f32(acc[2][c], vc, s[(h0 + 2) * n + j]);
                }
            }
            for (int h = 0; h < nh; h++)
                for (int c = 0; c < CB / 4; c++)
                    vst1q_f32(o + (h0 + h) * HD + c0 + 4 * c, vmulq_n_f32(acc[h][c], inv[h0 + h]));
        }
    }
    return true;
}
#else
bool dots_attention_decode_group_neon(float *s, float *o, const float *q, int g, const float *kk, int64_t ldk,
                                      const float *v, int64_t ldv, int64_t n, int64_t d, float scale) {
    (void)s, (void)o, (void)q, (void)g, (void)kk, (void)ldk, (void)v, (void)ldv, (void)n, (void)d, (void)scale;
    return false;
}
#endif
