/*
 * markdown.c - Markdown of a page (docs/model.md §11.5, the official layoutjson2md)
 * and the layout picture (11.6, draw_layout_on_image), which the official
 * parser draws with PyMuPDF: so do we, with MuPDF's draw device on the
 * page image - filled rectangles at opacity 0.3 and Helvetica labels.
 */
#include "post/markdown.h"

#include "core/strbuf.h"
#include "io/image_write.h"
#include "post/draw.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <mupdf/fitz.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *category;
    uint8_t rgb[3];
} colors[] = {
    {"Text", {0, 128, 0}},         {"Footnote", {0, 128, 0}},     {"Page-header", {0, 128, 0}},
    {"Picture", {255, 0, 255}},    {"Caption", {255, 165, 0}},    {"Section-header", {0, 255, 255}},
    {"Formula", {128, 128, 128}},  {"Table", {255, 192, 203}},    {"Title", {255, 0, 0}},
    {"List-item", {0, 0, 255}},    {"Page-footer", {128, 0, 128}}, {"Other", {165, 42, 42}},
};

void dots_category_color(const char *category, uint8_t rgb[3]) {
    rgb[0] = 0, rgb[1] = 128, rgb[2] = 0; /* the default */
    for (size_t i = 0; category && i < sizeof colors / sizeof *colors; i++)
        if (strcmp(category, colors[i].category) == 0) memcpy(rgb, colors[i].rgb, 3);
}

/* Python's str.strip(): whitespace at both ends. */
static char *strip_dup(const char *s) {
    size_t n = strlen(s), b = 0;
    while (b < n && isspace((unsigned char)s[b])) b++;
    while (n > b && isspace((unsigned char)s[n - 1])) n--;
    return strndup(s + b, n - b);
}

static bool starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }
static bool ends(const char *s, const char *p) {
    size_t n = strlen(s), m = strlen(p);
    return n >= m && strcmp(s + n - m, p) == 0;
}

static bool re_search(const char *pattern, const char *s) {
    int err;
    PCRE2_SIZE at;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP | PCRE2_DOTALL, &err, &at, NULL);
    if (!re) return false;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    bool found = md && pcre2_match(re, (PCRE2_SPTR)s, strlen(s), 0, 0, md, NULL) >= 0;
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return found;
}

static char *wrap_display(const char *inner) {
    size_t n = strlen(inner);
    char *out = malloc(n + 7);
    if (out) snprintf(out, n + 7, "$$\n%s\n$$", inner);
    return out;
}

char *dots_clean_text(const char *text) {
    char *t = strip_dup(text ? text : "");
    if (t && starts(t, "`$") && ends(t, "$`") && strlen(t) >= 4) { /* drop the outer backticks */
        size_t n = strlen(t);
        memmove(t, t + 1, n - 2);
        t[n - 2] = '\0';
    }
    return t;
}

char *dots_formula_markdown(const char *text) {
    char *t = strip_dup(text ? text : "");
    if (!t) return NULL;
    size_t n = strlen(t);
    /* 1. wrapped in $$...$$ */
    if (n >= 4 && starts(t, "$$") && ends(t, "$$")) {
        char *inner = strndup(t + 2, n - 4), *s = inner ? strip_dup(inner) : NULL;
        free(inner);
        char *out = s && !strchr(s, '$') ? wrap_display(s) : strdup(t);
        free(s);
        free(t);
        return out;
    }
    /* 2. wrapped in \[...\] */
    if (n >= 4 && starts(t, "\\[") && ends(t, "\\]")) {
        char *inner = strndup(t + 2, n - 4), *s = inner ? strip_dup(inner) : NULL;
        free(inner);
        char *out = s ? wrap_display(s) : NULL;
        free(s);
        free(t);
        return out;
    }
    /* 3. \[...\] inside; 4. inline $...$: unchanged */
    if (re_search("\\\\\\[.*?\\\\\\]", t) || re_search("(?<!\\$)\\$(?!\\$).+?(?<!\\$)\\$(?!\\$)", t)) return t;
    /* 5. no LaTeX at all: unchanged */
    bool latex = re_search("\\$\\$.*?\\$\\$", t) || re_search("\\$.*?\\$", t) || re_search("\\\\begin\\{.*?\\}.*?\\\\end\\{", t) ||
                 re_search("\\\\[a-zA-Z]+\\{", t) || re_search("\\\\[a-zA-Z]+", t) || re_search("\\\\\\(.*?\\\\\\)", t);
    if (!latex) return t;
    /* 6. strip a LaTeX preamble if there is one, and surrounding backticks; display math */
    char *body = strdup(t);
    if (body && strstr(body, "usepackage")) {
        char *o = body;
        for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
            char *ls = strip_dup(line);
            bool pre = ls && (starts(ls, "\\documentclass") || starts(ls, "\\usepackage") || starts(ls, "\\begin{document}") ||
                              starts(ls, "\\end{document}"));
            free(ls);
            if (pre) continue;
            if (o != body) *o++ = '\n';
            size_t l = strlen(line);
            memmove(o, line, l);
            o += l;
        }
        *o = '\0';
        char *s = strip_dup(body);
        free(body);
        body = s;
    }
    free(t);
    if (!body) return NULL;
    size_t b = 0, e = strlen(body);
    while (b < e && body[b] == '`') b++;
    while (e > b && body[e - 1] == '`') e--;
    char *inner = strndup(body + b, e - b), *s = inner ? strip_dup(inner) : NULL;
    free(inner);
    free(body);
    char *out = s ? wrap_display(s) : NULL;
    free(s);
    return out;
}

/* The crop of src at the bbox, clamped to the image (PIL's crop pads with
 * black outside; a page crop outside the page has no content anyway). */
static dots_status crop(dots_ctx *ctx, const dots_image *src, const double bb[4], dots_image *out) {
    int x1 = (int)bb[0], y1 = (int)bb[1], x2 = (int)bb[2], y2 = (int)bb[3];
    if (x1 < 0) x1 = 0;
    if (y1 < 0) y1 = 0;
    if (x2 > src->width_px) x2 = src->width_px;
    if (y2 > src->height_px) y2 = src->height_px;
    if (x2 <= x1 || y2 <= y1) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "empty picture box");
    out->width_px = x2 - x1;
    out->height_px = y2 - y1;
    out->rgb = malloc((size_t)out->width_px * (size_t)out->height_px * 3);
    if (!out->rgb) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    for (int y = 0; y < out->height_px; y++)
        memcpy(out->rgb + (size_t)y * (size_t)out->width_px * 3, src->rgb + ((size_t)(y1 + y) * (size_t)src->width_px + (size_t)x1) * 3,
               (size_t)out->width_px * 3);
    return DOTS_OK;
}

dots_status dots_layout_markdown(dots_ctx *ctx, const dots_layout *l, const dots_image *src, bool no_hf,
                                 const char *images_dir, const char *images_ref, const char *stem, char **out) {
    dots_strbuf b = {0};
    bool first = true;
    dots_status st = DOTS_OK;
    for (int64_t i = 0; i < l->n_cells && st == DOTS_OK; i++) {
        const dots_cell *c = &l->cells[i];
        const char *cat = c->category ? c->category : "";
        if (no_hf && (strcmp(cat, "Page-header") == 0 || strcmp(cat, "Page-footer") == 0)) continue;
        char *piece = NULL;
        if (strcmp(cat, "Picture") == 0) {
            dots_image cr = {0};
            uint8_t *png = NULL;
            size_t png_len = 0;
            if (!c->has_bbox || crop(ctx, src, c->bbox, &cr) != DOTS_OK) {
                dots_ctx_clear_error(ctx); /* a degenerate box: an empty piece, as an empty crop gives nothing useful */
                piece = strdup("");
            } else if ((st = dots_png_encode(ctx, &cr, &png, &png_len)) == DOTS_OK) {
                if (images_dir) {
                    char path[4096], name[512];
                    snprintf(name, sizeof name, "%s_%lld.png", stem, (long long)i);
                    snprintf(path, sizeof path, "%s/%s", images_dir, name);
                    FILE *f = fopen(path, "wb");
                    bool ok = f && fwrite(png, 1, png_len, f) == png_len;
                    if (f && fclose(f) != 0) ok = false;
                    if (!ok) st = DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: cannot write", path);
                    size_t n = strlen(images_ref) + strlen(name) + 8;
                    piece = malloc(n);
                    if (piece) snprintf(piece, n, "![](%s/%s)", images_ref, name);
                } else {
                    char *b64 = dots_base64(png, png_len);
                    size_t n = b64 ? strlen(b64) + 32 : 0;
                    piece = b64 ? malloc(n) : NULL;
                    if (piece) snprintf(piece, n, "![](data:image/png;base64,%s)", b64);
                    free(b64);
                }
            }
            free(png);
            dots_image_free(&cr);
        } else if (strcmp(cat, "Formula") == 0) {
            piece = dots_formula_markdown(c->text ? c->text : "");
        } else {
            piece = dots_clean_text(c->text ? c->text : "");
        }
        if (st != DOTS_OK) {
            free(piece);
            break;
        }
        if (!piece) {
            st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
            break;
        }
        if (!first) dots_strbuf_str(&b, "\n\n");
        dots_strbuf_str(&b, piece);
        first = false;
        free(piece);
    }
    if (st == DOTS_OK && !b.p) dots_strbuf_str(&b, "");
    if (st == DOTS_OK && b.oom) st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    if (st != DOTS_OK) {
        free(b.p);
        return st;
    }
    *out = b.p;
    return DOTS_OK;
}

static void draw_cells(fz_context *fz, fz_device *dev, fz_font *font, void *user) {
    const dots_layout *l = user;
    for (int64_t i = 0; i < l->n_cells; i++) {
        const dots_cell *c = &l->cells[i];
        if (!c->has_bbox) continue;
        uint8_t col[3];
        dots_category_color(c->category, col);
        float color[3] = {col[0] / 255.0f, col[1] / 255.0f, col[2] / 255.0f};
        fz_path *path = fz_new_path(fz);
        fz_rectto(fz, path, (float)c->bbox[0], (float)c->bbox[1], (float)c->bbox[2], (float)c->bbox[3]);
        fz_fill_path(fz, dev, path, 0, fz_identity, fz_device_rgb(fz), color, 0.3f, fz_default_color_params);
        fz_drop_path(fz, path);
        char label[256];
        snprintf(label, sizeof label, "%lld_%s", (long long)i, c->category ? c->category : "None");
        fz_text *text = fz_new_text(fz);
        fz_matrix trm = fz_make_matrix(20, 0, 0, -20, (float)c->bbox[2], (float)c->bbox[1] + 20);
        fz_show_string(fz, text, font, trm, label, 0, 0, FZ_BIDI_LTR, FZ_LANG_UNSET);
        fz_fill_text(fz, dev, text, fz_identity, fz_device_rgb(fz), color, 1.0f, fz_default_color_params);
        fz_drop_text(fz, text);
    }
}

dots_status dots_layout_draw(dots_ctx *ctx, const dots_layout *l, const dots_image *src, dots_image *out) {
    dots_status st = dots_image_copy(ctx, src, out);
    if (st == DOTS_OK) st = dots_draw_on(ctx, out, "Helvetica", draw_cells, (void *)l, "the layout");
    if (st != DOTS_OK) dots_image_free(out);
    return st;
}
