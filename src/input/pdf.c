/*
 * pdf.c - rendering PDF pages with MuPDF as the official parser does
 * (dots_ocr/utils/doc_utils.py fitz_doc_to_image): matrix dpi/72, RGB, no
 * alpha (a white page), and if a side exceeds 4,500 px, the page again at
 * 72 dpi. The page size is computed before rendering, so an absurd page
 * is refused instead of allocated.
 *
 * Each document has its own fz_context, whose error and warning callbacks
 * go to our log: MuPDF prints to stderr by default.
 */
#include "input/pdf.h"

#include "input/decode.h"

#include <mupdf/fitz.h>
#include <stdlib.h>
#include <string.h>

#define DOTS_PDF_FALLBACK_SIDE_PX 4500 /* the official parser's limit */

struct dots_pdf {
    fz_context *fz;
    fz_stream *stream;
    fz_document *doc;
    int32_t n_pages;
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
    dots_pdf *p = calloc(1, sizeof *p);
    if (!p) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    snprintf(p->label, sizeof p->label, "%s", label);
    p->log_ctx = ctx;
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
        p->doc = fz_open_document_with_stream(p->fz, "application/pdf", p->stream);
        if (fz_needs_password(p->fz, p->doc)) {
            st = DOTS_FAIL(ctx, DOTS_ERR_UNSUPPORTED, "%s: the PDF is encrypted (password-protected)", label);
        } else {
            int n = fz_count_pages(p->fz, p->doc);
            if (n <= 0) st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: the PDF has no pages", label);
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
    fz_try(p->fz) {
        pg = fz_load_page(p->fz, p->doc, page);
        fz_rect bounds = fz_bound_page(p->fz, pg);
        int32_t used = dpi;
        fz_matrix ctm = fz_scale(dpi / 72.0f, dpi / 72.0f);
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
        st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: cannot render page %d: %s", p->label, page + 1, fz_caught_message(p->fz));
    }
    if (st != DOTS_OK) {
        dots_image_free(&img);
        return st;
    }
    *out = img;
    return DOTS_OK;
}
