/*
 * markdown.h - cells -> Markdown (docs/model.md §11.5, layoutjson2md) and the layout
 * picture (11.6, draw_layout_on_image).
 */
#ifndef DOTS_MARKDOWN_H
#define DOTS_MARKDOWN_H

#include "post/layout.h"

/* The official rules: Picture -> the crop of the source image as a PNG
 * (embedded as base64, or written into images_dir as <stem>_<i>.png and
 * referenced by images_ref/<file> when images_dir is set), Formula ->
 * dots_formula_markdown, anything else -> dots_clean_text; pieces joined
 * by blank lines. no_hf skips Page-header and Page-footer. */
dots_status dots_layout_markdown(dots_ctx *ctx, const dots_layout *l, const dots_image *src, bool no_hf,
                                 const char *images_dir, const char *images_ref, const char *stem, char **out);

/* get_formula_in_markdown (11.5) and clean_text; heap strings. */
char *dots_formula_markdown(const char *text);
char *dots_clean_text(const char *text);

/* A copy of src with each cell drawn: its box filled with the category's
 * colour at opacity 0.3 and the label "<index>_<category>" at (x2, y1 + 20). */
dots_status dots_layout_draw(dots_ctx *ctx, const dots_layout *l, const dots_image *src, dots_image *out);

/* The official colour of a category (11.6). */
void dots_category_color(const char *category, uint8_t rgb[3]);

#endif
