/*
 * smart_resize.c - the target size of an image (docs/model.md §4.2), a port of the
 * official smart_resize in dots_ocr/utils/image_utils.py. Python computes
 * in double and rounds half to even, so this does too: nearbyint() under
 * the default rounding mode, never round().
 */
#include "core/internal.h"

#include <math.h>

static double round_half_even(double x) { return nearbyint(x); }

dots_status dots_smart_resize(dots_ctx *ctx, int64_t height, int64_t width, int32_t factor, int64_t min_pixels,
                              int64_t max_pixels, int32_t *out_height, int32_t *out_width) {
    dots_ctx_begin_call(ctx);
    if (!out_height || !out_width) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "smart_resize: NULL argument");
    if (height <= 0 || width <= 0)
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "image of %lld x %lld pixels is empty", (long long)width,
                         (long long)height);
    if (factor <= 0 || min_pixels <= 0 || max_pixels < min_pixels || height > (1LL << 31) || width > (1LL << 31))
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "smart_resize: bad factor or pixel limits");
    const double h = (double)height, w = (double)width, f = factor;
    if ((h > w ? h / w : w / h) > 200)
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT,
                         "image of %lld x %lld pixels: aspect ratio over 200 (the official limit)", (long long)width,
                         (long long)height);
    double hb = fmax(f, round_half_even(h / f) * f);
    double wb = fmax(f, round_half_even(w / f) * f);
    if (hb * wb > (double)max_pixels) {
        double beta = sqrt(h * w / (double)max_pixels);
        hb = fmax(f, floor(h / beta / f) * f);
        wb = fmax(f, floor(w / beta / f) * f);
    } else if (hb * wb < (double)min_pixels) {
        double beta = sqrt((double)min_pixels / (h * w));
        hb = ceil(h * beta / f) * f;
        wb = ceil(w * beta / f) * f;
        if (hb * wb > (double)max_pixels) { /* only the dots copy has this second pass */
            beta = sqrt(hb * wb / (double)max_pixels);
            hb = fmax(f, floor(hb / beta / f) * f);
            wb = fmax(f, floor(wb / beta / f) * f);
        }
    }
    if (hb > 65536 * f || wb > 65536 * f)
        return DOTS_FAIL(ctx, DOTS_ERR_LIMIT, "smart_resize: result %g x %g is too large", wb, hb);
    *out_height = (int32_t)hb;
    *out_width = (int32_t)wb;
    return DOTS_OK;
}
