/*
 * test_kernels.c - every fast kernel against its scalar reference, on every
 * ISA level this machine has (forced down through the kernels struct), at
 * shapes around the register and tile edges, with strided inputs, all
 * weight dtypes, and guard values around every output that must survive.
 * Tolerance: relative error scaled by sqrt(K) fp32 rounding (see below).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fp.h"
#include "core/buffer.h"
#include "kernels/kernels.h"
#include "kernels/quant.h"

#define GUARD 1234.5f

static uint64_t g_rng = 88172645463325252ULL;
static float frand(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((double)(g_rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* W of N rows (ld = K + pad) in dtype dt, values exactly representable. */
static void *make_weights(dots_dtype dt, int64_t N, int64_t ld) {
    size_t es = dt == DOTS_DTYPE_F32 ? 4 : 2;
    uint8_t *w = malloc((size_t)(N * ld) * es);
    for (int64_t i = 0; i < N * ld; i++) {
        float v = frand();
        if (dt == DOTS_DTYPE_F32) ((float *)w)[i] = v;
        else if (dt == DOTS_DTYPE_BF16) ((uint16_t *)w)[i] = dots_f32_to_bf16(v);
        else ((uint16_t *)w)[i] = dots_f32_to_f16(v);
    }
    return w;
}

static int n_levels(dots_isa *levels) {
    int n = 0;
    dots_isa best = dots_cpu_isa();
    levels[n++] = DOTS_ISA_GENERIC;
    if (best >= DOTS_ISA_AVX2) levels[n++] = DOTS_ISA_AVX2;
    if (best >= DOTS_ISA_AVX512) levels[n++] = DOTS_ISA_AVX512;
    if (dots_isa_arm(best, DOTS_ISA_NEON)) levels[n++] = DOTS_ISA_NEON;
    return n;
}

/* n_levels plus the int8 (VNNI) and bf16 levels the block formats have. */
static int n_levels_quant(dots_isa *levels) {
    int n = n_levels(levels);
    if (dots_cpu_isa() >= DOTS_ISA_AVX512VNNI) levels[n++] = DOTS_ISA_AVX512VNNI;
    if (dots_cpu_isa() >= DOTS_ISA_AVX512BF16) levels[n++] = DOTS_ISA_AVX512BF16;
    if (dots_isa_arm(dots_cpu_isa(), DOTS_ISA_ARM_DOTPROD)) levels[n++] = DOTS_ISA_ARM_DOTPROD;
    if (dots_isa_arm(dots_cpu_isa(), DOTS_ISA_ARM_I8MM)) levels[n++] = DOTS_ISA_ARM_I8MM;
    if (dots_isa_arm(dots_cpu_isa(), DOTS_ISA_ARM_BF16)) levels[n++] = DOTS_ISA_ARM_BF16;
    return n;
}

/* This CPU's level with bf16 dot products (x86 or ARM). */
static dots_isa bf16_level(void) {
    return dots_cpu_isa() >= DOTS_ISA_AVX512BF16 ? DOTS_ISA_AVX512BF16 : DOTS_ISA_ARM_BF16;
}

static void check_gemm(dots_isa isa, dots_pool *pool, int64_t M, int64_t N, int64_t K, dots_dtype dt, bool bias) {
    const int64_t ldx = K + 3, ldw = K + 5, ldy = N + 7;
    float *x = malloc(sizeof(float) * (size_t)(M * ldx));
    for (int64_t i = 0; i < M * ldx; i++) x[i] = frand();
    void *w = make_weights(dt, N, ldw);
    float *b = malloc(sizeof(float) * (size_t)N);
    for (int64_t i = 0; i < N; i++) b[i] = frand();
    float *y = malloc(sizeof(float) * (size_t)(M * ldy)), *r = malloc(sizeof(float) * (size_t)(M * ldy));
    for (int64_t i = 0; i < M * ldy; i++) y[i] = r[i] = GUARD;
    dots_scratch sc = {0};
    dots_kernels k = {isa, pool, (M & 1) ? &sc : NULL, false, NULL, NULL};
    dots_gemm(&k, y, ldy, x, ldx, w, dt, ldw, bias ? b : NULL, M, N, K);
    dots_gemm_ref(r, ldy, x, ldx, w, dt, ldw, bias ? b : NULL, M, N, K);
    dots_scratch_free(&sc);
    /* |x|, |w| <= 1: each sum has K terms; fp32 rounding of a K-term sum
     * in a different association is bounded by ~K * 2^-24 * sum|terms|;
     * for random signs it is ~sqrt(K) * 2^-24 * K. Allow 8 sqrt(K) ulps of K. */
    double tol = 8.0 * sqrt((double)K + 1) * (double)(K + 1) * 5.96e-8 + 1e-6;
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < ldy; n++) {
            float got = y[m * ldy + n], want = r[m * ldy + n];
            if (n >= N) {
                if (got != GUARD) fail_msg("gemm %s M%lld N%lld K%lld: wrote past the row end", dots_isa_name(isa), (long long)M,
                                           (long long)N, (long long)K);
                continue;
            }
            if (isnan(got) || fabs((double)got - want) > tol)
                fail_msg("gemm %s M%lld N%lld K%lld dtype %d: y[%lld][%lld] = %g, ref %g", dots_isa_name(isa), (long long)M,
                         (long long)N, (long long)K, dt, (long long)m, (long long)n, got, want);
        }
    free(x);
    free(w);
    free(b);
    free(y);
    free(r);
}

static void test_gemm_shapes(void **state) {
    (void)state;
    dots_isa levels[4];
    int nl = n_levels(levels);
    dots_pool *pool = dots_pool_create(3);
    const int64_t sizes[] = {1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 65, 129};
    for (int l = 0; l < nl; l++)
        for (size_t a = 0; a < sizeof sizes / sizeof *sizes; a++)
            for (size_t b = 0; b < sizeof sizes / sizeof *sizes; b += 3) {
                int64_t M = sizes[a], N = sizes[b], K = sizes[(a + b) % 14] + 1;
                check_gemm(levels[l], (a & 1) ? pool : NULL, M, N, K, (dots_dtype)((a + b) % 3), b & 1);
            }
    for (int l = 0; l < nl; l++) {
        check_gemm(levels[l], pool, 200, 1537, 96, DOTS_DTYPE_BF16, true); /* many panels and row blocks */
        check_gemm(levels[l], pool, 67, 40, 1536, DOTS_DTYPE_F32, false);  /* long K */
    }
    dots_pool_free(pool);
}

/* The bf16 path rounds X to bf16; with X already bf16-exact it must match
 * the reference up to summation order, like the fp32 paths (the products of
 * two bf16 values are exact in fp32). */
static void test_gemm_bf16(void **state) {
    (void)state;
    if (!dots_isa_bf16(dots_cpu_isa())) skip();
    dots_pool *pool = dots_pool_create(2);
    dots_scratch sc = {0};
    /* M <= 4: decode's vdpbf16ps GEMV, with K tails of every length class */
    const int64_t shapes[][3] = {{5, 7, 3},      {8, 32, 64},  {9, 33, 65},   {64, 96, 1536}, {67, 130, 17}, {200, 1537, 96},
                                 {1, 37, 1536}, {2, 7, 130},  {3, 9, 2050},  {4, 19, 300},   {1, 3, 18},    {2, 65, 256}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], ldx = K + 1, ldw = K + 2, ldy = N + 3;
        float *x = malloc(sizeof(float) * (size_t)(M * ldx));
        for (int64_t i = 0; i < M * ldx; i++) x[i] = dots_bf16_to_f32(dots_f32_to_bf16(frand()));
        void *w = make_weights(DOTS_DTYPE_BF16, N, ldw);
        float *b = malloc(sizeof(float) * (size_t)N), *y = malloc(sizeof(float) * (size_t)(M * ldy)), *r = malloc(sizeof(float) * (size_t)(M * ldy));
        for (int64_t i = 0; i < N; i++) b[i] = frand();
        for (int64_t i = 0; i < M * ldy; i++) y[i] = r[i] = GUARD;
        dots_kernels k = {bf16_level(), pool, (s & 1) ? &sc : NULL, true, NULL, NULL};
        dots_gemm(&k, y, ldy, x, ldx, w, DOTS_DTYPE_BF16, ldw, b, M, N, K);
        dots_gemm_ref(r, ldy, x, ldx, w, DOTS_DTYPE_BF16, ldw, b, M, N, K);
        double tol = 8.0 * sqrt((double)K + 1) * (double)(K + 1) * 5.96e-8 + 1e-6;
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < ldy; n++) {
                float got = y[m * ldy + n], want = r[m * ldy + n];
                if (n >= N ? got != GUARD : !(fabs((double)got - want) <= tol))
                    fail_msg("bf16 gemm M%lld N%lld K%lld: y[%lld][%lld] = %g, ref %g", (long long)M, (long long)N, (long long)K,
                             (long long)m, (long long)n, got, want);
            }
        /* and on arbitrary fp32 X: the error is bf16 rounding of X, ~2^-9 relative */
        for (int64_t i = 0; i < M * ldx; i++) x[i] = frand();
        dots_gemm(&k, y, ldy, x, ldx, w, DOTS_DTYPE_BF16, ldw, b, M, N, K);
        dots_gemm_ref(r, ldy, x, ldx, w, DOTS_DTYPE_BF16, ldw, b, M, N, K);
        double num = 0, den = 0;
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                double d = y[m * ldy + n] - r[m * ldy + n];
                num += d * d;
                den += (double)r[m * ldy + n] * r[m * ldy + n];
            }
        assert_true(sqrt(num / den) < 1e-2);
        free(x);
        free(w);
        free(b);
        free(y);
        free(r);
    }
    dots_scratch_free(&sc);
    dots_pool_free(pool);
}

static void check_attention(dots_isa isa, int64_t nq, int64_t nk, int64_t d, bool causal, int64_t q_pos0) {
    const int64_t ld = d + 5;
    float *q = malloc(sizeof(float) * (size_t)(nq * ld)), *k = malloc(sizeof(float) * (size_t)(nk * ld));
    float *v = malloc(sizeof(float) * (size_t)(nk * ld));
    float *o = malloc(sizeof(float) * (size_t)(nq * ld)), *r = malloc(sizeof(float) * (size_t)(nq * ld));
    for (int64_t i = 0; i < nq * ld; i++) q[i] = 3 * frand(); /* peaked softmax too */
    for (int64_t i = 0; i < nk * ld; i++) k[i] = frand(), v[i] = frand();
    for (int64_t i = 0; i < nq * ld; i++) o[i] = r[i] = GUARD;
    dots_kernels kk = {isa, NULL, NULL, false, NULL, NULL};
    float scale = 1.0f / sqrtf((float)d);
    dots_attention(&kk, 0, o, ld, q, ld, k, ld, v, ld, nq, nk, d, scale, causal, q_pos0);
    dots_attention_ref(r, ld, q, ld, k, ld, v, ld, nq, nk, d, scale, causal, q_pos0);
    for (int64_t i = 0; i < nq; i++)
        for (int64_t c = 0; c < ld; c++) {
            float got = o[i * ld + c], want = r[i * ld + c];
            if (c >= d) {
                if (got != GUARD) fail_msg("attention wrote past the head");
            } else if (!(fabsf(got - want) <= 2e-5f)) {
                fail_msg("attention %s nq%lld nk%lld d%lld causal%d: o[%lld][%lld] = %g, ref %g", dots_isa_name(isa),
                         (long long)nq, (long long)nk, (long long)d, causal, (long long)i, (long long)c, got, want);
            }
        }
    free(q);
    free(k);
    free(v);
    free(o);
    free(r);
}

static void test_attention(void **state) {
    (void)state;
    dots_isa levels[4];
    int nl = n_levels(levels);
    const int64_t ns[] = {1, 3, 63, 64, 65, 127, 128, 129, 200};
    for (int l = 0; l < nl; l++)
        for (size_t i = 0; i < sizeof ns / sizeof *ns; i++) {
            check_attention(levels[l], ns[i], ns[(i + 4) % 9], 16, false, 0);
            check_attention(levels[l], ns[i], ns[i], 32, true, 0);                 /* prefill */
            check_attention(levels[l], 1, ns[i] + 10, 128, true, ns[i] + 9);       /* one decode step */
            check_attention(levels[l], ns[i], ns[i] + 20, 16, true, 20);           /* chunked prefill */
        }
}

/* One decode step for a group of query heads sharing K and V: every head
 * against the reference, at every level, for the AVX-512 head size (128)
 * and another (64, the per-head fallback), over fp32 and bf16 K/V rows (a
 * bf16 KV cache: the reference gets the same bf16 values widened; the
 * AVX512_BF16 kernel also rounds the query, so its tolerance is bf16's). */
static void test_attention_decode_group(void **state) {
    (void)state;
    dots_isa levels[5];
    int nl = n_levels(levels);
    if (dots_cpu_isa() >= DOTS_ISA_AVX512BF16) levels[nl++] = DOTS_ISA_AVX512BF16;
    const int64_t ns[] = {1, 2, 15, 16, 17, 300};
    const int gs[] = {1, 2, 3, 4, 6, 7};
    for (int l = 0; l < nl; l++)
        for (int bf = 0; bf < 2; bf++)
            for (size_t i = 0; i < sizeof ns / sizeof *ns; i++)
                for (int64_t d = 64; d <= 128; d += 64) {
                    const int g = gs[(i + (size_t)l) % 6];
                    const int64_t n = ns[i], ld = 2 * d + 3; /* rows of two KV heads, as in the cache */
                    float *q = malloc(sizeof(float) * (size_t)(g * d)), *o = malloc(sizeof(float) * (size_t)((g + 1) * d));
                    float *k = malloc(sizeof(float) * (size_t)(n * ld)), *v = malloc(sizeof(float) * (size_t)(n * ld));
                    uint16_t *k16 = malloc(sizeof(uint16_t) * (size_t)(n * ld)), *v16 = malloc(sizeof(uint16_t) * (size_t)(n * ld));
                    float *r = malloc(sizeof(float) * (size_t)d);
                    for (int64_t c = 0; c < g * d; c++) q[c] = 3 * frand();
                    for (int64_t c = 0; c < n * ld; c++) {
                        k16[c] = dots_f32_to_bf16(frand()), v16[c] = dots_f32_to_bf16(frand());
                        k[c] = bf ? dots_bf16_to_f32(k16[c]) : frand(), v[c] = bf ? dots_bf16_to_f32(v16[c]) : frand();
                    }
                    for (int64_t c = 0; c < (g + 1) * d; c++) o[c] = GUARD;
                    dots_scratch ws[1] = {{0}};
                    dots_kernels kk = {levels[l], NULL, NULL, bf == 1, (i & 1) ? ws : NULL, NULL};
                    const float scale = 1.0f / sqrtf((float)d);
                    if (bf)
                        dots_attention_decode_group(&kk, 0, o, q, g, k16 + d, ld, v16 + d, ld, DOTS_DTYPE_BF16, n, d, scale);
                    else
                        dots_attention_decode_group(&kk, 0, o, q, g, k + d, ld, v + d, ld, DOTS_DTYPE_F32, n, d, scale);
                    const float tol = bf && levels[l] >= DOTS_ISA_AVX512BF16 && d == 128 ? 2e-2f : 2e-5f;
                    for (int h = 0; h < g; h++) {
                        dots_attention_ref(r, d, q + h * d, d, k + d, ld, v + d, ld, 1, n, d, scale, false, 0);
                        for (int64_t c = 0; c < d; c++)
                            if (!(fabsf(o[h * d + c] - r[c]) <= tol))
                                fail_msg("decode group %s bf16-kv %d g%d n%lld d%lld: o[%d][%lld] = %g, ref %g",
                                         dots_isa_name(levels[l]), bf, g, (long long)n, (long long)d, h, (long long)c, o[h * d + c], r[c]);
                    }
                    for (int64_t c = g * d; c < (g + 1) * d; c++) assert_true(o[c] == GUARD);
                    dots_scratch_free(&ws[0]);
                    free(q), free(o), free(k), free(v), free(k16), free(v16), free(r);
                }
    /* prefill over a bf16 cache: the same packing as from fp32 values that are bf16 already, so bit-identical */
    if (dots_cpu_isa() >= DOTS_ISA_AVX512BF16) {
        const int64_t nq = 70, nk = 300, d = 128, ld = 2 * d + 3, q0 = nk - nq;
        float *q = malloc(sizeof(float) * (size_t)(nq * d)), *k = malloc(sizeof(float) * (size_t)(nk * ld));
        float *v = malloc(sizeof(float) * (size_t)(nk * ld)), *o1 = malloc(sizeof(float) * (size_t)(nq * d));
        float *o2 = malloc(sizeof(float) * (size_t)(nq * d));
        uint16_t *k16 = malloc(sizeof(uint16_t) * (size_t)(nk * ld)), *v16 = malloc(sizeof(uint16_t) * (size_t)(nk * ld));
        for (int64_t c = 0; c < nq * d; c++) q[c] = 3 * frand();
        for (int64_t c = 0; c < nk * ld; c++) {
            k16[c] = dots_f32_to_bf16(frand()), v16[c] = dots_f32_to_bf16(frand());
            k[c] = dots_bf16_to_f32(k16[c]), v[c] = dots_bf16_to_f32(v16[c]);
        }
        dots_attention_bf16(NULL, o1, d, q, d, k + d, ld, v + d, ld, nq, nk, d, 0.088f, true, q0);
        dots_attention_bf16_kv16(NULL, o2, d, q, d, k16 + d, ld, v16 + d, ld, nq, nk, d, 0.088f, true, q0);
        assert_memory_equal(o1, o2, sizeof(float) * (size_t)(nq * d));
        free(q), free(k), free(v), free(o1), free(o2), free(k16), free(v16);
    }
}

static void test_ops(void **state) {
    (void)state;
    float x[3] = {1, 2, 3}, y[3];
    float w[3] = {1, 1, 2};
    dots_rmsnorm(y, x, w, DOTS_DTYPE_F32, 1, 3, 0.0f);
    double rms = sqrt((1 + 4 + 9) / 3.0);
    assert_true(fabs(y[2] - 2 * 3 / rms) < 1e-6);
    float b[3] = {0, 0, 1};
    dots_layernorm(y, x, w, b, DOTS_DTYPE_F32, 1, 3, 0.0f);
    assert_true(fabs(y[0] + 1.2247449) < 1e-5 && fabs(y[2] - (2 * 1.2247449 + 1)) < 1e-5);
    float g[2] = {0.0f, 2.0f}, u[2] = {5, 1};
    dots_silu_mul(g, u, 2);
    assert_true(g[0] == 0.0f && fabs(g[1] - 2 / (1 + exp(-2.0))) < 1e-6);
    { /* the vector e^x of SiLU and the softmax (NEON on ARM; the scalar twin elsewhere) */
        enum { N = 203 };
        float gs[N], gv[N], us[N], es[N], ev[N];
        for (int i = 0; i < N; i++) {
            gs[i] = gv[i] = (float)(i - 101) * 0.37f + (i % 7 == 0 ? -95.0f : 0.0f); /* some far below -87: 0 */
            us[i] = frand();
            es[i] = ev[i] = (float)(i - 150) * 0.6f;
        }
        dots_silu_mul(gs, us, N);
        dots_silu_mul_neon(gv, us, N);
        float ss = 0;
        for (int i = 0; i < N; i++) ss += (es[i] = expf(es[i] - 3.0f));
        const float sv = dots_exp_shift_sum_neon(ev, N, 3.0f);
        for (int i = 0; i < N; i++) {
            if (!(fabsf(gv[i] - gs[i]) <= 4e-7f * fabsf(gs[i]) + 1e-30f)) fail_msg("silu_mul_neon[%d] %g vs %g", i, gv[i], gs[i]);
            if (!(fabsf(ev[i] - es[i]) <= 4e-7f * es[i] + 1e-38f)) fail_msg("exp_shift_sum_neon[%d] %g vs %g", i, ev[i], es[i]);
        }
        assert_true(fabsf(sv - ss) <= 1e-5f * ss);
        assert_true(ev[0] > 0.0f && ev[0] < 1e-38f); /* e^-93: a denormal, not 0 or garbage */
    }
    float e[3] = {-1, 0, 1};
    dots_gelu_erf(e, 3);
    assert_true(fabs(e[0] + 0.15865525) < 1e-6 && e[1] == 0 && fabs(e[2] - 0.84134475) < 1e-6);
    float r[4] = {1, 2, 3, 4}, c[2] = {0, 1}, s[2] = {1, 0};
    dots_rope_apply(r, c, s, 4); /* pair (0,2) by 90 degrees, pair (1,3) unchanged */
    assert_true(r[0] == -3 && r[2] == 1 && r[1] == 2 && r[3] == 4);
}

/* The int8-activation reference of a whole product (kernels.h, dots_act_q8). */
static void q8act_ref(float *r, int64_t ldy, const float *x, int64_t ldx, const void *w, dots_dtype dt, const float *bias,
                      int64_t M, int64_t N, int64_t K) {
    void *mem = aligned_alloc(64, (dots_act_q8_bytes((int)M, K) + 63) / 64 * 64);
    dots_act_q8 a;
    dots_act_q8_init(&a, mem, x, ldx, (int)M, K);
    dots_gemv_rows_q8act_ref(&a, w, dt, K, 0, N, r, ldy, bias);
    free(mem);
}

/* Int8 activations: the quantizer keeps |x - d q| <= d / 2; the VNNI kernel
 * matches the integer reference up to fp32 summation order; and the
 * reference stays within the activations' rounding of the exact fp32
 * product: |dy| <= sum_i |w_i| d_b(i) / 2 (plus fp32 summation). */
static void test_gemv_q8act(void **state) {
    (void)state;
    const dots_dtype types[] = {DOTS_DTYPE_Q8_0, DOTS_DTYPE_Q4_0, DOTS_DTYPE_Q4_K};
    for (size_t ti = 0; ti < 3; ti++)
        for (int M = 1; M <= DOTS_GEMV_MAX_M; M++) {
            dots_dtype dt = types[ti];
            const int64_t bs = dots_dtype_block(dt), K = bs * (ti == 2 ? M : 2 * M + 1), N = 5 + 7 * M, ldx = K + 5, ldy = N + 1;
            float *x = malloc(sizeof(float) * (size_t)(M * ldx)), *row = malloc(sizeof(float) * (size_t)K);
            float *wf = malloc(sizeof(float) * (size_t)(N * K));
            uint8_t *w = malloc((size_t)dots_dtype_bytes(dt, N * K));
            for (int64_t i = 0; i < M * ldx; i++) x[i] = frand() * (1 + (float)(i % 13)); /* uneven block scales */
            for (int64_t i = 0; i < 32; i++) x[i] = 0.0f;                                    /* a zero block: d = 0 */
            for (int64_t i = 0; i < 31; i++) x[32 + i] = (float)(i - 16) + 0.5f; /* d = 1: halves, rounded away from 0 */
            x[63] = 127.0f;
            for (int64_t n = 0; n < N; n++) {
                for (int64_t i = 0; i < K; i++) row[i] = frand();
                dots_quantize_row(dt, row, w + n * dots_dtype_bytes(dt, K), K);
                dots_dequantize_row(dt, w + n * dots_dtype_bytes(dt, K), wf + n * K, K);
            }
            void *mem = aligned_alloc(64, (dots_act_q8_bytes(M, K) + 63) / 64 * 64);
            dots_act_q8 a;
            dots_act_q8_init(&a, mem, x, ldx, M, K);
            const int8_t *q = a.q;
            const float *d = a.d;
            const int32_t *sum = a.sum;
            if (dots_cpu_isa() >= DOTS_ISA_AVX512VNNI) { /* the vector quantizer: the same bytes */
                size_t bytes = (dots_act_q8_bytes(M, K) + 63) / 64 * 64;
                void *mem2 = aligned_alloc(64, bytes);
                memset(mem2, 0x55, bytes);
                memset(mem, 0x55, bytes); /* padding equal too */
                dots_act_q8_init(&a, mem, x, ldx, M, K);
                dots_act_q8 a2;
                dots_act_q8_init_avx512(&a2, mem2, x, ldx, M, K);
                assert_memory_equal(mem, mem2, bytes);
                free(mem2);
            }
            for (int m = 0; m < M; m++) /* the lane copies */
                for (int64_t b = 0; b < K / 64 * 2; b++)
                    for (int l = 0; l < 8; l++) {
                        assert_true(a.d_lanes[(m * (K / 64) + b / 2) * 16 + 8 * (b % 2) + l] == d[m * (K / 32) + b]);
                        assert_true(a.neg_sum_lanes[(m * (K / 64) + b / 2) * 16 + 8 * (b % 2) + l] == -sum[m * (K / 32) + b]);
                    }
            for (int m = 0; m < M; m++)
                for (int64_t b = 0; b < K / 32; b++) {
                    int32_t s = 0;
                    for (int i = 0; i < 32; i++) {
                        float xv = x[m * ldx + 32 * b + i], qd = d[m * (K / 32) + b] * q[m * K + 32 * b + i];
                        assert_true(q[m * K + 32 * b + i] >= -127);
                        assert_true(fabsf(xv - qd) <= d[m * (K / 32) + b] * 0.5f * (1 + 1e-5f) + 1e-30f);
                        s += q[m * K + 32 * b + i];
                    }
                    assert_int_equal(s, sum[m * (K / 32) + b]);
                }
            assert_true(d[0] == 0.0f && sum[0] == 0);
            assert_true(d[1] == 1.0f && q[32] == -16 && q[32 + 15] == -1 && q[32 + 16] == 1 && q[32 + 30] == 15);
            float *bias = malloc(sizeof(float) * (size_t)N), *y = malloc(sizeof(float) * (size_t)(M * ldy)),
                  *r = malloc(sizeof(float) * (size_t)(M * ldy)), *e = malloc(sizeof(float) * (size_t)(M * ldy));
            for (int64_t i = 0; i < N; i++) bias[i] = frand();
            for (int64_t i = 0; i < M * ldy; i++) y[i] = r[i] = GUARD;
            dots_gemv_rows_q8act_ref(&a, w, dt, K, 0, N, r, ldy, bias);
            dots_gemv_rows_q8act_avx512vnni(&a, w, dt, K, 1, N, y, ldy, bias); /* from row 1: row 0 keeps its guard */
            dots_gemm_ref(e, ldy, x, ldx, w, dt, K, bias, M, N, K);
            { /* ARM's SDOT kernel: the reference's bits (on other CPUs it is the reference) */
                float *yd = malloc(sizeof(float) * (size_t)(M * ldy));
                for (int64_t i = 0; i < M * ldy; i++) yd[i] = GUARD;
                for (int kernel = 0; kernel < 2; kernel++) { /* SDOT, then SMMLA (2 x 2 rows, odd ones left over) */
                    for (int64_t i = 0; i < M * ldy; i++) yd[i] = GUARD;
                    if (kernel == 0) dots_gemv_rows_q8act_dotprod(&a, w, dt, K, 1, N, yd, ldy, bias);
                    else dots_gemv_rows_q8act_i8mm(&a, w, dt, K, 1, N, yd, ldy, bias);
                    for (int m = 0; m < M; m++) {
                        assert_true(yd[m * ldy] == GUARD && yd[m * ldy + N] == GUARD);
                        assert_memory_equal(yd + m * ldy + 1, r + m * ldy + 1, sizeof(float) * (size_t)(N - 1));
                    }
                }
                free(yd);
            }
            for (int m = 0; m < M; m++) {
                assert_true(y[m * ldy] == GUARD && y[m * ldy + N] == GUARD);
                for (int64_t n = 1; n < N; n++) {
                    double mag = 0, bound = 0;
                    for (int64_t i = 0; i < K; i++) {
                        mag += fabs((double)wf[n * K + i] * x[m * ldx + i]);
                        bound += fabs((double)wf[n * K + i]) * d[m * (K / 32) + i / 32] * 0.5;
                    }
                    double got = y[m * ldy + n], want = r[m * ldy + n], exact = e[m * ldy + n];
                    if (!(fabs(got - want) <= 1e-5 * (mag + 1)))
                        fail_msg("%s vnni M%d n%lld: %g, reference %g", dots_dtype_name(dt), m, (long long)n, got, want);
                    if (!(fabs(want - exact) <= bound * (1 + 1e-4) + 1e-5 * (mag + 1)))
                        fail_msg("%s int8 M%d n%lld: %g, fp32 %g, bound %g", dots_dtype_name(dt), m, (long long)n, want, exact, bound);
                }
            }
            free(x), free(row), free(wf), free(w), free(mem), free(bias), free(y), free(r), free(e);
        }
}

/* The block formats: GEMV (decode, M <= 4) and GEMM (M > 4) at every level
 * and precision, against the reference on the same blocks (which decodes
 * each weight). Rows are whole blocks, as in the model. */
static void test_gemm_quant(void **state) {
    (void)state;
    dots_isa levels[5];
    int nl = n_levels_quant(levels);
    dots_pool *pool = dots_pool_create(3);
    const dots_dtype types[] = {DOTS_DTYPE_Q8_0, DOTS_DTYPE_Q4_0, DOTS_DTYPE_Q4_K};
    const int64_t Ms[] = {1, 2, 3, 4, 5, 17}, Ns[] = {1, 3, 4, 5, 8, 67};
    for (size_t ti = 0; ti < 3; ti++) {
        dots_dtype dt = types[ti];
        int64_t bs = dots_dtype_block(dt);
        for (int l = 0; l < nl; l++)
            for (size_t mi = 0; mi < 6; mi++) {
                int64_t M = Ms[mi], N = Ns[(mi + ti + (size_t)l) % 6], K = bs * (int64_t)(1 + (mi + ti) % 3), ldx = K + 3, ldy = N + 2;
                float *x = malloc(sizeof(float) * (size_t)(M * ldx)), *row = malloc(sizeof(float) * (size_t)K);
                uint8_t *w = malloc((size_t)dots_dtype_bytes(dt, N * K));
                for (int64_t i = 0; i < M * ldx; i++) x[i] = frand();
                for (int64_t n = 0; n < N; n++) {
                    for (int64_t i = 0; i < K; i++) row[i] = frand() * (1 + (float)(i % 7)); /* uneven blocks */
                    dots_quantize_row(dt, row, w + n * dots_dtype_bytes(dt, K), K);
                }
                float *b = malloc(sizeof(float) * (size_t)N), *y = malloc(sizeof(float) * (size_t)(M * ldy)),
                      *r = malloc(sizeof(float) * (size_t)(M * ldy));
                for (int64_t i = 0; i < N; i++) b[i] = frand();
                for (int bf = 0; bf < 2; bf++) {
                    for (int64_t i = 0; i < M * ldy; i++) y[i] = r[i] = GUARD;
                    dots_scratch ws[4] = {{0}};
                    /* with per-worker scratch, M < N takes the path that decodes rows per task */
                    dots_kernels k = {levels[l], (mi & 1) ? pool : NULL, NULL, bf == 1, (ti + (size_t)l) & 1 ? ws : NULL, NULL};
                    dots_gemm(&k, y, ldy, x, ldx, w, dt, K, (mi & 2) ? b : NULL, M, N, K);
                    /* decode at precision bf16 with VNNI quantizes X to int8 blocks: its reference does too */
                    bool int8_act = bf && M <= DOTS_DECODE_MAX_M &&
                                          (levels[l] >= DOTS_ISA_AVX512VNNI || dots_isa_arm(levels[l], DOTS_ISA_ARM_DOTPROD));
                    if (int8_act)
                        q8act_ref(r, ldy, x, ldx, w, dt, (mi & 2) ? b : NULL, M, N, K);
                    else
                        dots_gemm_ref(r, ldy, x, ldx, w, dt, K, (mi & 2) ? b : NULL, M, N, K);
                    for (int i = 0; i < 4; i++) dots_scratch_free(&ws[i]);
                    /* |w| <= 8: 8 times the fp32 bound; the bf16 path (M > 4) rounds X and W to bf16 */
                    double tol = bf && M > DOTS_DECODE_MAX_M && dots_isa_bf16(levels[l])
                                     ? 0.03 * sqrt((double)K) * 8
                                     : 64.0 * sqrt((double)K + 1) * (double)(K + 1) * 5.96e-8 + 1e-5;
                    for (int64_t m = 0; m < M; m++)
                        for (int64_t n = 0; n < ldy; n++) {
                            float got = y[m * ldy + n], want = r[m * ldy + n];
                            if (n >= N ? got != GUARD : !(fabs((double)got - want) <= tol))
                                fail_msg("%s gemm %s bf16=%d M%lld N%lld K%lld: y[%lld][%lld] = %g, ref %g", dots_dtype_name(dt),
                                         dots_isa_name(levels[l]), bf, (long long)M, (long long)N, (long long)K, (long long)m,
                                         (long long)n, got, want);
                        }
                }
                free(x);
                free(row);
                free(w);
                free(b);
                free(y);
                free(r);
            }
    }
    /* a prompt (4 < M < N) in bf16 with per-worker scratch: each task decodes its
     * weight rows to bf16 once and reads them for every panel of X */
    if (dots_isa_bf16(dots_cpu_isa()))
        for (size_t ti = 0; ti < 3; ti++) {
            dots_dtype dt = types[ti];
            const int64_t M = 37, N = 133, K = 2 * dots_dtype_block(dt), ldx = K + 1, ldy = N + 3;
            float *x = malloc(sizeof(float) * (size_t)(M * ldx)), *row = malloc(sizeof(float) * (size_t)K);
            uint8_t *w = malloc((size_t)dots_dtype_bytes(dt, N * K));
            float *y = malloc(sizeof(float) * (size_t)(M * ldy)), *r = malloc(sizeof(float) * (size_t)(M * ldy));
            for (int64_t i = 0; i < M * ldx; i++) x[i] = frand();
            for (int64_t n = 0; n < N; n++) {
                for (int64_t i = 0; i < K; i++) row[i] = frand();
                dots_quantize_row(dt, row, w + n * dots_dtype_bytes(dt, K), K);
            }
            dots_scratch ws[4] = {{0}};
            for (int64_t i = 0; i < M * ldy; i++) y[i] = r[i] = GUARD;
            dots_kernels k = {bf16_level(), pool, NULL, true, ws, NULL};
            dots_gemm(&k, y, ldy, x, ldx, w, dt, K, NULL, M, N, K);
            dots_gemm_ref(r, ldy, x, ldx, w, dt, K, NULL, M, N, K);
            assert_non_null(ws[0].buf); /* the decoding path ran */
            double num = 0, den = 0;
            for (int64_t m = 0; m < M; m++)
                for (int64_t n = 0; n < ldy; n++) {
                    float got = y[m * ldy + n], want = r[m * ldy + n];
                    if (n >= N) {
                        if (got != GUARD) fail_msg("%s prompt gemm wrote past the row end", dots_dtype_name(dt));
                        continue;
                    }
                    num += (double)(got - want) * (got - want);
                    den += (double)want * want;
                }
            if (!(sqrt(num / den) < 1e-2)) fail_msg("%s prompt gemm: relative error %g", dots_dtype_name(dt), sqrt(num / den));
            for (int i = 0; i < 4; i++) dots_scratch_free(&ws[i]);
            free(x);
            free(row);
            free(w);
            free(y);
            free(r);
        }
    dots_pool_free(pool);
}

/* The 16-row interleaved layouts (kernels/repack.c): every row restores to
 * the file's bytes, and every product path gives what it gives on the file
 * layout, bit for bit, except decode's AVX-512 kernels for the layout (int8
 * and fp32 activations), whose sums run in another order: those are held
 * to fp32 rounding of the same sums. */
/* sum |x| |w| + 1 for test_repacked's weights (|w| <= 8 (1 + (i + n) % 7)):
 * the scale of fp32 rounding in output n of row x. */
static double repacked_mag(const float *x, int64_t K, int64_t n) {
    double mag = 1;
    for (int64_t i = 0; i < K; i++) mag += fabs((double)x[i]) * 8 * (1 + (double)((i + n) % 7));
    return mag;
}

static void test_repacked(void **state) {
    (void)state;
    dots_isa levels[5];
    int nl = n_levels_quant(levels);
    dots_pool *pool = dots_pool_create(3);
    const dots_dtype types[] = {DOTS_DTYPE_Q8_0, DOTS_DTYPE_Q4_0, DOTS_DTYPE_Q4_K};
    const int64_t Ms[] = {1, 2, 3, 4, 5, 37};
    assert_false(dots_repack_fits(DOTS_DTYPE_BF16, 16, 64));
    assert_false(dots_repack_fits(DOTS_DTYPE_Q8_0, 40, 64));           /* not whole groups */
    assert_false(dots_repack_fits(DOTS_DTYPE_Q8_0, 16, 48));           /* not whole blocks */
    assert_false(dots_repack_fits(DOTS_DTYPE_Q8_0, 16, 32 * 482));     /* a row over DOTS_R16_MAX_ROW_BYTES */
    assert_true(dots_repack_fits(DOTS_DTYPE_Q8_0, 151936, 1536));      /* the real lm_head */
    assert_true(dots_repack_fits(DOTS_DTYPE_Q4_K, 1536, 8960));        /* the real down projection */
    for (size_t ti = 0; ti < 3; ti++) {
        const dots_dtype dt = types[ti], rt = dots_repack_type(dt);
        assert_true(dots_dtype_is_r16(rt) && dots_dtype_r16_base(rt) == dt && !dots_dtype_is_quant(rt));
        const int64_t bs = dots_dtype_block(dt), K = bs * (ti == 2 ? 2 : 3), N = 16 * (int64_t)(3 + ti), nb = K / bs;
        const int64_t ldx = K + 3, ldy = N + 2, row_bytes = dots_dtype_bytes(dt, K);
        uint8_t *w = malloc((size_t)dots_dtype_bytes(dt, N * K)), *wr = malloc((size_t)dots_dtype_bytes(rt, N * K));
        uint8_t *back = malloc((size_t)row_bytes);
        float *row = malloc(sizeof(float) * (size_t)K);
        for (int64_t n = 0; n < N; n++) {
            for (int64_t i = 0; i < K; i++) row[i] = frand() * (1 + (float)((i + n) % 7)); /* uneven blocks */
            dots_quantize_row(dt, row, w + n * row_bytes, K);
        }
        dots_repack_r16(dt, w, wr, N, K);
        for (int64_t n = 0; n < N; n++) {
            memset(back, 0xA5, (size_t)row_bytes);
            dots_repack_row_blocks(rt, wr, K, n, 0, nb, back);
            assert_memory_equal(back, w + n * row_bytes, row_bytes);
            dots_repack_row_blocks(rt, wr, K, n, nb - 1, 1, back); /* one block from the middle of the row */
            assert_memory_equal(back, w + n * row_bytes + (nb - 1) * dots_dtype_block_bytes(dt), dots_dtype_block_bytes(dt));
        }
        float *b = malloc(sizeof(float) * (size_t)N);
        for (int64_t i = 0; i < N; i++) b[i] = frand();
        for (int l = 0; l < nl; l++)
            for (size_t mi = 0; mi < 6; mi++)
                for (int bf = 0; bf < 2; bf++) {
                    const int64_t M = Ms[mi];
                    float *x = malloc(sizeof(float) * (size_t)(M * ldx)), *y = malloc(sizeof(float) * (size_t)(M * ldy)),
                          *r = malloc(sizeof(float) * (size_t)(M * ldy));
                    for (int64_t i = 0; i < M * ldx; i++) x[i] = frand();
                    for (int64_t i = 0; i < M * ldy; i++) y[i] = r[i] = GUARD;
                    dots_scratch ws[4] = {{0}};
                    dots_kernels k = {levels[l], (mi & 1) ? pool : NULL, NULL, bf == 1, (mi + ti) & 1 ? ws : NULL, NULL};
                    const float *bias = (mi & 2) ? b : NULL;
                    dots_gemm(&k, y, ldy, x, ldx, wr, rt, K, bias, M, N, K);
                    dots_gemm(&k, r, ldy, x, ldx, w, dt, K, bias, M, N, K);
                    const bool int8_act = bf && M <= DOTS_DECODE_MAX_M &&
                                          (levels[l] >= DOTS_ISA_AVX512VNNI || dots_isa_arm(levels[l], DOTS_ISA_ARM_DOTPROD));
                    if (int8_act) {
                        /* the reference of the int8 kernel reads both layouts to the same bits */
                        void *mem = aligned_alloc(64, (dots_act_q8_bytes((int)M, K) + 63) / 64 * 64);
                        dots_act_q8 a;
                        dots_act_q8_init(&a, mem, x, ldx, (int)M, K);
                        float *e = malloc(sizeof(float) * (size_t)(M * ldy)), *e2 = malloc(sizeof(float) * (size_t)(M * ldy));
                        dots_gemv_rows_q8act_ref(&a, w, dt, K, 0, N, e, ldy, bias);
                        dots_gemv_rows_q8act_ref(&a, wr, rt, K, 0, N, e2, ldy, bias);
                        for (int64_t m = 0; m < M; m++) assert_memory_equal(e + m * ldy, e2 + m * ldy, sizeof(float) * (size_t)N);
                        for (int64_t m = 0; m < M; m++)
                            for (int64_t n = 0; n < N; n++) {
                                if (!(fabs((double)y[m * ldy + n] - e[m * ldy + n]) <= 1e-5 * repacked_mag(x + m * ldx, K, n)))
                                    fail_msg("%s r16 int8 M%lld: y[%lld][%lld] = %g, reference %g", dots_dtype_name(dt), (long long)M,
                                             (long long)m, (long long)n, y[m * ldy + n], e[m * ldy + n]);
                            }
                        free(e), free(e2), free(mem);
                    } else if (M <= DOTS_DECODE_MAX_M && levels[l] >= DOTS_ISA_AVX512) {
                        /* decode with fp32 activations: the repacked layout's own kernel, fp32 sums in another order */
                        for (int64_t m = 0; m < M; m++)
                            for (int64_t n = 0; n < N; n++) {
                                if (!(fabs((double)y[m * ldy + n] - r[m * ldy + n]) <= 1e-5 * repacked_mag(x + m * ldx, K, n)))
                                    fail_msg("%s r16 fp32 %s M%lld: y[%lld][%lld] = %g, file layout %g", dots_dtype_name(dt),
                                             dots_isa_name(levels[l]), (long long)M, (long long)m, (long long)n, y[m * ldy + n],
                                             r[m * ldy + n]);
                            }
                    } else {
                        for (int64_t m = 0; m < M; m++)
                            if (memcmp(y + m * ldy, r + m * ldy, sizeof(float) * (size_t)N) != 0)
                                fail_msg("%s r16 %s bf16=%d M%lld: row %lld differs from the file layout's", dots_dtype_name(dt),
                                         dots_isa_name(levels[l]), bf, (long long)M, (long long)m);
                    }
                    for (int64_t m = 0; m < M; m++)
                        assert_true(y[m * ldy + N] == GUARD && y[m * ldy + N + 1] == GUARD);
                    if (mi == 5 && l == 0) { /* the reference itself */
                        dots_gemm_ref(y, ldy, x, ldx, wr, rt, K, bias, M, N, K);
                        dots_gemm_ref(r, ldy, x, ldx, w, dt, K, bias, M, N, K);
                        for (int64_t m = 0; m < M; m++) assert_memory_equal(y + m * ldy, r + m * ldy, sizeof(float) * (size_t)N);
                    }
                    if (M <= 2) { /* decode's q/k/v hand-off: three repacked matrices in one, as one product each */
                        const int64_t first[3] = {0, 16, 32}, rows[3] = {16, 16, N - 32};
                        dots_gemm_item items[3];
                        for (int i = 0; i < 3; i++) {
                            items[i] = (dots_gemm_item){wr + dots_dtype_bytes(rt, first[i] * K), rt, rows[i], y + first[i], ldy,
                                                        i == 0 ? bias : NULL};
                            dots_gemm(&k, r + first[i], ldy, x, ldx, items[i].w, rt, K, items[i].bias, M, rows[i], K);
                        }
                        for (int64_t i = 0; i < M * ldy; i++) y[i] = GUARD;
                        dots_gemm_multi(&k, x, ldx, M, K, items, 3);
                        for (int64_t m = 0; m < M; m++) assert_memory_equal(y + m * ldy, r + m * ldy, sizeof(float) * (size_t)N);
                    }
                    for (int i = 0; i < 4; i++) dots_scratch_free(&ws[i]);
                    free(x), free(y), free(r);
                }
        free(w), free(wr), free(back), free(row), free(b);
    }
    dots_pool_free(pool);
}

/* Working buffers: aligned, writable end to end, both kinds freed by one call. */
/* A decode step over a batch (M up to DOTS_DECODE_MAX_M rows on the
 * matrix-vector path) gives each row exactly the bits that row gets alone:
 * a sequence's tokens must not depend on which others share its batch. Every
 * weight type (plain, block formats, their 16-row repacking), both
 * precisions, every level, through dots_gemm and dots_gemm_multi. */
static void test_decode_batch_rows(void **state) {
    (void)state;
    dots_isa levels[5];
    const int nl = n_levels_quant(levels);
    dots_pool *pool = dots_pool_create(3);
    const dots_dtype types[] = {DOTS_DTYPE_F32, DOTS_DTYPE_BF16, DOTS_DTYPE_Q8_0, DOTS_DTYPE_Q4_0, DOTS_DTYPE_Q4_K};
    const int64_t N = 80, K = 512, ldx = K + 3, ldy = N + 5;
    for (size_t ti = 0; ti < 5; ti++)
        for (int rep = 0; rep < 2; rep++) {
            const dots_dtype dt = types[ti], wt = rep ? dots_repack_type(dt) : dt;
            if (rep && !dots_repack_fits(dt, N, K)) continue;
            void *w = NULL;
            if (ti < 2) {
                w = make_weights(dt, N, K);
            } else {
                const int64_t rb = dots_dtype_bytes(dt, K);
                uint8_t *q = malloc((size_t)(N * rb));
                float row[512];
                for (int64_t n = 0; n < N; n++) {
                    for (int64_t i = 0; i < K; i++) row[i] = frand() * (1 + (float)((i + n) % 5));
                    dots_quantize_row(dt, row, q + n * rb, K);
                }
                if (rep) {
                    w = malloc((size_t)dots_dtype_bytes(wt, N * K));
                    dots_repack_r16(dt, q, w, N, K);
                    free(q);
                } else {
                    w = q;
                }
            }
            float b[80];
            for (int64_t i = 0; i < N; i++) b[i] = frand();
            for (int l = 0; l < nl; l++)
                for (int bf = 0; bf < 2; bf++)
                    for (int64_t M = 5; M <= DOTS_DECODE_MAX_M; M += 4) {
                        float *x = malloc(sizeof(float) * (size_t)(M * ldx)), *y = malloc(sizeof(float) * (size_t)(M * ldy));
                        float *one = malloc(sizeof(float) * (size_t)ldy), *y2 = malloc(sizeof(float) * (size_t)(M * ldy));
                        for (int64_t i = 0; i < M * ldx; i++) x[i] = frand();
                        dots_scratch sc = {0}, ws[4] = {{0}};
                        dots_kernels k = {levels[l], pool, &sc, bf == 1, ws, NULL};
                        dots_gemm(&k, y, ldy, x, ldx, w, wt, K, b, M, N, K);
                        const dots_gemm_item items[2] = {{w, wt, 48, y2, ldy, b}, {(const uint8_t *)w + dots_dtype_bytes(wt, 48 * K), wt, 32, y2 + 48, ldy, b + 48}};
                        dots_gemm_multi(&k, x, ldx, M, K, items, 2);
                        for (int64_t m = 0; m < M; m++) {
                            dots_gemm(&k, one, ldy, x + m * ldx, ldx, w, wt, K, b, 1, N, K);
                            if (memcmp(one, y + m * ldy, sizeof(float) * (size_t)N) != 0 ||
                                memcmp(one, y2 + m * ldy, sizeof(float) * (size_t)N) != 0)
                                fail_msg("%s%s %s bf16=%d: row %lld of a %lld-row decode differs from the row alone",
                                         dots_dtype_name(dt), rep ? " (r16)" : "", dots_isa_name(levels[l]), bf, (long long)m,
                                         (long long)M);
                        }
                        dots_scratch_free(&sc);
                        for (int i = 0; i < 4; i++) dots_scratch_free(&ws[i]);
                        free(x), free(y), free(one), free(y2);
                    }
            free(w);
        }
    dots_pool_free(pool);
}

static void test_buffers(void **state) {
    (void)state;
    const size_t sizes[] = {0, 1, 4095, (1u << 20) - 1, 1u << 20, (5u << 20) + 3};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        uint8_t *p = dots_buffer_alloc(sizes[i]);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 64, 0);
        if (sizes[i] >= (1u << 20)) assert_int_equal((uintptr_t)p % (2u << 20), 0); /* 2 MB pages can back it */
        memset(p, 0xA5, sizes[i]);
        if (sizes[i]) assert_int_equal(p[sizes[i] - 1], 0xA5);
        dots_buffer_free(p);
    }
    assert_null(dots_buffer_alloc(SIZE_MAX));
    assert_null(dots_buffer_alloc(SIZE_MAX - (3u << 20)));
    dots_buffer_free(NULL);
}

/* Quantize then dequantize: each value within half a step of its block's scale. */
static void test_quant_roundtrip(void **state) {
    (void)state;
    float x[512], y[512];
    uint8_t q[512 / 32 * 34 + 64];
    for (int i = 0; i < 512; i++) x[i] = frand() * (i < 256 ? 1.0f : 100.0f);
    x[5] = 0;
    const dots_dtype types[] = {DOTS_DTYPE_Q8_0, DOTS_DTYPE_Q4_0, DOTS_DTYPE_Q4_K};
    for (int t = 0; t < 3; t++) {
        dots_quantize_row(types[t], x, q, 512);
        dots_dequantize_row(types[t], q, y, 512);
        for (int half = 0; half < 2; half++) {
            double amax = half ? 100 : 1, steps = types[t] == DOTS_DTYPE_Q8_0 ? 127 : 7.5;
            for (int i = 256 * half; i < 256 * half + 256; i++)
                if (!(fabs((double)y[i] - x[i]) <= amax / steps * 1.01 + 1e-6))
                    fail_msg("%s: x[%d] = %g -> %g", dots_dtype_name(types[t]), i, x[i], y[i]);
        }
    }
    /* the AVX-512 decoder gives the reference's values, bit for bit */
    if (dots_cpu_isa() >= DOTS_ISA_AVX512)
        for (int t = 0; t < 3; t++) {
            float z[512];
            dots_quantize_row(types[t], x, q, 512);
            dots_dequantize_row(types[t], q, y, 512);
            dots_dequantize_row_avx512(types[t], q, z, 512);
            if (memcmp(y, z, sizeof y) != 0) fail_msg("%s: the AVX-512 dequantizer differs", dots_dtype_name(types[t]));
        }
    /* an all-zero block stays zero */
    memset(x, 0, sizeof x);
    for (int t = 0; t < 3; t++) {
        dots_quantize_row(types[t], x, q, 256);
        dots_dequantize_row(types[t], q, y, 256);
        for (int i = 0; i < 256; i++) assert_true(y[i] == 0.0f);
    }
}

/* Attention in precision bf16 (Q, K, V, P rounded to bf16): close to the
 * fp32 reference in relative terms, at the shapes of test_attention. */
static void test_attention_bf16(void **state) {
    (void)state;
    if (dots_cpu_isa() < DOTS_ISA_AVX512BF16) skip();
    const int64_t ns[] = {1, 3, 63, 64, 65, 127, 128, 129, 200, 300};
    const int64_t ds[] = {16, 32, 128, 130};
    for (size_t i = 0; i < 10; i++)
        for (int c = 0; c < 3; c++) {
            int64_t nq = c == 2 ? 1 : ns[i], nk = c == 0 ? ns[(i + 4) % 10] : c == 2 ? ns[i] + 10 : ns[i], d = ds[(i + (size_t)c) % 4];
            int64_t pos0 = c == 2 ? ns[i] + 9 : 0, ld = d + 5;
            bool causal = c != 0;
            float *q = malloc(sizeof(float) * (size_t)(nq * ld)), *k = malloc(sizeof(float) * (size_t)(nk * ld));
            float *v = malloc(sizeof(float) * (size_t)(nk * ld)), *o = malloc(sizeof(float) * (size_t)(nq * ld)),
                  *r = malloc(sizeof(float) * (size_t)(nq * ld));
            for (int64_t t = 0; t < nq * ld; t++) q[t] = 3 * frand();
            for (int64_t t = 0; t < nk * ld; t++) k[t] = frand(), v[t] = frand();
            for (int64_t t = 0; t < nq * ld; t++) o[t] = r[t] = GUARD;
            dots_scratch ws = {0};
            dots_kernels kk = {DOTS_ISA_AVX512BF16, NULL, NULL, true, (i & 1) ? &ws : NULL, NULL};
            float scale = 1.0f / sqrtf((float)d);
            dots_attention(&kk, 0, o, ld, q, ld, k, ld, v, ld, nq, nk, d, scale, causal, pos0);
            dots_attention_ref(r, ld, q, ld, k, ld, v, ld, nq, nk, d, scale, causal, pos0);
            dots_scratch_free(&ws);
            double num = 0, den = 0;
            for (int64_t t = 0; t < nq; t++)
                for (int64_t cc = 0; cc < ld; cc++) {
                    float got = o[t * ld + cc], want = r[t * ld + cc];
                    if (cc >= d) {
                        if (got != GUARD) fail_msg("bf16 attention wrote past the head");
                        continue;
                    }
                    if (isnan(got)) fail_msg("bf16 attention: NaN");
                    num += (double)(got - want) * (got - want);
                    den += (double)want * want;
                }
            if (!(sqrt(num / den) < 1e-2))
                fail_msg("bf16 attention nq%lld nk%lld d%lld causal%d: relative error %g", (long long)nq, (long long)nk, (long long)d,
                         causal, sqrt(num / den));
            free(q);
            free(k);
            free(v);
            free(o);
            free(r);
        }
}

static void task_count(void *arg, int64_t t, int worker) {
    (void)worker;
    __atomic_fetch_add((int64_t *)arg + t % 7, 1, __ATOMIC_RELAXED);
}

static void test_pool(void **state) {
    (void)state;
    dots_pool *p = dots_pool_create(4);
    assert_non_null(p);
    for (int rep = 0; rep < 50; rep++) {
        int64_t counts[7] = {0};
        dots_pool_run(p, 1000, task_count, counts);
        int64_t total = 0;
        for (int i = 0; i < 7; i++) total += counts[i];
        assert_int_equal(total, 1000);
    }
    dots_pool_free(p);
    dots_pool_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_shapes),
        cmocka_unit_test(test_gemm_bf16),
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_gemm_quant),
        cmocka_unit_test(test_gemv_q8act),
        cmocka_unit_test(test_repacked),
        cmocka_unit_test(test_buffers),
        cmocka_unit_test(test_decode_batch_rows),
        cmocka_unit_test(test_attention_decode_group),
        cmocka_unit_test(test_quant_roundtrip),
        cmocka_unit_test(test_attention_bf16),
        cmocka_unit_test(test_ops),
        cmocka_unit_test(test_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
