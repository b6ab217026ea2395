/*
 * layout.h - the model's layout answer as cells (docs/model.md §10.2, 11.3-11.4): the
 * official json.loads-then-salvage logic, the bbox mapping back to the
 * original image, and the cell list as JSON.
 */
#ifndef DOTS_LAYOUT_H
#define DOTS_LAYOUT_H

#include "core/internal.h"

/* dots_cell is public (dotsocr.h): a page result hands its cells out. */
typedef struct dots_layout {
    dots_cell *cells;
    int64_t n_cells;
    bool filtered;    /* json.loads failed: salvage text only (11.4 step 3) */
    char *salvage_md; /* filtered: the texts of the salvaged cells joined by blank lines */
} dots_layout;

void dots_layout_free(dots_layout *l);

/* Parses a layout answer: json.loads; on failure the official cleaner (fix
 * delimiters, cut an incomplete tail, drop duplicates, bracket, salvage
 * dicts, deduplicate) produces salvage_md and filtered = true. */
dots_status dots_layout_parse(dots_ctx *ctx, const char *response, size_t len, dots_layout *out);

/* The cleaner alone (11.4 step 2): the salvaged cells. */
dots_status dots_layout_salvage(dots_ctx *ctx, const char *response, size_t len, dots_layout *out);

/* Model pixels -> original pixels (11.3): x_orig = int(x / (W_model / W_orig)). */
double dots_bbox_to_source_px(double v, int32_t model_px, int32_t source_px);
/* Original -> model (grounding, 11.3): x_model = int(x / (W_orig / W_model)). */
double dots_bbox_to_model_px(double v, int32_t source_px, int32_t model_px);

/* Rescales every cell's bbox from the model's resized image to the source. */
void dots_layout_rescale(dots_layout *l, int32_t model_w, int32_t model_h, int32_t src_w, int32_t src_h);

/* The cells as JSON, as Python's json.dumps(cells, ensure_ascii=False)
 * writes them (keys bbox, category, text in that order). Heap string. */
char *dots_layout_to_json(const dots_layout *l);

/* s as one JSON string, escaped as json.dumps(ensure_ascii=False) writes
 * it (a filtered page's layout is its raw answer so). Heap string. */
char *dots_json_quote(const char *s);

#endif
