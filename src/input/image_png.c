/*
 * image_png.c - PNG through libpng: any colour type and bit depth. Palette
 * and low bit depths are expanded, 16-bit samples keep their high byte (as
 * Pillow's "RGB;16B" unpacker does), gray becomes RGB, and any alpha
 * (alpha channel or tRNS) is composited on white. Gamma chunks are ignored,
 * as Pillow ignores them. libpng reports errors by longjmp; they come back
 * here as one-line messages, and its warnings go to the debug log.
 */
#include "input/decode.h"

#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

typedef struct png_io {
    dots_ctx *ctx;
    const char *label;
    const uint8_t *data;
    size_t len, pos;
    char msg[200];
} png_io;

static void on_error(png_structp png, png_const_charp msg) {
    png_io *io = png_get_error_ptr(png);
    snprintf(io->msg, sizeof io->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
    png_io *io = png_get_error_ptr(png);
    dots_log(io->ctx, DOTS_LOG_DEBUG, "%s: libpng: %s", io->label, msg);
}

static void on_read(png_structp png, png_bytep dst, png_size_t n) {
    png_io *io = png_get_io_ptr(png);
    if (n > io->len - io->pos) png_error(png, "unexpected end of file (truncated?)");
    memcpy(dst, io->data + io->pos, n);
    io->pos += n;
}

/* All state the decode touches lives here, not in locals of the function
 * that calls setjmp: after a longjmp such locals would be indeterminate. */
typedef struct png_state {
    png_io io;
    png_structp png;
    png_infop info;
    uint8_t *pixels;
    png_bytep *rows;
    dots_image img;
} png_state;

static dots_status decode(png_state *s) {
    dots_ctx *ctx = s->io.ctx;
    const char *label = s->io.label;
    if (setjmp(png_jmpbuf(s->png))) return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: not a valid PNG: %s", label, s->io.msg);
    png_set_read_fn(s->png, &s->io, on_read);
    png_read_info(s->png, s->info);
    png_uint_32 w = png_get_image_width(s->png, s->info), h = png_get_image_height(s->png, s->info);
    dots_status st = dots_image_alloc(ctx, label, w, h, &s->img);
    if (st != DOTS_OK) return st;
    int ct = png_get_color_type(s->png, s->info);
    png_set_expand(s->png); /* palette -> RGB, gray < 8 bits -> 8, tRNS -> alpha */
    png_set_strip_16(s->png);
    if (ct == PNG_COLOR_TYPE_GRAY || ct == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(s->png);
    png_set_interlace_handling(s->png);
    png_read_update_info(s->png, s->info);
    int channels = png_get_channels(s->png, s->info);
    if (channels != 3 && channels != 4)
        return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: unexpected %d channels after expansion", label, channels);
    size_t stride = (size_t)w * (size_t)channels;
    s->pixels = malloc(stride * h);
    s->rows = malloc(sizeof(png_bytep) * h);
    if (!s->pixels || !s->rows) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "%s: out of memory for %u x %u pixels", label, w, h);
    for (png_uint_32 y = 0; y < h; y++) s->rows[y] = s->pixels + y * stride;
    png_read_image(s->png, s->rows);
    png_read_end(s->png, NULL);
    for (size_t i = 0, n = (size_t)w * h; i < n; i++) {
        const uint8_t *p = s->pixels + i * (size_t)channels;
        uint8_t *q = s->img.rgb + i * 3;
        if (channels == 4) {
            q[0] = dots_over_white(p[0], p[3]);
            q[1] = dots_over_white(p[1], p[3]);
            q[2] = dots_over_white(p[2], p[3]);
        } else {
            q[0] = p[0];
            q[1] = p[1];
            q[2] = p[2];
        }
    }
    return DOTS_OK;
}

dots_status dots_decode_png(dots_ctx *ctx, const char *label, const uint8_t *data, size_t len, dots_image *out) {
    png_state *s = calloc(1, sizeof *s);
    if (!s) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "%s: out of memory", label);
    s->io = (png_io){ctx, label, data, len, 0, {0}};
    s->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &s->io, on_error, on_warning);
    s->info = s->png ? png_create_info_struct(s->png) : NULL;
    dots_status st = s->info ? decode(s) : DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "%s: out of memory", label);
    if (st == DOTS_OK) {
        *out = s->img;
        s->img.rgb = NULL;
    }
    png_destroy_read_struct(&s->png, &s->info, NULL);
    free(s->pixels);
    free(s->rows);
    dots_image_free(&s->img);
    free(s);
    return st;
}
