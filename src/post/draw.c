/*
 * draw.c - the MuPDF draw device over an RGB picture (draw.h).
 */
#include "post/draw.h"

#include <stdlib.h>
#include <string.h>

dots_status dots_image_copy(dots_ctx *ctx, const dots_image *src, dots_image *out) {
    const size_t bytes = (size_t)src->width_px * (size_t)src->height_px * 3;
    out->rgb = malloc(bytes);
    if (!out->rgb) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    memcpy(out->rgb, src->rgb, bytes);
    out->width_px = src->width_px;
    out->height_px = src->height_px;
    return DOTS_OK;
}

dots_status dots_draw_on(dots_ctx *ctx, dots_image *img, const char *font_name, dots_draw_fn fn, void *user, const char *what) {
    fz_context *fz = fz_new_context(NULL, NULL, FZ_STORE_DEFAULT);
    if (!fz) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "cannot create a MuPDF context");
    dots_status st = DOTS_OK;
    fz_pixmap *pix = NULL;
    fz_device *dev = NULL;
    fz_font *font = NULL;
    fz_var(pix), fz_var(dev), fz_var(font), fz_var(st);
    fz_try(fz) {
        pix = fz_new_pixmap_with_data(fz, fz_device_rgb(fz), img->width_px, img->height_px, NULL, 0, img->width_px * 3, img->rgb);
        dev = fz_new_draw_device(fz, fz_identity, pix);
        font = fz_new_base14_font(fz, font_name);
        fn(fz, dev, font, user);
        fz_close_device(fz, dev);
    }
    fz_always(fz) {
        fz_drop_device(fz, dev);
        fz_drop_font(fz, font);
        fz_drop_pixmap(fz, pix);
    }
    fz_catch(fz) {
        st = DOTS_FAIL(ctx, DOTS_ERR_INTERNAL, "drawing %s: %s", what, fz_caught_message(fz));
    }
    fz_drop_context(fz);
    return st;
}
