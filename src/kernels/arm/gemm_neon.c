/*
 * gemm_neon.c - AdvSIMD (NEON) paths of the fp32 matrix multiply, for every
 * AArch64 CPU: the packed-panel micro-kernel (FMLA) and the decode
 * matrix-vector rows on f32, bf16 and f16 weights. Their scalar twins are
 * dots_gemm_micro_generic and dots_gemv_rows_generic (gemm.c); test_kernels
 * checks both against dots_gemm_ref at odd sizes. Each output keeps one
 * accumulation chain whatever the number of rows of X, so a batch's rows get
 * the bits each gets alone.
 */
#include "kernels/kernels.h"

#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#include <string.h>

/* Four rows of x times 16 columns of the panel: 16 accumulators and 4 panel
 * registers stay in the 32 vector registers. */
static void micro_4x16(int rows, int64_t K, const float *x, int64_t ldx, const float *panel, float out[4][16]) {
    float32x4_t a[4][4];
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) a[r][c] = vdupq_n_f32(0.0f);
    for (int64_t k = 0; k < K; k++) {
        const float *p = panel + k * DOTS_GEMM_NR;
        const float32x4_t p0 = vld1q_f32(p), p1 = vld1q_f32(p + 4), p2 = vld1q_f32(p + 8), p3 = vld1q_f32(p + 12);
        for (int r = 0; r < 4; r++) {
            if (r >= rows) break;
            const float xv = x[r * ldx + k];
            a[r][0] = vfmaq_n_f32(a[r][0], p0, xv);
            a[r][1] = vfmaq_n_f32(a[r][1], p1, xv);
            a[r][2] = vfmaq_n_f32(a[r][2], p2, xv);
            a[r][3] = vfmaq_n_f32(a[r][3], p3, xv);
        }
    }
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < 4; c++) vst1q_f32(out[r] + 4 * c, a[r][c]);
}

void dots_gemm_micro_neon(int m_rows, int n_cols, int64_t K, const float *x, int64_t ldx, const float *panel, float *y,
                          int64_t ldy, const float *bias) {
    float out[4][16];
    for (int i0 = 0; i0 < m_rows; i0 += 4) {
        const int rows = m_rows - i0 < 4 ? m_rows - i0 : 4;
        for (int half = 0; half < 2; half++) {
            const int c0 = 16 * half, nc = n_cols - c0 < 16 ? n_cols - c0 : 16;
            if (nc <= 0) break;
            micro_4x16(rows, K, x + i0 * ldx, ldx, panel + c0, out);
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < nc; c++) y[(i0 + r) * ldy + c0 + c] = out[r][c] + (bias ? bias[c0 + c] : 0.0f);
        }
    }
}

/* 4 weights from w + k as fp32 */
static inline float32x4_t load_w4(const void *w, dots_dtype wt, int64_t k) {
    if (wt == DOTS_DTYPE_BF16) return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)w + k), 16));
    if (wt == DOTS_DTYPE_F16) return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)w + k)));
    return vld1q_f32((const float *)w + k);
}

static inline float w_at(const void *w, dots_dtype wt, int64_t k) {
    if (wt == DOTS_DTYPE_BF16) {
        uint32_t u = (uint32_t)((const uint16_t *)w)[k] << 16;
        float f;
        memcpy(&f, &u, sizeof f);
        return f;
    }
    if (wt == DOTS_DTYPE_F16) return (float)vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(((const uint16_t *)w)[k]))), 0);
    return ((const float *)w)[k];
}

void dots_gemv_rows_neon(int M, const float *x, int64_t ldx, const void *w, dots_dtype wt, int64_t ldw, int64_t n0,
                         int64_t n1, int64_t K, float *y, int64_t ldy, const float *bias) {
    const size_t esz = wt == DOTS_DTYPE_F32 ? 4 : 2;
    const int64_t K8 = K / 8 * 8;
    for (int64_t n = n0; n < n1; n++) {
        const void *row = (const uint8_t *)w + (size_t)(n * ldw) * esz;
        float32x4_t a[DOTS_GEMV_MAX_M][2];
        for (int m = 0; m < M; m++) a[m][0] = a[m][1] = vdupq_n_f32(0.0f);
        for (int64_t k = 0; k < K8; k += 8) {
            const float32x4_t w0 = load_w4(row, wt, k), w1 = load_w4(row, wt, k + 4);
            for (int m = 0; m < M; m++) {
                a[m][0] = vfmaq_f32(a[m][0], vld1q_f32(x + m * ldx + k), w0);
                a[m][1] = vfmaq_f32(a[m][1], vld1q_f32(x + m * ldx + k + 4), w1);
            }
        }
        for (int m = 0; m < M; m++) {
            float acc = vaddvq_f32(vaddq_f32(a[m][0], a[m][1]));
            for (int64_t k = K8; k < K; k++) acc += x[m * ldx + k] * w_at(row, wt, k);
            y[m * ldy + n] = acc + (bias ? bias[n] : 0.0f);
        }
    }
}
#else
void dots_gemm_micro_neon(int m_rows, int n_cols, int64_t K, const float *x, int64_t ldx, const float *panel, float *y,
                          int64_t ldy, const float *bias) {
    dots_gemm_micro_generic(m_rows, n_cols, K, x, ldx, panel, y, ldy, bias);
}
void dots_gemv_rows_neon(int M, const float *x, int64_t ldx, const void *w, dots_dtype wt, int64_t ldw, int64_t n0,
                         int64_t n1, int64_t K, float *y, int64_t ldy, const float *bias) {
    dots_gemv_rows_generic(M, x, ldx, w, wt, ldw, n0, n1, K, y, ldy, bias);
}
#endif
