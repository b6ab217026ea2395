/*
 * gemm_avx512.c - the AVX-512 micro-kernel of dots_gemm: an 8 x 32 block of
 * outputs in 16 zmm accumulators; per k, two loads of the packed panel, 8
 * broadcasts of X and 16 FMAs. Each output is a single fp32 chain over k in
 * order, the reference's order. Built with -mavx512f; called only when the
 * CPU and OS support it (core/cpu.c).
 */
#include "kernels/kernels.h"

#if defined(__AVX512F__)
#include <immintrin.h>

void dots_gemm_micro_avx512(int m_rows, int n_cols, int64_t K, const float *x, int64_t ldx, const float *panel,
                            float *y, int64_t ldy, const float *bias) {
    /* fewer than 8 rows: the missing rows re-read row 0 and are not stored */
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
#define ROW(i) (m_rows > (i) ? x + (i) * ldx : x)
    const float *x0 = x, *x1 = ROW(1), *x2 = ROW(2), *x3 = ROW(3), *x4 = ROW(4), *x5 = ROW(5), *x6 = ROW(6), *x7 = ROW(7);
#undef ROW
    for (int64_t k = 0; k < K; k++) {
        __m512 b0 = _mm512_load_ps(panel + k * 32), b1 = _mm512_load_ps(panel + k * 32 + 16);
        __m512 a;
        a = _mm512_set1_ps(x0[k]); c00 = _mm512_fmadd_ps(a, b0, c00); c01 = _mm512_fmadd_ps(a, b1, c01);
        a = _mm512_set1_ps(x1[k]); c10 = _mm512_fmadd_ps(a, b0, c10); c11 = _mm512_fmadd_ps(a, b1, c11);
        a = _mm512_set1_ps(x2[k]); c20 = _mm512_fmadd_ps(a, b0, c20); c21 = _mm512_fmadd_ps(a, b1, c21);
        a = _mm512_set1_ps(x3[k]); c30 = _mm512_fmadd_ps(a, b0, c30); c31 = _mm512_fmadd_ps(a, b1, c31);
        a = _mm512_set1_ps(x4[k]); c40 = _mm512_fmadd_ps(a, b0, c40); c41 = _mm512_fmadd_ps(a, b1, c41);
        a = _mm512_set1_ps(x5[k]); c50 = _mm512_fmadd_ps(a, b0, c50); c51 = _mm512_fmadd_ps(a, b1, c51);
        a = _mm512_set1_ps(x6[k]); c60 = _mm512_fmadd_ps(a, b0, c60); c61 = _mm512_fmadd_ps(a, b1, c61);
        a = _mm512_set1_ps(x7[k]); c70 = _mm512_fmadd_ps(a, b0, c70); c71 = _mm512_fmadd_ps(a, b1, c71);
    }
    __m512 acc[8][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}, {c60, c61}, {c70, c71}};
    __mmask16 m0 = n_cols >= 16 ? 0xFFFF : (__mmask16)((1u << n_cols) - 1);
    __mmask16 m1 = n_cols >= 32 ? 0xFFFF : n_cols <= 16 ? 0 : (__mmask16)((1u << (n_cols - 16)) - 1);
    __m512 bb0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    __m512 bb1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
    for (int i = 0; i < m_rows; i++) {
        _mm512_mask_storeu_ps(y + i * ldy, m0, _mm512_add_ps(acc[i][0], bb0));
        _mm512_mask_storeu_ps(y + i * ldy + 16, m1, _mm512_add_ps(acc[i][1], bb1));
    }
}
/* 16 weights of row w from element k as fp32 (exact widening), masked. */
static inline __m512 load_w16(const void *w, dots_dtype wt, int64_t k, __mmask16 mask) {
    if (wt == DOTS_DTYPE_F32) return _mm512_maskz_loadu_ps(mask, (const float *)w + k);
    __m256i h = _mm256_maskz_loadu_epi16(mask, (const uint16_t *)w + k);
    if (wt == DOTS_DTYPE_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* One activation row against 8 weight rows at a time: 8 independent FMA
 * chains (hiding the FMA latency) sharing each load of x, unmasked loads in
 * the main loop and one masked tail. Memory-bound, as decode should be. */
static void gemv1_rows(const float *x, const void *w, dots_dtype wt, int64_t ldw, int64_t n0, int64_t n1, int64_t K,
                       float *y, const float *bias) {
    const int64_t es = wt == DOTS_DTYPE_F32 ? 4 : 2;
    const int64_t K16 = K & ~(int64_t)15;
    const __mmask16 tail = (__mmask16)((1u << (K - K16)) - 1);
    int64_t n = n0;
    /* 8 rows at a time: 8 weight streams in flight keep more DRAM
     * requests outstanding (4 rows reached ~55 % of the bandwidth, 8 ~70 %, 16 no better),
     * and each x vector is loaded once for 8 FMAs */
#define GEMV_ROWS 8
    for (; n + GEMV_ROWS <= n1; n += GEMV_ROWS) {
        const uint8_t *r[GEMV_ROWS];
        for (int i = 0; i < GEMV_ROWS; i++) r[i] = (const uint8_t *)w + (n + i) * ldw * es;
        __m512 a[GEMV_ROWS];
        for (int i = 0; i < GEMV_ROWS; i++) a[i] = _mm512_setzero_ps();
        for (int64_t k = 0; k < K16; k += 16) {
            __m512 xv = _mm512_loadu_ps(x + k);
            for (int i = 0; i < GEMV_ROWS; i++) a[i] = _mm512_fmadd_ps(xv, load_w16(r[i], wt, k, 0xFFFF), a[i]);
        }
        if (tail) {
            __m512 xv = _mm512_maskz_loadu_ps(tail, x + K16);
            for (int i = 0; i < GEMV_ROWS; i++) a[i] = _mm512_fmadd_ps(xv, load_w16(r[i], wt, K16, tail), a[i]);
        }
        for (int i = 0; i < GEMV_ROWS; i++) y[n + i] = _mm512_reduce_add_ps(a[i]) + (bias ? bias[n + i] : 0.0f);
    }
#undef GEMV_ROWS
    for (; n < n1; n++) {
        const uint8_t *r0 = (const uint8_t *)w + n * ldw * es;
        __m512 a0 = _mm512_setzero_ps();
        for (int64_t k = 0; k < K16; k += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + k), load_w16(r0, wt, k, 0xFFFF), a0);
        if (tail) a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, x + K16), load_w16(r0, wt, K16, tail), a0);
        y[n] = _mm512_reduce_add_ps(a0) + (bias ? bias[n] : 0.0f);
    }
}

void dots_gemv_rows_avx512(int M, const float *x, int64_t ldx, const void *w, dots_dtype wt, int64_t ldw, int64_t n0,
                           int64_t n1, int64_t K, float *y, int64_t ldy, const float *bias) {
    for (int m = 0; m < M; m++) gemv1_rows(x + m * ldx, w, wt, ldw, n0, n1, K, y + m * ldy, bias);
}
#else
/* Built without AVX-512 support in the compiler: never selected. */
void dots_gemv_rows_avx512(int M, const float *x, int64_t ldx, const void *w, dots_dtype wt, int64_t ldw, int64_t n0,
                           int64_t n1, int64_t K, float *y, int64_t ldy, const float *bias) {
    dots_gemv_rows_generic(M, x, ldx, w, wt, ldw, n0, n1, K, y, ldy, bias);
}
void dots_gemm_micro_avx512(int m_rows, int n_cols, int64_t K, const float *x, int64_t ldx, const float *panel,
                            float *y, int64_t ldy, const float *bias) {
    dots_gemm_micro_generic(m_rows, n_cols, K, x, ldx, panel, y, ldy, bias);
}
#endif
