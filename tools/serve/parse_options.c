/*
 * parse_options.c - /v1/parse's options, given as query parameters or as
 * multipart form fields: the same names and ranges as `dotsocr parse`'s
 * options (underscores or dashes). Unknown keys and bad values are a 400.
 */
#include "server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void serve_parse_options_init(serve_parse_options *o, const dots_page_options *defaults) {
    memset(o, 0, sizeof *o);
    o->po = *defaults;
}

void serve_parse_options_free(serve_parse_options *o) {
    free(o->prompt);
    free(o->system);
    free(o->pages);
    memset(o, 0, sizeof *o);
}

static bool parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    if (!*s) return false;
    char *end;
    errno = 0;
    const long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

static bool parse_float(const char *s, double lo, double hi, double *out) {
    if (!*s) return false;
    char *end;
    errno = 0;
    const double v = strtod(s, &end);
    if (errno || *end || !(v >= lo && v <= hi)) return false;
    *out = v;
    return true;
}

static bool parse_bool(const char *s, bool *out) {
    if (!strcasecmp(s, "true") || !strcmp(s, "1") || !strcasecmp(s, "yes") || !*s) *out = true;
    else if (!strcasecmp(s, "false") || !strcmp(s, "0") || !strcasecmp(s, "no")) *out = false;
    else return false;
    return true;
}

static bool key_is(const char *key, const char *name) {
    for (; *key && *name; key++, name++)
        if (*key != *name && !(*key == '-' && *name == '_')) return false;
    return !*key && !*name;
}

bool serve_parse_option(serve_parse_options *o, const char *key, const char *v, serve_error *err) {
    int64_t i;
    double d;
    bool b;
    dots_page_options *po = &o->po;
    if (key_is(key, "mode")) {
        for (int m = 0; m < DOTS_MODE_COUNT; m++)
            if (strcmp(v, dots_prompt_mode_name((dots_prompt_mode)m)) == 0) {
                po->mode = (dots_prompt_mode)m;
                return true;
            }
        serve_error_set(err, 400, "mode", "unknown mode '%.60s' (layout-all, layout-only, ocr, grounding, web-parsing, "
                                          "scene-spotting, image-to-svg, general)", v);
        return false;
    }
    if (key_is(key, "bbox")) {
        long long x[4];
        int n = -1;
        if (sscanf(v, "%lld,%lld,%lld,%lld%n", &x[0], &x[1], &x[2], &x[3], &n) != 4 || n < 0 || v[n] ||
            x[0] < 0 || x[1] < 0 || x[2] > 1000000 || x[3] > 1000000 || x[0] >= x[2] || x[1] >= x[3]) {
            serve_error_set(err, 400, "bbox", "bbox must be x1,y1,x2,y2 with 0 <= x1 < x2 <= 1000000 (and y alike)");
            return false;
        }
        for (int k = 0; k < 4; k++) po->bbox[k] = (int32_t)x[k];
        return true;
    }
    if (key_is(key, "dpi")) {
        if (!parse_int(v, 36, 1200, &i)) goto range;
        po->dpi = (int32_t)i;
    } else if (key_is(key, "max_new_tokens") || key_is(key, "max_tokens")) {
        if (!parse_int(v, 1, INT32_MAX, &i)) goto range;
        po->max_new_tokens = (int32_t)i;
    } else if (key_is(key, "min_pixels") || key_is(key, "max_pixels")) {
        if (!parse_int(v, 3136, 11289600, &i)) goto range;
        if (key[1] == 'i') po->min_pixels = i;
        else po->max_pixels = i;
        if (po->min_pixels && po->max_pixels && po->min_pixels > po->max_pixels) {
            serve_error_set(err, 400, key, "min_pixels is over max_pixels");
            return false;
        }
    } else if (key_is(key, "temperature")) {
        if (!parse_float(v, 0, 2, &d)) goto range;
        po->temperature = (float)d;
    } else if (key_is(key, "top_p")) {
        if (!parse_float(v, 0, 1, &d) || d == 0) goto range;
        po->top_p = (float)d;
    } else if (key_is(key, "seed")) {
        if (!parse_int(v, 0, INT64_MAX, &i)) goto range;
        po->seed = (uint64_t)i;
    } else if (key_is(key, "prompt") || key_is(key, "system")) {
        char **dst = key_is(key, "prompt") ? &o->prompt : &o->system;
        free(*dst);
        if (!(*dst = strdup(v))) goto oom;
        if (dst == &o->prompt) po->prompt = o->prompt;
        else po->system = o->system;
    } else if (key_is(key, "pages")) {
        free(o->pages);
        if (!(o->pages = strdup(v))) goto oom;
    } else if (key_is(key, "fitz_preprocess")) {
        if (!parse_bool(v, &b)) goto boolean;
        po->fitz_preprocess = b;
    } else if (key_is(key, "layout_image")) {
        if (!parse_bool(v, &b)) goto boolean;
        o->layout_image = b;
    } else if (key_is(key, "json_constraint")) {
        if (!parse_bool(v, &b)) goto boolean;
        po->no_json_constraint = !b;
    } else if (key_is(key, "loop_guard")) {
        if (!parse_bool(v, &b)) goto boolean;
        po->no_loop_guard = !b;
    } else {
        serve_error_set(err, 400, key,
                        "unknown option '%.60s' (mode, bbox, dpi, pages, max_new_tokens, temperature, top_p, seed, "
                        "prompt, system, min_pixels, max_pixels, fitz_preprocess, layout_image, json_constraint, "
                        "loop_guard)", key);
        return false;
    }
    return true;
range:
    serve_error_set(err, 400, key, "bad value '%.60s' for %s", v, key);
    return false;
boolean:
    serve_error_set(err, 400, key, "%s must be true or false, not '%.60s'", key, v);
    return false;
oom:
    serve_error_set(err, 500, NULL, "out of memory");
    return false;
}

bool serve_parse_pages(const char *spec, int32_t n, int32_t **out, int32_t *n_out, serve_error *err) {
    *out = NULL;
    *n_out = 0;
    bool *want = calloc((size_t)(n > 0 ? n : 1), sizeof *want);
    if (!want) goto oom;
    if (!spec) {
        for (int32_t i = 0; i < n; i++) want[i] = true;
    } else {
        const char *p = spec;
        while (*p) {
            char *end;
            errno = 0;
            long a = strtol(p, &end, 10), b = a;
            if (end == p || errno) goto bad;
            p = end;
            if (*p == '-') {
                p++;
                b = strtol(p, &end, 10);
                if (end == p || errno) goto bad;
                p = end;
            }
            if (a < 1 || b < a || b > n) {
                serve_error_set(err, 400, "pages", "pages '%.60s' is outside the document's 1-%d", spec, n);
                free(want);
                return false;
            }
            for (long k = a; k <= b; k++) want[k - 1] = true;
            if (*p == ',') p++;
            else if (*p) goto bad;
        }
    }
    int32_t count = 0;
    for (int32_t i = 0; i < n; i++) count += want[i];
    if (count == 0) {
        serve_error_set(err, 400, "pages", "no page to parse");
        free(want);
        return false;
    }
    *out = malloc(sizeof **out * (size_t)count);
    if (!*out) goto oom;
    for (int32_t i = 0; i < n; i++)
        if (want[i]) (*out)[(*n_out)++] = i;
    free(want);
    return true;
bad:
    serve_error_set(err, 400, "pages", "pages must look like 1-3,5 (1-based), not '%.60s'", spec);
    free(want);
    return false;
oom:
    free(want);
    serve_error_set(err, 500, NULL, "out of memory");
    return false;
}
