/*
 * quant_ref.c - ggml's reference quantizers and dequantizers for Q8_0,
 * Q4_0 and Q4_K (quantize_row_*_ref in ggml-quants.c, as described in
 * docs/formats.md §3), so that our files hold the bytes llama.cpp's tools write.
 */
#include "core/fp.h"
#include "kernels/kernels.h"
#include "kernels/quant.h"

#include <math.h>
#include <string.h>

/* ggml's nearest_int: round half to even via the 1.5 * 2^23 trick (valid
 * for |f| < 2^22); the K-quants are bit-exact only with this rounding. */
static inline int nearest_int(float f) {
    float v = f + 12582912.f;
    int32_t i;
    memcpy(&i, &v, 4);
    return (i & 0x007fffff) - 0x00400000;
}

static void put_f16(uint8_t *p, float f) {
    uint16_t h = dots_f32_to_f16(f);
    memcpy(p, &h, 2);
}

static void quantize_q8_0(const float *x, uint8_t *b) {
    float amax = 0.0f;
    for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[i]));
    const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    put_f16(b, d);
    for (int i = 0; i < 32; i++) b[2 + i] = (uint8_t)(int8_t)roundf(x[i] * id);
}

static void quantize_q4_0(const float *x, uint8_t *b) {
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < 32; i++)
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    const float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    put_f16(b, d);
    for (int j = 0; j < 16; j++) {
        int q0 = (int8_t)(x[j] * id + 8.5f), q1 = (int8_t)(x[j + 16] * id + 8.5f);
        q0 = q0 < 15 ? q0 : 15;
        q1 = q1 < 15 ? q1 : 15;
        b[2 + j] = (uint8_t)(q0 | q1 << 4);
    }
}

/* Weighted least-squares fit of x ~ scale * L + min, L in 0..nmax, trying
 * nstep + 1 candidate inverse scales (ggml's make_qkx2_quants). */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *w, uint8_t *L, float *the_min, uint8_t *Laux,
                              float rmin, float rdelta, int nstep) {
    float min = x[0], max = x[0], sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.0f;
    }
    float iscale = nmax / (max - min), scale = 1 / iscale, best_error = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)(l < 0 ? 0 : l > nmax ? nmax : l);
        float diff = scale * L[i] + min - x[i];
        diff = diff * diff; /* ggml's order: w * (diff * diff) */
        best_error += w[i] * diff;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * (x[i] - min));
            l = l < 0 ? 0 : l > nmax ? nmax : l;
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = diff * diff;
                cur_error += w[i] * diff;
            }
            if (cur_error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

static void quantize_q4_k(const float *x, uint8_t *b) {
    uint8_t L[256], Laux[32], *sc12 = b + 4, *qs = b + 16;
    float weights[32], mins[8], scales[8], max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = make_qkx2_quants(32, 15, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -1.f, 0.1f, 20);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f, inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    memset(sc12, 0, 12);
    for (int j = 0; j < 8; j++) {
        uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]), lm = (uint8_t)nearest_int(inv_min * mins[j]);
        ls = ls < 63 ? ls : 63;
        lm = lm < 63 ? lm : 63;
        if (j < 4) {
            sc12[j] = ls;
            sc12[j + 4] = lm;
        } else {
            sc12[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            sc12[j - 4] |= (uint8_t)((ls >> 4) << 6);
            sc12[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    put_f16(b, max_scale / 63.f);
    put_f16(b + 2, max_min / 63.f);
    const float d_all = dots_f16_at(b), dmin_all = dots_f16_at(b + 2);
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        dots_q4k_scale_min(j, sc12, &sc, &m);
        const float d = d_all * sc;
        if (!d) continue;
        const float dm = dmin_all * m;
        for (int ii = 0; ii < 32; ii++) {
            int l = nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)(l < 0 ? 0 : l > 15 ? 15 : l);
        }
    }
    for (int g = 0; g < 4; g++)
        for (int l = 0; l < 32; l++) qs[32 * g + l] = (uint8_t)(L[64 * g + l] | L[64 * g + 32 + l] << 4);
}

void dots_quantize_row(dots_dtype t, const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    int64_t bs = dots_dtype_block(t), bb = dots_dtype_block_bytes(t);
    for (int64_t i = 0; i < n / bs; i++, x += bs, b += bb) {
        if (t == DOTS_DTYPE_Q8_0) quantize_q8_0(x, b);
        else if (t == DOTS_DTYPE_Q4_0) quantize_q4_0(x, b);
        else if (t == DOTS_DTYPE_Q4_K) quantize_q4_k(x, b);
    }
}

void dots_dequantize_row(dots_dtype t, const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    if (t == DOTS_DTYPE_Q8_0) {
        for (int64_t i = 0; i < n / 32; i++, b += 34, y += 32) {
            float d = dots_f16_at(b);
            for (int k = 0; k < 32; k++) y[k] = d * (float)(int8_t)b[2 + k];
        }
    } else if (t == DOTS_DTYPE_Q4_0) {
        for (int64_t i = 0; i < n / 32; i++, b += 18, y += 32) {
            float d = dots_f16_at(b);
            for (int j = 0; j < 16; j++) {
                y[j] = d * (float)((b[2 + j] & 0xF) - 8);
                y[j + 16] = d * (float)((b[2 + j] >> 4) - 8);
            }
        }
    } else if (t == DOTS_DTYPE_Q4_K) {
        for (int64_t i = 0; i < n / 256; i++, b += 144, y += 256) {
            float d = dots_f16_at(b), dmin = dots_f16_at(b + 2);
            for (int g = 0; g < 4; g++) {
                uint8_t sc0, m0, sc1, m1;
                dots_q4k_scale_min(2 * g, b + 4, &sc0, &m0);
                dots_q4k_scale_min(2 * g + 1, b + 4, &sc1, &m1);
                const float d0 = d * sc0, mm0 = dmin * m0, d1 = d * sc1, mm1 = dmin * m1;
                const uint8_t *q = b + 16 + 32 * g;
                for (int l = 0; l < 32; l++) {
                    y[64 * g + l] = d0 * (float)(q[l] & 0xF) - mm0;
                    y[64 * g + 32 + l] = d1 * (float)(q[l] >> 4) - mm1;
                }
            }
        }
    }
}

/* ---- int8 activations (kernels.h, dots_act_q8) ---- */

size_t dots_act_q8_bytes(int M, int64_t K) {
    const size_t nx = (size_t)M * (size_t)(K / 32), np = (size_t)M * (size_t)(K / 64);
    return ((size_t)M * (size_t)K + 63) / 64 * 64 + nx * (sizeof(float) + sizeof(int32_t)) + np * 16 * (sizeof(float) + sizeof(int32_t)) + 64;
}

void dots_act_q8_layout(dots_act_q8 *a, void *mem, int M, int64_t K) {
    const int64_t nx = K / 32, np = K / 64;
    int8_t *q = mem;
    float *dl = (float *)(void *)(q + ((size_t)M * (size_t)K + 63) / 64 * 64); /* 64-byte aligned lanes first */
    int32_t *cl = (int32_t *)(void *)(dl + M * np * 16);
    float *d = (float *)(void *)(cl + M * np * 16);
    int32_t *sum = (int32_t *)(void *)(d + M * nx);
    *a = (dots_act_q8){q, d, sum, dl, cl, M, K};
}

void dots_act_q8_init(dots_act_q8 *a, void *mem, const float *x, int64_t ldx, int M, int64_t K) {
    const int64_t nx = K / 32, np = K / 64;
    dots_act_q8_layout(a, mem, M, K);
    int8_t *q = (int8_t *)a->q;
    float *dl = (float *)a->d_lanes, *d = (float *)a->d;
    int32_t *cl = (int32_t *)a->neg_sum_lanes, *sum = (int32_t *)a->sum;
    for (int m = 0; m < M; m++)
        for (int64_t b = 0; b < nx; b++) {
            const float *xb = x + m * ldx + 32 * b;
            float amax = 0.0f;
            for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(xb[i]));
            const float db = amax / 127.0f, id = db != 0.0f ? 1.0f / db : 0.0f;
            int8_t *qb = q + m * K + 32 * b;
            int32_t s = 0;
            for (int i = 0; i < 32; i++) {
                /* |x id| <= 127 up to rounding of id: clamp so that rounding never wraps */
                float v = roundf(xb[i] * id);
                qb[i] = (int8_t)(v > 127.0f ? 127 : v < -127.0f ? -127 : (int)v);
                s += qb[i];
            }
            d[m * nx + b] = db;
            sum[m * nx + b] = s;
            if (b / 2 < np)
                for (int l = 0; l < 8; l++) {
                    dl[(m * np + b / 2) * 16 + 8 * (b & 1) + l] = db;
                    cl[(m * np + b / 2) * 16 + 8 * (b & 1) + l] = -s;
                }
        }
}

void dots_gemv_rows_q8act_ref(const dots_act_q8 *x, const void *w, dots_dtype wt, int64_t ldw, int64_t n0, int64_t n1,
                              float *y, int64_t ldy, const float *bias) {
    const int64_t nx = x->K / 32;
    const dots_dtype base = dots_dtype_r16_base(wt);
    uint8_t tmp[144];
    for (int64_t n = n0; n < n1; n++) {
        for (int m = 0; m < x->M; m++) {
            const int8_t *xq = x->q + m * x->K;
            const float *xd = x->d + m * nx;
            const int32_t *xs = x->sum + m * nx;
            float acc = 0.0f;
            if (base == DOTS_DTYPE_Q8_0 || base == DOTS_DTYPE_Q4_0) {
                for (int64_t b = 0; b < nx; b++) {
                    const uint8_t *blk = dots_row_block(w, wt, ldw, n, b, tmp);
                    int32_t dot = 0;
                    if (base == DOTS_DTYPE_Q8_0) {
                        for (int i = 0; i < 32; i++) dot += (int8_t)blk[2 + i] * xq[32 * b + i];
                        acc += dots_f16_at(blk) * xd[b] * (float)dot;
                    } else {
                        for (int i = 0; i < 16; i++)
                            dot += (blk[2 + i] & 0xF) * xq[32 * b + i] + (blk[2 + i] >> 4) * xq[32 * b + 16 + i];
                        acc += dots_f16_at(blk) * xd[b] * (float)(dot - 8 * xs[b]);
                    }
                }
            } else { /* Q4_K: 8 sub-blocks of 32 per 256 */
                for (int64_t sb = 0; sb < nx / 8; sb++) {
                    const uint8_t *blk = dots_row_block(w, wt, ldw, n, sb, tmp);
                    const float d = dots_f16_at(blk), dmin = dots_f16_at(blk + 2);
                    for (int j = 0; j < 8; j++) {
                        uint8_t sc, mn;
                        dots_q4k_scale_min(j, blk + 4, &sc, &mn);
                        const uint8_t *qs = blk + 16 + 32 * (j / 2);
                        const int shift = 4 * (j & 1);
                        const int64_t b = 8 * sb + j;
                        int32_t dot = 0;
                        for (int i = 0; i < 32; i++) dot += ((qs[i] >> shift) & 0xF) * xq[32 * b + i];
                        acc += d * (float)sc * xd[b] * (float)dot - dmin * (float)mn * xd[b] * (float)xs[b];
                    }
                }
            }
            y[m * ldy + n] = acc + (bias ? bias[n] : 0.0f);
        }
    }
}
