/*
 * gemm_bf16_neon.c - the bf16 products (precision "bf16") on ARM's BF16
 * extension: BFDOT multiplies bf16 pairs and adds both products to an fp32
 * lane, the operation vdpbf16ps is on x86, so the same packed layouts serve
 * (gemm.c: panels [K2][32] of pairs, X rows as pairs). This file provides the
 * functions gemm_avx512bf16.c provides on x86: the packing, the two
 * micro-kernels (Y and Y^T) and the decode rows. Built with +bf16; called
 * only where the CPU has it (dots_isa_bf16). The packing is plain C (round
 * to nearest even, as vcvtne2ps2bf16); the products differ from x86's in the
 * last bits only (BFDOT's own intermediate rounding), within the bf16
 * tolerance test_kernels checks against the fp32 reference.
 */
#include "kernels/kernels.h"

#if defined(__aarch64__)
#include <string.h>

static inline uint16_t bf16_rne(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* NaN stays NaN */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

void dots_pack_x_bf16(const float *x, int64_t ldx, int64_t rows, int64_t K, uint32_t *out, int64_t ldx2) {
    for (int64_t r = 0; r < rows; r++) {
        const float *src = x + r * ldx;
        uint16_t *dst = (uint16_t *)(out + r * ldx2);
        int64_t k = 0;
        for (; k < K; k++) dst[k] = bf16_rne(src[k]);
        for (; k < 2 * ldx2 && k < ((K + 1) & ~(int64_t)1); k++) dst[k] = 0;
    }
}

void dots_pack_w_bf16(const uint16_t *w, int64_t ldw, int64_t nc, int64_t K, int64_t K2, uint32_t *dst) {
    for (int64_t k2 = 0; k2 < K2; k2++)
        for (int64_t c = 0; c < DOTS_GEMM_NR; c++) {
            uint32_t lo = 0, hi = 0;
            if (c < nc) {
                if (2 * k2 < K) lo = w[c * ldw + 2 * k2];
                if (2 * k2 + 1 < K) hi = w[c * ldw + 2 * k2 + 1];
            }
            dst[k2 * DOTS_GEMM_NR + c] = lo | hi << 16;
        }
}

void dots_pack_xt_bf16(const float *x, int64_t ldx, int64_t rows, int64_t K, int64_t K2, uint32_t *dst) {
    for (int64_t k2 = 0; k2 < K2; k2++)
        for (int64_t c = 0; c < DOTS_GEMM_NR; c++) {
            uint32_t lo = 0, hi = 0;
            if (c < rows) {
                if (2 * k2 < K) lo = bf16_rne(x[c * ldx + 2 * k2]);
                if (2 * k2 + 1 < K) hi = bf16_rne(x[c * ldx + 2 * k2 + 1]);
            }
            dst[k2 * DOTS_GEMM_NR + c] = lo | hi << 16;
        }
}
#endif

#if defined(__aarch64__) && defined(__ARM_FEATURE_BF16_VECTOR_ARITHMETIC)
#include <arm_neon.h>

/* rows (<= 4) of x pairs times 16 columns of the panel: out[r][c] */
static void micro_4x16(int rows, int64_t K2, const uint32_t *x, int64_t ldx2, const uint32_t *panel, float out[4][16]) {
    float32x4_t a[4][4];
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) a[r][c] = vdupq_n_f32(0.0f);
    for (int64_t k = 0; k < K2; k++) {
        const uint32_t *p = panel + k * DOTS_GEMM_NR;
        const bfloat16x8_t b0 = vreinterpretq_bf16_u32(vld1q_u32(p)), b1 = vreinterpretq_bf16_u32(vld1q_u32(p + 4));
        const bfloat16x8_t b2 = vreinterpretq_bf16_u32(vld1q_u32(p + 8)), b3 = vreinterpretq_bf16_u32(vld1q_u32(p + 12));
        for (int r = 0; r < 4; r++) {
            if (r >= rows) break;
            const bfloat16x8_t xv = vreinterpretq_bf16_u32(vdupq_n_u32(x[r * ldx2 + k]));
            a[r][0] = vbfdotq_f32(a[r][0], xv, b0);
            a[r][1] = vbfdotq_f32(a[r][1], xv, b1);
            a[r][2] = vbfdotq_f32(a[r][2], xv, b2);
            a[r][3] = vbfdotq_f32(a[r][3], xv, b3);
        }
    }
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < 4; c++) vst1q_f32(out[r] + 4 * c, a[r][c]);
}

/* the 8 x 32 tile of both micro-kernels, as out[row][column] */
static void tile(int m_rows, int n_cols, int64_t K2, const uint32_t *x, int64_t ldx2, const uint32_t *panel,
                 float out[8][32]) {
    float part[4][16];
    for (int i0 = 0; i0 < m_rows; i0 += 4) {
        const int rows = m_rows - i0 < 4 ? m_rows - i0 : 4;
        for (int half = 0; half < 2 && 16 * half < n_cols; half++) {
            micro_4x16(rows, K2, x + i0 * ldx2, ldx2, panel + 16 * half, part);
            for (int r = 0; r < rows; r++) memcpy(out[i0 + r] + 16 * half, part[r], sizeof part[r]);
        }
    }
}

void dots_gemm_micro_bf16(int m_rows, int n_cols, int64_t K2, const uint32_t *x, int64_t ldx2, const uint32_t *panel,
                          float *y, int64_t ldy, const float *bias) {
    float out[8][32];
    tile(m_rows, n_cols, K2, x, ldx2, panel, out);
    for (int i = 0; i < m_rows; i++)
        for (int c = 0; c < n_cols; c++) y[i * ldy + c] = out[i][c] + (bias ? bias[c] : 0.0f);
}

void dots_gemm_micro_bf16_t(int m_rows, int n_cols, int64_t K2, const uint32_t *x, int64_t ldx2, const uint32_t *panel,
                            const uint32_t *x_next, float *y, int64_t ldy, const float *bias) {
    (void)x_next;
    float out[8][32];
    tile(m_rows, n_cols, K2, x, ldx2, panel, out);
    for (int c = 0; c < n_cols; c++)
        for (int i = 0; i < m_rows; i++) y[c * ldy + i] = out[i][c] + (bias ? bias[i] : 0.0f);
}

/* Decode: every output one chain over k (eight pairs a step, then the
 * pairs left, then one horizontal sum), whatever M: a row of X gets the same
 * bits alone or in a batch. */
void dots_gemv_rows_bf16dp(int M, const uint16_t *xb, int64_t ldxb, const uint16_t *w, int64_t ldw, int64_t n0, int64_t n1,
                           int64_t K, float *y, int64_t ldy, const float *bias) {
    const int64_t K8 = K / 8 * 8;
    for (int64_t n = n0; n < n1; n++) {
        const uint16_t *row = w + n * ldw;
        for (int m = 0; m < M; m++) {
            const uint16_t *xr = xb + m * ldxb;
            float32x4_t acc = vdupq_n_f32(0.0f);
            for (int64_t k = 0; k < K8; k += 8)
                acc = vbfdotq_f32(acc, vreinterpretq_bf16_u16(vld1q_u16(xr + k)), vreinterpretq_bf16_u16(vld1q_u16(row + k)));
            float s = vaddvq_f32(acc);
            for (int64_t k = K8; k < K; k++) {
                const uint32_t a = (uint32_t)xr[k] << 16, b = (uint32_t)row[k] << 16;
                float fa, fb;
                memcpy(&fa, &a, 4);
                memcpy(&fb, &b, 4);
                s += fa * fb;
            }
            y[m * ldy + n] = s + (bias ? bias[n] : 0.0f);
        }
    }
}
#elif defined(__aarch64__)
/* a compiler without the BF16 intrinsics: plain C with the same meaning */
static float bf(uint32_t v) {
    float f;
    v <<= 16;
    memcpy(&f, &v, 4);
    return f;
}

void dots_gemm_micro_bf16(int m_rows, int n_cols, int64_t K2, const uint32_t *x, int64_t ldx2, const uint32_t *panel,
                          float *y, int64_t ldy, const float *bias) {
    for (int i = 0; i < m_rows; i++)
        for (int c = 0; c < n_cols; c++) {
            float s = 0.0f;
            for (int64_t k = 0; k < K2; k++) {
                const uint32_t a = x[i * ldx2 + k], b = panel[k * DOTS_GEMM_NR + c];
                s += bf(a & 0xFFFF) * bf(b & 0xFFFF) + bf(a >> 16) * bf(b >> 16);
            }
            y[i * ldy + c] = s + (bias ? bias[c] : 0.0f);
        }
}

void dots_gemm_micro_bf16_t(int m_rows, int n_cols, int64_t K2, const uint32_t *x, int64_t ldx2, const uint32_t *panel,
                            const uint32_t *x_next, float *y, int64_t ldy, const float *bias) {
    (void)x_next;
    for (int i = 0; i < m_rows; i++)
        for (int c = 0; c < n_cols; c++) {
            float s = 0.0f;
            for (int64_t k = 0; k < K2; k++) {
                const uint32_t a = x[i * ldx2 + k], b = panel[k * DOTS_GEMM_NR + c];
                s += bf(a & 0xFFFF) * bf(b & 0xFFFF) + bf(a >> 16) * bf(b >> 16);
            }
            y[c * ldy + i] = s + (bias ? bias[i] : 0.0f);
        }
}

void dots_gemv_rows_bf16dp(int M, const uint16_t *xb, int64_t ldxb, const uint16_t *w, int64_t ldw, int64_t n0, int64_t n1,
                           int64_t K, float *y, int64_t ldy, const float *bias) {
    for (int64_t n = n0; n < n1; n++)
        for (int m = 0; m < M; m++) {
            float s = 0.0f;
            for (int64_t k = 0; k < K; k++) s += bf(xb[m * ldxb + k]) * bf(w[n * ldw + k]);
            y[m * ldy + n] = s + (bias ? bias[n] : 0.0f);
        }
}
#endif
