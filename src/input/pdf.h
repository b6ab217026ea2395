/*
 * pdf.h - PDF pages through MuPDF, the engine PyMuPDF wraps, so pages come
 * out as the official parser renders them.
 */
#ifndef DOTS_PDF_H
#define DOTS_PDF_H

#include "core/internal.h"

typedef struct dots_pdf dots_pdf;

/* data must stay valid until dots_pdf_close. */
dots_status dots_pdf_open(dots_ctx *ctx, const char *label, const uint8_t *data, size_t len, dots_pdf **out);
/* The same for any document type MuPDF opens, by MIME type ("image/png"). */
dots_status dots_mupdf_open(dots_ctx *ctx, const char *label, const uint8_t *data, size_t len, const char *mime,
                            dots_pdf **out);
int32_t dots_pdf_n_pages(const dots_pdf *pdf);
/* Whether the last render of page failed because the file lacks it. */
bool dots_pdf_page_missing(const dots_pdf *pdf, int32_t page);
/* Whether the last failed render of page was of a page of no area. */
bool dots_pdf_page_empty(const dots_pdf *pdf, int32_t page);
dots_status dots_pdf_render(dots_ctx *ctx, dots_pdf *pdf, int32_t page, int32_t dpi, dots_image *out, int32_t *dpi_used);
void dots_pdf_close(dots_pdf *pdf);

#endif
