/*
 * ops_neon.c - the elementwise operations worth vectorising by hand on
 * AArch64, as ops_avx512.c on x86: SiLU needs e^x for every intermediate of
 * every MLP, and the softmax of attention one e^x per score; libm computes
 * them one at a time. The scalar twins are dots_silu_mul and expf in a loop.
 */
#include "kernels/kernels.h"

#include <math.h>

#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>

/* 2^n for integer-valued n in [-126, 127], built in the exponent bits */
static inline float32x4_t pow2i(int32x4_t n) {
    return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n, vdupq_n_s32(127)), 23));
}

/* e^x as exp_avx512.h computes it: n = round(x / ln 2), r = x - n ln 2 in two
 * steps, e^r by its degree-7 Taylor polynomial, times 2^n (in two halves, so
 * that results below 2^-126 come out as denormals or 0 rather than garbage):
 * within a few ulps of expf; 0 far below -87, infinity above 88. */
static inline float32x4_t exp_f32x4(float32x4_t x) {
    x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-104.0f)), vdupq_n_f32(100.0f));
    const float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693145751953125f));
    r = vfmsq_f32(r, n, vdupq_n_f32(1.428606765330187e-6f));
    float32x4_t p = vdupq_n_f32(1.0f / 5040);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 720), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 120), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 24), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 6), p, r);
    p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    const int32x4_t ni = vcvtq_s32_f32(n), half = vshrq_n_s32(ni, 1);
    return vmulq_f32(vmulq_f32(p, pow2i(half)), pow2i(vsubq_s32(ni, half)));
}

void dots_silu_mul_neon(float *g, const float *u, int64_t n) {
    const float32x4_t one = vdupq_n_f32(1.0f);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t x = vld1q_f32(g + i);
        const float32x4_t s = vdivq_f32(x, vaddq_f32(one, exp_f32x4(vnegq_f32(x))));
        vst1q_f32(g + i, vmulq_f32(s, vld1q_f32(u + i)));
    }
    if (i < n) dots_silu_mul(g + i, u + i, n - i);
}

float dots_exp_shift_sum_neon(float *s, int64_t n, float shift) {
    const float32x4_t vs = vdupq_n_f32(shift);
    float32x4_t sum = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t e = exp_f32x4(vsubq_f32(vld1q_f32(s + i), vs));
        vst1q_f32(s + i, e);
        sum = vaddq_f32(sum, e);
    }
    float total = vaddvq_f32(sum);
    for (; i < n; i++) total += (s[i] = expf(s[i] - shift));
    return total;
}
#else
void dots_silu_mul_neon(float *g, const float *u, int64_t n) { dots_silu_mul(g, u, n); }
float dots_exp_shift_sum_neon(float *s, int64_t n, float shift) { return dots_exp_shift_sum(s, n, shift); }
#endif
