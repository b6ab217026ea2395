/*
 * gemm_ref.c - the reference matrix multiply: one fp32 accumulator per
 * output, k ascending, then + bias. Written for clarity; the fast paths are
 * checked against it.
 */
#include "core/fp.h"
#include "kernels/kernels.h"
#include "kernels/quant.h"

/* Not for the repacked types, whose element i depends on the row length. */
float dots_weight_at(const void *w, dots_dtype wt, int64_t i) {
    if (dots_dtype_is_quant(wt)) { /* decode the whole block: slow, for references only */
        float blk[256];
        int64_t bs = dots_dtype_block(wt);
        dots_dequantize_row(wt, (const uint8_t *)w + i / bs * dots_dtype_block_bytes(wt), blk, bs);
        return blk[i % bs];
    }
    switch (wt) {
    case DOTS_DTYPE_BF16: return dots_bf16_to_f32(((const uint16_t *)w)[i]);
    case DOTS_DTYPE_F16: return dots_f16_to_f32(((const uint16_t *)w)[i]);
    default: return ((const float *)w)[i];
    }
}

void dots_weights_to_f32(float *dst, const void *w, dots_dtype wt, int64_t off, int64_t n) {
    if (dots_dtype_is_quant(wt)) {
        int64_t bs = dots_dtype_block(wt);
        if (off % bs == 0 && n % bs == 0)
            dots_dequantize_row(wt, (const uint8_t *)w + off / bs * dots_dtype_block_bytes(wt), dst, n);
        else
            for (int64_t i = 0; i < n; i++) dst[i] = dots_weight_at(w, wt, off + i);
    } else if (wt == DOTS_DTYPE_BF16) {
        const uint16_t *s = (const uint16_t *)w + off;
        for (int64_t i = 0; i < n; i++) dst[i] = dots_bf16_to_f32(s[i]);
    } else if (wt == DOTS_DTYPE_F16) {
        const uint16_t *s = (const uint16_t *)w + off;
        for (int64_t i = 0; i < n; i++) dst[i] = dots_f16_to_f32(s[i]);
    } else {
        const float *s = (const float *)w + off;
        for (int64_t i = 0; i < n; i++) dst[i] = s[i];
    }
}

void dots_gemm_ref(float *y, int64_t ldy, const float *x, int64_t ldx, const void *w, dots_dtype wt, int64_t ldw,
                   const float *bias, int64_t M, int64_t N, int64_t K) {
    if (dots_dtype_is_r16(wt)) { /* repacked (ld = K): each row restored to the file's format first */
        const dots_dtype base = dots_dtype_r16_base(wt);
        uint8_t row[DOTS_R16_MAX_ROW_BYTES];
        for (int64_t n = 0; n < N; n++) {
            dots_repack_row_blocks(wt, w, ldw, n, 0, ldw / dots_dtype_block(base), row);
            dots_gemm_ref(y + n, ldy, x, ldx, row, base, ldw, bias ? bias + n : NULL, M, 1, K);
        }
        return;
    }
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            float acc = 0.0f;
            for (int64_t k = 0; k < K; k++) acc += x[m * ldx + k] * dots_weight_at(w, wt, n * ldw + k);
            y[m * ldy + n] = acc + (bias ? bias[n] : 0.0f);
        }
}
