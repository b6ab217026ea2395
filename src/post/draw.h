/*
 * draw.h - drawing on page pictures with MuPDF's draw device: the layout
 * boxes, scene-text quadrilaterals and the SVG comparison's labels share the
 * context, device, font and error handling here.
 */
#ifndef DOTS_DRAW_H
#define DOTS_DRAW_H

#include "core/internal.h"

#include <mupdf/fitz.h>

/* Paints on the device; may throw (fz_throw), which dots_draw_on reports. */
typedef void (*dots_draw_fn)(fz_context *fz, fz_device *dev, fz_font *font, void *user);

/* Runs fn with a draw device over img's pixels (changed in place) and the
 * base-14 font font_name; what names the picture in an error message. */
dots_status dots_draw_on(dots_ctx *ctx, dots_image *img, const char *font_name, dots_draw_fn fn, void *user, const char *what);
/* out = a heap copy of src, to draw on. */
dots_status dots_image_copy(dots_ctx *ctx, const dots_image *src, dots_image *out);

#endif
