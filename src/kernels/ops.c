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

float dots_exp_shift_sum(float *s, int64_t n, float shift) {
    float sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (s[i] = expf(s[i] - shift));
    return sum;
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

/* ---- over the pool ---- */

#define PAR_ELEMS (1 << 14) /* per task: big enough to amortise the hand-off */

typedef struct par_job {
    int op; /* 0 rmsnorm, 1 add, 2 silu_mul */
    dots_isa isa;
    float *y;
    const float *x;
    const void *w;
    dots_dtype wt;
    int64_t rows, n, per_task;
    float eps;
} par_job;

static void par_task(void *arg, int64_t t, int worker) {
    (void)worker;
    const par_job *j = arg;
    int64_t b = t * j->per_task, e = b + j->per_task < j->rows ? b + j->per_task : j->rows;
    if (j->op == 0)
        dots_rmsnorm(j->y + b * j->n, j->x + b * j->n, j->w, j->wt, e - b, j->n, j->eps);
    else if (j->op == 1)
        dots_add(j->y + b, j->x + b, e - b);
    else if (j->isa >= DOTS_ISA_AVX512)
        dots_silu_mul_avx512(j->y + b, j->x + b, e - b);
    else if (dots_isa_arm(j->isa, DOTS_ISA_NEON))
        dots_silu_mul_neon(j->y + b, j->x + b, e - b);
    else
        dots_silu_mul(j->y + b, j->x + b, e - b);
}

static void par_run(const dots_kernels *k, par_job *j) {
    if (j->rows <= 0) return;
    j->isa = k ? k->isa : DOTS_ISA_GENERIC;
    dots_pool_run(k ? k->pool : NULL, (j->rows + j->per_task - 1) / j->per_task, par_task, j);
}

void dots_par_rmsnorm(const dots_kernels *k, float *y, const float *x, const void *w, dots_dtype wt, int64_t rows, int64_t n,
                      float eps) {
    int64_t per = n > 0 && PAR_ELEMS / n > 0 ? PAR_ELEMS / n : 1;
    par_job j = {0, DOTS_ISA_GENERIC, y, x, w, wt, rows, n, per, eps};
    par_run(k, &j);
}

void dots_par_add(const dots_kernels *k, float *y, const float *x, int64_t n) {
    par_job j = {1, DOTS_ISA_GENERIC, y, x, NULL, DOTS_DTYPE_F32, n, 1, PAR_ELEMS, 0};
    par_run(k, &j);
}

void dots_par_silu_mul(const dots_kernels *k, float *g, const float *u, int64_t n) {
    par_job j = {2, DOTS_ISA_GENERIC, g, u, NULL, DOTS_DTYPE_F32, n, 1, PAR_ELEMS, 0};
    par_run(k, &j);
}
