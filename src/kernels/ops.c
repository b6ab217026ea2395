/*
 * ops.c - the row-wise operations of kernels.h, in portable C that the
 * compiler vectorises. Norm statistics are accumulated in double: cheap
 * next to the matrix products, and it keeps them at least as accurate as
 * the reference's fp32 sums.
 */
#include "kernels/kernels.h"

#include <math.h>
#include <string.h>

void dots_rmsnorm(float *y, const float *x, const void *w, dots_dtype wt, int64_t rows, int64_t n, float eps) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        double ss = 0;
        for (int64_t i = 0; i < n; i++) ss += (double)xr[i] * xr[i];
        float inv = (float)(1.0 / sqrt(ss / (double)n + eps));
        if (wt == DOTS_DTYPE_F32) {
            const float *wf = w;
            for (int64_t i = 0; i < n; i++) yr[i] = xr[i] * inv * wf[i];
        } else if (wt == DOTS_DTYPE_BF16) {
            const uint16_t *wb = w;
            for (int64_t i = 0; i < n; i++) {
                uint32_t u = (uint32_t)wb[i] << 16;
                float wv;
                memcpy(&wv, &u, 4);
                yr[i] = xr[i] * inv * wv;
            }
        } else {
            for (int64_t i = 0; i < n; i++) yr[i] = xr[i] * inv * dots_weight_at(w, wt, i);
        }
    }
}

void dots_layernorm(float *y, const float *x, const void *w, const void *b, dots_dtype wt, int64_t rows, int64_t n,
                    float eps) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        double s = 0, ss = 0;
        for (int64_t i = 0; i < n; i++) s += xr[i];
        double mean = s / (double)n;
        for (int64_t i = 0; i < n; i++) ss += ((double)xr[i] - mean) * ((double)xr[i] - mean);
        float inv = (float)(1.0 / sqrt(ss / (double)n + eps));
        float fm = (float)mean;
        for (int64_t i = 0; i < n; i++) yr[i] = (xr[i] - fm) * inv * dots_weight_at(w, wt, i) + dots_weight_at(b, wt, i);
    }
}

void dots_silu_mul(float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void dots_gelu_erf(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

void dots_add(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

void dots_rope_apply(float *x, const float *cos_a, const float *sin_a, int64_t d) {
    int64_t h = d / 2;
    for (int64_t i = 0; i < h; i++) {
        float a = x[i], b = x[i + h];
        x[i] = a * cos_a[i] - b * sin_a[i];
        x[i + h] = b * cos_a[i] + a * sin_a[i];
    }
}
