/*
 * fp.h - conversions between fp32 and the 16-bit float formats of
 * checkpoints (bf16, IEEE fp16). Scalar and exact: round to nearest even,
 * NaN stays NaN, overflow goes to infinity. Kernels may vectorise these but
 * must give the same bits.
 */
#ifndef DOTS_FP_H
#define DOTS_FP_H

#include <stdint.h>
#include <string.h>

static inline uint32_t dots_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float dots_f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline float dots_bf16_to_f32(uint16_t h) { return dots_f32_from_bits((uint32_t)h << 16); }

static inline uint16_t dots_f32_to_bf16(float f) {
    uint32_t u = dots_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float dots_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    if (exp == 0x1f) return dots_f32_from_bits(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        if (man == 0) return dots_f32_from_bits(sign);
        /* subnormal: value = man * 2^-24 */
        float v = (float)man * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    return dots_f32_from_bits(sign | ((exp + 112u) << 23) | (man << 13));
}

static inline uint16_t dots_f32_to_f16(float f) {
    uint32_t u = dots_f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);       /* NaN */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);      /* rounds to >= 65520: inf */
    if (a < 0x38800000u) {                                        /* below 2^-14: subnormal or 0 */
        if (a < 0x33000000u) return sign;                         /* below 2^-25: rounds to 0 */
        uint32_t exp = a >> 23, man = (a & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126u - exp;                              /* 14..24 */
        uint32_t v = man >> shift, rem = man & ((1u << shift) - 1u), half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (v & 1u))) v++;
        return (uint16_t)(sign | v);
    }
    uint32_t v = ((a - 0x38000000u) >> 13);                       /* rebias exponent 127 -> 15 */
    uint32_t rem = a & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (v & 1u))) v++;
    return (uint16_t)(sign | v);
}

#endif
