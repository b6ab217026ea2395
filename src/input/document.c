/*
 * document.c - an input file as a list of pages: a decoded image (one page)
 * or an open PDF. The file is read into memory once (files over 1 GiB are
 * refused unread) and its format recognised from its bytes.
 */
#include "input/decode.h"
#include "input/pdf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct dots_document {
    uint8_t *bytes; /* the file; a PDF or a multi-page TIFF reads from it */
    size_t len;
    dots_pdf *pdf;  /* or */
    dots_image image; /* page 0 of an image */
    int32_t n_image_pages; /* TIFF frames; 1 for other images */
    char label[256];
};

void dots_document_close(dots_document *d) {
    if (!d) return;
    dots_pdf_close(d->pdf);
    dots_image_free(&d->image);
    free(d->bytes);
    free(d);
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Recognises the format from the bytes (d->bytes, d->len: owned) and opens it. */
static dots_status open_bytes(dots_ctx *ctx, dots_document *d) {
    /* "%PDF-" may follow a little junk; MuPDF finds it within the first 1 KB */
    bool is_pdf = d->len >= 5 && memmem(d->bytes, d->len < 1024 ? d->len : 1024, "%PDF-", 5) != NULL;
    if (is_pdf) return dots_pdf_open(ctx, d->label, d->bytes, d->len, &d->pdf);
    d->n_image_pages = 1;
    dots_status st = DOTS_OK;
    if (dots_is_tiff(d->bytes, d->len)) st = dots_tiff_n_pages(ctx, d->label, d->bytes, d->len, &d->n_image_pages);
    if (st == DOTS_OK) st = dots_decode_image(ctx, d->label, d->bytes, d->len, &d->image);
    if (st == DOTS_OK && d->n_image_pages == 1) {
        free(d->bytes); /* decoded: the file bytes are no longer needed */
        d->bytes = NULL;
    }
    return st;
}

dots_status dots_document_open(dots_ctx *ctx, const char *path, dots_document **out) {
    dots_ctx_begin_call(ctx);
    if (!path || !out) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_document_open: NULL argument");
    /* stat before open: opening a FIFO for reading blocks until a writer comes */
    struct stat sb;
    if (stat(path, &sb) != 0) return DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: is a directory", path);
    if (!S_ISREG(sb.st_mode)) return DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: not a regular file (a FIFO, socket or device)", path);
    dots_document *d = calloc(1, sizeof *d);
    if (!d) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    snprintf(d->label, sizeof d->label, "%s", base_name(path));
    char *bytes = NULL;
    dots_status st = dots_read_small_file(ctx, path, DOTS_MAX_INPUT_FILE_BYTES, &bytes, &d->len);
    d->bytes = (uint8_t *)bytes;
    if (st == DOTS_OK) st = open_bytes(ctx, d);
    if (st != DOTS_OK) {
        dots_document_close(d);
        return st;
    }
    *out = d;
    return DOTS_OK;
}

dots_status dots_document_open_memory(dots_ctx *ctx, const void *data, size_t len, const char *label, dots_document **out) {
    dots_ctx_begin_call(ctx);
    if (!data || !out) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_document_open_memory: NULL argument");
    if (!label) label = "memory";
    if (len == 0) return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: empty input", label);
    if (len > DOTS_MAX_INPUT_FILE_BYTES)
        return DOTS_FAIL(ctx, DOTS_ERR_LIMIT, "%s: %zu bytes is over the %llu-byte input limit", label, len,
                         (unsigned long long)DOTS_MAX_INPUT_FILE_BYTES);
    dots_document *d = calloc(1, sizeof *d);
    if (!d) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    snprintf(d->label, sizeof d->label, "%s", label);
    d->bytes = malloc(len + 1); /* + 1: the readers may rely on a NUL past the end, as for files */
    if (!d->bytes) {
        free(d);
        return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "%s: out of memory for %zu bytes", label, len);
    }
    memcpy(d->bytes, data, len);
    d->bytes[len] = 0;
    d->len = len;
    dots_status st = open_bytes(ctx, d);
    if (st != DOTS_OK) {
        dots_document_close(d);
        return st;
    }
    *out = d;
    return DOTS_OK;
}

bool dots_document_page_missing(const dots_document *d, int32_t page) {
    return d && d->pdf && dots_pdf_page_missing(d->pdf, page);
}

bool dots_document_page_empty(const dots_document *d, int32_t page) { return d && d->pdf && dots_pdf_page_empty(d->pdf, page); }

int32_t dots_document_n_pages(const dots_document *d) {
    if (!d) return 0;
    return d->pdf ? dots_pdf_n_pages(d->pdf) : d->n_image_pages;
}

bool dots_document_is_pdf(const dots_document *d) { return d && d->pdf; }

dots_status dots_document_render_page(dots_ctx *ctx, dots_document *d, int32_t page, int32_t dpi, dots_image *out,
                                      int32_t *dpi_used) {
    dots_ctx_begin_call(ctx);
    if (!d || !out) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_document_render_page: NULL argument");
    if (d->pdf) return dots_pdf_render(ctx, d->pdf, page, dpi ? dpi : DOTS_DEFAULT_PDF_DPI, out, dpi_used);
    if (page < 0 || page >= d->n_image_pages)
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "%s: page %d does not exist (the image has %d)", d->label, page + 1,
                         d->n_image_pages);
    if (page > 0) {
        dots_status st = dots_decode_tiff_page(ctx, d->label, d->bytes, d->len, page, out);
        if (st == DOTS_OK && dpi_used) *dpi_used = 0;
        return st;
    }
    size_t n = (size_t)d->image.width_px * (size_t)d->image.height_px * 3;
    uint8_t *p = malloc(n);
    if (!p) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "%s: out of memory", d->label);
    memcpy(p, d->image.rgb, n);
    out->width_px = d->image.width_px;
    out->height_px = d->image.height_px;
    out->rgb = p;
    if (dpi_used) *dpi_used = 0;
    return DOTS_OK;
}
