/*
 * scene.c - dots.mocr's scene-text answers (docs/mocr.md, "Scene text"):
 * "(x1, y1), (x2, y2), (x3, y3), (x4, y4) text" instances, their points
 * mapped from the model's pixels to the source's, and the official .json,
 * Markdown and drawing.
 */
#include "post/scene.h"

#include "core/strbuf.h"
#include "post/layout.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void sb_printf(dots_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(dots_strbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *t = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!t) {
        b->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(t, (size_t)n + 1, fmt, ap);
    va_end(ap);
    dots_strbuf_add(b, t, (size_t)n);
    free(t);
}

/* The buffer's string (NULL on OOM); b is spent. */
static char *sb_take(dots_strbuf *b) {
    if (b->oom) {
        free(b->p);
        return NULL;
    }
    return b->p ? b->p : strdup("");
}

void dots_scene_free(dots_scene *s) {
    if (!s) return;
    for (int64_t i = 0; i < s->n; i++) free(s->items[i].text);
    free(s->items);
    memset(s, 0, sizeof *s);
}

static size_t skip_ws(const char *s, size_t i, size_t n) {
    while (i < n && isspace((unsigned char)s[i])) i++;
    return i;
}

/* Unsigned decimal digits at i; false if none (or too many to hold). */
static bool digits(const char *s, size_t *i, size_t n, double *v) {
    size_t j = *i;
    double x = 0;
    while (j < n && isdigit((unsigned char)s[j]) && j - *i < 15) x = x * 10 + (s[j++] - '0');
    if (j == *i || (j < n && isdigit((unsigned char)s[j]))) return false;
    *i = j;
    *v = x;
    return true;
}

/* "(digits, digits)" at i, whitespace allowed between the tokens; *end after ')'. */
static bool pair_at(const char *s, size_t i, size_t n, double *x, double *y, size_t *end) {
    if (i >= n || s[i] != '(') return false;
    i = skip_ws(s, i + 1, n);
    if (!digits(s, &i, n, x)) return false;
    i = skip_ws(s, i, n);
    if (i >= n || s[i] != ',') return false;
    i = skip_ws(s, i + 1, n);
    if (!digits(s, &i, n, y)) return false;
    i = skip_ws(s, i, n);
    if (i >= n || s[i] != ')') return false;
    *end = i + 1;
    return true;
}

/* Four pairs separated by commas at i. */
static bool quad_at(const char *s, size_t i, size_t n, double pts[8], size_t *end) {
    for (int k = 0; k < 4; k++) {
        if (k) {
            i = skip_ws(s, i, n);
            if (i >= n || s[i] != ',') return false;
            i = skip_ws(s, i + 1, n);
        }
        if (!pair_at(s, i, n, &pts[2 * k], &pts[2 * k + 1], &i)) return false;
    }
    *end = i;
    return true;
}

dots_status dots_scene_parse(dots_ctx *ctx, const char *r, size_t n, dots_scene *out) {
    memset(out, 0, sizeof *out);
    int64_t cap = 0;
    for (size_t i = 0; i < n;) {
        double pts[8];
        size_t end;
        if (r[i] != '(' || !quad_at(r, i, n, pts, &end)) {
            i++;
            continue;
        }
        /* the text runs to the next "(digits, digits)" or the end, then is stripped */
        size_t t = end, stop = n;
        for (size_t k = end; k < n; k++) {
            double x, y;
            size_t e;
            if (r[k] == '(' && pair_at(r, k, n, &x, &y, &e)) {
                stop = k;
                break;
            }
        }
        i = stop;
        size_t a = t, b = stop;
        while (a < b && isspace((unsigned char)r[a])) a++;
        while (b > a && isspace((unsigned char)r[b - 1])) b--;
        if (a == b) continue; /* instances without text are dropped */
        if (out->n == cap) {
            cap = cap ? 2 * cap : 16;
            dots_scene_item *p = realloc(out->items, sizeof *p * (size_t)cap);
            if (!p) goto oom;
            out->items = p;
        }
        dots_scene_item *it = &out->items[out->n];
        memcpy(it->points, pts, sizeof pts);
        if (!(it->text = strndup(r + a, b - a))) goto oom;
        out->n++;
    }
    return DOTS_OK;
oom:
    dots_scene_free(out);
    return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
}

void dots_scene_rescale(dots_scene *s, int32_t model_w, int32_t model_h, int32_t src_w, int32_t src_h) {
    for (int64_t i = 0; i < s->n; i++)
        for (int k = 0; k < 8; k++)
            s->items[i].points[k] = k % 2 ? dots_bbox_to_source_px(s->items[i].points[k], model_h, src_h)
                                          : dots_bbox_to_source_px(s->items[i].points[k], model_w, src_w);
}

char *dots_scene_to_json(const dots_scene *s) {
    dots_strbuf b = {0};
    dots_strbuf_str(&b, s->n ? "[\n" : "[]");
    for (int64_t i = 0; i < s->n; i++) {
        dots_strbuf_str(&b, "  {\n    \"points\": [\n");
        for (int k = 0; k < 8; k++) sb_printf(&b, "      %lld%s\n", (long long)s->items[i].points[k], k < 7 ? "," : "");
        char *q = dots_json_quote(s->items[i].text);
        if (!q) {
            free(b.p);
            return NULL;
        }
        sb_printf(&b, "    ],\n    \"text\": %s\n  }%s\n", q, i + 1 < s->n ? "," : "");
        free(q);
    }
    if (s->n) dots_strbuf_str(&b, "]");
    return sb_take(&b);
}

char *dots_scene_raw_json(const char *response) {
    char *q = dots_json_quote(response);
    if (!q) return NULL;
    char *out = malloc(strlen(q) + 16);
    if (out) sprintf(out, "{\n  \"raw\": %s\n}", q);
    free(q);
    return out;
}

char *dots_scene_markdown(const dots_scene *s) {
    dots_strbuf b = {0};
    dots_strbuf_str(&b, "# Scene Text Results\n\n");
    for (int64_t i = 0; i < s->n; i++) {
        const double *p = s->items[i].points;
        sb_printf(&b, "%s(%lld, %lld), (%lld, %lld), (%lld, %lld), (%lld, %lld) %s\n", i ? "\n" : "", (long long)p[0],
                           (long long)p[1], (long long)p[2], (long long)p[3], (long long)p[4], (long long)p[5], (long long)p[6],
                           (long long)p[7], s->items[i].text);
    }
    return sb_take(&b);
}

#include "post/draw.h"

static void draw_quads(fz_context *fz, fz_device *dev, fz_font *font, void *user) {
    const dots_scene *s = user;
    const float green[3] = {0, 1, 0}, black[3] = {0, 0, 0}, white[3] = {1, 1, 1};
    fz_stroke_state *stroke = fz_new_stroke_state(fz);
    stroke->linewidth = 2;
    fz_try(fz) {
        for (int64_t i = 0; i < s->n; i++) {
            const double *p = s->items[i].points;
            fz_path *path = fz_new_path(fz);
            fz_moveto(fz, path, (float)p[0], (float)p[1]);
            for (int k = 1; k < 4; k++) fz_lineto(fz, path, (float)p[2 * k], (float)p[2 * k + 1]);
            fz_closepath(fz, path);
            fz_stroke_path(fz, dev, path, stroke, fz_identity, fz_device_rgb(fz), green, 1.0f, fz_default_color_params);
            fz_drop_path(fz, path);
            /* the label: the first 40 characters (+ "...") at the first point */
            char lab[180];
            const char *t = s->items[i].text;
            size_t bytes_40 = 0;
            for (int chars = 0; t[bytes_40] && chars < 40; chars++)
                do bytes_40++;
                while ((t[bytes_40] & 0xC0) == 0x80);
            snprintf(lab, sizeof lab, "%.*s%s", (int)bytes_40, t, t[bytes_40] ? "..." : "");
            const float size = 14, w = (float)strlen(lab) * size * 0.55f;
            fz_path *box = fz_new_path(fz);
            fz_rectto(fz, box, (float)p[0], (float)p[1] - size - 4, (float)p[0] + w + 4, (float)p[1]);
            fz_fill_path(fz, dev, box, 0, fz_identity, fz_device_rgb(fz), black, 1.0f, fz_default_color_params);
            fz_drop_path(fz, box);
            fz_text *text = fz_new_text(fz);
            fz_show_string(fz, text, font, fz_make_matrix(size, 0, 0, -size, (float)p[0] + 2, (float)p[1] - 4), lab, 0, 0,
                           FZ_BIDI_LTR, FZ_LANG_UNSET);
            fz_fill_text(fz, dev, text, fz_identity, fz_device_rgb(fz), white, 1.0f, fz_default_color_params);
            fz_drop_text(fz, text);
        }
    }
    fz_always(fz) fz_drop_stroke_state(fz, stroke);
    fz_catch(fz) fz_rethrow(fz);
}

dots_status dots_scene_draw(dots_ctx *ctx, const dots_scene *s, const dots_image *src, dots_image *out) {
    dots_status st = dots_image_copy(ctx, src, out);
    if (st == DOTS_OK) st = dots_draw_on(ctx, out, "Helvetica", draw_quads, (void *)s, "the scene text");
    if (st != DOTS_OK) dots_image_free(out);
    return st;
}
