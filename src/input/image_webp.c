/*
 * image_webp.c - WebP (lossy, lossless, with alpha) through libwebp's
 * simple decoding API. Animated files are refused.
 */
#include "input/decode.h"

#include <stdlib.h>
#include <webp/decode.h>

dots_status dots_decode_webp(dots_ctx *ctx, const char *label, const uint8_t *data, size_t len, dots_image *out) {
    WebPBitstreamFeatures f;
    VP8StatusCode vs = WebPGetFeatures(data, len, &f);
    if (vs != VP8_STATUS_OK) return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: not a valid WebP (status %d)", label, (int)vs);
    if (f.has_animation) return DOTS_FAIL(ctx, DOTS_ERR_UNSUPPORTED, "%s: animated WebP is not supported", label);
    dots_image img = {0};
    dots_status st = dots_image_alloc(ctx, label, f.width, f.height, &img);
    if (st != DOTS_OK) return st;
    size_t n = (size_t)f.width * (size_t)f.height;
    if (!f.has_alpha) {
        if (!WebPDecodeRGBInto(data, len, img.rgb, n * 3, f.width * 3)) {
            dots_image_free(&img);
            return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: corrupt WebP data", label);
        }
    } else {
        uint8_t *rgba = malloc(n * 4);
        if (!rgba) {
            dots_image_free(&img);
            return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "%s: out of memory", label);
        }
        if (!WebPDecodeRGBAInto(data, len, rgba, n * 4, f.width * 4)) {
            free(rgba);
            dots_image_free(&img);
            return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: corrupt WebP data", label);
        }
        for (size_t i = 0; i < n; i++)
            for (int c = 0; c < 3; c++) img.rgb[i * 3 + c] = dots_over_white(rgba[i * 4 + c], rgba[i * 4 + 3]);
        free(rgba);
    }
    *out = img;
    return DOTS_OK;
}
