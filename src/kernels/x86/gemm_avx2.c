/*
 * gemm_avx2.c - AVX2 + FMA versions of the GEMM micro-kernel and the GEMV
 * rows, for x86 CPUs without AVX-512. The 32-column panel is done as two
 * 16-column halves, 4 rows at a time (8 ymm accumulators); every output is
 * one fp32 chain over k in order, as in the reference. Built with
 * -mavx2 -mfma -mf16c; called only when the CPU and OS support them.
 */
#include "kernels/kernels.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

static void micro_4x16(int rows, int cols, int64_t K, const float *x, int64_t ldx, const float *panel, float *y,
                       int64_t ldy, const float *bias) {
    const float *x0 = x, *x1 = rows > 1 ? x + ldx : x, *x2 = rows > 2 ? x + 2 * ldx : x, *x3 = rows > 3 ? x + 3 * ldx : x;
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    for (int64_t k = 0; k < K; k++) {
        __m256 b0 = _mm256_loadu_ps(panel + k * DOTS_GEMM_NR), b1 = _mm256_loadu_ps(panel + k * DOTS_GEMM_NR + 8);
        __m256 a = _mm256_broadcast_ss(x0 + k);
        c00 = _mm256_fmadd_ps(a, b0, c00), c01 = _mm256_fmadd_ps(a, b1, c01);
        a = _mm256_broadcast_ss(x1 + k);
        c10 = _mm256_fmadd_ps(a, b0, c10), c11 = _mm256_fmadd_ps(a, b1, c11);
        a = _mm256_broadcast_ss(x2 + k);
        c20 = _mm256_fmadd_ps(a, b0, c20), c21 = _mm256_fmadd_ps(a, b1, c21);
        a = _mm256_broadcast_ss(x3 + k);
        c30 = _mm256_fmadd_ps(a, b0, c30), c31 = _mm256_fmadd_ps(a, b1, c31);
    }
    float tmp[4][16];
    _mm256_storeu_ps(tmp[0], c00), _mm256_storeu_ps(tmp[0] + 8, c01);
    _mm256_storeu_ps(tmp[1], c10), _mm256_storeu_ps(tmp[1] + 8, c11);
    _mm256_storeu_ps(tmp[2], c20), _mm256_storeu_ps(tmp[2] + 8, c21);
    _mm256_storeu_ps(tmp[3], c30), _mm256_storeu_ps(tmp[3] + 8, c31);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) y[i * ldy + j] = tmp[i][j] + (bias ? bias[j] : 0.0f);
}

void dots_gemm_micro_avx2(int m_rows, int n_cols, int64_t K, const float *x, int64_t ldx, const float *panel, float *y,
                          int64_t ldy, const float *bias) {
    for (int half = 0; half < 2 && half * 16 < n_cols; half++) {
        int cols = n_cols - half * 16 < 16 ? n_cols - half * 16 : 16;
        const float *b = bias ? bias + half * 16 : NULL;
        for (int r = 0; r < m_rows; r += 4)
            micro_4x16(m_rows - r < 4 ? m_rows - r : 4, cols, K, x + r * ldx, ldx, panel + half * 16, y + r * ldy + half * 16,
                       ldy, b);
    }
}

static inline __m256 load_w8(const void *w, dots_dtype wt, int64_t k) {
    if (wt == DOTS_DTYPE_F32) return _mm256_loadu_ps((const float *)w + k);
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + k));
    if (wt == DOTS_DTYPE_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

static float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

void dots_gemv_rows_avx2(int M, const float *x, int64_t ldx, const void *w, dots_dtype wt, int64_t ldw, int64_t n0,
                         int64_t n1, int64_t K, float *y, int64_t ldy, const float *bias) {
    const int64_t es = wt == DOTS_DTYPE_F32 ? 4 : 2, K8 = K & ~(int64_t)7;
    for (int m = 0; m < M; m++) {
        const float *xm = x + m * ldx;
        for (int64_t n = n0; n < n1; n++) {
            const void *row = (const uint8_t *)w + n * ldw * es;
            __m256 a0 = _mm256_setzero_ps(), a1 = a0;
            int64_t k = 0;
            for (; k + 16 <= K8; k += 16) {
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(xm + k), load_w8(row, wt, k), a0);
                a1 = _mm256_fmadd_ps(_mm256_loadu_ps(xm + k + 8), load_w8(row, wt, k + 8), a1);
            }
            for (; k < K8; k += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(xm + k), load_w8(row, wt, k), a0);
            float s = hsum(_mm256_add_ps(a0, a1));
            for (; k < K; k++) s += xm[k] * dots_weight_at(row, wt, k);
            y[m * ldy + n] = s + (bias ? bias[n] : 0.0f);
        }
    }
}
#else
/* Built without AVX2 in the compiler: never selected. */
void dots_gemm_micro_avx2(int m_rows, int n_cols, int64_t K, const float *x, int64_t ldx, const float *panel, float *y,
                          int64_t ldy, const float *bias) {
    dots_gemm_micro_generic(m_rows, n_cols, K, x, ldx, panel, y, ldy, bias);
}
void dots_gemv_rows_avx2(int M, const float *x, int64_t ldx, const void *w, dots_dtype wt, int64_t ldw, int64_t n0,
                         int64_t n1, int64_t K, float *y, int64_t ldy, const float *bias) {
    dots_gemv_rows_generic(M, x, ldx, w, wt, ldw, n0, n1, K, y, ldy, bias);
}
#endif
