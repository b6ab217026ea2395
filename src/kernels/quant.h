/*
 * quant.h - ggml's block formats Q8_0, Q4_0 and Q4_K: llama.cpp's reference
 * quantizers (bit for bit, docs/formats.md §3) and dequantizers.
 *
 *   Q8_0  34 bytes / 32 weights: fp16 d, int8 q[32]             x = d q
 *   Q4_0  18 bytes / 32 weights: fp16 d, nibbles (j | j+16 << 4) x = d (q - 8)
 *   Q4_K 144 bytes / 256 weights: fp16 d, fp16 dmin, 12 bytes of 6-bit
 *         scales/mins for 8 sub-blocks of 32, 128 bytes of nibbles
 *                                                               x = d sc q - dmin m
 *
 * Blocks are byte arrays: fields are read with memcpy, never through
 * misaligned struct pointers (a Q8_0 block is 34 bytes).
 */
#ifndef DOTS_QUANT_H
#define DOTS_QUANT_H

#include "core/fp.h"
#include "core/internal.h"
#include "kernels/kernels.h"

#include <string.h>

/* Quantizes n values (a multiple of the block) into dst. */
void dots_quantize_row(dots_dtype t, const float *x, void *dst, int64_t n);
/* Dequantizes n values (a multiple of the block) of src into y. */
void dots_dequantize_row(dots_dtype t, const void *src, float *y, int64_t n);

/* Q4_K sub-block j's 6-bit scale and min. */
static inline void dots_q4k_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* A block's fp16 field (blocks are byte arrays: read with memcpy). */
static inline float dots_f16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return dots_f16_to_f32(h);
}

/* Block b of row n in the file's format: in place, or restored into tmp
 * (one block's bytes) from a repacked tensor (ld = K). */
static inline const uint8_t *dots_row_block(const void *w, dots_dtype wt, int64_t ldw, int64_t n, int64_t b, uint8_t *tmp) {
    if (!dots_dtype_is_r16(wt)) return (const uint8_t *)w + n * dots_dtype_bytes(wt, ldw) + b * dots_dtype_block_bytes(wt);
    dots_repack_row_blocks(wt, w, ldw, n, b, 1, tmp);
    return tmp;
}

#endif
