/*
 * kernels.h - the numeric operations the model stages compose. Model files
 * call only these; no intrinsics appear outside src/kernels/x86/ and
 * src/kernels/arm/.
 *
 * Every operation has a plain C reference (_ref, in ref/) that states its
 * accumulation order, and the fast paths are tested against it. Numerics:
 * activations and accumulation are fp32; weights may be bf16, f16 or f32 and
 * are widened to fp32 exactly, so results do not depend on the weight
 * storage, only on summation order.
 */
#ifndef DOTS_KERNELS_H
#define DOTS_KERNELS_H

#include "core/cpu.h"
#include "core/internal.h"
#include "core/threads.h"

/* A growable buffer reused by successive calls from one thread: packing
 * a 50 MB weight copy into fresh memory every call costs more in page
 * faults than the packing itself. */
typedef struct dots_scratch {
    void *buf;
    size_t cap;
} dots_scratch;

/* Returns at least bytes of 64-byte-aligned memory (NULL on OOM). */
void *dots_scratch_get(dots_scratch *s, size_t bytes);
void dots_scratch_free(dots_scratch *s);

typedef struct dots_kernels {
    dots_isa isa;          /* the instruction set the fast paths may use */
    dots_pool *pool;       /* NULL: run on the calling thread */
    dots_scratch *scratch; /* NULL: allocate per call */
    bool bf16;             /* precision "bf16": bf16 weight GEMMs round X to bf16 and use
                            * vdpbf16ps (2x the fp32 rate, ~3 digits); fp32 otherwise */
    dots_scratch *worker_scratch; /* [pool size]: for kernels run inside pool tasks
                                   * (attention), by worker index; NULL: allocate per call */
    const struct dots_poll *poll; /* NULL: long passes neither report nor stop */
} dots_kernels;

/* What a long pass (the vision blocks, the prefill chunks) does between its
 * steps: report how far it is, and stop early when the caller cancelled.
 * A 200-dpi page spends minutes in the vision encoder; both a progress line
 * and a cancel request must not wait for it to end. */
typedef struct dots_poll {
    const volatile int *cancel; /* non-zero: stop at the next step */
    dots_progress_fn fn;        /* may be NULL */
    void *user;
} dots_poll;

/* Reports (stage, done, total) and returns true when the pass must stop. */
static inline bool dots_poll_step(const dots_kernels *k, dots_stage stage, int64_t done, int64_t total) {
    if (!k->poll) return false;
    if (k->poll->fn) k->poll->fn(k->poll->user, stage, done, total);
    return k->poll->cancel && __atomic_load_n(k->poll->cancel, __ATOMIC_RELAXED) != 0;
}

/* ---- matrix multiply: Y[M,N] = X[M,K] . W[N,K]^T (+ bias[N]) ----
 * X, Y fp32 row-major with leading dimensions ldx, ldy; W row-major (the
 * PyTorch Linear layout) of dtype wt with leading dimension ldw; bias fp32
 * or NULL. Y must not overlap X or W. Accumulation is fp32 in k order
 * within each output (the fast path: k order within 1 chain per output). */
void dots_gemm(const dots_kernels *k, float *y, int64_t ldy, const float *x, int64_t ldx, const void *w,
               dots_dtype wt, int64_t ldw, const float *bias, int64_t M, int64_t N, int64_t K);
void dots_gemm_ref(float *y, int64_t ldy, const float *x, int64_t ldx, const void *w, dots_dtype wt, int64_t ldw,
                   const float *bias, int64_t M, int64_t N, int64_t K);

/* Y_i = X . W_i^T (+ bias_i) for a few weights sharing X (ld = K each):
 * one hand-off to the pool when M is small (decode's q/k/v, gate/up),
 * else one dots_gemm per item. */
#define DOTS_GEMM_MAX_ITEMS 4
typedef struct dots_gemm_item {
    const void *w;
    dots_dtype wt;
    int64_t N;
    float *y;
    int64_t ldy;
    const float *bias;
} dots_gemm_item;
void dots_gemm_multi(const dots_kernels *k, const float *x, int64_t ldx, int64_t M, int64_t K, const dots_gemm_item *items,
                     int n_items);

/* Element i of a weight row as fp32. */
float dots_weight_at(const void *w, dots_dtype wt, int64_t i);
/* n weights from w + off into dst as fp32. */
void dots_weights_to_f32(float *dst, const void *w, dots_dtype wt, int64_t off, int64_t n);

/* ---- row-wise operations on fp32 [rows, n] (ld = n) ---- */

/* y = x / sqrt(mean(x^2) + eps) * w  (in place allowed) */
void dots_rmsnorm(float *y, const float *x, const void *w, dots_dtype wt, int64_t rows, int64_t n, float eps);
/* y = (x - mean) / sqrt(var + eps) * w + b, population variance */
void dots_layernorm(float *y, const float *x, const void *w, const void *b, dots_dtype wt, int64_t rows, int64_t n,
                    float eps);
/* g = silu(g) * u, elementwise over n values */
void dots_silu_mul(float *g, const float *u, int64_t n);
/* s[i] = e^(s[i] - shift) for i < n; returns their sum (the softmax numerators). */
float dots_exp_shift_sum(float *s, int64_t n, float shift);
/* x = gelu(x) with the exact erf form */
void dots_gelu_erf(float *x, int64_t n);
/* y += x */
void dots_add(float *y, const float *x, int64_t n);

/* The same split over k's pool in row ranges (and, for SiLU, on AVX-512
 * with a vector exp within a few ulps of expf): the elementwise steps of a
 * layer would otherwise leave all but one thread idle. */
void dots_par_rmsnorm(const dots_kernels *k, float *y, const float *x, const void *w, dots_dtype wt, int64_t rows, int64_t n,
                      float eps);
void dots_par_add(const dots_kernels *k, float *y, const float *x, int64_t n);
void dots_par_silu_mul(const dots_kernels *k, float *g, const float *u, int64_t n);
void dots_silu_mul_avx512(float *g, const float *u, int64_t n);
/* dots_exp_shift_sum with a vector exp. */
float dots_exp_shift_sum_avx512(float *s, int64_t n, float shift);
/* The same two on AArch64 AdvSIMD (a vector e^x within a few ulps of expf). */
void dots_silu_mul_neon(float *g, const float *u, int64_t n);
float dots_exp_shift_sum_neon(float *s, int64_t n, float shift);

/* Rotary embedding of one head vector x[d] by angles a[d/2]: pairs
 * (i, i + d/2) rotated by a[i] (NeoX "rotate_half" form, docs/model.md §5.2 and 7). */
void dots_rope_apply(float *x, const float *cos_a, const float *sin_a, int64_t d);

/* ---- attention ----
 * O[n_q, d] = softmax(Q K^T * scale (+ causal mask)) V for one head, with
 * Q, K, V, O rows at the given leading dimensions. Tiled with an online
 * softmax: memory O((n_q + n_k) d), never n_q x n_k. Causal: query i may
 * see keys 0 .. q_pos0 + i. Single-threaded: callers split heads/blocks and
 * pass the pool worker they run on (its scratch is reused across calls). */
void dots_attention(const dots_kernels *k, int worker, float *o, int64_t ldo, const float *q, int64_t ldq, const float *kk,
                    int64_t ldk, const float *v, int64_t ldv, int64_t n_q, int64_t n_k, int64_t d, float scale,
                    bool causal, int64_t q_pos0);
void dots_attention_ref(float *o, int64_t ldo, const float *q, int64_t ldq, const float *kk, int64_t ldk, const float *v,
                        int64_t ldv, int64_t n_q, int64_t n_k, int64_t d, float scale, bool causal, int64_t q_pos0);

/* One decode step for g query heads sharing one KV head (grouped-query
 * attention): o + h d = softmax(q_h . K^T scale) V over keys 0 .. n_k - 1,
 * for h < g, q_h at q + h d. K and V rows (ld ldk, ldv elements) are fp32
 * or bf16 (kvt: a bf16 KV cache). Each key and value row is read once for
 * the group. The same as dots_attention per head up to summation order (and
 * with a bf16 cache, the query rounded to bf16 on AVX512_BF16). */
void dots_attention_decode_group(const dots_kernels *k, int worker, float *o, const float *q, int g, const void *kk,
                                 int64_t ldk, const void *v, int64_t ldv, dots_dtype kvt, int64_t n_k, int64_t d, float scale);
/* The AVX-512 paths (d = 128, g <= 64); false when they do not apply. s: g n_k floats of scratch. */
bool dots_attention_decode_group_avx512(float *s, float *o, const float *q, int g, const float *kk, int64_t ldk, const float *v,
                                        int64_t ldv, int64_t n_k, int64_t d, float scale);
bool dots_attention_decode_group_bf16kv(float *s, float *o, const float *q, int g, const uint16_t *kk, int64_t ldk,
                                        const uint16_t *v, int64_t ldv, int64_t n_k, int64_t d, float scale);
/* The fp32 one on AArch64 AdvSIMD (d = 128, g <= 64); false elsewhere. */
bool dots_attention_decode_group_neon(float *s, float *o, const float *q, int g, const float *kk, int64_t ldk, const float *v,
                                      int64_t ldv, int64_t n_k, int64_t d, float scale);

/* The same with Q, K, V, P rounded to bf16 and both products on vdpbf16ps
 * (precision "bf16"; needs AVX512_BF16). */
void dots_attention_bf16(dots_scratch *scratch, float *o, int64_t ldo, const float *q, int64_t ldq, const float *kk, int64_t ldk, const float *v,
                         int64_t ldv, int64_t n_q, int64_t n_k, int64_t d, float scale, bool causal, int64_t q_pos0);
/* The same over a bf16 KV cache (K, V as bf16 rows). */
void dots_attention_bf16_kv16(dots_scratch *scratch, float *o, int64_t ldo, const float *q, int64_t ldq, const uint16_t *kk,
                              int64_t ldk, const uint16_t *v, int64_t ldv, int64_t n_q, int64_t n_k, int64_t d, float scale,
                              bool causal, int64_t q_pos0);

/* ---- micro-kernels (internal to kernels/) ----
 * y[m_rows, n_cols] (+)= x[m_rows, K] . panel, panel packed as [K][32]. */
#define DOTS_GEMM_NR 32
#define DOTS_GEMM_MR 8
void dots_gemm_micro_generic(int m_rows, int n_cols, int64_t K, const float *x, int64_t ldx, const float *panel,
                             float *y, int64_t ldy, const float *bias);
void dots_gemm_micro_avx512(int m_rows, int n_cols, int64_t K, const float *x, int64_t ldx, const float *panel,
                            float *y, int64_t ldy, const float *bias);
void dots_gemm_micro_bf16(int m_rows, int n_cols, int64_t K2, const uint32_t *x, int64_t ldx2, const uint32_t *panel,
                          float *y, int64_t ldy, const float *bias);
/* The same, stored transposed: y[c * ldy + i] for column c, row i, + bias[i];
 * x_next (or NULL): 8 more rows of x (ld ldx2) to prefetch meanwhile, for
 * x streamed from memory (the weights, when X is the packed operand). */
void dots_gemm_micro_bf16_t(int m_rows, int n_cols, int64_t K2, const uint32_t *x, int64_t ldx2, const uint32_t *panel,
                            const uint32_t *x_next, float *y, int64_t ldy, const float *bias);
void dots_pack_x_bf16(const float *x, int64_t ldx, int64_t rows, int64_t K, uint32_t *out, int64_t ldx2);
/* nc <= 32 rows of bf16 W (K values each) -> one panel [K2][32] of pairs, zero-padded. */
void dots_pack_w_bf16(const uint16_t *w, int64_t ldw, int64_t nc, int64_t K, int64_t K2, uint32_t *dst);
/* rows <= 32 rows of fp32 X -> one panel [K2][32] of bf16 pairs (X transposed), zero-padded. */
void dots_pack_xt_bf16(const float *x, int64_t ldx, int64_t rows, int64_t K, int64_t K2, uint32_t *dst);
void dots_gemm_micro_avx2(int m_rows, int n_cols, int64_t K, const float *x, int64_t ldx, const float *panel, float *y,
                          int64_t ldy, const float *bias);
/* AArch64 AdvSIMD (FMLA); the generic one elsewhere. */
void dots_gemm_micro_neon(int m_rows, int n_cols, int64_t K, const float *x, int64_t ldx, const float *panel, float *y,
                          int64_t ldy, const float *bias);

/* ---- this machine's limits (for benchmarks) ---- */
/* bf16 dot-product peak in GFLOP/s over the pool's threads; 0 without AVX512_BF16. */
double dots_measure_bf16_peak_gflops(const dots_kernels *k);
/* Read bandwidth in GB/s over the pool's threads, on a buffer of bytes. */
double dots_measure_dram_gbps(const dots_kernels *k, size_t bytes);

/* y[m, n] = x[m, :] . w[n, :] (+ bias[n]) for m < M <= DOTS_GEMV_MAX_M, n in
 * [n0, n1): the matrix-vector path (decode), reading each weight row once
 * without packing. */
#define DOTS_GEMV_MAX_M 4
/* dots_gemm and dots_gemm_multi take up to this many rows of X on the
 * matrix-vector path (a decode step over a batch of sequences), in groups of
 * DOTS_GEMV_MAX_M against each slice of weights; more rows are a GEMM. */
#define DOTS_DECODE_MAX_M 16
void dots_gemv_rows_generic(int M, const float *x, int64_t ldx, const void *w, dots_dtype wt, int64_t ldw, int64_t n0,
                            int64_t n1, int64_t K, float *y, int64_t ldy, const float *bias);
void dots_gemv_rows_avx512(int M, const float *x, int64_t ldx, const void *w, dots_dtype wt, int64_t ldw, int64_t n0,
                           int64_t n1, int64_t K, float *y, int64_t ldy, const float *bias);
void dots_gemv_rows_avx2(int M, const float *x, int64_t ldx, const void *w, dots_dtype wt, int64_t ldw, int64_t n0,
                         int64_t n1, int64_t K, float *y, int64_t ldy, const float *bias);
/* f32, bf16 and f16 weights on AArch64 AdvSIMD; the generic one elsewhere. */
void dots_gemv_rows_neon(int M, const float *x, int64_t ldx, const void *w, dots_dtype wt, int64_t ldw, int64_t n0,
                         int64_t n1, int64_t K, float *y, int64_t ldy, const float *bias);

/* The block formats (Q8_0, Q4_0, Q4_K) at the given level: AVX-512, AVX2 +
 * FMA, or the generic per-block path. */
void dots_gemv_rows_quant(dots_isa isa, int M, const float *x, int64_t ldx, const void *w, dots_dtype wt, int64_t ldw,
                          int64_t n0, int64_t n1, int64_t K, float *y, int64_t ldy, const float *bias);
void dots_gemv_rows_quant_avx512(int M, const float *x, int64_t ldx, const void *w, dots_dtype wt, int64_t ldw,
                                 int64_t n0, int64_t n1, int64_t K, float *y, int64_t ldy, const float *bias);
/* Decode on bf16 weights at precision bf16 (needs AVX512_BF16): xb holds M
 * (<= 8, the only kernel past DOTS_GEMV_MAX_M) rows of X rounded to bf16 (ld ldxb elements, from dots_pack_x_bf16); the
 * products are vdpbf16ps, fp32 sums. */
void dots_gemv_rows_bf16dp(int M, const uint16_t *xb, int64_t ldxb, const uint16_t *w, int64_t ldw, int64_t n0, int64_t n1,
                           int64_t K, float *y, int64_t ldy, const float *bias);

/* ---- decode on block formats with int8 activations (precision "bf16") ----
 * llama.cpp's scheme: each activation row is quantized per 32 values like a
 * Q8_0 block (d = max|x| / 127, q = round(x / d)), so a weight block times
 * an activation block is one integer dot product (vpdpbusd), scaled once in
 * fp32. The only error beyond fp32 summation is the activations' rounding
 * (relative ~1/254 per block), which the quality test measures per format. */
typedef struct dots_act_q8 {
    const int8_t *q;     /* [M][K] */
    const float *d;      /* [M][K / 32] */
    const int32_t *sum;  /* [M][K / 32]: sum of each block's q (offset and min terms) */
    /* the same per pair of blocks, each value repeated over its block's 8
     * dword lanes of a zmm: [M][K / 64][16] (the vector kernels' operands) */
    const float *d_lanes;
    const int32_t *neg_sum_lanes; /* -sum */
    int M;               /* rows, <= DOTS_GEMV_MAX_M */
    int64_t K;           /* a multiple of 32 */
} dots_act_q8;
/* Bytes of memory dots_act_q8_init needs for M rows of K. */
size_t dots_act_q8_bytes(int M, int64_t K);
/* Quantizes M rows of x (K a multiple of 32) into a, laid out in mem (64-byte
 * aligned, dots_act_q8_bytes). */
void dots_act_q8_init(dots_act_q8 *a, void *mem, const float *x, int64_t ldx, int M, int64_t K);
/* The same values with AVX-512 (it runs on one thread while the pool waits). */
void dots_act_q8_init_avx512(dots_act_q8 *a, void *mem, const float *x, int64_t ldx, int M, int64_t K);
/* Points a's arrays into mem without filling them. */
void dots_act_q8_layout(dots_act_q8 *a, void *mem, int M, int64_t K);
/* y[m, n] = x[m] . w[n] (+ bias[n]) for n in [n0, n1); reference: integer dot
 * per block, then scales in block order. */
void dots_gemv_rows_q8act_ref(const dots_act_q8 *x, const void *w, dots_dtype wt, int64_t ldw, int64_t n0, int64_t n1,
                              float *y, int64_t ldy, const float *bias);
void dots_gemv_rows_q8act_avx512vnni(const dots_act_q8 *x, const void *w, dots_dtype wt, int64_t ldw, int64_t n0,
                                     int64_t n1, float *y, int64_t ldy, const float *bias);
/* The same on ARM's DotProd (SDOT), equal to the reference bit for bit; the
 * reference itself where the compiler lacks it. */
void dots_gemv_rows_q8act_dotprod(const dots_act_q8 *x, const void *w, dots_dtype wt, int64_t ldw, int64_t n0, int64_t n1,
                                  float *y, int64_t ldy, const float *bias);
/* The same on I8MM (SMMLA: two weight rows by two rows of X), also equal to
 * the reference bit for bit; the DotProd kernel where the compiler lacks it. */
void dots_gemv_rows_q8act_i8mm(const dots_act_q8 *x, const void *w, dots_dtype wt, int64_t ldw, int64_t n0, int64_t n1,
                               float *y, int64_t ldy, const float *bias);

/* ---- the block formats with 16 rows interleaved (repack.c; the layout
 * is described there, the dtypes in core/internal.h) ----
 * dots_gemm takes them like any weight (ldw = K); only the int8-activation
 * kernel reads them in place, every other path restores one row at a time
 * on the stack, hence the cap on a row's bytes. */
#define DOTS_R16_MAX_ROW_BYTES 16384
/* The repacked type of a file block format (t itself for the others). */
dots_dtype dots_repack_type(dots_dtype t);
/* Whether an [N, K] tensor of t can be repacked: a block format, N a
 * multiple of 16, a row within DOTS_R16_MAX_ROW_BYTES. */
bool dots_repack_fits(dots_dtype t, int64_t N, int64_t K);
/* src: N rows of t; dst: dots_dtype_bytes(dots_repack_type(t), N K) bytes. */
void dots_repack_r16(dots_dtype t, const void *src, void *dst, int64_t N, int64_t K);
/* Blocks [b0, b0 + nb) of row n of a repacked tensor (K per row), in the
 * file's format: nb dots_dtype_block_bytes(base) bytes into out. */
void dots_repack_row_blocks(dots_dtype r16, const void *w, int64_t K, int64_t n, int64_t b0, int64_t nb, void *out);

/* dots_dequantize_row (kernels/quant.h) with AVX-512: the same values. */
void dots_dequantize_row_avx512(dots_dtype t, const void *src, float *y, int64_t n);
void dots_gemv_rows_quant_avx2(int M, const float *x, int64_t ldx, const void *w, dots_dtype wt, int64_t ldw, int64_t n0,
                               int64_t n1, int64_t K, float *y, int64_t ldy, const float *bias);

#endif
