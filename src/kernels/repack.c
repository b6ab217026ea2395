/*
 * repack.c - the block formats with 16 weight rows interleaved, the layout
 * decode's int8 kernel wants in memory (core/internal.h, DOTS_DTYPE_*_R16).
 *
 * Row by row, a 4-bit product costs more instructions than DRAM delivers
 * bytes: every 32 weights need their nibbles spread, an int-to-float
 * convert, a scale and an FMA, and the 16 lanes of a zmm all hold one row,
 * so each row ends in a horizontal sum. With 16 rows side by side, lane r of
 * a zmm is row r: one vpdpbusd multiplies 4 weights of each of 16 rows by 4
 * activations broadcast from memory, one convert and FMA per block serve 16
 * rows, and the 16 results are stored as they are.
 *
 * A group of 16 rows holds, block after block (b = 0 .. K/32 - 1, or per
 * 256 weights for Q4_K):
 *   Q8_0 (544 B): fp16 d[16]; 8 chunks of 64 B, chunk c byte 4r + i =
 *                 q[r][4c + i] + 128 (unsigned, as vpdpbusd takes it)
 *   Q4_0 (288 B): fp16 d[16]; 4 chunks, chunk c byte 4r + i = the file's
 *                 byte 4c + i of row r (low nibble weight 4c + i, high
 *                 nibble weight 4c + i + 16)
 *   Q4_K (2368 B): fp16 d[16], fp16 dmin[16], sc[8][16], m[8][16] (the 6-bit
 *                 scales and mins as bytes), then for each 64 weights p the
 *                 file's 32 bytes as 8 chunks of 64 B like Q4_0's (low
 *                 nibbles sub-block 2p, high 2p + 1)
 * The transform is a bijection (Q4_K's 12 scale bytes use all 96 bits), so
 * dots_repack_row_blocks gives back the file's bytes exactly.
 */
#include "kernels/kernels.h"
#include "kernels/quant.h"

#include <string.h>

dots_dtype dots_repack_type(dots_dtype t) {
    switch (t) {
    case DOTS_DTYPE_Q8_0: return DOTS_DTYPE_Q8_0_R16;
    case DOTS_DTYPE_Q4_0: return DOTS_DTYPE_Q4_0_R16;
    case DOTS_DTYPE_Q4_K: return DOTS_DTYPE_Q4_K_R16;
    default: return t;
    }
}

bool dots_repack_fits(dots_dtype t, int64_t N, int64_t K) {
    if (!dots_dtype_is_quant(t) || N <= 0 || K <= 0 || N % 16 != 0 || K % dots_dtype_block(t) != 0) return false;
    return dots_dtype_bytes(dots_repack_type(t), K) <= DOTS_R16_MAX_ROW_BYTES;
}

/* The 12 bytes of Q4_K's packed scales from 8 scales and 8 mins (6 bits). */
static void q4k_pack_scales(const uint8_t *sc, const uint8_t *mn, uint8_t *q) {
    for (int j = 0; j < 4; j++) {
        q[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        q[j + 4] = (uint8_t)((mn[j] & 63) | ((mn[j + 4] >> 4) << 6));
        q[j + 8] = (uint8_t)((sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4));
    }
}

/* Row r's block f (file layout) into the group's interleaved block g. */
static void block_to_group(dots_dtype base, const uint8_t *f, uint8_t *g, int r) {
    memcpy(g + 2 * r, f, 2);
    if (base == DOTS_DTYPE_Q4_K) {
        memcpy(g + 32 + 2 * r, f + 2, 2);
        for (int j = 0; j < 8; j++) dots_q4k_scale_min(j, f + 4, &g[64 + 16 * j + r], &g[192 + 16 * j + r]);
        for (int p = 0; p < 4; p++)
            for (int c = 0; c < 8; c++) memcpy(g + 320 + 512 * p + 64 * c + 4 * r, f + 16 + 32 * p + 4 * c, 4);
        return;
    }
    const int chunks = base == DOTS_DTYPE_Q8_0 ? 8 : 4;
    const uint8_t flip = base == DOTS_DTYPE_Q8_0 ? 0x80 : 0;
    for (int c = 0; c < chunks; c++)
        for (int i = 0; i < 4; i++) g[32 + 64 * c + 4 * r + i] = f[2 + 4 * c + i] ^ flip;
}

/* The inverse: row r's block in the file layout from the group's block. */
static void block_from_group(dots_dtype base, const uint8_t *g, uint8_t *f, int r) {
    memcpy(f, g + 2 * r, 2);
    if (base == DOTS_DTYPE_Q4_K) {
        uint8_t sc[8], mn[8];
        memcpy(f + 2, g + 32 + 2 * r, 2);
        for (int j = 0; j < 8; j++) sc[j] = g[64 + 16 * j + r], mn[j] = g[192 + 16 * j + r];
        q4k_pack_scales(sc, mn, f + 4);
        for (int p = 0; p < 4; p++)
            for (int c = 0; c < 8; c++) memcpy(f + 16 + 32 * p + 4 * c, g + 320 + 512 * p + 64 * c + 4 * r, 4);
        return;
    }
    const int chunks = base == DOTS_DTYPE_Q8_0 ? 8 : 4;
    const uint8_t flip = base == DOTS_DTYPE_Q8_0 ? 0x80 : 0;
    for (int c = 0; c < chunks; c++)
        for (int i = 0; i < 4; i++) f[2 + 4 * c + i] = g[32 + 64 * c + 4 * r + i] ^ flip;
}

void dots_repack_r16(dots_dtype t, const void *src, void *dst, int64_t N, int64_t K) {
    if (!src || !dst || !dots_repack_fits(t, N, K)) return;
    const dots_dtype r16 = dots_repack_type(t);
    const int64_t nb = K / dots_dtype_block(t), fbb = dots_dtype_block_bytes(t), gbb = 16 * dots_dtype_block_bytes(r16);
    for (int64_t g = 0; g < N / 16; g++)
        for (int r = 0; r < 16; r++) {
            const uint8_t *frow = (const uint8_t *)src + (16 * g + r) * nb * fbb;
            uint8_t *grp = (uint8_t *)dst + g * nb * gbb;
            for (int64_t b = 0; b < nb; b++) block_to_group(t, frow + b * fbb, grp + b * gbb, r);
        }
}

void dots_repack_row_blocks(dots_dtype r16, const void *w, int64_t K, int64_t n, int64_t b0, int64_t nb, void *out) {
    if (!w || !out || !dots_dtype_is_r16(r16)) return;
    const dots_dtype base = dots_dtype_r16_base(r16);
    const int64_t gbb = 16 * dots_dtype_block_bytes(r16), fbb = dots_dtype_block_bytes(base);
    const uint8_t *grp = (const uint8_t *)w + (n / 16) * (K / dots_dtype_block(base)) * gbb;
    for (int64_t b = 0; b < nb; b++) block_from_group(base, grp + (b0 + b) * gbb, (uint8_t *)out + b * fbb, (int)(n % 16));
}
