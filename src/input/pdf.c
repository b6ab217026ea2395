/*
 * pdf.c - rendering PDF pages with MuPDF as the official parser does
 * (dots_ocr/utils/doc_utils.py fitz_doc_to_image): matrix dpi/72, RGB, no
 * alpha (a white page), and if a side exceeds 4,500 px, the page again at
 * 72 dpi. As dots.mocr's parser (docs/mocr.md), a page whose area exceeds
 * 11,289,600 pt^2 is scaled down to that many pixels, a page of no area is
 * empty (the caller skips it), and a page embedding an image of more than
 * 30,000,000 pixels is refused (the official parser crashes on the whole
 * document). The page size is computed before rendering, so an absurd page
 * is refused instead of allocated.
 *
 * Each document has its own fz_context, whose error and warning callbacks
 * go to our log: MuPDF prints to stderr by default.
 */
#include "input/pdf.h"

#include "input/decode.h"
#include "io/image_write.h"

#include <mupdf/fitz.h>
#include <mupdf/pdf.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DOTS_PDF_FALLBACK_SIDE_PX 4500 /* the official parser's limit */
#define DOTS_PDF_MAX_PAGE_AREA 11289600.0 /* pt^2: dots.mocr's cap (its max_pixels) */
#define DOTS_PDF_MAX_IMAGE_PX 30000000    /* dots.mocr refuses embedded images larger than this */

struct dots_pdf {
    fz_context *fz;
    fz_stream *stream;
    fz_document *doc;
    int32_t n_pages;
    int32_t missing_page; /* the last page fz_load_page could not find; -1 none */
    int32_t empty_page;   /* the last page of no area; -1 none */
    char label[256];
    dots_ctx *log_ctx; /* for MuPDF's callbacks during a call */
};

static void on_warning(void *user, const char *msg) {
    dots_pdf *p = user;
    dots_log(p->log_ctx, DOTS_LOG_DEBUG, "%s: mupdf: %s", p->label, msg);
}

void dots_pdf_close(dots_pdf *p) {
    if (!p) return;
    if (p->fz) {
        fz_drop_document(p->fz, p->doc);
        fz_drop_stream(p->fz, p->stream);
        fz_drop_context(p->fz);
    }
    free(p);
}

dots_status dots_pdf_open(dots_ctx *ctx, const char *label, const uint8_t *data, size_t len, dots_pdf **out) {
    return dots_mupdf_open(ctx, label, data, len, "application/pdf", out);
}

dots_status dots_mupdf_open(dots_ctx *ctx, const char *label, const uint8_t *data, size_t len, const char *mime,
                            dots_pdf **out) {
    dots_pdf *p = calloc(1, sizeof *p);
    if (!p) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    snprintf(p->label, sizeof p->label, "%s", label);
    p->log_ctx = ctx;
    p->missing_page = -1;
    p->empty_page = -1;
    p->fz = fz_new_context(NULL, NULL, FZ_STORE_DEFAULT);
    if (!p->fz) {
        free(p);
        return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "%s: cannot create a MuPDF context", label);
    }
    fz_set_warning_callback(p->fz, on_warning, p);
    fz_set_error_callback(p->fz, on_warning, p);
    dots_status st = DOTS_OK;
    fz_var(st);
    fz_try(p->fz) {
        fz_register_document_handlers(p->fz);
        p->stream = fz_open_memory(p->fz, data, len);
        p->doc = fz_open_document_with_stream(p->fz, mime, p->stream);
        if (fz_needs_password(p->fz, p->doc)) {
            st = DOTS_FAIL(ctx, DOTS_ERR_UNSUPPORTED, "%s: the PDF is encrypted (password-protected)", label);
        } else {
            int n = fz_count_pages(p->fz, p->doc);
            if (n <= 0) st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: the PDF has no pages", label);
            /* the page tree's /Count is a claim: every page is an object
             * of the file, so more pages than objects cannot be there */
            pdf_document *pdoc = pdf_specifics(p->fz, p->doc);
            int objects = pdoc ? pdf_xref_len(p->fz, pdoc) : n;
            if (n > objects) {
                dots_log(ctx, DOTS_LOG_WARN, "%s: the page tree claims %d pages, but the file holds %d objects: counting %d",
                         label, n, objects, objects);
                n = objects;
            }
            p->n_pages = n;
        }
    }
    fz_catch(p->fz) {
        st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: not a valid PDF: %s", label, fz_caught_message(p->fz));
    }
    if (st != DOTS_OK) {
        dots_pdf_close(p);
        return st;
    }
    *out = p;
    return DOTS_OK;
}

int32_t dots_pdf_n_pages(const dots_pdf *p) { return p ? p->n_pages : 0; }

bool dots_pdf_page_missing(const dots_pdf *p, int32_t page) { return p && page >= 0 && p->missing_page == page; }

bool dots_pdf_page_empty(const dots_pdf *p, int32_t page) { return p && page >= 0 && p->empty_page == page; }

/* The largest image XObject the page's resources name, in pixels (0: none,
 * or not a PDF). */
static int64_t largest_image_px(fz_context *fz, fz_page *pg, int *w_out, int *h_out) {
    pdf_page *pp = pdf_page_from_fz_page(fz, pg);
    if (!pp) return 0;
    pdf_obj *xobjs = pdf_dict_get(fz, pdf_page_resources(fz, pp), PDF_NAME(XObject));
    int64_t best = 0;
    for (int i = 0, n = pdf_dict_len(fz, xobjs); i < n; i++) {
        pdf_obj *x = pdf_dict_get_val(fz, xobjs, i);
        if (!pdf_name_eq(fz, pdf_dict_get(fz, x, PDF_NAME(Subtype)), PDF_NAME(Image))) continue;
        const int64_t w = pdf_dict_get_int(fz, x, PDF_NAME(Width)), h = pdf_dict_get_int(fz, x, PDF_NAME(Height));
        if (w > 0 && h > 0 && w * h > best) best = w * h, *w_out = (int)w, *h_out = (int)h;
    }
    return best;
}

dots_status dots_pdf_render(dots_ctx *ctx, dots_pdf *p, int32_t page, int32_t dpi, dots_image *out, int32_t *dpi_used) {
    if (page < 0 || page >= p->n_pages)
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "%s: page %d does not exist (the PDF has %d)", p->label, page + 1,
                         p->n_pages);
    if (dpi <= 0 || dpi > 2400) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "%s: dpi %d is outside 1..2400", p->label, dpi);
    p->log_ctx = ctx;
    fz_page *pg = NULL;
    fz_pixmap *pix = NULL;
    dots_image img = {0};
    dots_status st = DOTS_OK;
    fz_var(pg);
    fz_var(pix);
    fz_var(st);
    bool loaded = false;
    fz_var(loaded);
    fz_try(p->fz) {
        pg = fz_load_page(p->fz, p->doc, page);
        loaded = true;
        fz_rect bounds = fz_bound_page(p->fz, pg);
        int iw = 0, ih = 0;
        const int64_t img_px = largest_image_px(p->fz, pg, &iw, &ih);
        if (img_px > DOTS_PDF_MAX_IMAGE_PX)
            fz_throw(p->fz, FZ_ERROR_GENERIC, "it embeds a %d x %d image (over %d pixels): refused", iw, ih, DOTS_PDF_MAX_IMAGE_PX);
        const double area = ((double)bounds.x1 - bounds.x0) * ((double)bounds.y1 - bounds.y0);
        if (!(area > 0)) {
            p->empty_page = page;
            fz_throw(p->fz, FZ_ERROR_GENERIC, "the page is empty (no area)");
        }
        float zoom = dpi / 72.0f;
        if (area > DOTS_PDF_MAX_PAGE_AREA) zoom = (float)sqrt(DOTS_PDF_MAX_PAGE_AREA / area);
        int32_t used = (int32_t)lrintf(zoom * 72.0f);
        fz_matrix ctm = fz_scale(zoom, zoom);
        fz_irect box = fz_round_rect(fz_transform_rect(bounds, ctm));
        if (box.x1 - box.x0 > DOTS_PDF_FALLBACK_SIDE_PX || box.y1 - box.y0 > DOTS_PDF_FALLBACK_SIDE_PX) {
            used = 72;
            ctm = fz_scale(1, 1);
            box = fz_round_rect(fz_transform_rect(bounds, ctm));
        }
        int64_t w = (int64_t)box.x1 - box.x0, h = (int64_t)box.y1 - box.y0;
        st = dots_image_alloc(ctx, p->label, w, h, &img);
        if (st == DOTS_OK) {
            pix = fz_new_pixmap_from_page(p->fz, pg, ctm, fz_device_rgb(p->fz), 0);
            if (pix->w != w || pix->h != h || pix->n != 3) {
                st = DOTS_FAIL(ctx, DOTS_ERR_INTERNAL, "%s: page %d rendered as %d x %d x %d", p->label, page + 1, pix->w,
                               pix->h, pix->n);
            } else {
                for (int64_t y = 0; y < h; y++)
                    memcpy(img.rgb + (size_t)y * (size_t)w * 3, pix->samples + (size_t)y * pix->stride, (size_t)w * 3);
                if (dpi_used) *dpi_used = used;
            }
        }
    }
    fz_always(p->fz) {
        fz_drop_pixmap(p->fz, pix);
        fz_drop_page(p->fz, pg);
    }
    fz_catch(p->fz) {
        if (!loaded) {
            p->missing_page = page;
            st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: page %d is missing from the file (the page tree claims %d): %s", p->label,
                           page + 1, p->n_pages, fz_caught_message(p->fz));
        } else {
            st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: cannot render page %d: %s", p->label, page + 1, fz_caught_message(p->fz));
        }
    }
    if (st != DOTS_OK) {
        dots_image_free(&img);
        return st;
    }
    *out = img;
    return DOTS_OK;
}

/* The official fitz_preprocess (get_image_by_fitz_doc): the image as a PNG,
 * opened by MuPDF as a one-page document (page size from the image's
 * resolution: 96 dpi when the PNG has none, as here), converted to a PDF
 * the way PyMuPDF's convert_to_pdf does (the page run through a PDF write
 * device), and that PDF's page rendered at dpi with the 4500 px fallback.
 * Rendering the image document directly upsamples differently. */
static dots_status image_to_pdf(dots_ctx *ctx, const uint8_t *png, size_t len, uint8_t **pdf_out, size_t *pdf_len) {
    fz_context *fz = fz_new_context(NULL, NULL, FZ_STORE_DEFAULT);
    if (!fz) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "cannot create a MuPDF context");
    dots_status st = DOTS_OK;
    fz_stream *stm = NULL;
    fz_document *doc = NULL;
    fz_page *page = NULL;
    pdf_document *pdf = NULL;
    fz_device *dev = NULL;
    fz_buffer *contents = NULL, *outbuf = NULL;
    fz_output *out = NULL;
    pdf_obj *resources = NULL, *page_obj = NULL;
    fz_var(stm), fz_var(doc), fz_var(page), fz_var(pdf), fz_var(dev), fz_var(contents), fz_var(outbuf), fz_var(out);
    fz_var(resources), fz_var(page_obj), fz_var(st);
    fz_try(fz) {
        fz_register_document_handlers(fz);
        stm = fz_open_memory(fz, png, len);
        doc = fz_open_document_with_stream(fz, "image/png", stm);
        page = fz_load_page(fz, doc, 0);
        fz_rect mediabox = fz_bound_page(fz, page);
        pdf = pdf_create_document(fz);
        dev = pdf_page_write(fz, pdf, mediabox, &resources, &contents);
        fz_run_page(fz, page, dev, fz_identity, NULL);
        fz_close_device(fz, dev);
        page_obj = pdf_add_page(fz, pdf, mediabox, 0, resources, contents);
        pdf_insert_page(fz, pdf, -1, page_obj);
        outbuf = fz_new_buffer(fz, len + 4096);
        out = fz_new_output_with_buffer(fz, outbuf);
        pdf_write_options opts = pdf_default_write_options;
        pdf_write_document(fz, pdf, out, &opts);
        fz_close_output(fz, out);
        unsigned char *data = NULL;
        size_t n = fz_buffer_storage(fz, outbuf, &data);
        *pdf_out = malloc(n);
        if (!*pdf_out) {
            st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
        } else {
            memcpy(*pdf_out, data, n);
            *pdf_len = n;
        }
    }
    fz_always(fz) {
        fz_drop_output(fz, out);
        fz_drop_buffer(fz, outbuf);
        pdf_drop_obj(fz, page_obj);
        pdf_drop_obj(fz, resources);
        fz_drop_buffer(fz, contents);
        fz_drop_device(fz, dev);
        pdf_drop_document(fz, pdf);
        fz_drop_page(fz, page);
        fz_drop_document(fz, doc);
        fz_drop_stream(fz, stm);
    }
    fz_catch(fz) {
        st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "fitz_preprocess: %s", fz_caught_message(fz));
    }
    fz_drop_context(fz);
    return st;
}

dots_status dots_image_fitz_render(dots_ctx *ctx, const dots_image *src, int32_t dpi, dots_image *out, int32_t *dpi_used) {
    dots_ctx_begin_call(ctx);
    if (!src || !src->rgb || !out) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_image_fitz_render: NULL argument");
    uint8_t *png = NULL, *pdf = NULL;
    size_t len = 0, pdf_len = 0;
    dots_status st = dots_png_encode(ctx, src, &png, &len);
    dots_pdf *doc = NULL;
    if (st == DOTS_OK) st = image_to_pdf(ctx, png, len, &pdf, &pdf_len);
    if (st == DOTS_OK) st = dots_pdf_open(ctx, "image", pdf, pdf_len, &doc);
    if (st == DOTS_OK) st = dots_pdf_render(ctx, doc, 0, dpi ? dpi : DOTS_DEFAULT_PDF_DPI, out, dpi_used);
    dots_pdf_close(doc);
    free(pdf);
    free(png);
    return st;
}
