/*
 * fuzz_image.c - libFuzzer target: arbitrary bytes through the image
 * decoders (format sniffing, PNG, JPEG, WebP, TIFF, PNM), then a small
 * bicubic resize of whatever decodes. PDFs are MuPDF's own to fuzz.
 */
#include "input/decode.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    dots_ctx *ctx = NULL;
    if (dots_ctx_create(&ctx) != DOTS_OK) return 0;
    dots_image img = {0}, small = {0};
    if (dots_decode_image(ctx, "fuzz", data, size, &img) == DOTS_OK) {
        if (img.width_px <= 0 || img.height_px <= 0 || !img.rgb) abort();
        /* keep the fuzzer fast: only small images are resized */
        if ((int64_t)img.width_px * img.height_px < (1 << 20) && dots_image_resize_bicubic(ctx, &img, 17, 9, &small) == DOTS_OK)
            dots_image_free(&small);
        dots_image_free(&img);
    }
    dots_ctx_free(ctx);
    return 0;
}
