/*
 * resample.c - Pillow's bicubic resize, bit for bit (Pillow 9.4
 * libImaging/Resample.c, the path Image.resize(size, BICUBIC) takes for an
 * 8-bit RGB image).
 *
 * Separable: a horizontal pass over the rows the vertical pass will read,
 * then a vertical pass, each skipped when that dimension does not change.
 * Per output sample the filter (bicubic, a = -0.5, support 2) is widened
 * by the scale when downsampling (antialiasing), evaluated in double,
 * normalised to sum 1, then turned into fixed point with 22 fractional bits
 * (rounded away from zero). Accumulation is in int32 starting from 0.5,
 * and the result is floor-shifted and clamped to [0, 255], so the
 * intermediate image is rounded to 8 bits between the passes, as in Pillow.
 */
#include "core/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PRECISION_BITS (32 - 8 - 2)

void dots_image_free(dots_image *img) {
    if (!img) return;
    free(img->rgb);
    memset(img, 0, sizeof *img);
}

static double bicubic_filter(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* Pillow's precompute_coeffs + normalize_coeffs_8bpc for one axis: for each
 * output index, the first input index, the tap count and ksize int32
 * coefficients. Returns ksize, or 0 on OOM. */
static int precompute_coeffs(int in_size, int out_size, int **bounds_out, int32_t **kk_out) {
    const double support_base = 2.0;
    double scale = (double)in_size / out_size, filterscale = scale;
    if (filterscale < 1.0) filterscale = 1.0;
    double support = support_base * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    double *prekk = malloc((size_t)out_size * (size_t)ksize * sizeof *prekk);
    int32_t *kk = malloc((size_t)out_size * (size_t)ksize * sizeof *kk);
    int *bounds = malloc((size_t)out_size * 2 * sizeof *bounds);
    if (!prekk || !kk || !bounds) {
        free(prekk);
        free(kk);
        free(bounds);
        return 0;
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = 0.0 + (xx + 0.5) * scale; /* box starts at 0 */
        double ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double *k = &prekk[(size_t)xx * ksize];
        int x;
        for (x = 0; x < xmax; x++) {
            double w = bicubic_filter((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (x = 0; x < xmax; x++)
            if (ww != 0.0) k[x] /= ww;
        for (; x < ksize; x++) k[x] = 0;
        bounds[xx * 2 + 0] = xmin;
        bounds[xx * 2 + 1] = xmax;
    }
    for (size_t i = 0; i < (size_t)out_size * (size_t)ksize; i++)
        kk[i] = prekk[i] < 0 ? (int32_t)(-0.5 + prekk[i] * (1 << PRECISION_BITS))
                             : (int32_t)(0.5 + prekk[i] * (1 << PRECISION_BITS));
    free(prekk);
    *bounds_out = bounds;
    *kk_out = kk;
    return ksize;
}

static inline uint8_t clip8(int32_t v) {
    v >>= PRECISION_BITS; /* arithmetic shift: floor, as Pillow's lookup table does */
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

/* out rows [0, out_h) from in rows [offset, ...), horizontal taps. */
static void resample_horizontal(uint8_t *out, int out_w, int out_h, const uint8_t *in, int in_w, int offset,
                                int ksize, const int *bounds, const int32_t *kk) {
    for (int yy = 0; yy < out_h; yy++) {
        const uint8_t *row = in + ((size_t)(yy + offset) * in_w) * 3;
        uint8_t *o = out + (size_t)yy * out_w * 3;
        for (int xx = 0; xx < out_w; xx++) {
            int xmin = bounds[xx * 2], xmax = bounds[xx * 2 + 1];
            const int32_t *k = &kk[(size_t)xx * ksize];
            int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
            for (int x = 0; x < xmax; x++) {
                const uint8_t *p = row + (size_t)(x + xmin) * 3;
                s0 += p[0] * k[x];
                s1 += p[1] * k[x];
                s2 += p[2] * k[x];
            }
            o[xx * 3 + 0] = clip8(s0);
            o[xx * 3 + 1] = clip8(s1);
            o[xx * 3 + 2] = clip8(s2);
        }
    }
}

/* Row-at-a-time: each tap adds a whole input row into an int32 accumulator
 * row, which the compiler vectorises; same sums, same order per sample. */
static void resample_vertical(uint8_t *out, int out_w, int out_h, const uint8_t *in, int ksize, const int *bounds,
                              const int32_t *kk, int32_t *acc) {
    const size_t n = (size_t)out_w * 3;
    for (int yy = 0; yy < out_h; yy++) {
        const int32_t *k = &kk[(size_t)yy * ksize];
        int ymin = bounds[yy * 2], ymax = bounds[yy * 2 + 1];
        for (size_t i = 0; i < n; i++) acc[i] = 1 << (PRECISION_BITS - 1);
        for (int y = 0; y < ymax; y++) {
            const uint8_t *row = in + (size_t)(y + ymin) * n;
            const int32_t ky = k[y];
            for (size_t i = 0; i < n; i++) acc[i] += row[i] * ky;
        }
        uint8_t *o = out + (size_t)yy * n;
        for (size_t i = 0; i < n; i++) o[i] = clip8(acc[i]);
    }
}

dots_status dots_image_resize_bicubic(dots_ctx *ctx, const dots_image *in, int32_t width, int32_t height,
                                      dots_image *out) {
    dots_ctx_begin_call(ctx);
    if (!in || !in->rgb || !out) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "resize: NULL argument");
    if (in->width_px <= 0 || in->height_px <= 0 || width <= 0 || height <= 0)
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "resize: empty image (%d x %d -> %d x %d)", in->width_px,
                         in->height_px, width, height);
    if ((int64_t)width * height > DOTS_MAX_IMAGE_PIXELS)
        return DOTS_FAIL(ctx, DOTS_ERR_LIMIT, "resize: %d x %d is over the %lld-pixel limit", width, height,
                         (long long)DOTS_MAX_IMAGE_PIXELS);
    const int in_w = in->width_px, in_h = in->height_px;
    size_t out_bytes = (size_t)width * (size_t)height * 3;
    uint8_t *dst = malloc(out_bytes);
    if (!dst) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "resize: cannot allocate %zu bytes", out_bytes);
    if (width == in_w && height == in_h) { /* Image.resize returns a copy */
        memcpy(dst, in->rgb, out_bytes);
        out->width_px = width;
        out->height_px = height;
        out->rgb = dst;
        return DOTS_OK;
    }
    int *bh = NULL, *bv = NULL;
    int32_t *kh = NULL, *kv = NULL;
    uint8_t *tmp = NULL;
    int32_t *acc = NULL;
    dots_status st = DOTS_OK;
    int ksize_h = precompute_coeffs(in_w, width, &bh, &kh);
    int ksize_v = precompute_coeffs(in_h, height, &bv, &kv);
    if (!ksize_h || !ksize_v) {
        st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "resize: out of memory for filter coefficients");
        goto done;
    }
    const bool need_h = width != in_w, need_v = height != in_h;
    const uint8_t *src = in->rgb;
    if (need_h) {
        /* only the rows the vertical pass will read */
        int ybox_first = bv[0], ybox_last = bv[height * 2 - 2] + bv[height * 2 - 1];
        for (int i = 0; i < height; i++) bv[i * 2] -= ybox_first;
        int rows = ybox_last - ybox_first;
        uint8_t *target = need_v ? (tmp = malloc((size_t)width * (size_t)rows * 3)) : dst;
        if (!target) {
            st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "resize: out of memory");
            goto done;
        }
        resample_horizontal(target, width, rows, src, in_w, ybox_first, ksize_h, bh, kh);
        src = target;
    }
    if (need_v) {
        acc = malloc((size_t)width * 3 * sizeof *acc);
        if (!acc) {
            st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "resize: out of memory");
            goto done;
        }
        resample_vertical(dst, width, height, src, ksize_v, bv, kv, acc);
    }
    out->width_px = width;
    out->height_px = height;
    out->rgb = dst;
    dst = NULL;
done:
    free(dst);
    free(tmp);
    free(acc);
    free(bh);
    free(bv);
    free(kh);
    free(kv);
    return st;
}
