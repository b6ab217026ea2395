/*
 * svg.h - dots.mocr's image-to-SVG answers: extraction, repair, rendering
 * and the comparison picture (docs/mocr.md).
 */
#ifndef DOTS_SVG_H
#define DOTS_SVG_H

#include "core/internal.h"

/* The official extraction: every "svg:" removed, whitespace stripped; a
 * complete <svg ...> ... </svg> (to the first </svg>) as it is; an answer
 * cut after its opening tag repaired (dots_svg_fix); none (cut before or
 * inside the opening tag): *out = NULL. */
dots_status dots_svg_extract(dots_ctx *ctx, const char *response, char **out);
/* The repair rules for a truncated answer: an unterminated <path d="...
 * gets '">', a trailing partial tag goes, the tags left open are closed
 * innermost first. Heap string, NULL on OOM. */
char *dots_svg_fix(const char *svg);
/* "# Generated SVG Code\n\n```xml\n" + the raw answer + "\n```". */
char *dots_svg_markdown(const char *response);
/* svg rendered at width x height over white. An SVG that does not render is
 * not an error: out stays empty and why says what failed. */
dots_status dots_svg_render(dots_ctx *ctx, const char *svg, int32_t width, int32_t height, dots_image *out, char *why,
                            size_t why_cap);
/* The original above the render (same width), a 10 px white gap, labels
 * "Origin" and "Generated" top-right in white on black. */
dots_status dots_svg_comparison(dots_ctx *ctx, const dots_image *orig, const dots_image *render, dots_image *out);

#endif
