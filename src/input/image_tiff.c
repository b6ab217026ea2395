/*
 * image_tiff.c - TIFF through libtiff's RGBA interface (any photometric,
 * compression and bit depth it supports), one page (directory) at a time;
 * a truncated or corrupt strip is an error, never rows left white. Errors and
 * warnings go through per-handle handlers (libtiff >= 4.5), never stderr
 * and never global state. The RGBA interface returns associated
 * (premultiplied) alpha, so the white composite is c + (255 - a).
 */
#include "input/decode.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>

typedef struct tiff_mem {
    dots_ctx *ctx;
    const char *label;
    const uint8_t *data;
    toff_t len, pos;
    char msg[200];
} tiff_mem;

static tmsize_t mem_read(thandle_t h, void *buf, tmsize_t n) {
    tiff_mem *m = (tiff_mem *)h;
    if (n < 0) return -1;
    toff_t left = m->pos < m->len ? m->len - m->pos : 0;
    if ((toff_t)n > left) n = (tmsize_t)left;
    memcpy(buf, m->data + m->pos, (size_t)n);
    m->pos += (toff_t)n;
    return n;
}
static tmsize_t mem_write(thandle_t h, void *buf, tmsize_t n) {
    (void)h, (void)buf, (void)n;
    return -1;
}
static toff_t mem_seek(thandle_t h, toff_t off, int whence) {
    tiff_mem *m = (tiff_mem *)h;
    toff_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? m->pos : m->len;
    if (off > UINT64_MAX - base) return (toff_t)-1;
    m->pos = base + off;
    return m->pos;
}
static int mem_close(thandle_t h) {
    (void)h;
    return 0;
}
static toff_t mem_size(thandle_t h) { return ((tiff_mem *)h)->len; }
static int mem_map(thandle_t h, void **base, toff_t *size) {
    (void)h, (void)base, (void)size;
    return 0;
}
static void mem_unmap(thandle_t h, void *base, toff_t size) { (void)h, (void)base, (void)size; }

static int on_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) {
    (void)tif, (void)module;
    tiff_mem *m = user;
    if (!m->msg[0]) vsnprintf(m->msg, sizeof m->msg, fmt, ap);
    return 1;
}
static int on_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) {
    (void)tif, (void)module;
    tiff_mem *m = user;
    char buf[200];
    vsnprintf(buf, sizeof buf, fmt, ap);
    dots_log(m->ctx, DOTS_LOG_DEBUG, "%s: libtiff: %s", m->label, buf);
    return 1;
}

static TIFF *open_mem(tiff_mem *m) {
    TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
    if (!opts) return NULL;
    TIFFOpenOptionsSetErrorHandlerExtR(opts, on_error, m);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, on_warning, m);
    TIFFOpenOptionsSetMaxSingleMemAlloc(opts, (tmsize_t)1 << 30);
    TIFF *tif = TIFFClientOpenExt(m->label, "rm", (thandle_t)m, mem_read, mem_write, mem_seek, mem_close, mem_size,
                                  mem_map, mem_unmap, opts);
    TIFFOpenOptionsFree(opts);
    return tif;
}

bool dots_is_tiff(const uint8_t *d, size_t len) {
    return len >= 4 && ((d[0] == 'I' && d[1] == 'I' && (d[2] == 42 || d[2] == 43) && d[3] == 0) ||
                        (d[0] == 'M' && d[1] == 'M' && d[2] == 0 && (d[3] == 42 || d[3] == 43)));
}

dots_status dots_tiff_n_pages(dots_ctx *ctx, const char *label, const uint8_t *data, size_t len, int32_t *n_pages) {
    tiff_mem m = {ctx, label, data, len, 0, {0}};
    TIFF *tif = open_mem(&m);
    if (!tif) return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: not a valid TIFF: %s", label, m.msg[0] ? m.msg : "cannot open");
    tdir_t n = TIFFNumberOfDirectories(tif); /* libtiff stops at IFD loops */
    TIFFClose(tif);
    if (n == 0) return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: the TIFF has no images", label);
    *n_pages = n > INT32_MAX ? INT32_MAX : (int32_t)n;
    return DOTS_OK;
}

dots_status dots_decode_tiff(dots_ctx *ctx, const char *label, const uint8_t *data, size_t len, dots_image *out) {
    return dots_decode_tiff_page(ctx, label, data, len, 0, out);
}

dots_status dots_decode_tiff_page(dots_ctx *ctx, const char *label, const uint8_t *data, size_t len, int32_t page,
                                  dots_image *out) {
    tiff_mem m = {ctx, label, data, len, 0, {0}};
    TIFF *tif = open_mem(&m);
    if (!tif) return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: not a valid TIFF: %s", label, m.msg[0] ? m.msg : "cannot open");
    if (page > 0 && !TIFFSetDirectory(tif, (tdir_t)page)) {
        TIFFClose(tif);
        return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: TIFF page %d cannot be read: %s", label, page + 1, m.msg[0] ? m.msg : "missing");
    }
    uint32_t w = 0, h = 0;
    TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h);
    dots_image img = {0};
    uint32_t *raster = NULL;
    dots_status st = dots_image_alloc(ctx, label, w, h, &img);
    if (st == DOTS_OK) {
        raster = malloc((size_t)w * h * sizeof *raster);
        if (!raster) st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "%s: out of memory", label);
    }
    /* stop_on_error: a strip past the end of a cut file fails the image
     * instead of leaving its rows white */
    if (st == DOTS_OK && (!TIFFReadRGBAImageOriented(tif, w, h, raster, ORIENTATION_TOPLEFT, 1) || m.msg[0]))
        st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: cannot decode TIFF%s: %s", label, page ? " page" : "",
                       m.msg[0] ? m.msg : "unsupported layout");
    if (st == DOTS_OK) {
        for (size_t i = 0, n = (size_t)w * h; i < n; i++) {
            uint32_t px = raster[i];
            uint32_t a = TIFFGetA(px), add = 255 - a;
            uint32_t r = TIFFGetR(px) + add, g = TIFFGetG(px) + add, b = TIFFGetB(px) + add;
            img.rgb[i * 3 + 0] = (uint8_t)(r > 255 ? 255 : r);
            img.rgb[i * 3 + 1] = (uint8_t)(g > 255 ? 255 : g);
            img.rgb[i * 3 + 2] = (uint8_t)(b > 255 ? 255 : b);
        }
        *out = img;
        img.rgb = NULL;
    }
    free(raster);
    dots_image_free(&img);
    TIFFClose(tif);
    return st;
}
