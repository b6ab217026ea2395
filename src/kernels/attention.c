/*
 * attention.c - tiled attention with an online softmax (flash-attention
 * style) for one head. Queries go in blocks of 256 (each key block is packed
 * once for that many queries); for each key block of
 * 128 the scores S = Q K^T come from dots_gemm, then per query row the
 * running max m, running sum l and output accumulator are rescaled:
 *
 *   m' = max(m, max_j s_j);  acc = acc * e^(m - m') + sum_j e^(s_j - m') v_j
 *   l' = l * e^(m - m') + sum_j e^(s_j - m');       at the end  o = acc / l
 *
 * Memory is O(256 x 128 + 256 x d) per call whatever the sequence length.
 */
#include "kernels/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define QB 256
#define KB 128

/* A few queries (decode): scores by the matrix-vector path straight from
 * the key rows, softmax over all visible keys at once, o = sum_j p_j v_j.
 * Nothing is packed or transposed; memory is one score per key. */
static bool attention_few(const dots_kernels *k, float *o, int64_t ldo, const float *q, int64_t ldq, const float *kk,
                          int64_t ldk, const float *v, int64_t ldv, int64_t n_q, int64_t n_k, int64_t d, float scale,
                          bool causal, int64_t q_pos0) {
    float *s = malloc(sizeof(float) * (size_t)(n_k > 0 ? n_k : 1));
    if (!s) return false;
    dots_kernels single = {k ? k->isa : DOTS_ISA_GENERIC, NULL, NULL, false, NULL, NULL};
    for (int64_t i = 0; i < n_q; i++) {
        int64_t vis = causal ? q_pos0 + i + 1 : n_k;
        vis = vis > n_k ? n_k : vis < 0 ? 0 : vis;
        float *oi = o + i * ldo;
        memset(oi, 0, sizeof(float) * (size_t)d);
        if (vis == 0) continue;
        dots_gemm(&single, s, vis, q + i * ldq, ldq, kk, DOTS_DTYPE_F32, ldk, NULL, 1, vis, d);
        float mx = -INFINITY;
        for (int64_t j = 0; j < vis; j++) {
            s[j] *= scale;
            if (s[j] > mx) mx = s[j];
        }
        float sum = 0;
        if (single.isa >= DOTS_ISA_AVX512) {
            sum = dots_exp_shift_sum_avx512(s, vis, mx);
        } else if (dots_isa_arm(single.isa, DOTS_ISA_NEON)) {
            sum = dots_exp_shift_sum_neon(s, vis, mx);
        } else {
            sum = dots_exp_shift_sum(s, vis, mx);
        }
        for (int64_t j = 0; j < vis; j++) {
            const float p = s[j], *vj = v + j * ldv;
            for (int64_t c = 0; c < d; c++) oi[c] += p * vj[c];
        }
        const float inv = 1.0f / sum;
        for (int64_t c = 0; c < d; c++) oi[c] *= inv;
    }
    free(s);
    return true;
}

/* The portable decode step of one head over fp32 or bf16 K/V rows: scores,
 * softmax, o = sum_j p_j v_j; s holds n floats, row d floats. */
static void decode_head_generic(float *s, float *row, float *o, const float *q, const void *kk, int64_t ldk, const void *v,
                                int64_t ldv, dots_dtype kvt, int64_t n, int64_t d, float scale) {
    float mx = -INFINITY;
    for (int64_t j = 0; j < n; j++) {
        dots_weights_to_f32(row, kk, kvt, j * ldk, d);
        float acc = 0.0f;
        for (int64_t c = 0; c < d; c++) acc += q[c] * row[c];
        s[j] = acc * scale;
        mx = s[j] > mx ? s[j] : mx;
    }
    const float sum = dots_exp_shift_sum(s, n, mx);
    memset(o, 0, sizeof(float) * (size_t)d);
    for (int64_t j = 0; j < n; j++) {
        dots_weights_to_f32(row, v, kvt, j * ldv, d);
        for (int64_t c = 0; c < d; c++) o[c] += s[j] * row[c];
    }
    for (int64_t c = 0; c < d; c++) o[c] /= sum;
}

/* The same in one pass with a running max and sum: no memory beyond o. */
static void decode_head_online(float *o, const float *q, const void *kk, int64_t ldk, const void *v, int64_t ldv, dots_dtype kvt,
                               int64_t n, int64_t d, float scale) {
    float m = -INFINITY, l = 0.0f;
    memset(o, 0, sizeof(float) * (size_t)d);
    for (int64_t j = 0; j < n; j++) {
        float sj = 0.0f;
        for (int64_t c = 0; c < d; c++) sj += q[c] * dots_weight_at(kk, kvt, j * ldk + c);
        sj *= scale;
        if (sj > m) {
            const float corr = m == -INFINITY ? 0.0f : expf(m - sj);
            for (int64_t c = 0; c < d; c++) o[c] *= corr;
            l *= corr;
            m = sj;
        }
        const float p = expf(sj - m);
        l += p;
        for (int64_t c = 0; c < d; c++) o[c] += p * dots_weight_at(v, kvt, j * ldv + c);
    }
    for (int64_t c = 0; c < d; c++) o[c] /= l;
}

void dots_attention_decode_group(const dots_kernels *k, int worker, float *o, const float *q, int g, const void *kk,
                                 int64_t ldk, const void *v, int64_t ldv, dots_dtype kvt, int64_t n_k, int64_t d, float scale) {
    if (n_k <= 0) {
        memset(o, 0, sizeof(float) * (size_t)(g * d));
        return;
    }
    size_t bytes = sizeof(float) * ((size_t)g * (size_t)n_k + (size_t)d);
    dots_scratch *ws = k && k->worker_scratch ? &k->worker_scratch[worker] : NULL;
    float *s = ws ? dots_scratch_get(ws, bytes) : malloc(bytes);
    bool done = false;
    if (s && k && kvt == DOTS_DTYPE_F32 && k->isa >= DOTS_ISA_AVX512)
        done = dots_attention_decode_group_avx512(s, o, q, g, kk, ldk, v, ldv, n_k, d, scale);
    else if (s && k && kvt == DOTS_DTYPE_F32 && dots_isa_arm(k->isa, DOTS_ISA_NEON))
        done = dots_attention_decode_group_neon(s, o, q, g, kk, ldk, v, ldv, n_k, d, scale);
    else if (s && k && kvt == DOTS_DTYPE_BF16 && k->isa >= DOTS_ISA_AVX512BF16)
        done = dots_attention_decode_group_bf16kv(s, o, q, g, kk, ldk, v, ldv, n_k, d, scale);
    if (!done && s && kvt == DOTS_DTYPE_F32 && !(k && k->isa >= DOTS_ISA_AVX512 && d == 128)) {
        /* fp32 rows, per head: the tested matrix-vector path of dots_attention */
        for (int h = 0; h < g; h++)
            dots_attention(k, worker, o + h * d, d, q + h * d, d, kk, ldk, v, ldv, 1, n_k, d, scale, true, n_k - 1);
        done = true;
    }
    if (!done && s)
        for (int h = 0; h < g; h++) decode_head_generic(s, s + n_k, o + h * d, q + h * d, kk, ldk, v, ldv, kvt, n_k, d, scale);
    if (!done && !s) /* no memory for n_k scores: one pass with an online softmax needs none */
        for (int h = 0; h < g; h++) decode_head_online(o + h * d, q + h * d, kk, ldk, v, ldv, kvt, n_k, d, scale);
    if (!ws) free(s);
}

void dots_attention(const dots_kernels *k, int worker, float *o, int64_t ldo, const float *q, int64_t ldq, const float *kk,
                    int64_t ldk, const float *v, int64_t ldv, int64_t n_q, int64_t n_k, int64_t d, float scale,
                    bool causal, int64_t q_pos0) {
    if (n_q <= DOTS_GEMV_MAX_M && attention_few(k, o, ldo, q, ldq, kk, ldk, v, ldv, n_q, n_k, d, scale, causal, q_pos0))
        return;
    if (k && k->bf16 && k->isa >= DOTS_ISA_AVX512BF16) {
        dots_attention_bf16(k->worker_scratch ? &k->worker_scratch[worker] : NULL, o, ldo, q, ldq, kk, ldk, v, ldv, n_q, n_k, d, scale, causal, q_pos0);
        return;
    }
    /* one scratch for all the block products of this call: a fresh packing
     * buffer per block product would cost a malloc/free pair each */
    dots_scratch sc = {0};
    dots_kernels single = {k ? k->isa : DOTS_ISA_GENERIC, NULL, &sc, false, NULL, NULL};
    float *s = malloc(sizeof(float) * QB * KB);
    float *vt = malloc(sizeof(float) * (size_t)d * KB);   /* V block transposed: [d][KB] */
    float *acc = malloc(sizeof(float) * QB * (size_t)d);
    float *pv = malloc(sizeof(float) * QB * (size_t)d);
    float *m = malloc(sizeof(float) * QB), *l = malloc(sizeof(float) * QB);
    if (!s || !vt || !acc || !pv || !m || !l) {
        /* out of memory for 100 kB of scratch: the reference needs only n_k doubles */
        dots_attention_ref(o, ldo, q, ldq, kk, ldk, v, ldv, n_q, n_k, d, scale, causal, q_pos0);
        goto done;
    }
    for (int64_t q0 = 0; q0 < n_q; q0 += QB) {
        int64_t nq = n_q - q0 < QB ? n_q - q0 : QB;
        for (int64_t i = 0; i < nq; i++) {
            m[i] = -INFINITY;
            l[i] = 0;
        }
        memset(acc, 0, sizeof(float) * (size_t)(nq * d));
        int64_t k_end = causal ? (q_pos0 + q0 + nq < n_k ? q_pos0 + q0 + nq : n_k) : n_k;
        for (int64_t k0 = 0; k0 < k_end; k0 += KB) {
            int64_t nk = k_end - k0 < KB ? k_end - k0 : KB;
            dots_gemm(&single, s, KB, q + q0 * ldq, ldq, kk + k0 * ldk, DOTS_DTYPE_F32, ldk, NULL, nq, nk, d);
            for (int64_t j = 0; j < nk; j++)
                for (int64_t c = 0; c < d; c++) vt[c * KB + j] = v[(k0 + j) * ldv + c];
            for (int64_t i = 0; i < nq; i++) {
                float *si = s + i * KB;
                int64_t visible = causal ? q_pos0 + q0 + i - k0 + 1 : nk; /* keys <= the query's position */
                if (visible > nk) visible = nk;
                if (visible < 0) visible = 0; /* an early row of the block sees none of these keys */
                float mx = m[i];
                for (int64_t j = 0; j < visible; j++) {
                    si[j] *= scale;
                    if (si[j] > mx) mx = si[j];
                }
                float corr = m[i] == -INFINITY ? 0.0f : expf(m[i] - mx);
                float sum = 0;
                if (dots_isa_arm(single.isa, DOTS_ISA_NEON)) /* both products are NEON GEMMs: the exponentials too */
                    sum = dots_exp_shift_sum_neon(si, visible, mx);
                else
                    sum = dots_exp_shift_sum(si, visible, mx);
                for (int64_t j = visible; j < nk; j++) si[j] = 0.0f;
                l[i] = l[i] * corr + sum;
                m[i] = mx;
                float *ai = acc + i * d;
                for (int64_t c = 0; c < d; c++) ai[c] *= corr;
            }
            /* pv[nq, d] = P[nq, nk] . V[nk, d] = P . (V^T)^T */
            dots_gemm(&single, pv, d, s, KB, vt, DOTS_DTYPE_F32, KB, NULL, nq, d, nk);
            dots_add(acc, pv, nq * d);
        }
        for (int64_t i = 0; i < nq; i++) {
            float inv = l[i] > 0 ? 1.0f / l[i] : 0.0f;
            for (int64_t c = 0; c < d; c++) o[(q0 + i) * ldo + c] = acc[i * d + c] * inv;
        }
    }
done:
    dots_scratch_free(&sc);
    free(s);
    free(vt);
    free(acc);
    free(pv);
    free(m);
    free(l);
}
