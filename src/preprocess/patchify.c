/*
 * patchify.c - resized RGB -> the vision encoder's pixel rows (docs/model.md §4.4-4.5)
 * and each row's (row, column) position (§5.2).
 *
 *   value   x = (v / 255 - mean[c]) / std[c]: v/255 in double, then float32,
 *           then float32 subtract and divide, as transformers' rescale and
 *           normalize do (so a 256-entry table per channel is exact)
 *   rows    merge-block-major: the patch at (r, c) goes to row
 *           ((r/m * gw/m + c/m) * m + r%m) * m + c%m, m = merge size
 *   columns k = ch * p^2 + dy * p + dx, the conv weight's flattening order
 */
#include "core/internal.h"

#include <stdlib.h>
#include <string.h>

void dots_pixel_rows_free(dots_pixel_rows *rows) {
    if (!rows) return;
    free(rows->pixels);
    free(rows->positions);
    memset(rows, 0, sizeof *rows);
}

dots_status dots_preprocess(dots_ctx *ctx, const dots_config *cfg, const dots_image *img, int64_t min_pixels,
                            int64_t max_pixels, dots_image *resized, dots_pixel_rows *rows) {
    dots_ctx_begin_call(ctx);
    if (!cfg || !img || !img->rgb || !rows) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_preprocess: NULL argument");
    const dots_preprocessor_config *pp = &cfg->preprocessor;
    if (min_pixels || max_pixels) {
        /* the official parser asserts these bounds on user overrides */
        int64_t lo = min_pixels ? min_pixels : pp->min_pixels, hi = max_pixels ? max_pixels : pp->max_pixels;
        if (lo < DOTS_MIN_PIXELS || hi > DOTS_MAX_PIXELS || lo > hi)
            return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT,
                             "pixel budget [%lld, %lld]: need %d <= min_pixels <= max_pixels <= %d", (long long)lo,
                             (long long)hi, DOTS_MIN_PIXELS, DOTS_MAX_PIXELS);
        min_pixels = lo;
        max_pixels = hi;
    } else {
        min_pixels = pp->min_pixels;
        max_pixels = pp->max_pixels;
    }
    const int p = cfg->vision.patch_size, m = cfg->vision.spatial_merge_size;
    int32_t h, w;
    dots_status st = dots_smart_resize(ctx, img->height_px, img->width_px, p * m, min_pixels, max_pixels, &h, &w);
    if (st != DOTS_OK) return st;
    dots_image rs = {0};
    st = dots_image_resize_bicubic(ctx, img, w, h, &rs);
    if (st != DOTS_OK) return st;

    const int gh = h / p, gw = w / p, dim = 3 * p * p;
    const int64_t n = (int64_t)gh * gw;
    float *pix = malloc((size_t)n * (size_t)dim * sizeof *pix);
    int32_t *pos = malloc((size_t)n * 2 * sizeof *pos);
    if (!pix || !pos) {
        free(pix);
        free(pos);
        dots_image_free(&rs);
        return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "preprocess: cannot allocate %lld patch rows", (long long)n);
    }
    float lut[3][256];
    for (int c = 0; c < 3; c++) {
        const float mean = pp->image_mean[c], std = pp->image_std[c];
        for (int v = 0; v < 256; v++) {
            float x = (float)((double)v * (1.0 / 255.0));
            lut[c][v] = (x - mean) / std;
        }
    }
    for (int r = 0; r < gh; r++) {
        for (int c = 0; c < gw; c++) {
            int64_t row = ((int64_t)(r / m) * (gw / m) + c / m) * m * m + (r % m) * m + c % m;
            float *dst = pix + row * dim;
            for (int ch = 0; ch < 3; ch++)
                for (int dy = 0; dy < p; dy++) {
                    const uint8_t *src = rs.rgb + ((size_t)(r * p + dy) * w + (size_t)c * p) * 3 + ch;
                    for (int dx = 0; dx < p; dx++) dst[(ch * p + dy) * p + dx] = lut[ch][src[dx * 3]];
                }
            pos[row * 2 + 0] = r;
            pos[row * 2 + 1] = c;
        }
    }
    rows->grid_h = gh;
    rows->grid_w = gw;
    rows->n_patches = n;
    rows->patch_dim = dim;
    rows->pixels = pix;
    rows->positions = pos;
    if (resized)
        *resized = rs;
    else
        dots_image_free(&rs);
    return DOTS_OK;
}
