/*
 * gemv_quant_avx2.c - decode's matrix-vector product on the block formats
 * (Q8_0, Q4_0, Q4_K) with AVX2 + FMA: the AVX-512 kernel's method at 8
 * lanes (blocks widened to fp32 in registers, each row streamed front to
 * back with a software prefetch, block sums of x for the offset terms).
 */
#include "kernels/kernels.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include <string.h>

#define PF_BYTES 8192

static inline float f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* 8 bytes at p as fp32, signed or unsigned */
static inline __m256 i8x8(const uint8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}
static inline __m256 u8x8(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)); }

/* sum over one 32-weight block of x[i] * q[i], q given as 4 vectors of 8 */
static inline __m256 dot32(const float *x, __m256 q0, __m256 q1, __m256 q2, __m256 q3) {
    __m256 s = _mm256_mul_ps(q0, _mm256_loadu_ps(x));
    s = _mm256_fmadd_ps(q1, _mm256_loadu_ps(x + 8), s);
    s = _mm256_fmadd_ps(q2, _mm256_loadu_ps(x + 16), s);
    return _mm256_fmadd_ps(q3, _mm256_loadu_ps(x + 24), s);
}

static void row_q8_0(int M, const float *x, int64_t ldx, const uint8_t *r, int64_t nb, float *out) {
    __m256 acc[DOTS_GEMV_MAX_M];
    for (int m = 0; m < M; m++) acc[m] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = r + b * 34;
        if ((b & 1) == 0) _mm_prefetch((const char *)blk + PF_BYTES, _MM_HINT_T0);
        const __m256 q0 = i8x8(blk + 2), q1 = i8x8(blk + 10), q2 = i8x8(blk + 18), q3 = i8x8(blk + 26);
        const __m256 d = _mm256_set1_ps(f16(blk));
        for (int m = 0; m < M; m++) acc[m] = _mm256_fmadd_ps(dot32(x + m * ldx + b * 32, q0, q1, q2, q3), d, acc[m]);
    }
    for (int m = 0; m < M; m++) out[m] = hsum8(acc[m]);
}

static void row_q4_0(int M, const float *x, int64_t ldx, const float *xsum, const uint8_t *r, int64_t nb, float *out) {
    __m256 acc[DOTS_GEMV_MAX_M];
    float corr[DOTS_GEMV_MAX_M] = {0};
    const __m128i lo_mask = _mm_set1_epi8(0x0F);
    for (int m = 0; m < M; m++) acc[m] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = r + b * 18;
        if ((b & 3) == 0) _mm_prefetch((const char *)blk + PF_BYTES, _MM_HINT_T0);
        const __m128i v = _mm_loadu_si128((const __m128i *)(blk + 2));
        const __m128i lo = _mm_and_si128(v, lo_mask), hi = _mm_and_si128(_mm_srli_epi16(v, 4), lo_mask);
        const __m256 q0 = u8x8(lo), q1 = u8x8(_mm_srli_si128(lo, 8)), q2 = u8x8(hi), q3 = u8x8(_mm_srli_si128(hi, 8));
        const float dv = f16(blk);
        const __m256 d = _mm256_set1_ps(dv);
        for (int m = 0; m < M; m++) {
            acc[m] = _mm256_fmadd_ps(dot32(x + m * ldx + b * 32, q0, q1, q2, q3), d, acc[m]);
            corr[m] += dv * xsum[m * nb + b];
        }
    }
    for (int m = 0; m < M; m++) out[m] = hsum8(acc[m]) - 8.0f * corr[m];
}

static void row_q4_k(int M, const float *x, int64_t ldx, const float *xsum, const uint8_t *r, int64_t nb, float *out) {
    __m256 acc[DOTS_GEMV_MAX_M];
    float macc[DOTS_GEMV_MAX_M] = {0};
    const __m128i lo_mask = _mm_set1_epi8(0x0F);
    for (int m = 0; m < M; m++) acc[m] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = r + b * 144;
        _mm_prefetch((const char *)blk + PF_BYTES, _MM_HINT_T0);
        _mm_prefetch((const char *)blk + PF_BYTES + 64, _MM_HINT_T0);
        _mm_prefetch((const char *)blk + PF_BYTES + 128, _MM_HINT_T0);
        const float d = f16(blk), dmin = f16(blk + 2);
        const uint8_t *s = blk + 4;
        float sc[8], mn[8];
        for (int j = 0; j < 4; j++) {
            sc[j] = d * (float)(s[j] & 63);
            mn[j] = dmin * (float)(s[j + 4] & 63);
            sc[j + 4] = d * (float)((s[j + 8] & 0xF) | ((s[j] >> 6) << 4));
            mn[j + 4] = dmin * (float)((s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4));
        }
        for (int g = 0; g < 4; g++) {
            const uint8_t *q = blk + 16 + 32 * g;
            const __m128i v0 = _mm_loadu_si128((const __m128i *)q), v1 = _mm_loadu_si128((const __m128i *)(q + 16));
            const __m128i l0 = _mm_and_si128(v0, lo_mask), l1 = _mm_and_si128(v1, lo_mask);
            const __m128i h0 = _mm_and_si128(_mm_srli_epi16(v0, 4), lo_mask), h1 = _mm_and_si128(_mm_srli_epi16(v1, 4), lo_mask);
            const __m256 a0 = u8x8(l0), a1 = u8x8(_mm_srli_si128(l0, 8)), a2 = u8x8(l1), a3 = u8x8(_mm_srli_si128(l1, 8));
            const __m256 b0 = u8x8(h0), b1 = u8x8(_mm_srli_si128(h0, 8)), b2 = u8x8(h1), b3 = u8x8(_mm_srli_si128(h1, 8));
            const __m256 sa = _mm256_set1_ps(sc[2 * g]), sb = _mm256_set1_ps(sc[2 * g + 1]);
            for (int m = 0; m < M; m++) {
                const float *xb = x + m * ldx + b * 256 + 64 * g;
                acc[m] = _mm256_fmadd_ps(dot32(xb, a0, a1, a2, a3), sa, acc[m]);
                acc[m] = _mm256_fmadd_ps(dot32(xb + 32, b0, b1, b2, b3), sb, acc[m]);
            }
        }
        for (int m = 0; m < M; m++) {
            const float *xs = xsum + m * (nb * 8) + b * 8;
            float t = 0.0f;
            for (int j = 0; j < 8; j++) t += mn[j] * xs[j];
            macc[m] += t;
        }
    }
    for (int m = 0; m < M; m++) out[m] = hsum8(acc[m]) - macc[m];
}

void dots_gemv_rows_quant_avx2(int M, const float *x, int64_t ldx, const void *w, dots_dtype wt, int64_t ldw, int64_t n0,
                               int64_t n1, int64_t K, float *y, int64_t ldy, const float *bias) {
    const int64_t row_bytes = dots_dtype_bytes(wt, ldw), nb = K / dots_dtype_block(wt);
    float xsum[DOTS_GEMV_MAX_M * 512] = {0};
    if (wt != DOTS_DTYPE_Q8_0) {
        if (K / 32 > 512) {
            dots_gemv_rows_generic(M, x, ldx, w, wt, ldw, n0, n1, K, y, ldy, bias);
            return;
        }
        for (int m = 0; m < M; m++)
            for (int64_t s = 0; s < K / 32; s++) {
                const float *xs = x + m * ldx + 32 * s;
                __m256 v = _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(xs), _mm256_loadu_ps(xs + 8)),
                                         _mm256_add_ps(_mm256_loadu_ps(xs + 16), _mm256_loadu_ps(xs + 24)));
                xsum[m * (K / 32) + s] = hsum8(v);
            }
    }
    float out[DOTS_GEMV_MAX_M];
    for (int64_t n = n0; n < n1; n++) {
        const uint8_t *r = (const uint8_t *)w + n * row_bytes;
        if (wt == DOTS_DTYPE_Q8_0)
            row_q8_0(M, x, ldx, r, nb, out);
        else if (wt == DOTS_DTYPE_Q4_0)
            row_q4_0(M, x, ldx, xsum, r, nb, out);
        else
            row_q4_k(M, x, ldx, xsum, r, nb, out);
        for (int m = 0; m < M; m++) y[m * ldy + n] = out[m] + (bias ? bias[n] : 0.0f);
    }
}
#else
void dots_gemv_rows_quant_avx2(int M, const float *x, int64_t ldx, const void *w, dots_dtype wt, int64_t ldw, int64_t n0,
                               int64_t n1, int64_t K, float *y, int64_t ldy, const float *bias) {
    dots_gemv_rows_generic(M, x, ldx, w, wt, ldw, n0, n1, K, y, ldy, bias);
}
#endif
