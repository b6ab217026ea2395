/*
 * image_jpeg.c - JPEG through libjpeg-turbo (baseline, progressive,
 * grayscale, CMYK/YCCK). Decoding settings are the library defaults, which
 * Pillow also uses, so the pixels are Pillow's. CMYK becomes RGB with
 * Pillow's formula (c' = 255 - k', out = k' - c*k'/255), Adobe files being
 * stored inverted. A file that ends early is an error, as in Pillow.
 * libjpeg's fatal errors longjmp back here; its warnings go to the debug log.
 */
#include "input/decode.h"

#include <setjmp.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <jpeglib.h>
#include <jerror.h>
#include <stdlib.h>
#include <string.h>

typedef struct jpeg_err {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    dots_ctx *ctx;
    const char *label;
    char msg[JMSG_LENGTH_MAX];
} jpeg_err;

static void on_error_exit(j_common_ptr cinfo) {
    jpeg_err *e = (jpeg_err *)cinfo->err;
    e->mgr.format_message(cinfo, e->msg);
    longjmp(e->jump, 1);
}

static void on_emit(j_common_ptr cinfo, int level) {
    jpeg_err *e = (jpeg_err *)cinfo->err;
    if (level >= 0) return; /* trace messages */
    if (e->mgr.msg_code == JWRN_JPEG_EOF) { /* libjpeg would invent the missing data */
        snprintf(e->msg, sizeof e->msg, "file ends early (truncated?)");
        longjmp(e->jump, 1);
    }
    char buf[JMSG_LENGTH_MAX];
    e->mgr.format_message(cinfo, buf);
    dots_log(e->ctx, DOTS_LOG_DEBUG, "%s: libjpeg: %s", e->label, buf);
}

static uint8_t muldiv255(uint32_t a, uint32_t b) {
    uint32_t t = a * b + 128;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

/* All state lives here, not in locals of the function that calls setjmp. */
typedef struct jpeg_state {
    struct jpeg_decompress_struct cinfo;
    jpeg_err err;
    dots_image img;
    uint8_t *row;
    bool created;
} jpeg_state;

static dots_status decode(jpeg_state *s, const uint8_t *data, size_t len) {
    dots_ctx *ctx = s->err.ctx;
    const char *label = s->err.label;
    struct jpeg_decompress_struct *cinfo = &s->cinfo;
    if (setjmp(s->err.jump)) return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: not a valid JPEG: %s", label, s->err.msg);
    jpeg_create_decompress(cinfo); /* may fail (memory) through error_exit: after setjmp */
    s->created = true;
    jpeg_mem_src(cinfo, data, (unsigned long)len);
    jpeg_read_header(cinfo, TRUE);
    dots_status st = dots_image_alloc(ctx, label, cinfo->image_width, cinfo->image_height, &s->img);
    if (st != DOTS_OK) return st;
    bool cmyk = cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK;
    cinfo->out_color_space = cmyk ? JCS_CMYK : cinfo->jpeg_color_space == JCS_GRAYSCALE ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(cinfo);
    int nc = cinfo->output_components;
    s->row = malloc((size_t)cinfo->output_width * (size_t)nc);
    if (!s->row) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "%s: out of memory", label);
    bool inverted = cmyk && cinfo->saw_Adobe_marker;
    while (cinfo->output_scanline < cinfo->output_height) {
        JSAMPROW rp = s->row;
        size_t y = cinfo->output_scanline;
        if (jpeg_read_scanlines(cinfo, &rp, 1) != 1)
            return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: not a valid JPEG: no more scanlines", label);
        uint8_t *q = s->img.rgb + y * (size_t)s->img.width_px * 3;
        for (size_t x = 0; x < (size_t)s->img.width_px; x++, q += 3) {
            const uint8_t *p = s->row + x * (size_t)nc;
            if (nc == 1) {
                q[0] = q[1] = q[2] = p[0];
            } else if (nc == 3) {
                q[0] = p[0];
                q[1] = p[1];
                q[2] = p[2];
            } else {
                uint8_t c = p[0], m = p[1], yy = p[2], k = p[3];
                if (inverted) c = 255 - c, m = 255 - m, yy = 255 - yy, k = 255 - k;
                uint32_t nk = 255u - k;
                q[0] = (uint8_t)(nk - muldiv255(c, nk));
                q[1] = (uint8_t)(nk - muldiv255(m, nk));
                q[2] = (uint8_t)(nk - muldiv255(yy, nk));
            }
        }
    }
    jpeg_finish_decompress(cinfo);
    return DOTS_OK;
}

dots_status dots_decode_jpeg(dots_ctx *ctx, const char *label, const uint8_t *data, size_t len, dots_image *out) {
    jpeg_state *s = calloc(1, sizeof *s);
    if (!s) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "%s: out of memory", label);
    s->cinfo.err = jpeg_std_error(&s->err.mgr);
    s->err.mgr.error_exit = on_error_exit;
    s->err.mgr.emit_message = on_emit;
    s->err.ctx = ctx;
    s->err.label = label;
    dots_status st = decode(s, data, len);
    if (st == DOTS_OK) {
        *out = s->img;
        s->img.rgb = NULL;
    }
    if (s->created) jpeg_destroy_decompress(&s->cinfo);
    free(s->row);
    dots_image_free(&s->img);
    free(s);
    return st;
}
