/*
 * gemv_quant_avx512.c - decode's matrix-vector product on the block formats
 * (Q8_0, Q4_0, Q4_K) with AVX-512: each block is widened to fp32 in
 * registers and multiplied with fp32 activations, so the only rounding is
 * fp32 summation (per block, then scaled), as in the reference up to order.
 *
 * Decode is a stream over the weights: each row is read front to back with
 * a software prefetch ahead, and the work per byte is a few vector
 * instructions (the 4-bit formats need more per byte than Q8_0).
 */
#include "kernels/kernels.h"
#include "kernels/quant.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#include <string.h>

#define PF_BYTES 8192 /* software prefetch distance within the weight stream */

static inline float f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

static inline __m512 i8x16(const uint8_t *p) { return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p))); }
static inline __m512 u8x16(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(v)); }

/* One weight row at a time, front to back (the order DRAM streams best, see
 * gemm_avx512.c), two blocks per step into separate accumulators. */

/* Q8_0: [d fp16][32 x int8] */
static void row_q8_0(int M, const float *x, int64_t ldx, const uint8_t *r, int64_t nb, float *out) {
    __m512 acc[DOTS_GEMV_MAX_M][2];
    for (int m = 0; m < M; m++) acc[m][0] = acc[m][1] = _mm512_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        const uint8_t *blk = r + b * 34;
        _mm_prefetch((const char *)blk + PF_BYTES, _MM_HINT_T0);
        _mm_prefetch((const char *)blk + PF_BYTES + 64, _MM_HINT_T0);
        const __m512 qa0 = i8x16(blk + 2), qa1 = i8x16(blk + 18), da = _mm512_set1_ps(f16(blk));
        const __m512 qb0 = i8x16(blk + 36), qb1 = i8x16(blk + 52), db = _mm512_set1_ps(f16(blk + 34));
        for (int m = 0; m < M; m++) {
            const float *xb = x + m * ldx + b * 32;
            __m512 sa = _mm512_fmadd_ps(qa1, _mm512_loadu_ps(xb + 16), _mm512_mul_ps(qa0, _mm512_loadu_ps(xb)));
            __m512 sb = _mm512_fmadd_ps(qb1, _mm512_loadu_ps(xb + 48), _mm512_mul_ps(qb0, _mm512_loadu_ps(xb + 32)));
            acc[m][0] = _mm512_fmadd_ps(sa, da, acc[m][0]);
            acc[m][1] = _mm512_fmadd_ps(sb, db, acc[m][1]);
        }
    }
    for (; b < nb; b++) {
        const uint8_t *blk = r + b * 34;
        const __m512 q0 = i8x16(blk + 2), q1 = i8x16(blk + 18), d = _mm512_set1_ps(f16(blk));
        for (int m = 0; m < M; m++) {
            const float *xb = x + m * ldx + b * 32;
            __m512 s = _mm512_fmadd_ps(q1, _mm512_loadu_ps(xb + 16), _mm512_mul_ps(q0, _mm512_loadu_ps(xb)));
            acc[m][0] = _mm512_fmadd_ps(s, d, acc[m][0]);
        }
    }
    for (int m = 0; m < M; m++) out[m] = _mm512_reduce_add_ps(_mm512_add_ps(acc[m][0], acc[m][1]));
}

/* Q4_0: [d fp16][16 bytes: element j low nibble, j + 16 high nibble], x = d (q - 8):
 * sum x q d - 8 d sum x, with the block sums of x computed once per call.
 * Two blocks per step: their 2 x 16 bytes of nibbles are widened together,
 * and the offset term is a vector of per-block d (no serial scalar chain). */
static void row_q4_0(int M, const float *x, int64_t ldx, const float *xsum, const uint8_t *r, int64_t nb, float *out) {
    __m512 acc[DOTS_GEMV_MAX_M][2];
    __m128 corr[DOTS_GEMV_MAX_M];
    const __m128i lo_mask = _mm_set1_epi8(0x0F);
    for (int m = 0; m < M; m++) acc[m][0] = acc[m][1] = _mm512_setzero_ps(), corr[m] = _mm_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        const uint8_t *blk = r + b * 18;
        _mm_prefetch((const char *)blk + PF_BYTES, _MM_HINT_T0);
        const __m128i va = _mm_loadu_si128((const __m128i *)(blk + 2)), vb = _mm_loadu_si128((const __m128i *)(blk + 20));
        const __m512 qa0 = u8x16(_mm_and_si128(va, lo_mask)), qa1 = u8x16(_mm_and_si128(_mm_srli_epi16(va, 4), lo_mask));
        const __m512 qb0 = u8x16(_mm_and_si128(vb, lo_mask)), qb1 = u8x16(_mm_and_si128(_mm_srli_epi16(vb, 4), lo_mask));
        uint16_t ha, hb;
        memcpy(&ha, blk, 2);
        memcpy(&hb, blk + 18, 2);
        const __m128 dd = _mm_cvtph_ps(_mm_setr_epi16((short)ha, (short)hb, 0, 0, 0, 0, 0, 0)); /* (da, db, 0, 0) */
        const __m512 da = _mm512_broadcastss_ps(dd), db = _mm512_broadcastss_ps(_mm_shuffle_ps(dd, dd, 1));
        for (int m = 0; m < M; m++) {
            const float *xb = x + m * ldx + b * 32;
            __m512 sa = _mm512_fmadd_ps(qa1, _mm512_loadu_ps(xb + 16), _mm512_mul_ps(qa0, _mm512_loadu_ps(xb)));
            __m512 sb = _mm512_fmadd_ps(qb1, _mm512_loadu_ps(xb + 48), _mm512_mul_ps(qb0, _mm512_loadu_ps(xb + 32)));
            acc[m][0] = _mm512_fmadd_ps(sa, da, acc[m][0]);
            acc[m][1] = _mm512_fmadd_ps(sb, db, acc[m][1]);
            const float *xs = xsum + m * nb + b;
            corr[m] = _mm_fmadd_ps(dd, _mm_set_ps(0.0f, 0.0f, xs[1], xs[0]), corr[m]);
        }
    }
    float tail[DOTS_GEMV_MAX_M] = {0};
    for (; b < nb; b++) {
        const uint8_t *blk = r + b * 18;
        const __m128i v = _mm_loadu_si128((const __m128i *)(blk + 2));
        const __m512 q0 = u8x16(_mm_and_si128(v, lo_mask)), q1 = u8x16(_mm_and_si128(_mm_srli_epi16(v, 4), lo_mask));
        const float dv = f16(blk);
        for (int m = 0; m < M; m++) {
            const float *xb = x + m * ldx + b * 32;
            __m512 s = _mm512_fmadd_ps(q1, _mm512_loadu_ps(xb + 16), _mm512_mul_ps(q0, _mm512_loadu_ps(xb)));
            acc[m][0] = _mm512_fmadd_ps(s, _mm512_set1_ps(dv), acc[m][0]);
            tail[m] += dv * xsum[m * nb + b];
        }
    }
    for (int m = 0; m < M; m++) {
        __m128 c = _mm_add_ps(corr[m], _mm_movehl_ps(corr[m], corr[m]));
        float cs = _mm_cvtss_f32(c) + _mm_cvtss_f32(_mm_shuffle_ps(c, c, 1)) + tail[m];
        out[m] = _mm512_reduce_add_ps(_mm512_add_ps(acc[m][0], acc[m][1])) - 8.0f * cs;
    }
}

/* Q4_K: [d][dmin][12 bytes scales/mins][128 bytes nibbles]; x = d sc_j q - dmin m_j.
 * sum_i x_i y_i = sum_j (d sc_j) sum_{i in j} x_i q_i - (dmin m_j) sum_{i in j} x_i;
 * the per-sub-block sums of x (xsum) are computed once per call. */
static void row_q4_k(int M, const float *x, int64_t ldx, const float *xsum, const uint8_t *r, int64_t nb, float *out) {
    __m512 acc[DOTS_GEMV_MAX_M][2];
    float macc[DOTS_GEMV_MAX_M] = {0};
    const __m256i lo_mask = _mm256_set1_epi8(0x0F);
    for (int m = 0; m < M; m++) acc[m][0] = acc[m][1] = _mm512_setzero_ps();
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
            const __m256i v = _mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * g));
            const __m256i lo = _mm256_and_si256(v, lo_mask), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), lo_mask);
            const __m512 a0 = u8x16(_mm256_castsi256_si128(lo)), a1 = u8x16(_mm256_extracti128_si256(lo, 1));
            const __m512 b0 = u8x16(_mm256_castsi256_si128(hi)), b1 = u8x16(_mm256_extracti128_si256(hi, 1));
            const __m512 sa = _mm512_set1_ps(sc[2 * g]), sb = _mm512_set1_ps(sc[2 * g + 1]);
            for (int m = 0; m < M; m++) {
                const float *xb = x + m * ldx + b * 256 + 64 * g;
                __m512 ta = _mm512_fmadd_ps(a1, _mm512_loadu_ps(xb + 16), _mm512_mul_ps(a0, _mm512_loadu_ps(xb)));
                __m512 tb = _mm512_fmadd_ps(b1, _mm512_loadu_ps(xb + 48), _mm512_mul_ps(b0, _mm512_loadu_ps(xb + 32)));
                acc[m][0] = _mm512_fmadd_ps(ta, sa, acc[m][0]);
                acc[m][1] = _mm512_fmadd_ps(tb, sb, acc[m][1]);
            }
        }
        for (int m = 0; m < M; m++) {
            const float *xs = xsum + m * (nb * 8) + b * 8;
            float t = 0.0f;
            for (int j = 0; j < 8; j++) t += mn[j] * xs[j];
            macc[m] += t;
        }
    }
    for (int m = 0; m < M; m++) out[m] = _mm512_reduce_add_ps(_mm512_add_ps(acc[m][0], acc[m][1])) - macc[m];
}

/* ---- 16 rows interleaved (kernels/repack.c): lane r is row r, so each
 * weight byte widened to fp32 serves 16 rows with one FMA, and the scales
 * apply per block to all 16 lanes at once ---- */

/* Byte i of every dword lane: signed (Q8_0) or unsigned (nibbles). */
static inline __m512 byte_s(__m512i z, int i) {
    return _mm512_cvtepi32_ps(i == 3 ? _mm512_srai_epi32(z, 24) : _mm512_srai_epi32(_mm512_slli_epi32(z, 24 - 8 * i), 24));
}
static inline __m512 byte_u(__m512i z, int i) {
    return _mm512_cvtepi32_ps(i == 3 ? _mm512_srli_epi32(z, 24) : _mm512_and_si512(_mm512_srli_epi32(z, 8 * i), _mm512_set1_epi32(0xFF)));
}

/* Q8_0 (stored + 128) and Q4_0; four partial sums per row, one per byte of a lane. */
static inline __attribute__((always_inline)) void r16f_q8_q4_m(const int M, const float *x, int64_t ldx, const float *xsum,
                                                               const uint8_t *w, bool q4, int64_t K, int64_t g0, int64_t g1,
                                                               float *y, int64_t ldy, const float *bias) {
    const int64_t nx = K / 32, bb = q4 ? 288 : 544;
    const __m512i lo4 = _mm512_set1_epi8(0x0F), flip = _mm512_set1_epi8((char)0x80);
    for (int64_t g = g0; g < g1; g++) {
        const uint8_t *grp = w + g * nx * bb;
        __m512 acc[DOTS_GEMV_MAX_M];
        for (int m = 0; m < M; m++) acc[m] = _mm512_setzero_ps();
        for (int64_t b = 0; b < nx; b++) {
            const uint8_t *blk = grp + b * bb;
            for (int64_t o = 0; o < bb; o += 64) _mm_prefetch((const char *)blk + PF_BYTES + o, _MM_HINT_T0);
            __m512 p[DOTS_GEMV_MAX_M][4];
            for (int m = 0; m < M; m++) p[m][0] = p[m][1] = p[m][2] = p[m][3] = _mm512_setzero_ps();
            for (int c = 0; c < (q4 ? 4 : 8); c++) {
                const __m512i z = _mm512_loadu_si512((const void *)(blk + 32 + 64 * c));
                if (q4) {
                    const __m512i lo = _mm512_and_si512(z, lo4), hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), lo4);
                    for (int i = 0; i < 4; i++) {
                        const __m512 wl = byte_u(lo, i), wh = byte_u(hi, i);
                        for (int m = 0; m < M; m++) {
                            const float *xb = x + m * ldx + 32 * b + 4 * c + i;
                            p[m][i] = _mm512_fmadd_ps(wl, _mm512_set1_ps(xb[0]), p[m][i]);
                            p[m][i] = _mm512_fmadd_ps(wh, _mm512_set1_ps(xb[16]), p[m][i]);
                        }
                    }
                } else {
                    const __m512i s = _mm512_xor_si512(z, flip);
                    for (int i = 0; i < 4; i++) {
                        const __m512 wv = byte_s(s, i);
                        for (int m = 0; m < M; m++)
                            p[m][i] = _mm512_fmadd_ps(wv, _mm512_set1_ps(x[m * ldx + 32 * b + 4 * c + i]), p[m][i]);
                    }
                }
            }
            const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
            for (int m = 0; m < M; m++) {
                __m512 t = _mm512_add_ps(_mm512_add_ps(p[m][0], p[m][1]), _mm512_add_ps(p[m][2], p[m][3]));
                if (q4) t = _mm512_sub_ps(t, _mm512_set1_ps(8.0f * xsum[m * nx + b]));
                acc[m] = _mm512_fmadd_ps(t, dw, acc[m]);
            }
        }
        const __m512 bv = bias ? _mm512_loadu_ps(bias + 16 * g) : _mm512_setzero_ps();
        for (int m = 0; m < M; m++) _mm512_storeu_ps(y + m * ldy + 16 * g, _mm512_add_ps(acc[m], bv));
    }
}

/* Q4_K: per sub-block j, (d sc_j) sum q x - (dmin m_j) sum x. */
static inline __attribute__((always_inline)) void r16f_q4_k_m(const int M, const float *x, int64_t ldx, const float *xsum,
                                                              const uint8_t *w, int64_t K, int64_t g0, int64_t g1, float *y,
                                                              int64_t ldy, const float *bias) {
    const int64_t nx = K / 32, nsb = K / 256, sbb = 2368;
    const __m512i lo4 = _mm512_set1_epi8(0x0F);
    for (int64_t g = g0; g < g1; g++) {
        const uint8_t *grp = w + g * nsb * sbb;
        __m512 acc[DOTS_GEMV_MAX_M];
        for (int m = 0; m < M; m++) acc[m] = _mm512_setzero_ps();
        for (int64_t sb = 0; sb < nsb; sb++) {
            const uint8_t *blk = grp + sb * sbb;
            for (int64_t o = 0; o < sbb; o += 64) _mm_prefetch((const char *)blk + PF_BYTES + o, _MM_HINT_T0);
            const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
            const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(blk + 32)));
            for (int pr = 0; pr < 4; pr++) {
                __m512 p[DOTS_GEMV_MAX_M][2][2];
                for (int m = 0; m < M; m++) p[m][0][0] = p[m][0][1] = p[m][1][0] = p[m][1][1] = _mm512_setzero_ps();
                for (int c = 0; c < 8; c++) {
                    const __m512i z = _mm512_loadu_si512((const void *)(blk + 320 + 512 * pr + 64 * c));
                    const __m512i lo = _mm512_and_si512(z, lo4), hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), lo4);
                    for (int i = 0; i < 4; i++) {
                        const __m512 wl = byte_u(lo, i), wh = byte_u(hi, i);
                        for (int m = 0; m < M; m++) {
                            const float *xb = x + m * ldx + 256 * sb + 64 * pr + 4 * c + i;
                            p[m][0][i & 1] = _mm512_fmadd_ps(wl, _mm512_set1_ps(xb[0]), p[m][0][i & 1]);
                            p[m][1][i & 1] = _mm512_fmadd_ps(wh, _mm512_set1_ps(xb[32]), p[m][1][i & 1]);
                        }
                    }
                }
                for (int h = 0; h < 2; h++) {
                    const int j = 2 * pr + h;
                    const __m512 sc = _mm512_mul_ps(d, u8x16(_mm_loadu_si128((const __m128i *)(blk + 64 + 16 * j))));
                    const __m512 mn = _mm512_mul_ps(dmin, u8x16(_mm_loadu_si128((const __m128i *)(blk + 192 + 16 * j))));
                    for (int m = 0; m < M; m++) {
                        acc[m] = _mm512_fmadd_ps(_mm512_add_ps(p[m][h][0], p[m][h][1]), sc, acc[m]);
                        acc[m] = _mm512_fnmadd_ps(mn, _mm512_set1_ps(xsum[m * nx + 8 * sb + j]), acc[m]);
                    }
                }
            }
        }
        const __m512 bv = bias ? _mm512_loadu_ps(bias + 16 * g) : _mm512_setzero_ps();
        for (int m = 0; m < M; m++) _mm512_storeu_ps(y + m * ldy + 16 * g, _mm512_add_ps(acc[m], bv));
    }
}

static void rows_r16_f32(int M, const float *x, int64_t ldx, const float *xsum, const uint8_t *w, dots_dtype wt, int64_t K,
                         int64_t g0, int64_t g1, float *y, int64_t ldy, const float *bias) {
#define R16F_CASE(MM)                                                                                                  \
    case MM:                                                                                                           \
        if (wt == DOTS_DTYPE_Q4_K_R16) r16f_q4_k_m(MM, x, ldx, xsum, w, K, g0, g1, y, ldy, bias);                      \
        else r16f_q8_q4_m(MM, x, ldx, xsum, w, wt == DOTS_DTYPE_Q4_0_R16, K, g0, g1, y, ldy, bias);                    \
        break;
    switch (M) {
    R16F_CASE(1)
    R16F_CASE(2)
    R16F_CASE(3)
    default: R16F_CASE(4)
    }
#undef R16F_CASE
}

void dots_gemv_rows_quant_avx512(int M, const float *x, int64_t ldx, const void *w, dots_dtype wt, int64_t ldw,
                                 int64_t n0, int64_t n1, int64_t K, float *y, int64_t ldy, const float *bias) {
    const int64_t row_bytes = dots_dtype_bytes(wt, ldw), nb = K / dots_dtype_block(wt);
    /* sums of x over each 32-element block, for the Q4_0 offset and Q4_K min terms */
    float xsum[DOTS_GEMV_MAX_M * 512] = {0};
    if (wt != DOTS_DTYPE_Q8_0 && wt != DOTS_DTYPE_Q8_0_R16) {
        if (K / 32 > 512) { /* rows over 16384: the portable path */
            dots_gemv_rows_generic(M, x, ldx, w, wt, ldw, n0, n1, K, y, ldy, bias);
            return;
        }
        for (int m = 0; m < M; m++)
            for (int64_t s = 0; s < K / 32; s++) {
                __m512 v = _mm512_add_ps(_mm512_loadu_ps(x + m * ldx + 32 * s), _mm512_loadu_ps(x + m * ldx + 32 * s + 16));
                xsum[m * (K / 32) + s] = _mm512_reduce_add_ps(v);
            }
    }
    if (dots_dtype_is_r16(wt)) { /* the caller guarantees whole groups and ldw = K */
        rows_r16_f32(M, x, ldx, xsum, w, wt, K, n0 / 16, n1 / 16, y, ldy, bias);
        return;
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
/* Blocks -> fp32, the same values as dots_dequantize_row (each one product,
 * or a product and a difference, rounded once, as the reference does). */
void dots_dequantize_row_avx512(dots_dtype t, const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    if (t == DOTS_DTYPE_Q8_0) {
        for (int64_t i = 0; i < n / 32; i++, b += 34, y += 32) {
            const __m512 d = _mm512_set1_ps(f16(b));
            _mm512_storeu_ps(y, _mm512_mul_ps(d, i8x16(b + 2)));
            _mm512_storeu_ps(y + 16, _mm512_mul_ps(d, i8x16(b + 18)));
        }
    } else if (t == DOTS_DTYPE_Q4_0) {
        const __m128i lo_mask = _mm_set1_epi8(0x0F);
        const __m512 eight = _mm512_set1_ps(8.0f);
        for (int64_t i = 0; i < n / 32; i++, b += 18, y += 32) {
            const __m512 d = _mm512_set1_ps(f16(b));
            const __m128i v = _mm_loadu_si128((const __m128i *)(b + 2));
            /* q - 8 is exact in fp32, as the reference's integer difference */
            _mm512_storeu_ps(y, _mm512_mul_ps(d, _mm512_sub_ps(u8x16(_mm_and_si128(v, lo_mask)), eight)));
            _mm512_storeu_ps(y + 16, _mm512_mul_ps(d, _mm512_sub_ps(u8x16(_mm_and_si128(_mm_srli_epi16(v, 4), lo_mask)), eight)));
        }
    } else if (t == DOTS_DTYPE_Q4_K) {
        const __m128i lo_mask = _mm_set1_epi8(0x0F);
        for (int64_t i = 0; i < n / 256; i++, b += 144, y += 256) {
            const float d = f16(b), dmin = f16(b + 2);
            for (int g = 0; g < 4; g++) {
                uint8_t sc0, m0, sc1, m1;
                dots_q4k_scale_min(2 * g, b + 4, &sc0, &m0);
                dots_q4k_scale_min(2 * g + 1, b + 4, &sc1, &m1);
                const __m512 d0 = _mm512_set1_ps(d * sc0), mm0 = _mm512_set1_ps(dmin * m0);
                const __m512 d1 = _mm512_set1_ps(d * sc1), mm1 = _mm512_set1_ps(dmin * m1);
                for (int h = 0; h < 2; h++) {
                    const __m128i v = _mm_loadu_si128((const __m128i *)(b + 16 + 32 * g + 16 * h));
                    const __m512 ql = u8x16(_mm_and_si128(v, lo_mask)), qh = u8x16(_mm_and_si128(_mm_srli_epi16(v, 4), lo_mask));
                    _mm512_storeu_ps(y + 64 * g + 16 * h, _mm512_sub_ps(_mm512_mul_ps(d0, ql), mm0));
                    _mm512_storeu_ps(y + 64 * g + 32 + 16 * h, _mm512_sub_ps(_mm512_mul_ps(d1, qh), mm1));
                }
            }
        }
    } else {
        dots_dequantize_row(t, src, y, n);
    }
}
#else
void dots_dequantize_row_avx512(dots_dtype t, const void *src, float *y, int64_t n) { dots_dequantize_row(t, src, y, n); }
void dots_gemv_rows_quant_avx512(int M, const float *x, int64_t ldx, const void *w, dots_dtype wt, int64_t ldw,
                                 int64_t n0, int64_t n1, int64_t K, float *y, int64_t ldy, const float *bias) {
    dots_gemv_rows_generic(M, x, ldx, w, wt, ldw, n0, n1, K, y, ldy, bias);
}
#endif
