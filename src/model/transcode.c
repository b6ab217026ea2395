/*
 * transcode.c - ggml block formats that llama.cpp's quantizer writes but
 * our kernels do not compute with (Q4_1, Q5_0, Q5_1, Q5_K, Q6_K: the K-quant
 * mixes such as Q4_K_M put Q6_K in output.weight and in some attn_v and
 * ffn_down matrices). Such a tensor is decoded once at load (docs/formats.md
 * §3.2, §3.4, §3.5) and re-encoded as Q8_0 with ggml's reference quantizer:
 * 8.5 bits per weight hold the 5- and 6-bit grids to within a small
 * fraction of their own step, and Q8_0 has the fast kernels.
 */
#include "model/transcode.h"

#include "core/fp.h"
#include "core/threads.h"
#include "kernels/quant.h"

#include <stdlib.h>
#include <string.h>

static void dequant_q4_1(const uint8_t *b, float *y) {
    const float d = dots_f16_at(b), m = dots_f16_at(b + 2);
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)(b[4 + j] & 0xF) + m;
        y[j + 16] = d * (float)(b[4 + j] >> 4) + m;
    }
}

/* Q5_0 (offset 16, no min) and Q5_1 (a min m): qh is a u32 bitfield of the
 * fifth bits, bit j for element j. */
static void dequant_q5(const uint8_t *b, float *y, bool has_min) {
    const float d = dots_f16_at(b), m = has_min ? dots_f16_at(b + 2) : 0.0f;
    const uint8_t *qhp = b + (has_min ? 4 : 2), *qs = qhp + 4;
    const uint32_t qh = (uint32_t)qhp[0] | (uint32_t)qhp[1] << 8 | (uint32_t)qhp[2] << 16 | (uint32_t)qhp[3] << 24;
    const int off = has_min ? 0 : 16;
    for (int j = 0; j < 16; j++) {
        const int lo = (qs[j] & 0xF) | (int)((qh >> j) & 1) << 4, hi = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
        y[j] = d * (float)(lo - off) + m;
        y[j + 16] = d * (float)(hi - off) + m;
    }
}

static void dequant_q5_k(const uint8_t *b, float *y) {
    const float d = dots_f16_at(b), dmin = dots_f16_at(b + 2);
    const uint8_t *scales = b + 4, *qh = b + 16, *qs = b + 48;
    for (int g = 0; g < 4; g++) {
        uint8_t sc0, m0, sc1, m1;
        dots_q4k_scale_min(2 * g, scales, &sc0, &m0); /* Q5_K packs them as Q4_K */
        dots_q4k_scale_min(2 * g + 1, scales, &sc1, &m1);
        for (int l = 0; l < 32; l++) {
            const int q0 = (qs[32 * g + l] & 0xF) | ((qh[l] >> (2 * g)) & 1) << 4;
            const int q1 = (qs[32 * g + l] >> 4) | ((qh[l] >> (2 * g + 1)) & 1) << 4;
            y[64 * g + l] = d * (float)sc0 * (float)q0 - dmin * (float)m0;
            y[64 * g + 32 + l] = d * (float)sc1 * (float)q1 - dmin * (float)m1;
        }
    }
}

static void dequant_q6_k(const uint8_t *b, float *y) {
    const float d = dots_f16_at(b + 208);
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
        const int8_t *sc = (const int8_t *)(b + 192 + 8 * h);
        float *o = y + 128 * h;
        for (int l = 0; l < 32; l++) {
            const int is = l / 16;
            const int q1 = ((ql[l] & 0xF) | ((qh[l] >> 0) & 3) << 4) - 32;
            const int q2 = ((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4) - 32;
            const int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
            const int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
            o[l] = d * (float)sc[is + 0] * (float)q1;
            o[l + 32] = d * (float)sc[is + 2] * (float)q2;
            o[l + 64] = d * (float)sc[is + 4] * (float)q3;
            o[l + 96] = d * (float)sc[is + 6] * (float)q4;
        }
    }
}

bool dots_transcode_known(uint32_t ggml_type) {
    switch (ggml_type) {
    case DOTS_GGML_Q4_1:
    case DOTS_GGML_Q5_0:
    case DOTS_GGML_Q5_1:
    case DOTS_GGML_Q5_K:
    case DOTS_GGML_Q6_K: return true;
    default: return false;
    }
}

bool dots_transcode_dequantize_row(uint32_t ggml_type, const void *src, float *y, int64_t n) {
    int64_t block, bytes;
    if (!src || !y || !dots_transcode_known(ggml_type) || !dots_ggml_type_block(ggml_type, &block, &bytes) || n % block) return false;
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / block; i++, b += bytes, y += block) {
        switch (ggml_type) {
        case DOTS_GGML_Q4_1: dequant_q4_1(b, y); break;
        case DOTS_GGML_Q5_0: dequant_q5(b, y, false); break;
        case DOTS_GGML_Q5_1: dequant_q5(b, y, true); break;
        case DOTS_GGML_Q5_K: dequant_q5_k(b, y); break;
        default: dequant_q6_k(b, y); break;
        }
    }
    return true;
}

#define TRANSCODE_ROWS_PER_TASK 64

typedef struct transcode_job {
    uint32_t type;
    const uint8_t *src;
    uint8_t *dst;
    int64_t rows, K;
    size_t in_row, out_row;
    float *row_buf; /* K floats per worker */
} transcode_job;

static void transcode_task(void *arg, int64_t task, int worker) {
    const transcode_job *j = arg;
    float *row = j->row_buf + (size_t)worker * (size_t)j->K;
    const int64_t r0 = task * TRANSCODE_ROWS_PER_TASK,
                  r1 = r0 + TRANSCODE_ROWS_PER_TASK < j->rows ? r0 + TRANSCODE_ROWS_PER_TASK : j->rows;
    for (int64_t r = r0; r < r1; r++) {
        dots_transcode_dequantize_row(j->type, j->src + (size_t)r * j->in_row, row, j->K);
        dots_quantize_row(DOTS_DTYPE_Q8_0, row, j->dst + (size_t)r * j->out_row, j->K);
    }
}

void *dots_transcode_to_q8_0(uint32_t ggml_type, const void *src, int64_t rows, int64_t K, size_t *out_bytes) {
    if (!src || !out_bytes || rows <= 0 || K <= 0 || K % 32 || !dots_transcode_known(ggml_type)) return NULL;
    int64_t block, bytes;
    if (!dots_ggml_type_block(ggml_type, &block, &bytes) || K % block) return NULL;
    const size_t in_row = (size_t)(K / block * bytes), out_row = (size_t)dots_dtype_bytes(DOTS_DTYPE_Q8_0, K);
    if ((size_t)rows > SIZE_MAX / out_row - 1) return NULL;
    const size_t total = (size_t)rows * out_row;
    /* the reference quantizer is scalar: a 151936-row output matrix takes
     * seconds on one core, so the rows are split over the CPUs (a pool that
     * cannot start runs everything on this thread) */
    dots_pool *pool = dots_pool_create(dots_default_threads());
    const int n_workers = pool ? dots_pool_size(pool) : 1;
    void *out = NULL;
    float *row_buf = malloc(sizeof(float) * (size_t)K * (size_t)n_workers);
    if (row_buf && posix_memalign(&out, 64, (total + 63) / 64 * 64) == 0) {
        transcode_job job = {ggml_type, src, out, rows, K, in_row, out_row, row_buf};
        dots_pool_run(pool, (rows + TRANSCODE_ROWS_PER_TASK - 1) / TRANSCODE_ROWS_PER_TASK, transcode_task, &job);
        *out_bytes = total;
    } else {
        out = NULL;
    }
    free(row_buf);
    dots_pool_free(pool);
    return out;
}
