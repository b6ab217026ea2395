/*
 * image_write.c - PNG to memory (libpng), JPEG to file (libjpeg-turbo),
 * base64. Library errors longjmp back into these functions' frames only
 * through state kept outside their locals.
 */
#include "io/image_write.h"

#include "io/atomic_file.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jpeglib.h>

char *dots_base64(const uint8_t *d, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1);
    if (!out) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0) | (i + 2 < n ? d[i + 2] : 0);
        out[k++] = tab[v >> 18 & 63];
        out[k++] = tab[v >> 12 & 63];
        out[k++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        out[k++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[k] = '\0';
    return out;
}

typedef struct png_mem {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} png_mem;

static void png_write_mem(png_structp png, png_bytep data, png_size_t n) {
    png_mem *m = png_get_io_ptr(png);
    if (m->oom) return;
    if (m->n + n > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 4096;
        while (cap < m->n + n) cap *= 2;
        uint8_t *q = realloc(m->p, cap);
        if (!q) {
            m->oom = true;
            return;
        }
        m->p = q;
        m->cap = cap;
    }
    memcpy(m->p + m->n, data, n);
    m->n += n;
}
static void png_flush_mem(png_structp png) { (void)png; }
static void png_err(png_structp png, png_const_charp msg) {
    (void)msg;
    png_longjmp(png, 1);
}
static void png_warn(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

typedef struct png_wstate {
    png_structp png;
    png_infop info;
    png_mem mem;
} png_wstate;

static bool png_encode_inner(png_wstate *s, const dots_image *img) {
    if (setjmp(png_jmpbuf(s->png))) return false;
    png_set_write_fn(s->png, &s->mem, png_write_mem, png_flush_mem);
    png_set_IHDR(s->png, s->info, (png_uint_32)img->width_px, (png_uint_32)img->height_px, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(s->png, s->info);
    for (int32_t y = 0; y < img->height_px; y++) png_write_row(s->png, img->rgb + (size_t)y * (size_t)img->width_px * 3);
    png_write_end(s->png, NULL);
    return !s->mem.oom;
}

dots_status dots_png_encode(dots_ctx *ctx, const dots_image *img, uint8_t **out, size_t *len) {
    if (!img || !img->rgb || img->width_px <= 0 || img->height_px <= 0)
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "png: empty image");
    png_wstate *s = calloc(1, sizeof *s);
    if (!s) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    s->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, png_err, png_warn);
    s->info = s->png ? png_create_info_struct(s->png) : NULL;
    bool ok = s->info && png_encode_inner(s, img);
    png_destroy_write_struct(&s->png, &s->info);
    dots_status st = DOTS_OK;
    if (!ok) {
        free(s->mem.p);
        st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "png: encoding failed");
    } else {
        *out = s->mem.p;
        *len = s->mem.n;
    }
    free(s);
    return st;
}

typedef struct jpeg_wstate {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    jmp_buf jump;
    unsigned char *buf; /* jpeg_mem_dest's buffer (malloc'd by libjpeg) */
    unsigned long len;
    bool created;
} jpeg_wstate;

static void jpeg_exit(j_common_ptr c) { longjmp(((jpeg_wstate *)c->client_data)->jump, 1); }
static void jpeg_quiet(j_common_ptr c, int level) { (void)c, (void)level; }

static bool jpeg_inner(jpeg_wstate *s, const dots_image *img, int quality) {
    if (setjmp(s->jump)) return false;
    jpeg_create_compress(&s->c);
    s->created = true;
    jpeg_mem_dest(&s->c, &s->buf, &s->len);
    s->c.image_width = (JDIMENSION)img->width_px;
    s->c.image_height = (JDIMENSION)img->height_px;
    s->c.input_components = 3;
    s->c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&s->c);
    jpeg_set_quality(&s->c, quality, TRUE);
    jpeg_start_compress(&s->c, TRUE);
    while (s->c.next_scanline < s->c.image_height) {
        JSAMPROW row = img->rgb + (size_t)s->c.next_scanline * (size_t)img->width_px * 3;
        jpeg_write_scanlines(&s->c, &row, 1);
    }
    jpeg_finish_compress(&s->c);
    return true;
}

dots_status dots_jpeg_encode(dots_ctx *ctx, const dots_image *img, int quality, uint8_t **out, size_t *len) {
    if (!img || !img->rgb || img->width_px <= 0 || img->height_px <= 0 || img->width_px > 65500 || img->height_px > 65500 ||
        !out || !len)
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "jpeg: bad image (JPEG sides are at most 65500 px)");
    jpeg_wstate *s = calloc(1, sizeof *s);
    if (!s) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    s->c.err = jpeg_std_error(&s->err);
    s->err.error_exit = jpeg_exit;
    s->err.emit_message = jpeg_quiet;
    s->c.client_data = s;
    bool ok = jpeg_inner(s, img, quality);
    if (s->created) jpeg_destroy_compress(&s->c);
    uint8_t *buf = s->buf;
    size_t n = s->len;
    free(s);
    if (!ok || !buf) {
        free(buf);
        return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "cannot encode the %d x %d layout picture as JPEG", img->width_px,
                         img->height_px);
    }
    /* libjpeg allocates with malloc; hand back memory dots_free can free */
    *out = buf;
    *len = n;
    return DOTS_OK;
}
