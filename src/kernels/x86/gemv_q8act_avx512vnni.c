/*
 * gemv_q8act_avx512vnni.c - decode's matrix-vector product on the block
 * formats with int8 activations (kernels.h, dots_act_q8) on vpdpbusd.
 *
 * Widening every 4-bit weight to fp32 costs more instructions per byte than
 * DRAM delivers bytes (the fp32 path streams Q4_0 at ~17 GB/s here); one
 * vpdpbusd instead multiplies 64 weight bytes by 64 activation bytes and
 * sums them in fours, leaving a convert and one FMA per two blocks.
 *
 * vpdpbusd multiplies unsigned by signed bytes, so weights go in unsigned:
 * Q4_0's nibbles as they are (the -8 offset moves to the activations' block
 * sums), Q8_0's int8 plus 128 (likewise). Those offset terms are exact
 * integers and start the accumulator, spread evenly over the 8 dword lanes of
 * a block: -sum for Q4_0 (8 lanes x 1 x 8), -16 sum for Q8_0 (8 x 16 = 128).
 * Each zmm holds two 32-byte blocks, lanes 0-7 the first, 8-15 the second.
 */
#include "kernels/kernels.h"
#include "kernels/quant.h"

#if defined(__AVX512F__) && defined(__AVX512VNNI__) && defined(__AVX512VBMI__)
#include <immintrin.h>
#include <string.h>

#define PF_BYTES 8192 /* software prefetch distance within the weight stream */

static inline uint32_t rd16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return h;
}

/* Q8_0 and Q4_0, two blocks per step. One 64-byte load at the pair's start
 * holds both fp16 scales (Q8_0: and block a's quants; Q4_0: both blocks'
 * nibbles, 36 bytes); vpermw spreads the scales over their lanes and vpermb
 * lays Q4_0's nibble bytes out as [a, a, b, b] for a shift of lanes 1 and 3.
 * M is a compile-time constant in each instance (always_inline), so the
 * accumulators stay in registers. */
static inline __attribute__((always_inline)) void rows_q8_q4_m(const int M, const dots_act_q8 *x, const uint8_t *w, bool q4,
                                                               int64_t row_bytes, int64_t n0, int64_t n1, float *y, int64_t ldy,
                                                               const float *bias) {
    const int64_t nx = x->K / 32, np = x->K / 64, bb = q4 ? 18 : 34;
    const __m512i lo4 = _mm512_set1_epi8(0x0F), flip = _mm512_set1_epi8((char)0x80);
    const __m512i shifts = _mm512_setr_epi64(0, 0, 0x0004000400040004LL, 0x0004000400040004LL, 0, 0, 0x0004000400040004LL,
                                             0x0004000400040004LL);
    /* fp16 scale words: block a's at word 0, b's at word 9 (Q4_0) or 17 (Q8_0) */
    const short wb = q4 ? 9 : 17;
    const __m512i scale_idx = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, wb, wb, wb, wb, wb, wb, wb, wb, 0,
                                               0, 0, 0, 0, 0, 0, 0);
    /* Q4_0 nibble bytes: a's at 2..17, b's at 20..35, each twice */
    uint8_t nib[64];
    for (int i = 0; i < 16; i++) nib[i] = nib[16 + i] = (uint8_t)(2 + i), nib[32 + i] = nib[48 + i] = (uint8_t)(20 + i);
    const __m512i nib_idx = _mm512_loadu_si512((const void *)nib);
    for (int64_t n = n0; n < n1; n++) {
        const uint8_t *r = w + n * row_bytes;
        /* two accumulators per row: one FMA chain would wait on its own latency */
        __m512 acc[DOTS_GEMV_MAX_M][2];
        for (int m = 0; m < M; m++) acc[m][0] = acc[m][1] = _mm512_setzero_ps();
        for (int64_t p = 0; p < np; p += 2) {
            for (int h = 0; h < 2 && p + h < np; h++) { /* constant h after unrolling: registers, not memory */
                const int64_t ph = p + h;
                const uint8_t *ba = r + 2 * ph * bb;
                _mm_prefetch((const char *)ba + PF_BYTES, _MM_HINT_T0);
                _mm_prefetch((const char *)ba + PF_BYTES + 64, _MM_HINT_T0);
                /* Q4_0's pair is 36 bytes: the masked load never touches bytes past the tensor */
                const __m512i z = q4 ? _mm512_maskz_loadu_epi8(0xFFFFFFFFFULL, ba) : _mm512_loadu_si512((const void *)ba);
                __m512i wu;
                if (q4)
                    wu = _mm512_and_si512(_mm512_srlv_epi16(_mm512_permutexvar_epi8(nib_idx, z), shifts), lo4);
                else
                    wu = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(ba + 2))),
                                                             _mm256_loadu_si256((const __m256i *)(ba + 36)), 1),
                                          flip);
                const __m512 dw = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(scale_idx, z)));
                for (int m = 0; m < M; m++) {
                    const int64_t o = (m * np + ph) * 16;
                    __m512i c = _mm512_load_si512((const void *)(x->neg_sum_lanes + o));
                    if (!q4) c = _mm512_slli_epi32(c, 4);
                    const __m512i dot = _mm512_dpbusd_epi32(c, wu, _mm512_loadu_si512((const void *)(x->q + m * x->K + 64 * ph)));
                    acc[m][h] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(dw, _mm512_load_ps(x->d_lanes + o)), acc[m][h]);
                }
            }
        }
        float tail[DOTS_GEMV_MAX_M] = {0};
        if (2 * np < nx) { /* an odd last block: the 256-bit form */
            const int64_t b = nx - 1;
            const uint8_t *ba = r + b * bb;
            __m256i wu;
            if (q4) {
                __m128i v = _mm_loadu_si128((const __m128i *)(ba + 2));
                wu = _mm256_and_si256(_mm256_inserti128_si256(_mm256_castsi128_si256(v), _mm_srli_epi16(v, 4), 1),
                                      _mm256_set1_epi8(0x0F));
            } else {
                wu = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(ba + 2)), _mm256_set1_epi8((char)0x80));
            }
            const float dw = _cvtsh_ss((unsigned short)rd16(ba));
            for (int m = 0; m < M; m++) {
                const int64_t o = m * nx + b;
                const __m256i c = _mm256_set1_epi32(q4 ? -x->sum[o] : -16 * x->sum[o]);
                __m256i dot = _mm256_dpbusd_epi32(c, wu, _mm256_loadu_si256((const __m256i *)(x->q + m * x->K + 32 * b)));
                __m128i h = _mm_add_epi32(_mm256_castsi256_si128(dot), _mm256_extracti128_si256(dot, 1));
                h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
                h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xB1));
                tail[m] = dw * x->d[o] * (float)_mm_cvtsi128_si32(h);
            }
        }
        for (int m = 0; m < M; m++)
            y[m * ldy + n] = _mm512_reduce_add_ps(_mm512_add_ps(acc[m][0], acc[m][1])) + tail[m] + (bias ? bias[n] : 0.0f);
    }
}

static void rows_q8_q4(const dots_act_q8 *x, const uint8_t *w, bool q4, int64_t row_bytes, int64_t n0, int64_t n1, float *y,
                       int64_t ldy, const float *bias) {
    switch (x->M) {
    case 1: rows_q8_q4_m(1, x, w, q4, row_bytes, n0, n1, y, ldy, bias); break;
    case 2: rows_q8_q4_m(2, x, w, q4, row_bytes, n0, n1, y, ldy, bias); break;
    case 3: rows_q8_q4_m(3, x, w, q4, row_bytes, n0, n1, y, ldy, bias); break;
    default: rows_q8_q4_m(4, x, w, q4, row_bytes, n0, n1, y, ldy, bias); break;
    }
}

/* Q4_K: per 256 weights, group g's 32 bytes hold sub-block 2g in the low
 * nibbles and 2g + 1 in the high ones; x = d sc q - dmin m per sub-block.
 * Each group is broadcast to both halves of a zmm and the upper half shifted,
 * giving the two sub-blocks in element order; their scales d sc_j dx_j are
 * spread over their 8 lanes by one vpermps. */
static inline __attribute__((always_inline)) void rows_q4_k_m(const int M, const dots_act_q8 *x, const uint8_t *w,
                                                              int64_t row_bytes, int64_t n0, int64_t n1, float *y, int64_t ldy,
                                                              const float *bias) {
    const int64_t nx = x->K / 32, nsb = x->K / 256;
    const __m512i lo4 = _mm512_set1_epi8(0x0F);
    const __m512i shifts = _mm512_setr_epi64(0, 0, 0, 0, 0x0004000400040004LL, 0x0004000400040004LL, 0x0004000400040004LL,
                                             0x0004000400040004LL);
    __m512i sel[4];
    for (int g = 0; g < 4; g++)
        sel[g] = _mm512_setr_epi32(2 * g, 2 * g, 2 * g, 2 * g, 2 * g, 2 * g, 2 * g, 2 * g, 2 * g + 1, 2 * g + 1, 2 * g + 1,
                                   2 * g + 1, 2 * g + 1, 2 * g + 1, 2 * g + 1, 2 * g + 1);
    for (int64_t n = n0; n < n1; n++) {
        const uint8_t *r = w + n * row_bytes;
        __m512 acc[DOTS_GEMV_MAX_M][2];
        __m256 macc[DOTS_GEMV_MAX_M];
        for (int m = 0; m < M; m++) acc[m][0] = acc[m][1] = _mm512_setzero_ps(), macc[m] = _mm256_setzero_ps();
        for (int64_t sb = 0; sb < nsb; sb++) {
            const uint8_t *blk = r + 144 * sb;
            _mm_prefetch((const char *)blk + PF_BYTES, _MM_HINT_T0);
            _mm_prefetch((const char *)blk + PF_BYTES + 64, _MM_HINT_T0);
            _mm_prefetch((const char *)blk + PF_BYTES + 128, _MM_HINT_T0);
            /* the 6-bit scales and mins of the 8 sub-blocks as bytes [sc 0-7 | m 0-7] (quant.h's
             * layout), unpacked in registers: four scalar stores read back as one vector would
             * miss store forwarding on every super-block */
            const __m128i v = _mm_maskz_loadu_epi32(0x7, blk + 4);                     /* [u0, u1, u2, 0] */
            const __m128i lo = _mm_and_si128(v, _mm_set1_epi32(0x3f3f3f3f));          /* [sc 0-3, m 0-3] */
            const __m128i top = _mm_slli_epi32(_mm_and_si128(_mm_srli_epi32(v, 6), _mm_set1_epi32(0x03030303)), 4);
            const __m128i u2 = _mm_srlv_epi32(_mm_shuffle_epi32(v, 0xAA), _mm_setr_epi32(0, 4, 0, 0));
            const __m128i hi = _mm_or_si128(_mm_and_si128(u2, _mm_set1_epi32(0x0f0f0f0f)), top); /* [sc 4-7, m 4-7] */
            const __m128i scm = _mm_unpacklo_epi32(lo, hi);
            const __m128 dd = _mm_cvtph_ps(_mm_loadu_si32(blk)); /* (d, dmin): adjacent fp16 */
            const __m256 sc = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(scm)), _mm256_broadcastss_ps(dd));
            const __m256 mn = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(scm, 8))),
                                            _mm256_broadcastss_ps(_mm_movehdup_ps(dd)));
            __m512 s[DOTS_GEMV_MAX_M];
            for (int m = 0; m < M; m++) {
                const int64_t o = m * nx + 8 * sb;
                const __m256 xd = _mm256_loadu_ps(x->d + o);
                s[m] = _mm512_castps256_ps512(_mm256_mul_ps(sc, xd));
                macc[m] = _mm256_fmadd_ps(_mm256_mul_ps(mn, xd), _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(x->sum + o))),
                                          macc[m]);
            }
            for (int g = 0; g < 4; g++) {
                const __m512i z = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * g)));
                const __m512i wu = _mm512_and_si512(_mm512_srlv_epi16(z, shifts), lo4);
                for (int m = 0; m < M; m++) {
                    const __m512i dot =
                        _mm512_dpbusd_epi32(_mm512_setzero_si512(), wu, _mm512_loadu_si512((const void *)(x->q + m * x->K + 256 * sb + 64 * g)));
                    acc[m][g & 1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(sel[g], s[m]), acc[m][g & 1]);
                }
            }
        }
        for (int m = 0; m < M; m++) {
            __m128 t = _mm_add_ps(_mm256_castps256_ps128(macc[m]), _mm256_extractf128_ps(macc[m], 1));
            t = _mm_add_ps(t, _mm_movehl_ps(t, t));
            t = _mm_add_ss(t, _mm_movehdup_ps(t));
            y[m * ldy + n] = _mm512_reduce_add_ps(_mm512_add_ps(acc[m][0], acc[m][1])) - _mm_cvtss_f32(t) + (bias ? bias[n] : 0.0f);
        }
    }
}

static void rows_q4_k(const dots_act_q8 *x, const uint8_t *w, int64_t row_bytes, int64_t n0, int64_t n1, float *y, int64_t ldy,
                      const float *bias) {
    switch (x->M) {
    case 1: rows_q4_k_m(1, x, w, row_bytes, n0, n1, y, ldy, bias); break;
    case 2: rows_q4_k_m(2, x, w, row_bytes, n0, n1, y, ldy, bias); break;
    case 3: rows_q4_k_m(3, x, w, row_bytes, n0, n1, y, ldy, bias); break;
    default: rows_q4_k_m(4, x, w, row_bytes, n0, n1, y, ldy, bias); break;
    }
}

/* ---- 16 rows interleaved (repack.c): lane r of every vector is row r ---- */

static inline __m512i bcast4(const int8_t *p) { /* 4 activation bytes to every dword lane */
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

static inline void prefetch_span(const uint8_t *p, int64_t bytes) {
    for (int64_t o = 0; o < bytes; o += 64) _mm_prefetch((const char *)p + PF_BYTES + o, _MM_HINT_T0);
}

static inline void store_rows(const int M, __m512 *acc, float *y, int64_t ldy, int64_t n, const float *bias) {
    const __m512 b = bias ? _mm512_loadu_ps(bias + n) : _mm512_setzero_ps();
    for (int m = 0; m < M; m++) _mm512_storeu_ps(y + m * ldy + n, _mm512_add_ps(acc[m], b));
}

/* Q8_0 (weights stored + 128) and Q4_0 (nibbles as they are): the offsets
 * -128 sum and -8 sum of each block's activations start its accumulator. */
static inline __attribute__((always_inline)) void r16_q8_q4_m(const int M, const dots_act_q8 *x, const uint8_t *w, bool q4,
                                                              int64_t g0, int64_t g1, float *y, int64_t ldy, const float *bias) {
    const int64_t nx = x->K / 32, bb = q4 ? 288 : 544;
    const __m512i lo4 = _mm512_set1_epi8(0x0F);
    for (int64_t g = g0; g < g1; g++) {
        const uint8_t *grp = w + g * nx * bb;
        __m512 acc[DOTS_GEMV_MAX_M];
        for (int m = 0; m < M; m++) acc[m] = _mm512_setzero_ps();
        for (int64_t b = 0; b < nx; b++) {
            const uint8_t *blk = grp + b * bb;
            prefetch_span(blk, bb);
            __m512i ci[DOTS_GEMV_MAX_M][2];
            for (int m = 0; m < M; m++) {
                ci[m][0] = _mm512_set1_epi32((q4 ? -8 : -128) * x->sum[m * nx + b]);
                ci[m][1] = _mm512_setzero_si512();
            }
            if (q4) {
                for (int c = 0; c < 4; c++) {
                    const __m512i z = _mm512_loadu_si512((const void *)(blk + 32 + 64 * c));
                    const __m512i lo = _mm512_and_si512(z, lo4), hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), lo4);
                    for (int m = 0; m < M; m++) {
                        const int8_t *xq = x->q + m * x->K + 32 * b + 4 * c;
                        ci[m][0] = _mm512_dpbusd_epi32(ci[m][0], lo, bcast4(xq));
                        ci[m][1] = _mm512_dpbusd_epi32(ci[m][1], hi, bcast4(xq + 16));
                    }
                }
            } else {
                for (int c = 0; c < 8; c++) {
                    const __m512i z = _mm512_loadu_si512((const void *)(blk + 32 + 64 * c));
                    for (int m = 0; m < M; m++)
                        ci[m][c & 1] = _mm512_dpbusd_epi32(ci[m][c & 1], z, bcast4(x->q + m * x->K + 32 * b + 4 * c));
                }
            }
            const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
            for (int m = 0; m < M; m++)
                acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(ci[m][0], ci[m][1])),
                                         _mm512_mul_ps(dw, _mm512_set1_ps(x->d[m * nx + b])), acc[m]);
        }
        store_rows(M, acc, y, ldy, 16 * g, bias);
    }
}

/* Q4_K: x = d sc q - dmin m per sub-block; the mins' part, m times each
 * sub-block's activation sum, gathers per super-block and leaves with one
 * FMA by dmin. */
static inline __attribute__((always_inline)) void r16_q4_k_m(const int M, const dots_act_q8 *x, const uint8_t *w, int64_t g0,
                                                             int64_t g1, float *y, int64_t ldy, const float *bias) {
    const int64_t nx = x->K / 32, nsb = x->K / 256, sbb = 2368;
    const __m512i lo4 = _mm512_set1_epi8(0x0F);
    for (int64_t g = g0; g < g1; g++) {
        const uint8_t *grp = w + g * nsb * sbb;
        __m512 acc[DOTS_GEMV_MAX_M];
        for (int m = 0; m < M; m++) acc[m] = _mm512_setzero_ps();
        for (int64_t sb = 0; sb < nsb; sb++) {
            const uint8_t *blk = grp + sb * sbb;
            prefetch_span(blk, sbb);
            const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
            const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(blk + 32)));
            __m512 mins[DOTS_GEMV_MAX_M];
            for (int m = 0; m < M; m++) mins[m] = _mm512_setzero_ps();
            for (int p = 0; p < 4; p++) {
                __m512i ci[DOTS_GEMV_MAX_M][2];
                for (int m = 0; m < M; m++) ci[m][0] = ci[m][1] = _mm512_setzero_si512();
                for (int c = 0; c < 8; c++) {
                    const __m512i z = _mm512_loadu_si512((const void *)(blk + 320 + 512 * p + 64 * c));
                    const __m512i lo = _mm512_and_si512(z, lo4), hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), lo4);
                    for (int m = 0; m < M; m++) {
                        const int8_t *xq = x->q + m * x->K + 256 * sb + 64 * p + 4 * c;
                        ci[m][0] = _mm512_dpbusd_epi32(ci[m][0], lo, bcast4(xq));
                        ci[m][1] = _mm512_dpbusd_epi32(ci[m][1], hi, bcast4(xq + 32));
                    }
                }
                for (int h = 0; h < 2; h++) {
                    const int j = 2 * p + h;
                    const __m512 sc = _mm512_mul_ps(
                        d, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(blk + 64 + 16 * j)))));
                    const __m512 mn = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(blk + 192 + 16 * j))));
                    for (int m = 0; m < M; m++) {
                        const int64_t o = m * nx + 8 * sb + j;
                        acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ci[m][h]), _mm512_mul_ps(sc, _mm512_set1_ps(x->d[o])), acc[m]);
                        mins[m] = _mm512_fmadd_ps(mn, _mm512_set1_ps(x->d[o] * (float)x->sum[o]), mins[m]);
                    }
                }
            }
            for (int m = 0; m < M; m++) acc[m] = _mm512_fnmadd_ps(dmin, mins[m], acc[m]);
        }
        store_rows(M, acc, y, ldy, 16 * g, bias);
    }
}

/* Q8_0 and Q4_0 for 5..8 rows of X (a batch): one integer sum per row (the
 * sum of r16_q8_q4_m's two, exact in any order), so 8 rows fit the
 * registers; the same bits per row as a call of its own. */
static inline __attribute__((always_inline)) void r16_q8_q4_wide(const int M, const dots_act_q8 *x, const uint8_t *w, bool q4,
                                                                 int64_t g0, int64_t g1, float *y, int64_t ldy,
                                                                 const float *bias) {
    const int64_t nx = x->K / 32, bb = q4 ? 288 : 544;
    const __m512i lo4 = _mm512_set1_epi8(0x0F);
    for (int64_t g = g0; g < g1; g++) {
        const uint8_t *grp = w + g * nx * bb;
        __m512 acc[8];
        _Pragma("GCC unroll 8") for (int m = 0; m < M; m++) acc[m] = _mm512_setzero_ps();
        for (int64_t b = 0; b < nx; b++) {
            const uint8_t *blk = grp + b * bb;
            prefetch_span(blk, bb);
            __m512i ci[8];
            _Pragma("GCC unroll 8") for (int m = 0; m < M; m++) ci[m] = _mm512_set1_epi32((q4 ? -8 : -128) * x->sum[m * nx + b]);
            if (q4) {
                for (int c = 0; c < 4; c++) {
                    const __m512i z = _mm512_loadu_si512((const void *)(blk + 32 + 64 * c));
                    const __m512i lo = _mm512_and_si512(z, lo4), hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), lo4);
                    _Pragma("GCC unroll 8") for (int m = 0; m < M; m++) {
                        const int8_t *xq = x->q + m * x->K + 32 * b + 4 * c;
                        ci[m] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(ci[m], lo, bcast4(xq)), hi, bcast4(xq + 16));
                    }
                }
            } else {
                for (int c = 0; c < 8; c++) {
                    const __m512i z = _mm512_loadu_si512((const void *)(blk + 32 + 64 * c));
                    _Pragma("GCC unroll 8") for (int m = 0; m < M; m++)
                        ci[m] = _mm512_dpbusd_epi32(ci[m], z, bcast4(x->q + m * x->K + 32 * b + 4 * c));
                }
            }
            const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
            _Pragma("GCC unroll 8") for (int m = 0; m < M; m++)
                acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ci[m]), _mm512_mul_ps(dw, _mm512_set1_ps(x->d[m * nx + b])), acc[m]);
        }
        const __m512 bv = bias ? _mm512_loadu_ps(bias + 16 * g) : _mm512_setzero_ps();
        _Pragma("GCC unroll 8") for (int m = 0; m < M; m++) _mm512_storeu_ps(y + m * ldy + 16 * g, _mm512_add_ps(acc[m], bv));
    }
}

/* The same for 5..8 rows of X (a batch): the low and the high nibbles of a
 * 512-byte step go in two passes, so 8 rows' integer sums, sums and mins fit
 * the 32 registers; the floating-point updates keep r16_q4_k_m's order (j
 * ascending), and the integer sums are exact in any order, so each row gets
 * the bits it gets in a call of its own. */
static inline __attribute__((always_inline)) void r16_q4_k_wide(const int M, const dots_act_q8 *x, const uint8_t *w,
                                                                int64_t g0, int64_t g1, float *y, int64_t ldy,
                                                                const float *bias) {
    const int64_t nx = x->K / 32, nsb = x->K / 256, sbb = 2368;
    const __m512i lo4 = _mm512_set1_epi8(0x0F);
    for (int64_t g = g0; g < g1; g++) {
        const uint8_t *grp = w + g * nsb * sbb;
        __m512 acc[8];
        _Pragma("GCC unroll 8") for (int m = 0; m < M; m++) acc[m] = _mm512_setzero_ps();
        for (int64_t sb = 0; sb < nsb; sb++) {
            const uint8_t *blk = grp + sb * sbb;
            prefetch_span(blk, sbb);
            const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
            const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(blk + 32)));
            __m512 mins[8];
            _Pragma("GCC unroll 8") for (int m = 0; m < M; m++) mins[m] = _mm512_setzero_ps();
            for (int p = 0; p < 4; p++)
                for (int h = 0; h < 2; h++) {
                    __m512i ci[8];
                    _Pragma("GCC unroll 8") for (int m = 0; m < M; m++) ci[m] = _mm512_setzero_si512();
                    for (int c = 0; c < 8; c++) {
                        const __m512i z = _mm512_loadu_si512((const void *)(blk + 320 + 512 * p + 64 * c));
                        const __m512i v = h ? _mm512_and_si512(_mm512_srli_epi16(z, 4), lo4) : _mm512_and_si512(z, lo4);
                        _Pragma("GCC unroll 8") for (int m = 0; m < M; m++) {
                            const int8_t *xq = x->q + m * x->K + 256 * sb + 64 * p + 4 * c + 32 * h;
                            ci[m] = _mm512_dpbusd_epi32(ci[m], v, bcast4(xq));
                        }
                    }
                    const int j = 2 * p + h;
                    const __m512 sc = _mm512_mul_ps(
                        d, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(blk + 64 + 16 * j)))));
                    const __m512 mn = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(blk + 192 + 16 * j))));
                    _Pragma("GCC unroll 8") for (int m = 0; m < M; m++) {
                        const int64_t o = m * nx + 8 * sb + j;
                        acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ci[m]), _mm512_mul_ps(sc, _mm512_set1_ps(x->d[o])), acc[m]);
                        mins[m] = _mm512_fmadd_ps(mn, _mm512_set1_ps(x->d[o] * (float)x->sum[o]), mins[m]);
                    }
                }
            _Pragma("GCC unroll 8") for (int m = 0; m < M; m++) acc[m] = _mm512_fnmadd_ps(dmin, mins[m], acc[m]);
        }
        const __m512 b = bias ? _mm512_loadu_ps(bias + 16 * g) : _mm512_setzero_ps();
        _Pragma("GCC unroll 8") for (int m = 0; m < M; m++) _mm512_storeu_ps(y + m * ldy + 16 * g, _mm512_add_ps(acc[m], b));
    }
}

static void rows_r16(const dots_act_q8 *x, const uint8_t *w, dots_dtype wt, int64_t g0, int64_t g1, float *y, int64_t ldy,
                     const float *bias) {
#define R16_CASE(MM)                                                                                                   \
    case MM:                                                                                                           \
        if (wt == DOTS_DTYPE_Q4_K_R16) r16_q4_k_m(MM, x, w, g0, g1, y, ldy, bias);                                     \
        else r16_q8_q4_m(MM, x, w, wt == DOTS_DTYPE_Q4_0_R16, g0, g1, y, ldy, bias);                                   \
        break;
#define R16_WIDE(MM)                                                                                                   \
    case MM:                                                                                                           \
        if (wt == DOTS_DTYPE_Q4_K_R16) r16_q4_k_wide(MM, x, w, g0, g1, y, ldy, bias);                                  \
        else r16_q8_q4_wide(MM, x, w, wt == DOTS_DTYPE_Q4_0_R16, g0, g1, y, ldy, bias);                                \
        break;
    switch (x->M) {
    R16_CASE(1)
    R16_CASE(2)
    R16_CASE(3)
    R16_WIDE(5)
    R16_WIDE(6)
    R16_WIDE(7)
    R16_WIDE(8)
    default: R16_CASE(4)
    }
#undef R16_CASE
#undef R16_WIDE
}

void dots_gemv_rows_q8act_avx512vnni(const dots_act_q8 *x, const void *w, dots_dtype wt, int64_t ldw, int64_t n0,
                                     int64_t n1, float *y, int64_t ldy, const float *bias) {
    const int64_t row_bytes = dots_dtype_bytes(wt, ldw);
    if (dots_dtype_is_r16(wt) && ldw == x->K && n0 % 16 == 0 && n1 % 16 == 0)
        rows_r16(x, w, wt, n0 / 16, n1 / 16, y, ldy, bias);
    else if (wt == DOTS_DTYPE_Q4_K)
        rows_q4_k(x, w, row_bytes, n0, n1, y, ldy, bias);
    else if (wt == DOTS_DTYPE_Q8_0 || wt == DOTS_DTYPE_Q4_0)
        rows_q8_q4(x, w, wt == DOTS_DTYPE_Q4_0, row_bytes, n0, n1, y, ldy, bias);
    else
        dots_gemv_rows_q8act_ref(x, w, wt, ldw, n0, n1, y, ldy, bias);
}

/* dots_act_q8_init's values: roundf (half away from zero) rebuilt from an
 * exact truncation, since the vector rounding mode rounds halves to even. */
void dots_act_q8_init_avx512(dots_act_q8 *a, void *mem, const float *x, int64_t ldx, int M, int64_t K) {
    const int64_t nx = K / 32, np = K / 64;
    dots_act_q8_layout(a, mem, M, K);
    int8_t *q = (int8_t *)a->q;
    float *dl = (float *)a->d_lanes, *d = (float *)a->d;
    int32_t *cl = (int32_t *)a->neg_sum_lanes, *sum = (int32_t *)a->sum;
    const __m512i signbit = _mm512_set1_epi32((int)0x80000000u);
    const __m512 half = _mm512_set1_ps(0.5f);
    const __m512 lim = _mm512_set1_ps(127.0f), one = _mm512_set1_ps(1.0f);
    for (int m = 0; m < M; m++)
        for (int64_t b = 0; b < nx; b++) {
            const float *xb = x + m * ldx + 32 * b;
            const __m512 x0 = _mm512_loadu_ps(xb), x1 = _mm512_loadu_ps(xb + 16);
            const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
            const float db = amax / 127.0f, id = db != 0.0f ? 1.0f / db : 0.0f;
            __m512i qi[2];
            for (int h = 0; h < 2; h++) {
                const __m512 v = _mm512_mul_ps(h ? x1 : x0, _mm512_set1_ps(id));
                const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
                const __mmask16 up = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(v, t)), half, _CMP_GE_OQ);
                /* t + sign(v) where the fraction is at least a half */
                __m512 r = _mm512_mask_add_ps(t, up, t, _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(one), _mm512_and_si512(_mm512_castps_si512(v), signbit))));
                r = _mm512_min_ps(_mm512_max_ps(r, _mm512_sub_ps(_mm512_setzero_ps(), lim)), lim);
                qi[h] = _mm512_cvtps_epi32(r);
            }
            _mm_storeu_si128((__m128i *)(q + m * K + 32 * b), _mm512_cvtepi32_epi8(qi[0]));
            _mm_storeu_si128((__m128i *)(q + m * K + 32 * b + 16), _mm512_cvtepi32_epi8(qi[1]));
            const int32_t s = _mm512_reduce_add_epi32(_mm512_add_epi32(qi[0], qi[1]));
            d[m * nx + b] = db;
            sum[m * nx + b] = s;
            if (b / 2 < np) {
                float *dlp = dl + (m * np + b / 2) * 16 + 8 * (b & 1);
                int32_t *clp = cl + (m * np + b / 2) * 16 + 8 * (b & 1);
                _mm256_storeu_ps(dlp, _mm256_set1_ps(db));
                _mm256_storeu_si256((__m256i *)clp, _mm256_set1_epi32(-s));
            }
        }
}
#else
void dots_act_q8_init_avx512(dots_act_q8 *a, void *mem, const float *x, int64_t ldx, int M, int64_t K) {
    dots_act_q8_init(a, mem, x, ldx, M, K);
}
void dots_gemv_rows_q8act_avx512vnni(const dots_act_q8 *x, const void *w, dots_dtype wt, int64_t ldw, int64_t n0,
                                     int64_t n1, float *y, int64_t ldy, const float *bias) {
    dots_gemv_rows_q8act_ref(x, w, wt, ldw, n0, n1, y, ldy, bias);
}
#endif
