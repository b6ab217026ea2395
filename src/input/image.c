/*
 * image.c - format recognition and the allocation limit shared by the
 * decoders. The format comes from the file's first bytes, never its name:
 * a text file called page.png is an error, not garbage.
 */
#include "input/decode.h"

#include <stdlib.h>
#include <string.h>

dots_status dots_image_alloc(dots_ctx *ctx, const char *label, int64_t width, int64_t height, dots_image *out) {
    if (width <= 0 || height <= 0)
        return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: image of %lld x %lld pixels is empty", label, (long long)width,
                         (long long)height);
    if (width > DOTS_MAX_IMAGE_PIXELS || height > DOTS_MAX_IMAGE_PIXELS || width * height > DOTS_MAX_IMAGE_PIXELS)
        return DOTS_FAIL(ctx, DOTS_ERR_LIMIT, "%s: %lld x %lld pixels is over the %lld-pixel limit", label,
                         (long long)width, (long long)height, (long long)DOTS_MAX_IMAGE_PIXELS);
    size_t n = (size_t)width * (size_t)height * 3;
    uint8_t *p = malloc(n);
    if (!p) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes", label, n);
    out->width_px = (int32_t)width;
    out->height_px = (int32_t)height;
    out->rgb = p;
    return DOTS_OK;
}

dots_status dots_decode_image(dots_ctx *ctx, const char *label, const uint8_t *d, size_t n, dots_image *out) {
    if (n >= 8 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) return dots_decode_png(ctx, label, d, n, out);
    if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return dots_decode_jpeg(ctx, label, d, n, out);
    if (n >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0) return dots_decode_webp(ctx, label, d, n, out);
    if (n >= 4 && (memcmp(d, "II*\0", 4) == 0 || memcmp(d, "MM\0*", 4) == 0 || memcmp(d, "II+\0", 4) == 0 ||
                   memcmp(d, "MM\0+", 4) == 0))
        return dots_decode_tiff(ctx, label, d, n, out);
    if (n >= 2 && d[0] == 'P' && d[1] >= '1' && d[1] <= '6') return dots_decode_pnm(ctx, label, d, n, out);
    if (n == 0) return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: empty file", label);
    return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: not a PNG, JPEG, WebP, TIFF, PNM or PDF file", label);
}
