/*
 * svg.c - dots.mocr's image-to-SVG answers (docs/mocr.md, "Image to SVG"):
 * the official extraction and repair of a truncated answer (pure string
 * rules, no schema), its rendering at the original image's size, and the
 * original-over-render comparison picture.
 *
 * The render uses MuPDF's SVG interpreter, which the engine already links
 * for PDFs, instead of cairosvg; a file it cannot read is reported and the
 * page's other outputs are still written.
 */
#include "post/svg.h"

#include "post/draw.h"

#include <ctype.h>
#include <mupdf/fitz.h>
#include <stdlib.h>
#include <string.h>

/* The first complete opening tag "<svg" + (whitespace or '>') ... '>' at or after from; its start, or NULL. */
static const char *open_tag(const char *s, const char **tag_end) {
    for (const char *p = strstr(s, "<svg"); p; p = strstr(p + 1, "<svg")) {
        const char c = p[4];
        if (c != '>' && !isspace((unsigned char)c) && c != '/') continue;
        const char *gt = strchr(p, '>');
        if (!gt) return NULL; /* cut inside the opening tag: no SVG */
        *tag_end = gt + 1;
        return p;
    }
    return NULL;
}

typedef struct tag_stack {
    char **names;
    size_t n, cap;
} tag_stack;

static bool push(tag_stack *st, const char *name, size_t len) {
    if (st->n == st->cap) {
        size_t cap = st->cap ? 2 * st->cap : 16;
        char **p = realloc(st->names, sizeof *p * cap);
        if (!p) return false;
        st->names = p;
        st->cap = cap;
    }
    return (st->names[st->n++] = strndup(name, len)) != NULL;
}

char *dots_svg_fix(const char *in) {
    size_t n = strlen(in);
    char *s = malloc(n + 3);
    if (!s) return NULL;
    memcpy(s, in, n + 1);
    /* 1: an answer cut inside a <path d="..." attribute gets its quote and '>' */
    const char *path = NULL;
    for (const char *p = strstr(s, "<path"); p; p = strstr(p + 1, "<path")) path = p;
    if (path) {
        const char *d = strstr(path, "d=\"");
        if (d && !strpbrk(d + 3, "\">")) {
            memcpy(s + n, "\">", 3);
            n += 2;
        }
    }
    /* 2: a trailing partial tag goes */
    char *lt = strrchr(s, '<');
    if (lt && !strchr(lt, '>')) *lt = '\0', n = (size_t)(lt - s);
    /* 3: the tags in order: opening ones on a stack, closing ones pop to their
     * name when it is there; self-closing ones and <?, <!-- are not tags here */
    tag_stack st = {0};
    bool ok = true;
    for (const char *p = s; ok && (p = strchr(p, '<'));) {
        const bool closing = p[1] == '/';
        const char *name = p + 1 + closing;
        if (!isalpha((unsigned char)*name)) {
            p++;
            continue;
        }
        const char *ne = name;
        while (*ne && (isalnum((unsigned char)*ne) || *ne == '_' || *ne == ':' || *ne == '-' || *ne == '.')) ne++;
        const char *gt = strchr(ne, '>');
        if (!gt) break;
        const size_t len = (size_t)(ne - name);
        if (closing) {
            for (size_t k = st.n; k-- > 0;)
                if (strlen(st.names[k]) == len && memcmp(st.names[k], name, len) == 0) {
                    while (st.n > k) free(st.names[--st.n]);
                    break;
                }
        } else if (gt[-1] != '/') {
            ok = push(&st, name, len);
        }
        p = gt + 1;
    }
    /* 4: close what is open, innermost first */
    size_t extra = 0;
    for (size_t k = 0; k < st.n; k++) extra += strlen(st.names[k]) + 3;
    char *out = ok ? malloc(n + extra + 1) : NULL;
    if (out) {
        memcpy(out, s, n);
        size_t o = n;
        for (size_t k = st.n; k-- > 0;) o += (size_t)sprintf(out + o, "</%s>", st.names[k]);
        out[o] = '\0';
    }
    for (size_t k = 0; k < st.n; k++) free(st.names[k]);
    free(st.names);
    free(s);
    return out;
}

dots_status dots_svg_extract(dots_ctx *ctx, const char *response, char **out) {
    *out = NULL;
    /* every "svg:" goes, then the surrounding whitespace */
    size_t n = strlen(response);
    char *t = malloc(n + 1), *o = t;
    if (!t) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    for (const char *p = response; *p;) {
        if (strncmp(p, "svg:", 4) == 0) {
            p += 4;
            continue;
        }
        *o++ = *p++;
    }
    *o = '\0';
    char *a = t, *b = o;
    while (*a && isspace((unsigned char)*a)) a++;
    while (b > a && isspace((unsigned char)b[-1])) b--;
    *b = '\0';
    const char *tag_end = NULL, *start = open_tag(a, &tag_end);
    if (!start) {
        free(t);
        return DOTS_OK; /* no SVG in the answer */
    }
    const char *close = strstr(tag_end, "</svg>");
    if (close) { /* complete: taken as it is, up to the first </svg> */
        *out = strndup(start, (size_t)(close + 6 - start));
    } else {
        *out = dots_svg_fix(start);
    }
    free(t);
    return *out ? DOTS_OK : DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
}

char *dots_svg_markdown(const char *response) {
    static const char head[] = "# Generated SVG Code\n\n```xml\n", tail[] = "\n```";
    char *out = malloc(sizeof head + strlen(response) + sizeof tail);
    if (out) sprintf(out, "%s%s%s", head, response, tail);
    return out;
}

/* The SVG as MuPDF gets it, without the inputs its 1.19 parser never
 * finishes on (found by fuzz_answer):
 *  - its number lexer takes '+' as the start of a number but does not step
 *    over it, so path data or point lists with "+1" loop forever while the
 *    path grows: every '+' that starts a number becomes a space (a space
 *    before an unsigned number reads the same; a '+' after an exponent's
 *    'e' stays);
 *  - its point-list loop (polygon, polyline) steps over nothing but
 *    numbers, spaces and commas: any other character in a points="..."
 *    value (an entity's '&' included) becomes a space.
 * NULL on OOM. */
static bool number_char(char c) {
    return (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E' || c == ',' || c == ' ' ||
           c == '\t' || c == '\n' || c == '\r';
}

static char *svg_for_mupdf(const char *svg) {
    char *copy = strdup(svg);
    if (!copy) return NULL;
    for (char *p = copy; *p; p++)
        if (*p == '+' && (p == copy || (p[-1] != 'e' && p[-1] != 'E'))) *p = ' ';
    for (char *p = strstr(copy, "points"); p; p = strstr(p + 1, "points")) {
        if (p > copy && !(p[-1] == ' ' || p[-1] == '\t' || p[-1] == '\n' || p[-1] == '\r')) continue;
        char *q = p + 6;
        while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r') q++;
        if (*q != '=') continue;
        q++;
        while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r') q++;
        if (*q != '"' && *q != '\'') continue;
        const char quote = *q++;
        for (; *q && *q != quote; q++)
            if (!number_char(*q)) *q = ' ';
    }
    return copy;
}

dots_status dots_svg_render(dots_ctx *ctx, const char *svg, int32_t width, int32_t height, dots_image *out, char *why,
                            size_t why_cap) {
    memset(out, 0, sizeof *out);
    why[0] = '\0';
    if (width <= 0 || height <= 0 || (int64_t)width * height > (INT64_C(1) << 28))
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "svg render: bad size %d x %d", width, height);
    uint8_t *rgb = malloc((size_t)width * (size_t)height * 3);
    if (!rgb) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    memset(rgb, 255, (size_t)width * (size_t)height * 3); /* a white background */
    char *safe = svg_for_mupdf(svg);
    fz_context *fz = safe ? fz_new_context(NULL, NULL, 64 << 20) : NULL;
    if (!fz) {
        free(safe);
        free(rgb);
        return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "cannot create a MuPDF context");
    }
    bool rendered = false;
    fz_buffer *buf = NULL;
    fz_stream *stm = NULL;
    fz_document *doc = NULL;
    fz_page *page = NULL;
    fz_pixmap *pix = NULL;
    fz_device *dev = NULL;
    fz_var(buf), fz_var(stm), fz_var(doc), fz_var(page), fz_var(pix), fz_var(dev), fz_var(rendered);
    fz_try(fz) {
        fz_register_document_handlers(fz);
        buf = fz_new_buffer_from_copied_data(fz, (const unsigned char *)safe, strlen(safe));
        stm = fz_open_buffer(fz, buf);
        doc = fz_open_document_with_stream(fz, "image/svg+xml", stm);
        page = fz_load_page(fz, doc, 0);
        fz_rect r = fz_bound_page(fz, page);
        if (r.x1 - r.x0 <= 0 || r.y1 - r.y0 <= 0) fz_throw(fz, FZ_ERROR_GENERIC, "the SVG has no area");
        pix = fz_new_pixmap_with_data(fz, fz_device_rgb(fz), width, height, NULL, 0, width * 3, rgb);
        fz_matrix m = fz_concat(fz_translate(-r.x0, -r.y0), fz_scale(width / (r.x1 - r.x0), height / (r.y1 - r.y0)));
        dev = fz_new_draw_device(fz, fz_identity, pix);
        fz_run_page(fz, page, dev, m, NULL);
        fz_close_device(fz, dev);
        rendered = true;
    }
    fz_always(fz) {
        fz_drop_device(fz, dev);
        fz_drop_pixmap(fz, pix);
        fz_drop_page(fz, page);
        fz_drop_document(fz, doc);
        fz_drop_stream(fz, stm);
        fz_drop_buffer(fz, buf);
    }
    fz_catch(fz) {
        snprintf(why, why_cap, "%s", fz_caught_message(fz));
    }
    fz_drop_context(fz);
    free(safe);
    if (!rendered) {
        free(rgb);
        return DOTS_OK; /* why says what went wrong */
    }
    out->width_px = width;
    out->height_px = height;
    out->rgb = rgb;
    return DOTS_OK;
}

/* A label in white on a black box, right-aligned at (right, top). */
static void label(fz_context *fz, fz_device *dev, fz_font *font, const char *s, float right, float top) {
    const float size = 24, pad = 10, w = (float)strlen(s) * size * 0.62f;
    fz_path *box = fz_new_path(fz);
    fz_rectto(fz, box, right - w - 2 * pad, top, right, top + size + 2 * pad);
    const float black[3] = {0, 0, 0}, white[3] = {1, 1, 1};
    fz_fill_path(fz, dev, box, 0, fz_identity, fz_device_rgb(fz), black, 180 / 255.0f, fz_default_color_params);
    fz_drop_path(fz, box);
    fz_text *text = fz_new_text(fz);
    fz_show_string(fz, text, font, fz_make_matrix(size, 0, 0, -size, right - w - pad, top + pad + size * 0.85f), s, 0, 0,
                   FZ_BIDI_LTR, FZ_LANG_UNSET);
    fz_fill_text(fz, dev, text, fz_identity, fz_device_rgb(fz), white, 1.0f, fz_default_color_params);
    fz_drop_text(fz, text);
}

static void draw_labels(fz_context *fz, fz_device *dev, fz_font *font, void *user) {
    const int32_t *at = user; /* width, the render's top */
    label(fz, dev, font, "Origin", (float)at[0] - 10, 10);
    label(fz, dev, font, "Generated", (float)at[0] - 10, (float)(at[1] + 10));
}

dots_status dots_svg_comparison(dots_ctx *ctx, const dots_image *orig, const dots_image *render, dots_image *out) {
    memset(out, 0, sizeof *out);
    if (orig->width_px != render->width_px)
        return DOTS_FAIL(ctx, DOTS_ERR_INTERNAL, "svg comparison: widths %d and %d", orig->width_px, render->width_px);
    const int32_t w = orig->width_px, gap = 10, h = orig->height_px + gap + render->height_px;
    uint8_t *rgb = malloc((size_t)w * (size_t)h * 3);
    if (!rgb) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    const size_t row = (size_t)w * 3;
    memcpy(rgb, orig->rgb, row * (size_t)orig->height_px);
    memset(rgb + row * (size_t)orig->height_px, 255, row * (size_t)gap);
    memcpy(rgb + row * (size_t)(orig->height_px + gap), render->rgb, row * (size_t)render->height_px);
    *out = (dots_image){.width_px = w, .height_px = h, .rgb = rgb};
    int32_t at[2] = {w, orig->height_px + gap};
    dots_status st = dots_draw_on(ctx, out, "Helvetica-Bold", draw_labels, at, "the comparison");
    if (st != DOTS_OK) dots_image_free(out);
    return st;
}
