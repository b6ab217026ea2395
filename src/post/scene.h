/*
 * scene.h - dots.mocr's scene-text spotting answers: parsing, the mapping to
 * source pixels, and the official outputs (docs/mocr.md).
 */
#ifndef DOTS_SCENE_H
#define DOTS_SCENE_H

#include "core/internal.h"

typedef struct dots_scene_item {
    double points[8]; /* x1, y1, ..., x4, y4 */
    char *text;
} dots_scene_item;

typedef struct dots_scene {
    dots_scene_item *items;
    int64_t n;
} dots_scene;

/* Every run of four "(digits, digits)" pairs separated by commas (any
 * whitespace between the tokens), with the text after it up to the next
 * "(digits, digits)" or the end, stripped; instances with empty text are
 * dropped. None found: n = 0 (the page is then "filtered"). */
dots_status dots_scene_parse(dots_ctx *ctx, const char *response, size_t len, dots_scene *out);
void dots_scene_free(dots_scene *s);
/* Points from the model's resized image to the source: int(v / (model / source)). */
void dots_scene_rescale(dots_scene *s, int32_t model_w, int32_t model_h, int32_t src_w, int32_t src_h);
/* The instances as json.dumps(indent=2, ensure_ascii=False) writes
 * [{"points": [...], "text": ...}]; {"raw": response} for a filtered page.
 * Heap strings, NULL on OOM. */
char *dots_scene_to_json(const dots_scene *s);
char *dots_scene_raw_json(const char *response);
/* "# Scene Text Results\n\n" and one "(x1, y1), ... text\n" per instance, blank-line separated. */
char *dots_scene_markdown(const dots_scene *s);

/* The source with each quadrilateral in green (2 px) and its label (the
 * first 40 characters) in white on black at its first point. */
dots_status dots_scene_draw(dots_ctx *ctx, const dots_scene *s, const dots_image *src, dots_image *out);

#endif
