/*
 * gemm_avx512bf16.c - the bf16 GEMM micro-kernel (opt-in precision
 * "bf16"): X and W as bf16 pairs, products exact, sums in fp32 by
 * vdpbf16ps - two multiply-adds per lane per instruction, twice the fp32
 * FMA rate, half the bytes. Rounding X to bf16 costs ~3 significant
 * digits, the precision the official bf16 model runs at. Built with
 * -mavx512bf16; called only when the CPU supports it.
 *
 * Layouts: panel [K2][32 columns][2] bf16 (K2 = ceil(K/2), zero-padded),
 * x rows as [K2][2] bf16 with leading dimension ldx2 (in pairs).
 */
#include "kernels/kernels.h"

#if defined(__AVX512BF16__)
#include <immintrin.h>

/* The 8 x 32 accumulation of both micro-kernels: acc[i][h] = sum_k x_i[k] . panel[k][16h .. 16h + 15]. */
static inline void micro_bf16_acc(int m_rows, int n_cols, int64_t K2, const uint32_t *x, int64_t ldx2, const uint32_t *panel,
                                  const uint32_t *pf, __m512 acc[8][2]) {
#define ROW(i) (m_rows > (i) ? x + (i) * ldx2 : x)
    const uint32_t *x0 = x, *x1 = ROW(1), *x2 = ROW(2), *x3 = ROW(3), *x4 = ROW(4), *x5 = ROW(5), *x6 = ROW(6), *x7 = ROW(7);
#undef ROW
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
    if (n_cols <= 16) { /* a narrow edge tile: half the work */
        for (int64_t k = 0; k < K2; k++) {
            __m512bh b0 = (__m512bh)_mm512_load_si512(panel + k * 32);
            c00 = _mm512_dpbf16_ps(c00, (__m512bh)_mm512_set1_epi32((int)x0[k]), b0);
            c10 = _mm512_dpbf16_ps(c10, (__m512bh)_mm512_set1_epi32((int)x1[k]), b0);
            c20 = _mm512_dpbf16_ps(c20, (__m512bh)_mm512_set1_epi32((int)x2[k]), b0);
            c30 = _mm512_dpbf16_ps(c30, (__m512bh)_mm512_set1_epi32((int)x3[k]), b0);
            c40 = _mm512_dpbf16_ps(c40, (__m512bh)_mm512_set1_epi32((int)x4[k]), b0);
            c50 = _mm512_dpbf16_ps(c50, (__m512bh)_mm512_set1_epi32((int)x5[k]), b0);
            c60 = _mm512_dpbf16_ps(c60, (__m512bh)_mm512_set1_epi32((int)x6[k]), b0);
            c70 = _mm512_dpbf16_ps(c70, (__m512bh)_mm512_set1_epi32((int)x7[k]), b0);
        }
        K2 = 0;
    }
    for (int64_t k = 0; k < K2; k++) {
        if (pf && (k & 15) == 0) /* the next 8 rows of x, one line of each per 16 steps */
            for (int i = 0; i < 8; i++) _mm_prefetch((const char *)(pf + i * ldx2 + k), _MM_HINT_T0);
        __m512bh b0 = (__m512bh)_mm512_load_si512(panel + k * 32), b1 = (__m512bh)_mm512_load_si512(panel + k * 32 + 16);
        __m512bh a;
        a = (__m512bh)_mm512_set1_epi32((int)x0[k]); c00 = _mm512_dpbf16_ps(c00, a, b0); c01 = _mm512_dpbf16_ps(c01, a, b1);
        a = (__m512bh)_mm512_set1_epi32((int)x1[k]); c10 = _mm512_dpbf16_ps(c10, a, b0); c11 = _mm512_dpbf16_ps(c11, a, b1);
        a = (__m512bh)_mm512_set1_epi32((int)x2[k]); c20 = _mm512_dpbf16_ps(c20, a, b0); c21 = _mm512_dpbf16_ps(c21, a, b1);
        a = (__m512bh)_mm512_set1_epi32((int)x3[k]); c30 = _mm512_dpbf16_ps(c30, a, b0); c31 = _mm512_dpbf16_ps(c31, a, b1);
        a = (__m512bh)_mm512_set1_epi32((int)x4[k]); c40 = _mm512_dpbf16_ps(c40, a, b0); c41 = _mm512_dpbf16_ps(c41, a, b1);
        a = (__m512bh)_mm512_set1_epi32((int)x5[k]); c50 = _mm512_dpbf16_ps(c50, a, b0); c51 = _mm512_dpbf16_ps(c51, a, b1);
        a = (__m512bh)_mm512_set1_epi32((int)x6[k]); c60 = _mm512_dpbf16_ps(c60, a, b0); c61 = _mm512_dpbf16_ps(c61, a, b1);
        a = (__m512bh)_mm512_set1_epi32((int)x7[k]); c70 = _mm512_dpbf16_ps(c70, a, b0); c71 = _mm512_dpbf16_ps(c71, a, b1);
    }
    acc[0][0] = c00, acc[0][1] = c01, acc[1][0] = c10, acc[1][1] = c11, acc[2][0] = c20, acc[2][1] = c21;
    acc[3][0] = c30, acc[3][1] = c31, acc[4][0] = c40, acc[4][1] = c41, acc[5][0] = c50, acc[5][1] = c51;
    acc[6][0] = c60, acc[6][1] = c61, acc[7][0] = c70, acc[7][1] = c71;
}

void dots_gemm_micro_bf16(int m_rows, int n_cols, int64_t K2, const uint32_t *x, int64_t ldx2, const uint32_t *panel,
                          float *y, int64_t ldy, const float *bias) {
    __m512 acc[8][2];
    micro_bf16_acc(m_rows, n_cols, K2, x, ldx2, panel, NULL, acc);
    __mmask16 m0 = n_cols >= 16 ? 0xFFFF : (__mmask16)((1u << n_cols) - 1);
    __mmask16 m1 = n_cols >= 32 ? 0xFFFF : n_cols <= 16 ? 0 : (__mmask16)((1u << (n_cols - 16)) - 1);
    __m512 bb0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    __m512 bb1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
    for (int i = 0; i < m_rows; i++) {
        _mm512_mask_storeu_ps(y + i * ldy, m0, _mm512_add_ps(acc[i][0], bb0));
        _mm512_mask_storeu_ps(y + i * ldy + 16, m1, _mm512_add_ps(acc[i][1], bb1));
    }
}

void dots_gemm_micro_bf16_t(int m_rows, int n_cols, int64_t K2, const uint32_t *x, int64_t ldx2, const uint32_t *panel,
                            const uint32_t *x_next, float *y, int64_t ldy, const float *bias) {
    __m512 acc[8][2];
    micro_bf16_acc(m_rows, n_cols, K2, x, ldx2, panel, x_next, acc);
    const __mmask8 rm = (__mmask8)((1u << m_rows) - 1);
    const __m256 b = bias ? _mm256_maskz_loadu_ps(rm, bias) : _mm256_setzero_ps();
    const __m512i lo_idx = _mm512_set_epi32(23, 22, 21, 20, 7, 6, 5, 4, 19, 18, 17, 16, 3, 2, 1, 0);
    const __m512i hi_idx = _mm512_set_epi32(31, 30, 29, 28, 15, 14, 13, 12, 27, 26, 25, 24, 11, 10, 9, 8);
    for (int h = 0; h < 2; h++) {
        /* 8 x 16 -> 16 x 8: u[e] lane L holds rows 0-3, u[4 + e] rows 4-7, of column 16h + 4L + e */
        __m512 t[8], u[8];
        for (int i = 0; i < 4; i++) {
            t[2 * i] = _mm512_unpacklo_ps(acc[2 * i][h], acc[2 * i + 1][h]);
            t[2 * i + 1] = _mm512_unpackhi_ps(acc[2 * i][h], acc[2 * i + 1][h]);
        }
        for (int g = 0; g < 2; g++) {
            u[4 * g] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
            u[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
            u[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
            u[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
        }
        for (int e = 0; e < 4; e++) {
            __m512 lo = _mm512_permutex2var_ps(u[e], lo_idx, u[4 + e]); /* columns 4 * 0 + e, 4 * 1 + e */
            __m512 hi = _mm512_permutex2var_ps(u[e], hi_idx, u[4 + e]); /* columns 4 * 2 + e, 4 * 3 + e */
            __m256 outs[4] = {_mm512_castps512_ps256(lo), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(lo), 1)), _mm512_castps512_ps256(hi),
                              _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(hi), 1))};
            for (int L = 0; L < 4; L++) {
                int col = 16 * h + 4 * L + e;
                if (col < n_cols) _mm256_mask_storeu_ps(y + col * ldy, rm, _mm256_add_ps(outs[L], b));
            }
        }
    }
}

/* r[j] <- column j of the 16 x 16 matrix of 32-bit elements whose rows are r. */
static inline void transpose16(__m512i r[16]) {
    __m512i t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for (int g = 0; g < 4; g++) { /* u[4g + e]: rows 4g..4g+3, element 4L + e in lane L */
        u[4 * g] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
        u[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
        u[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
        u[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
    }
    for (int e = 0; e < 4; e++) {
        __m512i a = _mm512_shuffle_i32x4(u[e], u[4 + e], 0x44), b = _mm512_shuffle_i32x4(u[8 + e], u[12 + e], 0x44);
        __m512i c = _mm512_shuffle_i32x4(u[e], u[4 + e], 0xEE), d = _mm512_shuffle_i32x4(u[8 + e], u[12 + e], 0xEE);
        r[e] = _mm512_shuffle_i32x4(a, b, 0x88);
        r[4 + e] = _mm512_shuffle_i32x4(a, b, 0xDD);
        r[8 + e] = _mm512_shuffle_i32x4(c, d, 0x88);
        r[12 + e] = _mm512_shuffle_i32x4(c, d, 0xDD);
    }
}

void dots_pack_w_bf16(const uint16_t *w, int64_t ldw, int64_t nc, int64_t K, int64_t K2, uint32_t *dst) {
    for (int64_t kb = 0; kb < K2; kb += 16) {
        int64_t nk = K - 2 * kb < 32 ? K - 2 * kb : 32, np = K2 - kb < 16 ? K2 - kb : 16;
        __mmask32 km = nk >= 32 ? 0xFFFFFFFFu : (__mmask32)((1u << nk) - 1);
        for (int h = 0; h < 2; h++) {
            __m512i r[16];
            for (int i = 0; i < 16; i++) {
                int64_t c = 16 * h + i;
                r[i] = c < nc ? _mm512_maskz_loadu_epi16(km, w + c * ldw + 2 * kb) : _mm512_setzero_si512();
            }
            transpose16(r);
            for (int64_t j = 0; j < np; j++) _mm512_store_si512(dst + (kb + j) * 32 + 16 * h, r[j]);
        }
    }
}

void dots_pack_xt_bf16(const float *x, int64_t ldx, int64_t rows, int64_t K, int64_t K2, uint32_t *dst) {
    for (int64_t kb = 0; kb < K2; kb += 16) {
        int64_t nk = K - 2 * kb < 32 ? K - 2 * kb : 32, np = K2 - kb < 16 ? K2 - kb : 16;
        __mmask16 m0 = nk >= 16 ? 0xFFFF : (__mmask16)((1u << nk) - 1);
        __mmask16 m1 = nk >= 32 ? 0xFFFF : nk <= 16 ? 0 : (__mmask16)((1u << (nk - 16)) - 1);
        for (int h = 0; h < 2; h++) {
            __m512i r[16];
            for (int i = 0; i < 16; i++) {
                int64_t c = 16 * h + i;
                if (c >= rows) {
                    r[i] = _mm512_setzero_si512();
                    continue;
                }
                const float *src = x + c * ldx + 2 * kb;
                r[i] = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, src + 16), _mm512_maskz_loadu_ps(m0, src));
            }
            transpose16(r);
            for (int64_t j = 0; j < np; j++) _mm512_store_si512(dst + (kb + j) * 32 + 16 * h, r[j]);
        }
    }
}

/* rows x K fp32 -> bf16 pairs (round to nearest even), zero-padded to 2 K2. */
void dots_pack_x_bf16(const float *x, int64_t ldx, int64_t rows, int64_t K, uint32_t *out, int64_t ldx2) {
    for (int64_t r = 0; r < rows; r++) {
        const float *src = x + r * ldx;
        uint16_t *dst = (uint16_t *)(out + r * ldx2);
        int64_t k = 0;
        for (; k + 32 <= K; k += 32) {
            __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + k + 16), _mm512_loadu_ps(src + k));
            _mm512_storeu_si512(dst + k, (__m512i)v);
        }
        for (; k < K; k++) {
            uint32_t u;
            float f = src[k];
            __builtin_memcpy(&u, &f, 4);
            if ((u & 0x7fffffffu) > 0x7f800000u) dst[k] = (uint16_t)((u >> 16) | 0x40);
            else dst[k] = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
        }
        for (; k < 2 * ldx2 && k < ((K + 1) & ~(int64_t)1); k++) dst[k] = 0;
    }
}

/* Decode on bf16 weights at precision bf16: X is rounded to bf16 once per
 * call and each 64 bytes of a weight row take one vdpbf16ps, where widening
 * the weights to fp32 takes two shifts and two FMAs on twice the X bytes (that
 * path is compute-bound near 30 GB/s per core here, below a core's share of
 * DRAM). Tiles of R weight rows x M rows of X, one accumulator per pair: each
 * weight vector is loaded once for the M rows and each X vector once for the
 * R rows, so a batch (M up to 4 per call) is bound by the dot products, not
 * by the loads. Every output is the same chain (k ascending in one
 * accumulator, then one horizontal sum) whatever R and M: a row of X gets
 * the same bits alone or in a batch. Rows are streamed front to back with a
 * prefetch ahead, as in gemm_avx512.c's gemv_rows_seq. */
#define GEMV_PF_BYTES 8192
static inline __attribute__((always_inline)) void bf16dp_tile(const int R, const int M, const uint16_t *xb, int64_t ldxb,
                                                              const uint16_t *w, int64_t ldw, int64_t n, int64_t K, float *y,
                                                              int64_t ldy, const float *bias) {
    __m512 a[4][4];
    _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)
        _Pragma("GCC unroll 4") for (int m = 0; m < M; m++) a[r][m] = _mm512_setzero_ps();
    const uint16_t *row = w + n * ldw;
    const int64_t K32 = K & ~(int64_t)31;
    int64_t k = 0;
    for (; k < K32; k += 32) {
        __m512i wv[4];
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) {
            _mm_prefetch((const char *)(row + r * ldw + k) + GEMV_PF_BYTES, _MM_HINT_T0);
            wv[r] = _mm512_loadu_si512((const void *)(row + r * ldw + k));
        }
        _Pragma("GCC unroll 4") for (int m = 0; m < M; m++) {
            const __m512i xv = _mm512_loadu_si512((const void *)(xb + m * ldxb + k));
            _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) a[r][m] = _mm512_dpbf16_ps(a[r][m], (__m512bh)wv[r], (__m512bh)xv);
        }
    }
    if (k < K) { /* the tail, masked per 16-bit element: unread lanes are zero */
        const __mmask32 mk = (__mmask32)((1u << (K - k)) - 1);
        __m512i wv[4];
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) wv[r] = _mm512_maskz_loadu_epi16(mk, row + r * ldw + k);
        _Pragma("GCC unroll 4") for (int m = 0; m < M; m++) {
            const __m512i xv = _mm512_maskz_loadu_epi16(mk, xb + m * ldxb + k);
            _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) a[r][m] = _mm512_dpbf16_ps(a[r][m], (__m512bh)wv[r], (__m512bh)xv);
        }
    }
    _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)
        _Pragma("GCC unroll 4") for (int m = 0; m < M; m++) y[m * ldy + n + r] = _mm512_reduce_add_ps(a[r][m]) + (bias ? bias[n + r] : 0.0f);
}

/* The same for 5..8 rows of X and at most 2 weight rows: 16 accumulators. */
static inline __attribute__((always_inline)) void bf16dp_tile_wide(const int R, const int M, const uint16_t *xb, int64_t ldxb,
                                                              const uint16_t *w, int64_t ldw, int64_t n, int64_t K, float *y,
                                                              int64_t ldy, const float *bias) {
    __m512 a[2][8];
    _Pragma("GCC unroll 8") for (int r = 0; r < R; r++)
        _Pragma("GCC unroll 8") for (int m = 0; m < M; m++) a[r][m] = _mm512_setzero_ps();
    const uint16_t *row = w + n * ldw;
    const int64_t K32 = K & ~(int64_t)31;
    int64_t k = 0;
    for (; k < K32; k += 32) {
        __m512i wv[2];
        _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {
            _mm_prefetch((const char *)(row + r * ldw + k) + GEMV_PF_BYTES, _MM_HINT_T0);
            wv[r] = _mm512_loadu_si512((const void *)(row + r * ldw + k));
        }
        _Pragma("GCC unroll 8") for (int m = 0; m < M; m++) {
            const __m512i xv = _mm512_loadu_si512((const void *)(xb + m * ldxb + k));
            _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) a[r][m] = _mm512_dpbf16_ps(a[r][m], (__m512bh)wv[r], (__m512bh)xv);
        }
    }
    if (k < K) { /* the tail, masked per 16-bit element: unread lanes are zero */
        const __mmask32 mk = (__mmask32)((1u << (K - k)) - 1);
        __m512i wv[2];
        _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) wv[r] = _mm512_maskz_loadu_epi16(mk, row + r * ldw + k);
        _Pragma("GCC unroll 8") for (int m = 0; m < M; m++) {
            const __m512i xv = _mm512_maskz_loadu_epi16(mk, xb + m * ldxb + k);
            _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) a[r][m] = _mm512_dpbf16_ps(a[r][m], (__m512bh)wv[r], (__m512bh)xv);
        }
    }
    _Pragma("GCC unroll 8") for (int r = 0; r < R; r++)
        _Pragma("GCC unroll 8") for (int m = 0; m < M; m++) y[m * ldy + n + r] = _mm512_reduce_add_ps(a[r][m]) + (bias ? bias[n + r] : 0.0f);
}

#define BF16DP_CALL(R, MM) bf16dp_tile(R, MM, xb, ldxb, w, ldw, n, K, y, ldy, bias)
#define BF16DP_CALL_WIDE(R, MM) bf16dp_tile_wide(R, MM, xb, ldxb, w, ldw, n, K, y, ldy, bias)
#define BF16DP_TILE(R)                                                                                                          \
    switch (M) {                                                                                                                \
    case 1: BF16DP_CALL(R, 1); break;                                                                                           \
    case 2: BF16DP_CALL(R, 2); break;                                                                                           \
    case 3: BF16DP_CALL(R, 3); break;                                                                                           \
    default: BF16DP_CALL(R, 4); break;                                                                                          \
    }
#define BF16DP_TILE_WIDE(R)                                                                                                     \
    switch (M) {                                                                                                                \
    case 5: BF16DP_CALL_WIDE(R, 5); break;                                                                                           \
    case 6: BF16DP_CALL_WIDE(R, 6); break;                                                                                           \
    case 7: BF16DP_CALL_WIDE(R, 7); break;                                                                                           \
    default: BF16DP_CALL_WIDE(R, 8); break;                                                                                          \
    }

/* Up to 4 rows of X: tiles of 4 weight rows; 5..8 rows: tiles of 2 (16
 * accumulators either way), so that a batch of 8 streams the weights once. */
void dots_gemv_rows_bf16dp(int M, const uint16_t *xb, int64_t ldxb, const uint16_t *w, int64_t ldw, int64_t n0, int64_t n1,
                           int64_t K, float *y, int64_t ldy, const float *bias) {
    int64_t n = n0;
    if (M > 4) {
        for (; n + 2 <= n1; n += 2) BF16DP_TILE_WIDE(2)
        for (; n < n1; n++) BF16DP_TILE_WIDE(1)
        return;
    }
    for (; n + 4 <= n1; n += 4) BF16DP_TILE(4)
    for (; n < n1; n++) BF16DP_TILE(1)
}
#undef BF16DP_CALL
#undef BF16DP_CALL_WIDE
#undef BF16DP_TILE_WIDE
#undef BF16DP_TILE
#elif !defined(__aarch64__) /* AArch64: kernels/arm/gemm_bf16_neon.c */
void dots_gemm_micro_bf16_t(int m_rows, int n_cols, int64_t K2, const uint32_t *x, int64_t ldx2, const uint32_t *panel,
                            const uint32_t *x_next, float *y, int64_t ldy, const float *bias) {
    (void)x_next, (void)m_rows, (void)n_cols, (void)K2, (void)x, (void)ldx2, (void)panel, (void)y, (void)ldy, (void)bias;
}
void dots_pack_xt_bf16(const float *x, int64_t ldx, int64_t rows, int64_t K, int64_t K2, uint32_t *dst) {
    (void)x, (void)ldx, (void)rows, (void)K, (void)K2, (void)dst;
}
void dots_pack_w_bf16(const uint16_t *w, int64_t ldw, int64_t nc, int64_t K, int64_t K2, uint32_t *dst) {
    (void)w, (void)ldw, (void)nc, (void)K, (void)K2, (void)dst;
}
void dots_gemm_micro_bf16(int m_rows, int n_cols, int64_t K2, const uint32_t *x, int64_t ldx2, const uint32_t *panel,
                          float *y, int64_t ldy, const float *bias) {
    (void)m_rows, (void)n_cols, (void)K2, (void)x, (void)ldx2, (void)panel, (void)y, (void)ldy, (void)bias;
}
void dots_pack_x_bf16(const float *x, int64_t ldx, int64_t rows, int64_t K, uint32_t *out, int64_t ldx2) {
    (void)x, (void)ldx, (void)rows, (void)K, (void)out, (void)ldx2;
}
void dots_gemv_rows_bf16dp(int M, const uint16_t *xb, int64_t ldxb, const uint16_t *w, int64_t ldw, int64_t n0, int64_t n1,
                           int64_t K, float *y, int64_t ldy, const float *bias) {
    (void)M, (void)xb, (void)ldxb, (void)w, (void)ldw, (void)n0, (void)n1, (void)K, (void)y, (void)ldy, (void)bias;
}
#endif
