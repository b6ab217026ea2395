/*
 * gemm.c - the blocked matrix multiply behind dots_gemm.
 *
 *   W [N, K] (bf16/f16/f32) ─pack─► panels of 32 columns, fp32, [K][32]
 *   tasks: (block of 64 rows of X) x (group of 8 panels), over the pool
 *   micro-kernel: 8 rows x 32 columns held in registers over all of K
 *
 * Packing widens the weights once per call, so the inner loop is pure fp32
 * FMA; each X block is then reused across all panels of its group while
 * it sits in cache. Every output is one fp32 accumulator over k in order,
 * like the reference, so results match it to rounding of the final sum
 * only (the reference adds in the same order: they agree exactly unless
 * the compiler contracts differently).
 */
#include "core/buffer.h"
#include "core/fp.h"
#include "kernels/kernels.h"
#include "kernels/quant.h"

#include <stdlib.h>
#include <string.h>

#define MB 64 /* rows of X per task */
#define PANELS_PER_TASK 8

void dots_gemm_micro_generic(int m_rows, int n_cols, int64_t K, const float *x, int64_t ldx, const float *panel,
                             float *y, int64_t ldy, const float *bias) {
    float acc[DOTS_GEMM_MR][DOTS_GEMM_NR];
    memset(acc, 0, sizeof acc);
    for (int64_t k = 0; k < K; k++) {
        const float *p = panel + k * DOTS_GEMM_NR;
        for (int i = 0; i < m_rows; i++) {
            float xv = x[i * ldx + k];
            for (int j = 0; j < DOTS_GEMM_NR; j++) acc[i][j] += xv * p[j];
        }
    }
    for (int i = 0; i < m_rows; i++)
        for (int j = 0; j < n_cols; j++) y[i * ldy + j] = acc[i][j] + (bias ? bias[j] : 0.0f);
}

typedef struct gemm_job {
    float *y;
    int64_t ldy;
    const float *x;
    int64_t ldx;
    const void *w;
    dots_dtype wt;
    int64_t ldw;
    const float *bias;
    int64_t M, N, K;
    float *packed; /* [n_panels][K][32] */
    int64_t n_panels, n_mblocks, n_groups;
    dots_isa isa;
} gemm_job;

/* Row n's blocks [b0, b0 + nb) in the file's format: in place, or restored
 * into tmp from a repacked tensor (ld = K). */
static const uint8_t *quant_blocks(const void *w, dots_dtype wt, int64_t ldw, int64_t n, int64_t b0, int64_t nb, uint8_t *tmp) {
    if (!dots_dtype_is_r16(wt)) return (const uint8_t *)w + n * dots_dtype_bytes(wt, ldw) + b0 * dots_dtype_block_bytes(wt);
    dots_repack_row_blocks(wt, w, ldw, n, b0, nb, tmp);
    return tmp;
}
static bool is_block_format(dots_dtype t) { return dots_dtype_is_quant(t) || dots_dtype_is_r16(t); }

/* Widens 32 weight rows into one panel [K][32]. Reads 32 row streams,
 * writes contiguously; zero columns past N. */
static void pack_task(void *arg, int64_t p, int worker) {
    (void)worker;
    gemm_job *j = arg;
    float *dst = j->packed + p * j->K * DOTS_GEMM_NR;
    int64_t n0 = p * DOTS_GEMM_NR, nc = j->N - n0 < DOTS_GEMM_NR ? j->N - n0 : DOTS_GEMM_NR;
    if (nc < DOTS_GEMM_NR) memset(dst, 0, sizeof(float) * (size_t)(j->K * DOTS_GEMM_NR));
    if (j->wt == DOTS_DTYPE_BF16) {
        /* in blocks of 16 k: the 2 kB destination block stays in L1 */
        const uint16_t *w = (const uint16_t *)j->w + n0 * j->ldw;
        for (int64_t k0 = 0; k0 < j->K; k0 += 16) {
            int64_t kn = j->K - k0 < 16 ? j->K - k0 : 16;
            for (int64_t c = 0; c < nc; c++) {
                const uint16_t *row = w + c * j->ldw + k0;
                float *d = dst + k0 * DOTS_GEMM_NR + c;
                for (int64_t k = 0; k < kn; k++) {
                    uint32_t bits = (uint32_t)row[k] << 16;
                    memcpy(&d[k * DOTS_GEMM_NR], &bits, 4);
                }
            }
        }
    } else if (j->wt == DOTS_DTYPE_F32) {
        const float *w = (const float *)j->w + n0 * j->ldw;
        for (int64_t k0 = 0; k0 < j->K; k0 += 16) {
            int64_t kn = j->K - k0 < 16 ? j->K - k0 : 16;
            for (int64_t c = 0; c < nc; c++) {
                const float *row = w + c * j->ldw + k0;
                float *d = dst + k0 * DOTS_GEMM_NR + c;
                for (int64_t k = 0; k < kn; k++) d[k * DOTS_GEMM_NR] = row[k];
            }
        }
    } else if (is_block_format(j->wt)) {
        /* one block at a time: the row is never decoded into a big buffer */
        const int64_t bs = dots_dtype_block(j->wt);
        float blk[256];
        uint8_t tmp[144];
        for (int64_t c = 0; c < nc; c++) {
            for (int64_t k0 = 0; k0 < j->K; k0 += bs) {
                dots_dequantize_row(dots_dtype_r16_base(j->wt), quant_blocks(j->w, j->wt, j->ldw, n0 + c, k0 / bs, 1, tmp), blk, bs);
                for (int64_t k = 0; k < bs; k++) dst[(k0 + k) * DOTS_GEMM_NR + c] = blk[k];
            }
        }
    } else {
        for (int64_t c = 0; c < nc; c++)
            for (int64_t k = 0; k < j->K; k++) dst[k * DOTS_GEMM_NR + c] = dots_weight_at(j->w, j->wt, (n0 + c) * j->ldw + k);
    }
}

static void compute_task(void *arg, int64_t t, int worker) {
    (void)worker;
    gemm_job *j = arg;
    int64_t mb = t % j->n_mblocks, g = t / j->n_mblocks;
    int64_t m0 = mb * MB, m1 = m0 + MB < j->M ? m0 + MB : j->M;
    int64_t p0 = g * PANELS_PER_TASK, p1 = p0 + PANELS_PER_TASK < j->n_panels ? p0 + PANELS_PER_TASK : j->n_panels;
    for (int64_t p = p0; p < p1; p++) {
        const float *panel = j->packed + p * j->K * DOTS_GEMM_NR;
        int64_t n0 = p * DOTS_GEMM_NR;
        int n_cols = (int)(j->N - n0 < DOTS_GEMM_NR ? j->N - n0 : DOTS_GEMM_NR);
        const float *bias = j->bias ? j->bias + n0 : NULL;
        for (int64_t m = m0; m < m1; m += DOTS_GEMM_MR) {
            int rows = (int)(m1 - m < DOTS_GEMM_MR ? m1 - m : DOTS_GEMM_MR);
            const float *x = j->x + m * j->ldx;
            float *y = j->y + m * j->ldy + n0;
            if (j->isa >= DOTS_ISA_AVX512)
                dots_gemm_micro_avx512(rows, n_cols, j->K, x, j->ldx, panel, y, j->ldy, bias);
            else if (dots_isa_arm(j->isa, DOTS_ISA_NEON))
                dots_gemm_micro_neon(rows, n_cols, j->K, x, j->ldx, panel, y, j->ldy, bias);
            else if (j->isa >= DOTS_ISA_AVX2)
                dots_gemm_micro_avx2(rows, n_cols, j->K, x, j->ldx, panel, y, j->ldy, bias);
            else
                dots_gemm_micro_generic(rows, n_cols, j->K, x, j->ldx, panel, y, j->ldy, bias);
        }
    }
}

void dots_gemv_rows_generic(int M, const float *x, int64_t ldx, const void *w, dots_dtype wt, int64_t ldw, int64_t n0,
                            int64_t n1, int64_t K, float *y, int64_t ldy, const float *bias) {
    if (is_block_format(wt)) {
        /* block by block, one fp32 accumulator per output, k in order (the reference's sum) */
        const int64_t bs = dots_dtype_block(wt);
        float blk[256], acc[DOTS_GEMV_MAX_M];
        uint8_t tmp[144];
        for (int64_t n = n0; n < n1; n++) {
            for (int m = 0; m < M; m++) acc[m] = 0.0f;
            for (int64_t k0 = 0; k0 < K; k0 += bs) {
                dots_dequantize_row(dots_dtype_r16_base(wt), quant_blocks(w, wt, ldw, n, k0 / bs, 1, tmp), blk, bs);
                for (int m = 0; m < M; m++)
                    for (int64_t k = 0; k < bs; k++) acc[m] += x[m * ldx + k0 + k] * blk[k];
            }
            for (int m = 0; m < M; m++) y[m * ldy + n] = acc[m] + (bias ? bias[n] : 0.0f);
        }
        return;
    }
    for (int64_t n = n0; n < n1; n++)
        for (int m = 0; m < M; m++) {
            float acc = 0.0f;
            for (int64_t k = 0; k < K; k++) acc += x[m * ldx + k] * dots_weight_at(w, wt, n * ldw + k);
            y[m * ldy + n] = acc + (bias ? bias[n] : 0.0f);
        }
}


typedef struct gemv_job {
    int M;
    const float *x;
    int64_t ldx;
    const void *w;
    dots_dtype wt;
    int64_t ldw, N, K;
    float *y;
    int64_t ldy;
    const float *bias;
    dots_isa isa;
    int64_t rows_per_task;
    const dots_act_q8 *xq8; /* X as int8 blocks (block-format weights, precision bf16, VNNI), or NULL */
    const uint16_t *xbf;    /* X as bf16, ld K (bf16 weights, precision bf16, AVX512_BF16), or NULL */
} gemv_job;

/* Weight rows [n0, n1) times at most DOTS_GEMV_MAX_M rows of X (the kernels
 * hold one accumulator set per row in registers). */
static void gemv_rows(const gemv_job *j, int M, const float *x, const dots_act_q8 *xq8, const uint16_t *xbf, float *y,
                      int64_t n0, int64_t n1) {
    if (xbf && j->wt == DOTS_DTYPE_BF16)
        dots_gemv_rows_bf16dp(M, xbf, j->K, j->w, j->ldw, n0, n1, j->K, y, j->ldy, j->bias);
    else if (xq8 && is_block_format(j->wt) && dots_isa_arm(j->isa, DOTS_ISA_ARM_I8MM))
        dots_gemv_rows_q8act_i8mm(xq8, j->w, j->wt, j->ldw, n0, n1, y, j->ldy, j->bias);
    else if (xq8 && is_block_format(j->wt) && dots_isa_arm(j->isa, DOTS_ISA_ARM_DOTPROD))
        dots_gemv_rows_q8act_dotprod(xq8, j->w, j->wt, j->ldw, n0, n1, y, j->ldy, j->bias);
    else if (xq8 && is_block_format(j->wt))
        dots_gemv_rows_q8act_avx512vnni(xq8, j->w, j->wt, j->ldw, n0, n1, y, j->ldy, j->bias);
    else if (dots_dtype_is_r16(j->wt) && j->isa >= DOTS_ISA_AVX512 && j->ldw == j->K && n0 % 16 == 0 && n1 % 16 == 0 &&
             j->K / 32 <= 512)
        dots_gemv_rows_quant_avx512(M, x, j->ldx, j->w, j->wt, j->ldw, n0, n1, j->K, y, j->ldy, j->bias);
    else if (dots_dtype_is_r16(j->wt)) { /* fp32 activations: each row restored, then the file format's kernel */
        _Alignas(64) uint8_t row[DOTS_R16_MAX_ROW_BYTES];
        const dots_dtype base = dots_dtype_r16_base(j->wt);
        for (int64_t n = n0; n < n1; n++) {
            dots_repack_row_blocks(j->wt, j->w, j->ldw, n, 0, j->K / dots_dtype_block(base), row);
            dots_gemv_rows_quant(j->isa, M, x, j->ldx, row, base, j->ldw, 0, 1, j->K, y + n, j->ldy,
                                 j->bias ? j->bias + n : NULL);
        }
    } else if (dots_dtype_is_quant(j->wt))
        dots_gemv_rows_quant(j->isa, M, x, j->ldx, j->w, j->wt, j->ldw, n0, n1, j->K, y, j->ldy, j->bias);
    else if (j->isa >= DOTS_ISA_AVX512)
        dots_gemv_rows_avx512(M, x, j->ldx, j->w, j->wt, j->ldw, n0, n1, j->K, y, j->ldy, j->bias);
    else if (dots_isa_arm(j->isa, DOTS_ISA_NEON))
        dots_gemv_rows_neon(M, x, j->ldx, j->w, j->wt, j->ldw, n0, n1, j->K, y, j->ldy, j->bias);
    else if (j->isa >= DOTS_ISA_AVX2)
        dots_gemv_rows_avx2(M, x, j->ldx, j->w, j->wt, j->ldw, n0, n1, j->K, y, j->ldy, j->bias);
    else
        dots_gemv_rows_generic(M, x, j->ldx, j->w, j->wt, j->ldw, n0, n1, j->K, y, j->ldy, j->bias);
}

/* A batch of sequences (M up to DOTS_DECODE_MAX_M rows): the kernels hold
 * DOTS_GEMV_MAX_M rows of X (the bf16 one 8) in registers; for more, the
 * task's weight rows are taken in slices of about 16 kB, and each slice
 * meets every group of rows while it is still in L1/L2, so the weights come
 * from memory once per step whatever the batch. Each output is the same
 * kernel's sum as for that row alone: a sequence's logits do not depend on
 * the batch it runs in. */
static void gemv_task(void *arg, int64_t t, int worker) {
    (void)worker;
    gemv_job *j = arg;
    int64_t n0 = t * j->rows_per_task, n1 = n0 + j->rows_per_task < j->N ? n0 + j->rows_per_task : j->N;
    /* the bf16 kernel and the int8 kernels of the repacked formats take 8 rows of X at once */
    const bool wide = (j->xbf && j->wt == DOTS_DTYPE_BF16) ||
                      (j->xq8 && dots_dtype_is_r16(j->wt) && j->ldw == j->K && n0 % 16 == 0 && n1 % 16 == 0);
    const int group = wide ? 8 : DOTS_GEMV_MAX_M;
    if (j->M <= group) {
        gemv_rows(j, j->M, j->x, j->xq8, j->xbf, j->y, n0, n1);
        return;
    }
    const bool r16 = dots_dtype_is_r16(j->wt);
    int64_t slice = (16 << 10) / (dots_dtype_bytes(j->wt, j->ldw) > 0 ? dots_dtype_bytes(j->wt, j->ldw) : 1);
    if (slice < 1) slice = 1;
    slice = (slice + 3) / 4 * 4; /* whole tiles of the bf16 kernel */
    if (r16) slice = (slice + 15) / 16 * 16; /* whole groups of 16 rows */
    for (int64_t s0 = n0; s0 < n1; s0 += slice) {
        const int64_t s1 = s0 + slice < n1 ? s0 + slice : n1;
        for (int m0 = 0; m0 < j->M; m0 += group) {
            const int mg = j->M - m0 < group ? j->M - m0 : group;
            dots_act_q8 part, *xq8 = NULL;
            if (j->xq8) { /* rows m0.. of the int8 activations: each row's arrays are contiguous */
                const int64_t nx = j->K / 32, np = j->K / 64;
                part = *j->xq8;
                part.q += (int64_t)m0 * j->K;
                part.d += (int64_t)m0 * nx;
                part.sum += (int64_t)m0 * nx;
                part.d_lanes += (int64_t)m0 * np * 16;
                part.neg_sum_lanes += (int64_t)m0 * np * 16;
                part.M = mg;
                xq8 = &part;
            }
            gemv_rows(j, mg, j->x + (int64_t)m0 * j->ldx, xq8, j->xbf ? j->xbf + (int64_t)m0 * j->K : NULL,
                      j->y + (int64_t)m0 * j->ldy, s0, s1);
        }
    }
}

/* ---- the bf16 path: W and X as bf16 pairs, vdpbf16ps micro-kernel ---- */

typedef struct bf16_job {
    float *y;
    int64_t ldy;
    const float *x;
    int64_t ldx;
    const void *w;
    dots_dtype wt; /* BF16, or a block format decoded and rounded to bf16 */
    int64_t ldw;
    const float *bias;
    int64_t M, N, K, K2;
    uint32_t *wp;  /* [n_panels][K2][32] pairs */
    uint32_t *xp;  /* [M][K2] pairs */
    int64_t n_panels, n_mblocks, n_groups;
} bf16_job;

static void bf16_pack_w_task(void *arg, int64_t p, int worker) {
    (void)worker;
    bf16_job *j = arg;
    uint32_t *dst = j->wp + p * j->K2 * DOTS_GEMM_NR;
    int64_t n0 = p * DOTS_GEMM_NR, nc = j->N - n0 < DOTS_GEMM_NR ? j->N - n0 : DOTS_GEMM_NR;
    if (j->wt != DOTS_DTYPE_BF16) {
        /* block formats: decode a k-slice of the 32 rows to fp32, then round and
         * transpose it into the panel with the vector packer of X */
        const int64_t bs = dots_dtype_block(j->wt);
        const int64_t step = j->K % 256 == 0 ? 256 : bs;
        float slice[DOTS_GEMM_NR * 256];
        uint8_t tmp[8 * 34]; /* 256 weights of any format */
        for (int64_t k0 = 0; k0 < j->K; k0 += step) {
            for (int64_t c = 0; c < nc; c++) /* this path runs only where AVX-512 (BF16) is */
                dots_dequantize_row_avx512(dots_dtype_r16_base(j->wt), quant_blocks(j->w, j->wt, j->ldw, n0 + c, k0 / bs, step / bs, tmp),
                                           slice + c * step, step);
            dots_pack_xt_bf16(slice, step, nc, step, step / 2, dst + k0 / 2 * DOTS_GEMM_NR);
        }
        return;
    }
    dots_pack_w_bf16((const uint16_t *)j->w + n0 * j->ldw, j->ldw, nc, j->K, j->K2, dst);
}

static void bf16_pack_x_task(void *arg, int64_t t, int worker) {
    (void)worker;
    bf16_job *j = arg;
    int64_t r0 = t * MB, rows = j->M - r0 < MB ? j->M - r0 : MB;
    dots_pack_x_bf16(j->x + r0 * j->ldx, j->ldx, rows, j->K, j->xp + r0 * j->K2, j->K2);
}

static void bf16_compute_task(void *arg, int64_t t, int worker) {
    (void)worker;
    bf16_job *j = arg;
    int64_t mb = t % j->n_mblocks, g = t / j->n_mblocks;
    int64_t m0 = mb * MB, m1 = m0 + MB < j->M ? m0 + MB : j->M;
    int64_t p0 = g * PANELS_PER_TASK, p1 = p0 + PANELS_PER_TASK < j->n_panels ? p0 + PANELS_PER_TASK : j->n_panels;
    for (int64_t p = p0; p < p1; p++) {
        const uint32_t *panel = j->wp + p * j->K2 * DOTS_GEMM_NR;
        int64_t n0 = p * DOTS_GEMM_NR;
        int n_cols = (int)(j->N - n0 < DOTS_GEMM_NR ? j->N - n0 : DOTS_GEMM_NR);
        for (int64_t m = m0; m < m1; m += DOTS_GEMM_MR) {
            int rows = (int)(m1 - m < DOTS_GEMM_MR ? m1 - m : DOTS_GEMM_MR);
            dots_gemm_micro_bf16(rows, n_cols, j->K2, j->xp + m * j->K2, j->K2, panel, j->y + m * j->ldy + n0, j->ldy,
                                 j->bias ? j->bias + n0 : NULL);
        }
    }
}

/* ---- the bf16 path with X packed instead of W (fewer rows than columns:
 * the prefill of a prompt), Y^T = W X^T: the micro-kernel broadcasts pairs
 * straight from the weight rows, the panels hold 32 rows of X, and each
 * 8 x 32 tile is stored transposed. Nothing is copied from the weights. */

#define WB 64 /* weight rows per task */

typedef struct xt_job {
    float *y;
    int64_t ldy;
    const float *x;
    int64_t ldx;
    const uint16_t *w;     /* bf16 weights, or NULL with wq */
    const uint8_t *wq;     /* block-format weights: each task decodes its rows to bf16 first */
    dots_dtype wt;
    dots_scratch *ws;      /* per worker: 64 decoded rows + one fp32 row */
    int64_t ldw;
    const float *bias;
    int64_t M, N, K, K2;
    uint32_t *xp; /* [n_xpanels][K2][32] */
    int64_t n_xpanels, n_wblocks, n_groups, per_group;
} xt_job;

static void xt_pack_task(void *arg, int64_t p, int worker) {
    (void)worker;
    xt_job *j = arg;
    int64_t m0 = p * DOTS_GEMM_NR, rows = j->M - m0 < DOTS_GEMM_NR ? j->M - m0 : DOTS_GEMM_NR;
    dots_pack_xt_bf16(j->x + m0 * j->ldx, j->ldx, rows, j->K, j->K2, j->xp + p * j->K2 * DOTS_GEMM_NR);
}

static void xt_compute_task(void *arg, int64_t t, int worker) {
    xt_job *j = arg;
    int64_t wb = t % j->n_wblocks, g = t / j->n_wblocks;
    int64_t n0 = wb * WB, n1 = n0 + WB < j->N ? n0 + WB : j->N;
    int64_t p0 = g * j->per_group, p1 = p0 + j->per_group < j->n_xpanels ? p0 + j->per_group : j->n_xpanels;
    const uint16_t *w = j->w;
    int64_t ldw = j->ldw, base = 0;
    if (j->wq) { /* decode this task's weight rows once, reuse them for every panel */
        uint16_t *rows16 = j->ws[worker].buf;
        float *row32 = (float *)(void *)(rows16 + WB * j->K);
        const int64_t nb = j->K / dots_dtype_block(j->wt);
        _Alignas(64) uint8_t tmp[DOTS_R16_MAX_ROW_BYTES];
        for (int64_t n = n0; n < n1; n++) {
            const uint8_t *row = dots_dtype_is_r16(j->wt) ? quant_blocks(j->wq, j->wt, j->ldw, n, 0, nb, tmp)
                                                          : j->wq + n * dots_dtype_bytes(j->wt, j->ldw);
            dots_dequantize_row_avx512(dots_dtype_r16_base(j->wt), row, row32, j->K);
            dots_pack_x_bf16(row32, j->K, 1, j->K, (uint32_t *)(void *)(rows16 + (n - n0) * j->K), j->K / 2);
        }
        w = rows16;
        ldw = j->K;
        base = n0;
    }
    for (int64_t p = p0; p < p1; p++) {
        const uint32_t *panel = j->xp + p * j->K2 * DOTS_GEMM_NR;
        int64_t m0 = p * DOTS_GEMM_NR;
        int cols = (int)(j->M - m0 < DOTS_GEMM_NR ? j->M - m0 : DOTS_GEMM_NR);
        for (int64_t n = n0; n < n1; n += DOTS_GEMM_MR) {
            int rows = (int)(n1 - n < DOTS_GEMM_MR ? n1 - n : DOTS_GEMM_MR);
            /* the first panel meets each weight row fresh from memory: fetch the next 8 meanwhile */
            const uint32_t *next = !j->wq && p == p0 && n + 2 * DOTS_GEMM_MR <= n1
                                       ? (const uint32_t *)(const void *)(w + (n - base + DOTS_GEMM_MR) * ldw)
                                       : NULL;
            dots_gemm_micro_bf16_t(rows, cols, j->K2, (const uint32_t *)(const void *)(w + (n - base) * ldw), ldw / 2, panel, next,
                                   j->y + m0 * j->ldy + n, j->ldy, j->bias ? j->bias + n : NULL);
        }
    }
}

static bool gemm_bf16_xt(const dots_kernels *k, float *y, int64_t ldy, const float *x, int64_t ldx, const void *w,
                         dots_dtype wt, int64_t ldw, const float *bias, int64_t M, int64_t N, int64_t K) {
    xt_job j = {y, ldy, x, ldx, NULL, NULL, wt, k->worker_scratch, ldw, bias, M, N, K, K / 2, NULL, 0, 0, 0, 0};
    if (wt == DOTS_DTYPE_BF16) {
        j.w = w;
    } else {
        /* every worker's room for its decoded rows, reserved before the hand-off */
        j.wq = w;
        size_t need = (size_t)(WB * K) * 2 + (size_t)K * 4 + 64;
        for (int i = 0; i < dots_pool_size(k->pool); i++)
            if (!dots_scratch_get(&k->worker_scratch[i], need)) return false;
    }
    j.n_xpanels = (M + DOTS_GEMM_NR - 1) / DOTS_GEMM_NR;
    j.n_wblocks = (N + WB - 1) / WB;
    /* each group of X panels reads the weights from memory once more: few,
     * balanced groups of up to 16 panels (512 rows) */
    j.n_groups = (j.n_xpanels + 15) / 16;
    j.per_group = (j.n_xpanels + j.n_groups - 1) / j.n_groups;
    size_t bytes = (size_t)(j.n_xpanels * j.K2 * DOTS_GEMM_NR) * 4;
    bool own = !k->scratch;
    j.xp = own ? aligned_alloc(64, (bytes + 63) / 64 * 64) : dots_scratch_get(k->scratch, bytes);
    if (!j.xp) return false;
    dots_pool_run(k->pool, j.n_xpanels, xt_pack_task, &j);
    dots_pool_run(k->pool, j.n_wblocks * j.n_groups, xt_compute_task, &j);
    if (own) free(j.xp);
    return true;
}

/* false if the memory for the packed copies is not there (the caller falls back). */
static bool gemm_bf16(const dots_kernels *k, float *y, int64_t ldy, const float *x, int64_t ldx, const void *w,
                      dots_dtype wt, int64_t ldw, const float *bias, int64_t M, int64_t N, int64_t K) {
    bf16_job j = {y, ldy, x, ldx, w, wt, ldw, bias, M, N, K, (K + 1) / 2, NULL, NULL, 0, 0, 0};
    j.n_panels = (N + DOTS_GEMM_NR - 1) / DOTS_GEMM_NR;
    j.n_mblocks = (M + MB - 1) / MB;
    j.n_groups = (j.n_panels + PANELS_PER_TASK - 1) / PANELS_PER_TASK;
    size_t wbytes = (size_t)(j.n_panels * j.K2 * DOTS_GEMM_NR) * 4, xbytes = (size_t)(M * j.K2) * 4 + 64;
    bool own = !k->scratch;
    uint8_t *buf = own ? aligned_alloc(64, (wbytes + xbytes + 63) / 64 * 64) : dots_scratch_get(k->scratch, wbytes + xbytes);
    if (!buf) return false;
    j.wp = (uint32_t *)buf;
    j.xp = (uint32_t *)(buf + wbytes);
    dots_pool_run(k->pool, j.n_panels, bf16_pack_w_task, &j);
    dots_pool_run(k->pool, j.n_mblocks, bf16_pack_x_task, &j);
    dots_pool_run(k->pool, j.n_mblocks * j.n_groups, bf16_compute_task, &j);
    if (own) free(buf);
    return true;
}

/* Several products of the same X in one hand-off to the pool (decode's
 * q/k/v and gate/up): the small matrices share the threads' start-up. */
typedef struct multi_job {
    const dots_gemm_item *items;
    int n_items;
    int M;
    const float *x;
    int64_t ldx, K;
    dots_isa isa;
    int64_t rows_per_task;
    const dots_act_q8 *xq8;
    const uint16_t *xbf;
    int64_t first_task[DOTS_GEMM_MAX_ITEMS + 1];
} multi_job;

static void multi_task(void *arg, int64_t t, int worker) {
    (void)worker;
    multi_job *j = arg;
    int i = 0;
    while (t >= j->first_task[i + 1]) i++;
    const dots_gemm_item *it = &j->items[i];
    gemv_job g = {j->M, j->x, j->ldx, it->w, it->wt, j->K, it->N, j->K, it->y, it->ldy, it->bias, j->isa, j->rows_per_task, j->xq8, j->xbf};
    gemv_task(&g, t - j->first_task[i], worker);
}

/* Decode at precision bf16: X converted once per call for the weights'
 * kernel, in k's scratch (the caller's thread owns it; packing does not run
 * on this path) or in *own, which the caller frees. Block formats with VNNI:
 * int8 blocks (*xq8); bf16 weights with AVX512_BF16: bf16 rows (*xbf). Both
 * stay NULL for the fp32 path (fp32 precision, older CPUs, odd shapes, no
 * memory). */
typedef struct act_prep {
    dots_act_q8 q8;
    const dots_act_q8 *xq8;
    const uint16_t *xbf;
    void *own;
} act_prep;

static void act_prepare(const dots_kernels *k, const float *x, int64_t ldx, int64_t M, int64_t K, bool all_quant, bool all_bf16,
                        act_prep *a) {
    a->xq8 = NULL, a->xbf = NULL, a->own = NULL;
    if (!k || !k->bf16 || M > DOTS_DECODE_MAX_M) return;
    const bool arm_dot = dots_isa_arm(k->isa, DOTS_ISA_ARM_DOTPROD);
    bool q8 = all_quant && (k->isa >= DOTS_ISA_AVX512VNNI || arm_dot) && K % 32 == 0;
    bool bf = all_bf16 && dots_isa_bf16(k->isa) && K % 2 == 0;
    if (!q8 && !bf) return;
    size_t bytes = q8 ? dots_act_q8_bytes((int)M, K) : (size_t)(M * K) * sizeof(uint16_t) + 64;
    void *buf = k->scratch ? dots_scratch_get(k->scratch, bytes) : (a->own = aligned_alloc(64, (bytes + 63) / 64 * 64));
    if (!buf) return;
    if (bf) {
        dots_pack_x_bf16(x, ldx, M, K, buf, K / 2);
        a->xbf = buf;
        return;
    }
    if (arm_dot) dots_act_q8_init(&a->q8, buf, x, ldx, (int)M, K);
    else dots_act_q8_init_avx512(&a->q8, buf, x, ldx, (int)M, K);
    a->xq8 = &a->q8;
}

/* Weight rows per matrix-vector task: ~512 kB of weights, so that the
 * threads finish a hand-off within a few microseconds of each other, but at
 * least 4 tasks per thread and never under 8 rows. */
static int64_t gemv_rows_per_task(int64_t N, int64_t row_bytes, int threads, bool r16) {
    int64_t rows = (512 << 10) / (row_bytes > 0 ? row_bytes : 1);
    int64_t most = N / (4 * threads);
    if (rows > most) rows = most;
    if (rows < 8) rows = 8;
    return r16 ? (rows + 15) / 16 * 16 : rows; /* a repacked tensor's kernel takes whole groups of 16 rows */
}

void dots_gemm_multi(const dots_kernels *k, const float *x, int64_t ldx, int64_t M, int64_t K, const dots_gemm_item *items,
                     int n_items) {
    if (M <= DOTS_DECODE_MAX_M && n_items <= DOTS_GEMM_MAX_ITEMS) {
        int threads = dots_pool_size(k ? k->pool : NULL);
        int64_t total = 0;
        for (int i = 0; i < n_items; i++) total += items[i].N;
        bool all_quant = true, all_bf16 = true, any_r16 = false;
        for (int i = 0; i < n_items; i++) {
            all_quant = all_quant && is_block_format(items[i].wt);
            all_bf16 = all_bf16 && items[i].wt == DOTS_DTYPE_BF16;
            any_r16 = any_r16 || dots_dtype_is_r16(items[i].wt);
        }
        int64_t rows = gemv_rows_per_task(total, dots_dtype_bytes(items[0].wt, K), threads, any_r16);
        act_prep a;
        act_prepare(k, x, ldx, M, K, all_quant, all_bf16, &a);
        multi_job j = {items, n_items, (int)M, x, ldx, K, k ? k->isa : DOTS_ISA_GENERIC, rows, a.xq8, a.xbf, {0}};
        for (int i = 0; i < n_items; i++) j.first_task[i + 1] = j.first_task[i] + (items[i].N + rows - 1) / rows;
        dots_pool_run(k ? k->pool : NULL, j.first_task[n_items], multi_task, &j);
        free(a.own);
        return;
    }
    for (int i = 0; i < n_items; i++)
        dots_gemm(k, items[i].y, items[i].ldy, x, ldx, items[i].w, items[i].wt, K, items[i].bias, M, items[i].N, K);
}

void dots_gemm(const dots_kernels *k, float *y, int64_t ldy, const float *x, int64_t ldx, const void *w,
               dots_dtype wt, int64_t ldw, const float *bias, int64_t M, int64_t N, int64_t K) {
    if (M <= 0 || N <= 0) return;
    if (k && k->bf16 && dots_isa_bf16(k->isa) && M > DOTS_DECODE_MAX_M) {
        /* pack whichever operand is smaller: X for a prompt (M < N), W for the vision encoder */
        bool xt_ok = wt == DOTS_DTYPE_BF16 ? K % 2 == 0 && ldw % 2 == 0 : is_block_format(wt) && k->worker_scratch && ldw == K;
        if (M < N && xt_ok && gemm_bf16_xt(k, y, ldy, x, ldx, w, wt, ldw, bias, M, N, K)) return;
        if ((wt == DOTS_DTYPE_BF16 || is_block_format(wt)) && gemm_bf16(k, y, ldy, x, ldx, w, wt, ldw, bias, M, N, K))
            return;
    }
    if (M <= DOTS_DECODE_MAX_M) { /* decode (of up to a batch of rows): stream the weights once, no packing */
        int threads = dots_pool_size(k ? k->pool : NULL);
        int64_t rows = gemv_rows_per_task(N, dots_dtype_bytes(wt, ldw), threads, dots_dtype_is_r16(wt));
        act_prep a;
        act_prepare(k, x, ldx, M, K, is_block_format(wt), wt == DOTS_DTYPE_BF16, &a);
        gemv_job g = {(int)M, x, ldx, w, wt, ldw, N, K, y, ldy, bias, k ? k->isa : DOTS_ISA_GENERIC, rows, a.xq8, a.xbf};
        dots_pool_run(k ? k->pool : NULL, (N + rows - 1) / rows, gemv_task, &g);
        free(a.own);
        return;
    }
    gemm_job j = {y, ldy, x, ldx, w, wt, ldw, bias, M, N, K, NULL, 0, 0, 0, DOTS_ISA_GENERIC};
    j.n_panels = (N + DOTS_GEMM_NR - 1) / DOTS_GEMM_NR;
    j.n_mblocks = (M + MB - 1) / MB;
    j.n_groups = (j.n_panels + PANELS_PER_TASK - 1) / PANELS_PER_TASK;
    j.isa = k ? k->isa : DOTS_ISA_GENERIC;
    size_t bytes = (size_t)(j.n_panels * K * DOTS_GEMM_NR * (int64_t)sizeof(float) + 64) / 64 * 64;
    bool own = !(k && k->scratch);
    j.packed = own ? aligned_alloc(64, bytes) : dots_scratch_get(k->scratch, bytes);
    if (!j.packed) { /* no memory for the packed copy: the slow path still gives the result */
        dots_gemm_ref(y, ldy, x, ldx, w, wt, ldw, bias, M, N, K);
        return;
    }
    dots_pool *pool = k ? k->pool : NULL;
    dots_pool_run(pool, j.n_panels, pack_task, &j);
    dots_pool_run(pool, j.n_mblocks * j.n_groups, compute_task, &j);
    if (own) free(j.packed);
}

void *dots_scratch_get(dots_scratch *s, size_t bytes) {
    if (bytes <= s->cap) return s->buf;
    dots_buffer_free(s->buf);
    s->cap = 0;
    s->buf = dots_buffer_alloc(bytes);
    if (s->buf) s->cap = bytes;
    return s->buf;
}

void dots_scratch_free(dots_scratch *s) {
    if (!s) return;
    dots_buffer_free(s->buf);
    s->buf = NULL;
    s->cap = 0;
}

void dots_gemv_rows_quant(dots_isa isa, int M, const float *x, int64_t ldx, const void *w, dots_dtype wt, int64_t ldw,
                          int64_t n0, int64_t n1, int64_t K, float *y, int64_t ldy, const float *bias) {
    if (isa >= DOTS_ISA_AVX512)
        dots_gemv_rows_quant_avx512(M, x, ldx, w, wt, ldw, n0, n1, K, y, ldy, bias);
    else if (isa >= DOTS_ISA_AVX2)
        dots_gemv_rows_quant_avx2(M, x, ldx, w, wt, ldw, n0, n1, K, y, ldy, bias);
    else
        dots_gemv_rows_generic(M, x, ldx, w, wt, ldw, n0, n1, K, y, ldy, bias);
}
