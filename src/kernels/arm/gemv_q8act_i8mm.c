/*
 * gemv_q8act_i8mm.c - decode on the block formats with int8 activations on
 * ARM's I8MM extension: SMMLA multiplies a 2x8 by an 8x2 int8 matrix into a
 * 2x2 of int32 sums, so two weight rows meet two rows of X (two sequences of
 * a batch) in one instruction. The integer block dots are exact and the
 * scales are applied as dots_gemv_rows_q8act_ref applies them, in block
 * order, so the results equal the reference bit for bit, whatever the batch.
 * Odd rows left over go to the DotProd kernel. Built with +i8mm; called only
 * where the CPU has it.
 */
#include "core/fp.h"
#include "kernels/kernels.h"
#include "kernels/quant.h"

#include <string.h>

#if defined(__aarch64__) && defined(__ARM_FEATURE_MATMUL_INT8)
#include <arm_neon.h>

/* The 32 int8 weights of block b (Q8_0, Q4_0 as 0..15) or of sub-block j of a Q4_K block. */
static void block_q(dots_dtype base, const uint8_t *blk, int j, int8_t q[32]) {
    if (base == DOTS_DTYPE_Q8_0) {
        memcpy(q, blk + 2, 32);
    } else if (base == DOTS_DTYPE_Q4_0) {
        for (int i = 0; i < 16; i++) {
            q[i] = (int8_t)(blk[2 + i] & 0xF);
            q[16 + i] = (int8_t)(blk[2 + i] >> 4);
        }
    } else {
        const uint8_t *qs = blk + 16 + 32 * (j / 2);
        const int shift = 4 * (j & 1);
        for (int i = 0; i < 32; i++) q[i] = (int8_t)((qs[i] >> shift) & 0xF);
    }
}

/* dot[r][c] = sum over 32 of w_r[i] x_c[i] for two weight rows and two rows of x */
static inline void dot2x2(const int8_t *w0, const int8_t *w1, const int8_t *x0, const int8_t *x1, int32_t dot[2][2]) {
    int32x4_t acc = vdupq_n_s32(0);
    for (int c = 0; c < 32; c += 8) {
        const int8x16_t a = vcombine_s8(vld1_s8(w0 + c), vld1_s8(w1 + c));
        const int8x16_t b = vcombine_s8(vld1_s8(x0 + c), vld1_s8(x1 + c));
        acc = vmmlaq_s32(acc, a, b); /* [w0.x0, w0.x1, w1.x0, w1.x1] */
    }
    dot[0][0] = vgetq_lane_s32(acc, 0);
    dot[0][1] = vgetq_lane_s32(acc, 1);
    dot[1][0] = vgetq_lane_s32(acc, 2);
    dot[1][1] = vgetq_lane_s32(acc, 3);
}

void dots_gemv_rows_q8act_i8mm(const dots_act_q8 *x, const void *w, dots_dtype wt, int64_t ldw, int64_t n0, int64_t n1,
                               float *y, int64_t ldy, const float *bias) {
    const int M2 = x->M / 2 * 2;
    const int64_t N2 = n0 + (n1 - n0) / 2 * 2;
    if (M2 == 0) {
        dots_gemv_rows_q8act_dotprod(x, w, wt, ldw, n0, n1, y, ldy, bias);
        return;
    }
    const int64_t nx = x->K / 32;
    const dots_dtype base = dots_dtype_r16_base(wt);
    const bool k4 = base == DOTS_DTYPE_Q4_K;
    uint8_t tmp0[144], tmp1[144];
    for (int64_t n = n0; n < N2; n += 2) {
        float acc[2][DOTS_DECODE_MAX_M];
        for (int m = 0; m < M2; m++) acc[0][m] = acc[1][m] = 0.0f;
        for (int64_t b = 0; b < nx; b++) {
            const int64_t blk_i = k4 ? b / 8 : b;
            const int j = (int)(b % 8);
            const uint8_t *blk[2] = {dots_row_block(w, wt, ldw, n, blk_i, tmp0), dots_row_block(w, wt, ldw, n + 1, blk_i, tmp1)};
            int8_t q[2][32];
            float d[2], dmin[2] = {0, 0};
            uint8_t sc[2] = {0, 0}, mn[2] = {0, 0};
            for (int r = 0; r < 2; r++) {
                block_q(base, blk[r], j, q[r]);
                d[r] = dots_f16_at(blk[r]);
                if (k4) {
                    dmin[r] = dots_f16_at(blk[r] + 2);
                    dots_q4k_scale_min(j, blk[r] + 4, &sc[r], &mn[r]);
                }
            }
            for (int m = 0; m < M2; m += 2) {
                int32_t dot[2][2];
                dot2x2(q[0], q[1], x->q + m * x->K + 32 * b, x->q + (m + 1) * x->K + 32 * b, dot);
                for (int r = 0; r < 2; r++)
                    for (int c = 0; c < 2; c++) {
                        const float xd = x->d[(m + c) * nx + b];
                        const int32_t xs = x->sum[(m + c) * nx + b];
                        if (base == DOTS_DTYPE_Q8_0) acc[r][m + c] += d[r] * xd * (float)dot[r][c];
                        else if (base == DOTS_DTYPE_Q4_0) acc[r][m + c] += d[r] * xd * (float)(dot[r][c] - 8 * xs);
                        else acc[r][m + c] += d[r] * (float)sc[r] * xd * (float)dot[r][c] - dmin[r] * (float)mn[r] * xd * (float)xs;
                    }
            }
        }
        for (int r = 0; r < 2; r++)
            for (int m = 0; m < M2; m++) y[m * ldy + n + r] = acc[r][m] + (bias ? bias[n + r] : 0.0f);
    }
    if (N2 < n1) { /* the odd weight row, every row of x */
        dots_act_q8 all = *x;
        dots_gemv_rows_q8act_dotprod(&all, w, wt, ldw, N2, n1, y, ldy, bias);
    }
    if (M2 < x->M) { /* the odd row of x, the paired weight rows */
        dots_act_q8 last = *x;
        last.q = x->q + M2 * x->K;
        last.d = x->d + M2 * nx;
        last.sum = x->sum + M2 * nx;
        last.M = 1;
        dots_gemv_rows_q8act_dotprod(&last, w, wt, ldw, n0, N2, y + M2 * ldy, ldy, bias);
    }
}
#else
void dots_gemv_rows_q8act_i8mm(const dots_act_q8 *x, const void *w, dots_dtype wt, int64_t ldw, int64_t n0, int64_t n1,
                               float *y, int64_t ldy, const float *bias) {
    dots_gemv_rows_q8act_dotprod(x, w, wt, ldw, n0, n1, y, ldy, bias);
}
#endif
