/*
 * gemv_q8act_dotprod.c - decode on the block formats (Q8_0, Q4_0, Q4_K) with
 * int8 activations (precision "bf16") on ARM's DotProd extension: each
 * weight block times its activation block is SDOT (four int8 products summed
 * into each int32 lane), the same exact integer dot the reference takes, and
 * the scales are applied in fp32 in block order with the reference's
 * expressions, so the results equal dots_gemv_rows_q8act_ref bit for bit.
 * Built with +dotprod; called only where the CPU has it (dots_isa_arm).
 */
#include "core/fp.h"
#include "kernels/kernels.h"
#include "kernels/quant.h"

#include <string.h>

#if defined(__aarch64__) && defined(__ARM_FEATURE_DOTPROD)
#include <arm_neon.h>

/* sum over 32 of a[i] b[i], a and b int8 */
static inline int32_t dot32(int8x16_t a0, int8x16_t a1, const int8_t *b) {
    int32x4_t s = vdotq_s32(vdupq_n_s32(0), a0, vld1q_s8(b));
    s = vdotq_s32(s, a1, vld1q_s8(b + 16));
    return vaddvq_s32(s);
}

void dots_gemv_rows_q8act_dotprod(const dots_act_q8 *x, const void *w, dots_dtype wt, int64_t ldw, int64_t n0, int64_t n1,
                                  float *y, int64_t ldy, const float *bias) {
    const int64_t nx = x->K / 32;
    const dots_dtype base = dots_dtype_r16_base(wt);
    const uint8x16_t low4 = vdupq_n_u8(0xF);
    uint8_t tmp[144];
    for (int64_t n = n0; n < n1; n++) {
        float acc[DOTS_DECODE_MAX_M];
        for (int m = 0; m < x->M; m++) acc[m] = 0.0f;
        if (base == DOTS_DTYPE_Q8_0 || base == DOTS_DTYPE_Q4_0) {
            for (int64_t b = 0; b < nx; b++) {
                const uint8_t *blk = dots_row_block(w, wt, ldw, n, b, tmp);
                const float d = dots_f16_at(blk);
                int8x16_t w0, w1;
                if (base == DOTS_DTYPE_Q8_0) {
                    w0 = vld1q_s8((const int8_t *)blk + 2);
                    w1 = vld1q_s8((const int8_t *)blk + 18);
                } else { /* nibbles: low = values 0..15, high = 16..31, each 0..15 (the -8 is in the sum term) */
                    const uint8x16_t q = vld1q_u8(blk + 2);
                    w0 = vreinterpretq_s8_u8(vandq_u8(q, low4));
                    w1 = vreinterpretq_s8_u8(vshrq_n_u8(q, 4));
                }
                for (int m = 0; m < x->M; m++) {
                    const int32_t dot = dot32(w0, w1, x->q + m * x->K + 32 * b);
                    const float xd = x->d[m * nx + b];
                    if (base == DOTS_DTYPE_Q8_0) acc[m] += d * xd * (float)dot;
                    else acc[m] += d * xd * (float)(dot - 8 * x->sum[m * nx + b]);
                }
            }
        } else { /* Q4_K: 8 sub-blocks of 32 per 256 */
            for (int64_t sb = 0; sb < nx / 8; sb++) {
                const uint8_t *blk = dots_row_block(w, wt, ldw, n, sb, tmp);
                const float d = dots_f16_at(blk), dmin = dots_f16_at(blk + 2);
                for (int j = 0; j < 8; j++) {
                    uint8_t sc, mn;
                    dots_q4k_scale_min(j, blk + 4, &sc, &mn);
                    const uint8_t *qs = blk + 16 + 32 * (j / 2);
                    const uint8x16_t q0 = vld1q_u8(qs), q1 = vld1q_u8(qs + 16);
                    const int8x16_t w0 = vreinterpretq_s8_u8((j & 1) ? vshrq_n_u8(q0, 4) : vandq_u8(q0, low4));
                    const int8x16_t w1 = vreinterpretq_s8_u8((j & 1) ? vshrq_n_u8(q1, 4) : vandq_u8(q1, low4));
                    const int64_t b = 8 * sb + j;
                    for (int m = 0; m < x->M; m++) {
                        const int32_t dot = dot32(w0, w1, x->q + m * x->K + 32 * b);
                        const float xd = x->d[m * nx + b];
                        acc[m] += d * (float)sc * xd * (float)dot - dmin * (float)mn * xd * (float)x->sum[m * nx + b];
                    }
                }
            }
        }
        for (int m = 0; m < x->M; m++) y[m * ldy + n] = acc[m] + (bias ? bias[n] : 0.0f);
    }
}
#else
void dots_gemv_rows_q8act_dotprod(const dots_act_q8 *x, const void *w, dots_dtype wt, int64_t ldw, int64_t n0, int64_t n1,
                                  float *y, int64_t ldy, const float *bias) {
    dots_gemv_rows_q8act_ref(x, w, wt, ldw, n0, n1, y, ldy, bias);
}
#endif
