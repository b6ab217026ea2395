/*
 * test_fp.c - fp32 <-> bf16 / fp16 conversions against independent
 * references: the compiler's _Float16 (IEEE conversions) where it exists, and
 * for bf16 the definition itself (nearest representable, ties to even).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>

#include "core/fp.h"

static void test_bf16_known_values(void **state) {
    (void)state;
    assert_int_equal(dots_f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(dots_f32_to_bf16(-2.0f), 0xc000);
    assert_int_equal(dots_f32_to_bf16(0.0f), 0x0000);
    assert_int_equal(dots_f32_to_bf16(INFINITY), 0x7f80);
    /* ties to even: 1 + 2^-8 lies halfway between 1 and 1 + 2^-7 */
    assert_int_equal(dots_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);
    assert_int_equal(dots_f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);
    assert_true(isnan(dots_bf16_to_f32(dots_f32_to_bf16(NAN))));
    assert_true(dots_bf16_to_f32(0x3f80) == 1.0f);
}

/* The bf16 result must be the representable value nearest to x, ties even. */
static void test_bf16_is_nearest(void **state) {
    (void)state;
    for (uint64_t u = 0; u < 0x100000000ULL; u += 4093) {
        float x = dots_f32_from_bits((uint32_t)u);
        if (!isfinite(x)) continue;
        uint16_t h = dots_f32_to_bf16(x);
        double y = dots_bf16_to_f32(h);
        if (isinf(y)) { /* only when x rounds past the largest finite bf16 */
            assert_true(fabs((double)x) >= 3.3961514e38);
            continue;
        }
        double err = fabs(y - (double)x);
        for (int d = -1; d <= 1; d += 2) {
            uint16_t n = (uint16_t)(h + d);
            double z = dots_bf16_to_f32(n);
            if (!isfinite(z) || ((n ^ h) & 0x8000)) continue;
            double e2 = fabs(z - (double)x);
            assert_true(err <= e2);
            if (err == e2) assert_int_equal(h & 1, 0);
        }
    }
}

static void test_f16_matches_compiler(void **state) {
    (void)state;
#ifdef __FLT16_MAX__
    for (uint32_t h = 0; h < 0x10000; h++) {
        _Float16 r;
        uint16_t hh = (uint16_t)h;
        memcpy(&r, &hh, 2);
        float want = (float)r, got = dots_f16_to_f32(hh);
        if (isnan(want)) {
            assert_true(isnan(got));
            continue;
        }
        assert_int_equal(dots_f32_bits(got), dots_f32_bits(want));
    }
    for (uint64_t u = 0; u < 0x100000000ULL; u += 4093) {
        float x = dots_f32_from_bits((uint32_t)u);
        _Float16 r = (_Float16)x;
        uint16_t want;
        memcpy(&want, &r, 2);
        uint16_t got = dots_f32_to_f16(x);
        if (isnan(x)) {
            assert_true((got & 0x7c00) == 0x7c00 && (got & 0x3ff));
            continue;
        }
        if (got != want) fail_msg("f32 %a (0x%08x): got 0x%04x want 0x%04x", (double)x, (unsigned)u, got, want);
    }
#else
    assert_int_equal(dots_f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(dots_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(dots_f32_to_f16(1e6f), 0x7c00);
    assert_int_equal(dots_f32_to_f16(0x1p-24f), 0x0001);
    skip();
#endif
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bf16_known_values),
        cmocka_unit_test(test_bf16_is_nearest),
        cmocka_unit_test(test_f16_matches_compiler),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
