/*
 * decode.h - image decoders behind dots_document (one file per format),
 * all reading from memory so they can be fuzzed, all producing 8-bit RGB
 * with alpha composited on white.
 */
#ifndef DOTS_DECODE_H
#define DOTS_DECODE_H

#include "core/internal.h"

#define DOTS_MAX_INPUT_FILE_BYTES (1ULL << 30) /* larger files are refused unread */

typedef dots_status (*dots_decode_fn)(dots_ctx *ctx, const char *label, const uint8_t *data, size_t len,
                                      dots_image *out);

dots_status dots_decode_png(dots_ctx *ctx, const char *label, const uint8_t *data, size_t len, dots_image *out);
dots_status dots_decode_jpeg(dots_ctx *ctx, const char *label, const uint8_t *data, size_t len, dots_image *out);
dots_status dots_decode_webp(dots_ctx *ctx, const char *label, const uint8_t *data, size_t len, dots_image *out);
dots_status dots_decode_tiff(dots_ctx *ctx, const char *label, const uint8_t *data, size_t len, dots_image *out);
/* TIFF pages (directories): their count, and one page decoded. */
bool dots_is_tiff(const uint8_t *data, size_t len);
dots_status dots_tiff_n_pages(dots_ctx *ctx, const char *label, const uint8_t *data, size_t len, int32_t *n_pages);
dots_status dots_decode_tiff_page(dots_ctx *ctx, const char *label, const uint8_t *data, size_t len, int32_t page,
                                  dots_image *out);
dots_status dots_decode_pnm(dots_ctx *ctx, const char *label, const uint8_t *data, size_t len, dots_image *out);

/* Recognises the format from the first bytes and decodes; PDFs are not
 * images (see pdf.h). */
dots_status dots_decode_image(dots_ctx *ctx, const char *label, const uint8_t *data, size_t len, dots_image *out);

/* Rejects empty or over-limit sizes before anything is allocated, and
 * allocates the RGB buffer. */
dots_status dots_image_alloc(dots_ctx *ctx, const char *label, int64_t width, int64_t height, dots_image *out);

/* Pillow's paste of a colour over white with an 8-bit mask (dots' to_rgb):
 * (255 * (255 - a) + c * a) / 255, rounded as Pillow's DIV255 does. */
static inline uint8_t dots_over_white(uint8_t c, uint8_t a) {
    uint32_t v = 255u * (255u - a) + (uint32_t)c * a + 128u;
    return (uint8_t)(((v >> 8) + v) >> 8);
}

#endif
