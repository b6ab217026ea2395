/*
 * attention_avx512bf16.c - tiled attention for precision "bf16": both
 * products, S = Q K^T and O = P V, run on the bf16 GEMM micro-kernel
 * (vdpbf16ps, fp32 sums), and the online softmax uses a vector exp.
 *
 *   per block of up to 256 queries: Q -> bf16 pairs            [nq][d/2]
 *   per block of 128 keys:          K -> panels over d          [d/2][32 keys]
 *                                   V -> panels over key pairs  [64][32 of d]
 *     S = Q K^T (fp32) ─► scale, mask, running max/sum ─► P = e^(S - m) as bf16
 *     acc = acc * e^(m_old - m) + P V
 *   O = acc / l
 *
 * K and V are packed once per call (4 bytes per key and head dimension);
 * the rest lives in ~600 kB of scratch whatever the sequence length. Q, K, V, P are rounded to bf16 (as the official bf16 model does);
 * the running max, sums and the output accumulator stay fp32.
 */
#include "kernels/kernels.h"

#if defined(__AVX512BF16__)
#include <immintrin.h>
#include <math.h>

#include "kernels/x86/attention_decode.h"
#include "kernels/x86/exp_avx512.h"
#include <stdlib.h>
#include <string.h>

#define QB 256
#define KB 128

/* K rows [nk][d] (ld; fp32, or bf16 when kv16) -> ceil(nk/32) panels [d2][32] of (K[j][2i], K[j][2i+1]). */
static void pack_k(const void *kv, bool kv16, int64_t ld, int64_t nk, int64_t d, int64_t d2, uint32_t *out) {
    int64_t n_panels = (nk + 31) / 32;
    memset(out, 0, sizeof(uint32_t) * (size_t)(n_panels * d2 * 32));
    uint16_t row[2048 + 32];
    for (int64_t j = 0; j < nk; j++) {
        const float *src = kv16 ? NULL : (const float *)kv + j * ld;
        int64_t i = 0;
        if (kv16) {
            memcpy(row, (const uint16_t *)kv + j * ld, sizeof(uint16_t) * (size_t)d);
            i = d;
        }
        for (; i + 32 <= d; i += 32)
            _mm512_storeu_si512(row + i, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + i + 16), _mm512_loadu_ps(src + i)));
        for (; i < d; i++) {
            __m256bh h = _mm512_cvtneps_pbh(_mm512_set1_ps(src[i]));
            row[i] = (uint16_t)_mm256_extract_epi16((__m256i)h, 0);
        }
        if (d & 1) row[d] = 0;
        uint32_t *panel = out + (j / 32) * d2 * 32 + (j % 32);
        const uint32_t *pairs = (const uint32_t *)row;
        for (int64_t p = 0; p < d2; p++) panel[p * 32] = pairs[p];
    }
}

/* bf16 V rows: the pairs straight from the 16-bit values. */
static void pack_v16(const uint16_t *v, int64_t ld, int64_t nk, int64_t d, int64_t nk2, uint32_t *out) {
    int64_t n_panels = (d + 31) / 32;
    for (int64_t p = 0; p < n_panels; p++) {
        uint32_t *panel = out + p * nk2 * 32;
        int64_t c0 = p * 32, nc = d - c0 < 32 ? d - c0 : 32;
        __mmask16 m0 = nc >= 16 ? 0xFFFF : (__mmask16)((1u << nc) - 1);
        __mmask16 m1 = nc >= 32 ? 0xFFFF : nc <= 16 ? 0 : (__mmask16)((1u << (nc - 16)) - 1);
        for (int64_t j2 = 0; j2 < nk2; j2++) {
            const uint16_t *r0 = v + 2 * j2 * ld + c0, *r1 = 2 * j2 + 1 < nk ? r0 + ld : NULL;
            __m256i ha0 = _mm256_maskz_loadu_epi16(m0, r0), ha1 = _mm256_maskz_loadu_epi16(m1, r0 + 16);
            __m256i hb0 = r1 ? _mm256_maskz_loadu_epi16(m0, r1) : _mm256_setzero_si256();
            __m256i hb1 = r1 ? _mm256_maskz_loadu_epi16(m1, r1 + 16) : _mm256_setzero_si256();
            __m512i p0 = _mm512_or_si512(_mm512_cvtepu16_epi32(ha0), _mm512_slli_epi32(_mm512_cvtepu16_epi32(hb0), 16));
            __m512i p1 = _mm512_or_si512(_mm512_cvtepu16_epi32(ha1), _mm512_slli_epi32(_mm512_cvtepu16_epi32(hb1), 16));
            _mm512_storeu_si512(panel + j2 * 32, p0);
            _mm512_storeu_si512(panel + j2 * 32 + 16, p1);
        }
    }
}

/* V rows [nk][d] -> ceil(d/32) panels [nk2][32] of (V[2j][c], V[2j+1][c]). */
static void pack_v(const float *v, int64_t ld, int64_t nk, int64_t d, int64_t nk2, uint32_t *out) {
    int64_t n_panels = (d + 31) / 32;
    for (int64_t p = 0; p < n_panels; p++) {
        uint32_t *panel = out + p * nk2 * 32;
        int64_t c0 = p * 32, nc = d - c0 < 32 ? d - c0 : 32;
        __mmask16 m0 = nc >= 16 ? 0xFFFF : (__mmask16)((1u << nc) - 1);
        __mmask16 m1 = nc >= 32 ? 0xFFFF : nc <= 16 ? 0 : (__mmask16)((1u << (nc - 16)) - 1);
        for (int64_t j2 = 0; j2 < nk2; j2++) {
            const float *r0 = v + 2 * j2 * ld + c0, *r1 = 2 * j2 + 1 < nk ? r0 + ld : NULL;
            __m512 a0 = _mm512_maskz_loadu_ps(m0, r0), a1 = _mm512_maskz_loadu_ps(m1, r0 + 16);
            __m512 b0 = r1 ? _mm512_maskz_loadu_ps(m0, r1) : _mm512_setzero_ps();
            __m512 b1 = r1 ? _mm512_maskz_loadu_ps(m1, r1 + 16) : _mm512_setzero_ps();
            /* bf16 of each, then interleave (a, b) per column into pairs */
            __m256i ha0 = (__m256i)_mm512_cvtneps_pbh(a0), ha1 = (__m256i)_mm512_cvtneps_pbh(a1);
            __m256i hb0 = (__m256i)_mm512_cvtneps_pbh(b0), hb1 = (__m256i)_mm512_cvtneps_pbh(b1);
            __m512i p0 = _mm512_or_si512(_mm512_cvtepu16_epi32(ha0), _mm512_slli_epi32(_mm512_cvtepu16_epi32(hb0), 16));
            __m512i p1 = _mm512_or_si512(_mm512_cvtepu16_epi32(ha1), _mm512_slli_epi32(_mm512_cvtepu16_epi32(hb1), 16));
            _mm512_storeu_si512(panel + j2 * 32, p0);
            _mm512_storeu_si512(panel + j2 * 32 + 16, p1);
        }
    }
}

static void attention_bf16(dots_scratch *scratch, float *o, int64_t ldo, const float *q, int64_t ldq, const void *kk, int64_t ldk,
                           const void *v, int64_t ldv, bool kv16, int64_t n_q, int64_t n_k, int64_t d, float scale, bool causal,
                           int64_t q_pos0) {
    const int64_t d2 = (d + 1) / 2, n_dp = (d + 31) / 32;
    /* K and V are packed once per call for every key any query may see */
    const int64_t k_max = causal ? (q_pos0 + n_q < n_k ? q_pos0 + n_q : n_k) : n_k, n_kb = (k_max + KB - 1) / KB;
    const size_t qp_n = (size_t)(QB * d2), kp_n = (size_t)(KB / 32 * d2 * 32), vp_n = (size_t)(n_dp * (KB / 2) * 32);
    const size_t bytes = 4 * ((qp_n + (kp_n + vp_n) * (size_t)n_kb) + QB * KB + QB * KB / 2 + 2 * QB * (size_t)d + 3 * QB) + 64 * 8;
    uint8_t *mem = d > 2048 ? NULL : scratch ? dots_scratch_get(scratch, bytes) : aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!mem && kv16) { /* no memory for the packed blocks: one query row at a time needs n_k floats */
        dots_kernels k1 = {DOTS_ISA_AVX512BF16, NULL, NULL, true, NULL, NULL};
        for (int64_t i = 0; i < n_q; i++)
            dots_attention_decode_group(&k1, 0, o + i * ldo, q + i * ldq, 1, kk, ldk, v, ldv, DOTS_DTYPE_BF16,
                                        causal ? (q_pos0 + i + 1 < n_k ? q_pos0 + i + 1 : n_k) : n_k, d, scale);
        return;
    }
    if (!mem) {
        dots_attention_ref(o, ldo, q, ldq, kk, ldk, v, ldv, n_q, n_k, d, scale, causal, q_pos0);
        return;
    }
    uint8_t *p = mem;
#define TAKE(type, n) (type *)(p = (uint8_t *)(((uintptr_t)p + 63) & ~(uintptr_t)63), p += 4 * (n), p - 4 * (n))
    uint32_t *qp = TAKE(uint32_t, qp_n), *kp_all = TAKE(uint32_t, kp_n * (size_t)n_kb), *vp_all = TAKE(uint32_t, vp_n * (size_t)n_kb);
    float *s = TAKE(float, QB * KB);
    uint32_t *pp = TAKE(uint32_t, QB * KB / 2);
    float *acc = TAKE(float, QB * (size_t)d), *pv = TAKE(float, QB * (size_t)d);
    float *m = TAKE(float, QB), *l = TAKE(float, QB), *corr = TAKE(float, QB);
#undef TAKE
    for (int64_t b = 0; b < n_kb; b++) {
        const int64_t k0 = b * KB, nk = k_max - k0 < KB ? k_max - k0 : KB;
        if (kv16) {
            pack_k((const uint16_t *)kk + k0 * ldk, true, ldk, nk, d, d2, kp_all + (size_t)b * kp_n);
            pack_v16((const uint16_t *)v + k0 * ldv, ldv, nk, d, (nk + 1) / 2, vp_all + (size_t)b * vp_n);
        } else {
            pack_k((const float *)kk + k0 * ldk, false, ldk, nk, d, d2, kp_all + (size_t)b * kp_n);
            pack_v((const float *)v + k0 * ldv, ldv, nk, d, (nk + 1) / 2, vp_all + (size_t)b * vp_n);
        }
    }
    for (int64_t q0 = 0; q0 < n_q; q0 += QB) {
        const int64_t nq = n_q - q0 < QB ? n_q - q0 : QB;
        dots_pack_x_bf16(q + q0 * ldq, ldq, nq, d, qp, d2);
        for (int64_t i = 0; i < nq; i++) m[i] = -INFINITY, l[i] = 0.0f;
        memset(acc, 0, sizeof(float) * (size_t)(nq * d));
        const int64_t k_end = causal ? (q_pos0 + q0 + nq < n_k ? q_pos0 + q0 + nq : n_k) : n_k;
        for (int64_t k0 = 0; k0 < k_end; k0 += KB) {
            const int64_t nk = k_end - k0 < KB ? k_end - k0 : KB, nk2 = (nk + 1) / 2, n_kp = (nk + 31) / 32;
            const uint32_t *kp = kp_all + (size_t)(k0 / KB) * kp_n, *vp = vp_all + (size_t)(k0 / KB) * vp_n;
            for (int64_t i = 0; i < nq; i += DOTS_GEMM_MR) {
                int rows = (int)(nq - i < DOTS_GEMM_MR ? nq - i : DOTS_GEMM_MR);
                for (int64_t pnl = 0; pnl < n_kp; pnl++) {
                    int cols = (int)(nk - 32 * pnl < 32 ? nk - 32 * pnl : 32);
                    dots_gemm_micro_bf16(rows, cols, d2, qp + i * d2, d2, kp + pnl * d2 * 32, s + i * KB + 32 * pnl, KB, NULL);
                }
            }
            /* online softmax, one row at a time, 16 keys per vector */
            for (int64_t i = 0; i < nq; i++) {
                float *si = s + i * KB;
                int64_t vis = causal ? q_pos0 + q0 + i - k0 + 1 : nk;
                vis = vis > nk ? nk : vis < 0 ? 0 : vis;
                __m512 vmax = _mm512_set1_ps(-INFINITY);
                const __m512 vs = _mm512_set1_ps(scale);
                for (int64_t j = 0; j < vis; j += 16) {
                    __mmask16 mk = vis - j >= 16 ? 0xFFFF : (__mmask16)((1u << (vis - j)) - 1);
                    __m512 x = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, si + j), vs);
                    _mm512_mask_storeu_ps(si + j, mk, x);
                    vmax = _mm512_mask_max_ps(vmax, mk, vmax, x);
                }
                float mx = m[i];
                if (vis > 0) {
                    float bm = _mm512_reduce_max_ps(vmax);
                    if (bm > mx) mx = bm;
                }
                corr[i] = m[i] == -INFINITY ? 0.0f : expf(m[i] - mx);
                const __m512 vm = _mm512_set1_ps(mx);
                __m512 vsum = _mm512_setzero_ps();
                uint16_t *prow = (uint16_t *)(pp + i * (KB / 2));
                for (int64_t j = 0; j < 2 * nk2; j += 32) {
                    __m512 e[2];
                    for (int h = 0; h < 2; h++) {
                        int64_t jj = j + 16 * h, left = vis - jj;
                        __mmask16 mk = left >= 16 ? 0xFFFF : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
                        e[h] = _mm512_maskz_mov_ps(mk, dots_exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, si + jj), vm)));
                        vsum = _mm512_add_ps(vsum, e[h]);
                    }
                    __m512i packed = (__m512i)_mm512_cvtne2ps_pbh(e[1], e[0]);
                    int64_t n16 = 2 * nk2 - j < 32 ? 2 * nk2 - j : 32;
                    _mm512_mask_storeu_epi16(prow + j, (__mmask32)(n16 >= 32 ? 0xFFFFFFFFu : ((1u << n16) - 1)), packed);
                }
                l[i] = l[i] * corr[i] + _mm512_reduce_add_ps(vsum);
                m[i] = mx;
            }
            for (int64_t i = 0; i < nq; i += DOTS_GEMM_MR) {
                int rows = (int)(nq - i < DOTS_GEMM_MR ? nq - i : DOTS_GEMM_MR);
                for (int64_t dp = 0; dp < n_dp; dp++) {
                    int cols = (int)(d - 32 * dp < 32 ? d - 32 * dp : 32);
                    dots_gemm_micro_bf16(rows, cols, nk2, pp + i * (KB / 2), KB / 2, vp + dp * nk2 * 32, pv + i * d + 32 * dp, d,
                                         NULL);
                }
            }
            for (int64_t i = 0; i < nq; i++) {
                const __m512 c = _mm512_set1_ps(corr[i]);
                float *ai = acc + i * d, *pi = pv + i * d;
                for (int64_t c0 = 0; c0 < d; c0 += 16) {
                    __mmask16 mk = d - c0 >= 16 ? 0xFFFF : (__mmask16)((1u << (d - c0)) - 1);
                    _mm512_mask_storeu_ps(ai + c0, mk,
                                          _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, ai + c0), c, _mm512_maskz_loadu_ps(mk, pi + c0)));
                }
            }
        }
        for (int64_t i = 0; i < nq; i++) {
            const __m512 inv = _mm512_set1_ps(l[i] > 0 ? 1.0f / l[i] : 0.0f);
            for (int64_t c0 = 0; c0 < d; c0 += 16) {
                __mmask16 mk = d - c0 >= 16 ? 0xFFFF : (__mmask16)((1u << (d - c0)) - 1);
                _mm512_mask_storeu_ps(o + (q0 + i) * ldo + c0, mk, _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, acc + i * d + c0), inv));
            }
        }
    }
    if (!scratch) free(mem);
}

void dots_attention_bf16(dots_scratch *scratch, float *o, int64_t ldo, const float *q, int64_t ldq, const float *kk, int64_t ldk, const float *v,
                         int64_t ldv, int64_t n_q, int64_t n_k, int64_t d, float scale, bool causal, int64_t q_pos0) {
    attention_bf16(scratch, o, ldo, q, ldq, kk, ldk, v, ldv, false, n_q, n_k, d, scale, causal, q_pos0);
}

void dots_attention_bf16_kv16(dots_scratch *scratch, float *o, int64_t ldo, const float *q, int64_t ldq, const uint16_t *kk,
                              int64_t ldk, const uint16_t *v, int64_t ldv, int64_t n_q, int64_t n_k, int64_t d, float scale,
                              bool causal, int64_t q_pos0) {
    attention_bf16(scratch, o, ldo, q, ldq, kk, ldk, v, ldv, true, n_q, n_k, d, scale, causal, q_pos0);
}

/* One decode step over a bf16 KV cache (see attention_decode_avx512.c for
 * the fp32 one): the query rounded to bf16 once, scores on vdpbf16ps, each
 * value row widened to fp32 once per three heads. */
bool dots_attention_decode_group_bf16kv(float *s, float *o, const float *q, int g, const uint16_t *kk, int64_t ldk,
                                        const uint16_t *v, int64_t ldv, int64_t n, int64_t d, float scale) {
    enum { HD = DOTS_DECODE_HD, PF_ROWS = DOTS_DECODE_PF_ROWS };
    if (d != HD || g < 1 || g > 64 || n < 1) return false;
    uint16_t qb[64 * HD];
    dots_pack_x_bf16(q, HD, g, HD, (uint32_t *)(void *)qb, HD / 2);
    for (int64_t j = 0; j < n; j++) {
        const uint16_t *kj = kk + j * ldk;
        if (j + PF_ROWS < n)
            for (int c = 0; c < HD * 2; c += 64) _mm_prefetch((const char *)(kj + PF_ROWS * ldk) + c, _MM_HINT_T0);
        __m512bh kr[HD / 32];
        for (int c = 0; c < HD / 32; c++) kr[c] = (__m512bh)_mm512_loadu_si512((const void *)(kj + 32 * c));
        for (int h = 0; h < g; h++) {
            const uint16_t *qh = qb + h * HD;
            __m512 a0 = _mm512_dpbf16_ps(_mm512_setzero_ps(), (__m512bh)_mm512_loadu_si512((const void *)qh), kr[0]);
            __m512 a1 = _mm512_dpbf16_ps(_mm512_setzero_ps(), (__m512bh)_mm512_loadu_si512((const void *)(qh + 32)), kr[1]);
            a0 = _mm512_dpbf16_ps(a0, (__m512bh)_mm512_loadu_si512((const void *)(qh + 64)), kr[2]);
            a1 = _mm512_dpbf16_ps(a1, (__m512bh)_mm512_loadu_si512((const void *)(qh + 96)), kr[3]);
            s[h * n + j] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) * scale;
        }
    }
    float inv[64];
    dots_decode_softmax(s, g, n, inv);
    dots_decode_pv(s, g, n, v, ldv, true, inv, o);
    return true;
}
#else
bool dots_attention_decode_group_bf16kv(float *s, float *o, const float *q, int g, const uint16_t *kk, int64_t ldk,
                                        const uint16_t *v, int64_t ldv, int64_t n, int64_t d, float scale) {
    (void)s, (void)o, (void)q, (void)g, (void)kk, (void)ldk, (void)v, (void)ldv, (void)n, (void)d, (void)scale;
    return false;
}
void dots_attention_bf16_kv16(dots_scratch *scratch, float *o, int64_t ldo, const float *q, int64_t ldq, const uint16_t *kk,
                              int64_t ldk, const uint16_t *v, int64_t ldv, int64_t n_q, int64_t n_k, int64_t d, float scale,
                              bool causal, int64_t q_pos0) {
    (void)scratch;
    dots_kernels k1 = {DOTS_ISA_GENERIC, NULL, NULL, false, NULL, NULL};
    for (int64_t i = 0; i < n_q; i++)
        dots_attention_decode_group(&k1, 0, o + i * ldo, q + i * ldq, 1, kk, ldk, v, ldv, DOTS_DTYPE_BF16,
                                    causal ? (q_pos0 + i + 1 < n_k ? q_pos0 + i + 1 : n_k) : n_k, d, scale);
}
void dots_attention_bf16(dots_scratch *scratch, float *o, int64_t ldo, const float *q, int64_t ldq, const float *kk, int64_t ldk, const float *v,
                         int64_t ldv, int64_t n_q, int64_t n_k, int64_t d, float scale, bool causal, int64_t q_pos0) {
    (void)scratch;
    dots_attention_ref(o, ldo, q, ldq, kk, ldk, v, ldv, n_q, n_k, d, scale, causal, q_pos0);
}
#endif
