/*
 * chat_request.c - see chat_request.h. Every field is checked for its type
 * and range: a wrong one is a 400 that names it, never a default.
 */
#include "chat_request.h"

#include "base64.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void serve_error_set(serve_error *e, int status, const char *param, const char *fmt, ...) {
    e->status = status;
    e->param = param;
    e->type = status == 401   ? "authentication_error"
              : status == 404 ? "not_found_error"
              : status == 429 ? "rate_limit_error"
              : status >= 500 ? "server_error"
                              : "invalid_request_error";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

void serve_chat_request_free(serve_chat_request *r) {
    if (!r) return;
    free(r->image);
    free(r->system);
    free(r->before_image);
    free(r->prompt);
    free(r->model);
    memset(r, 0, sizeof *r);
}

static bool starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

dots_prompt_mode serve_mode_of_prompt(const char *prompt) {
    static const dots_prompt_mode exact[] = {DOTS_MODE_LAYOUT_ALL, DOTS_MODE_LAYOUT_ONLY, DOTS_MODE_OCR,
                                             DOTS_MODE_WEB_PARSING, DOTS_MODE_SCENE_SPOTTING};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (strcmp(prompt, dots_prompt_text(exact[i])) == 0) return exact[i];
    if (starts_with(prompt, dots_prompt_text(DOTS_MODE_GROUNDING))) return DOTS_MODE_GROUNDING;
    /* image-to-svg's text up to its {width} placeholder, then any size */
    const char *svg = dots_prompt_text(DOTS_MODE_IMAGE_TO_SVG), *brace = strchr(svg, '{');
    if (brace && strncmp(prompt, svg, (size_t)(brace - svg)) == 0) return DOTS_MODE_IMAGE_TO_SVG;
    return DOTS_MODE_GENERAL;
}

/* The text of a content value: a string, or a list of text parts joined with
 * "\n" (image parts go to *image_url, counted in *n_images). */
typedef struct text_acc {
    char *p;
    size_t n;
    bool any;
} text_acc;

static bool text_add(text_acc *t, const char *s, size_t n) {
    char *q = realloc(t->p, t->n + n + 2);
    if (!q) return false;
    t->p = q;
    if (t->any) t->p[t->n++] = '\n';
    memcpy(t->p + t->n, s, n);
    t->n += n;
    t->p[t->n] = '\0';
    t->any = true;
    return true;
}

static bool read_content(json_t *content, const char *role, text_acc *t, json_t **image_url, int *n_images,
                         serve_error *err) {
    if (json_is_string(content)) {
        if (!text_add(t, json_string_value(content), json_string_length(content))) goto oom;
        return true;
    }
    if (json_is_null(content) && strcmp(role, "user") != 0) return true;
    if (!json_is_array(content)) {
        serve_error_set(err, 400, "messages", "the %s message's content must be a string or a list of parts", role);
        return false;
    }
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part) {
        const char *type = json_string_value(json_object_get(part, "type"));
        if (!json_is_object(part) || !type) {
            serve_error_set(err, 400, "messages", "content part %zu of the %s message has no \"type\"", i, role);
            return false;
        }
        if (strcmp(type, "text") == 0) {
            json_t *text = json_object_get(part, "text");
            if (!json_is_string(text)) {
                serve_error_set(err, 400, "messages", "text part %zu of the %s message has no string \"text\"", i, role);
                return false;
            }
            if (!text_add(t, json_string_value(text), json_string_length(text))) goto oom;
        } else if (strcmp(type, "image_url") == 0) {
            if (strcmp(role, "user") != 0) {
                serve_error_set(err, 400, "messages", "only the user message may hold an image (the %s message has one)", role);
                return false;
            }
            json_t *iu = json_object_get(part, "image_url");
            json_t *url = json_is_object(iu) ? json_object_get(iu, "url") : iu; /* {"url": ...} or the URL itself */
            if (!json_is_string(url)) {
                serve_error_set(err, 400, "messages", "image part %zu has no string \"image_url.url\"", i);
                return false;
            }
            *image_url = url;
            (*n_images)++;
        } else {
            serve_error_set(err, 400, "messages", "content part type \"%.40s\" is not supported (text and image_url are)",
                            type);
            return false;
        }
    }
    return true;
oom:
    serve_error_set(err, 500, NULL, "out of memory");
    return false;
}

/* data:[<mime>][;params];base64,<data> -> bytes */
static bool read_data_url(const char *url, size_t len, size_t max_bytes, serve_chat_request *out, serve_error *err) {
    if (starts_with(url, "http://") || starts_with(url, "https://") || starts_with(url, "file:")) {
        serve_error_set(err, 400, "messages",
                        "image URLs are not fetched (the server has no network access by design): send the image as a "
                        "data URL (data:image/png;base64,...)");
        return false;
    }
    const char *comma = memchr(url, ',', len);
    if (!starts_with(url, "data:") || !comma) {
        serve_error_set(err, 400, "messages", "the image URL is not a data URL (data:image/png;base64,...)");
        return false;
    }
    const size_t head = (size_t)(comma - url);
    if (head < 12 || memcmp(comma - 7, ";base64", 7) != 0) {
        serve_error_set(err, 400, "messages", "the image data URL is not base64 (expected data:<type>;base64,<data>)");
        return false;
    }
    const size_t n = len - head - 1;
    if (n / 4 * 3 > max_bytes + 3) {
        serve_error_set(err, 413, "messages", "the image is over the server's limit of %zu bytes", max_bytes);
        return false;
    }
    bool oom;
    out->image = serve_base64_decode(comma + 1, n, &out->image_len, &oom);
    if (!out->image) {
        if (oom) serve_error_set(err, 500, NULL, "out of memory");
        else serve_error_set(err, 400, "messages", "the image data URL holds invalid base64");
        return false;
    }
    if (out->image_len == 0) {
        serve_error_set(err, 400, "messages", "the image data URL is empty");
        return false;
    }
    return true;
}

static bool read_number(json_t *root, const char *key, double lo, double hi, bool lo_open, bool *has, double *v,
                        serve_error *err) {
    json_t *x = json_object_get(root, key);
    if (!x || json_is_null(x)) return true;
    if (!json_is_number(x)) {
        serve_error_set(err, 400, key, "\"%s\" must be a number", key);
        return false;
    }
    const double d = json_number_value(x);
    if (!isfinite(d) || d < lo || d > hi || (lo_open && d == lo)) {
        serve_error_set(err, 400, key, "\"%s\" is %g; it must be in %s%g, %g]", key, d, lo_open ? "(" : "[", lo, hi);
        return false;
    }
    *has = true;
    *v = d;
    return true;
}

static bool read_params(json_t *root, serve_chat_request *out, serve_error *err) {
    /* max_completion_tokens wins over the older max_tokens, as in vLLM */
    const char *keys[2] = {"max_completion_tokens", "max_tokens"};
    for (int i = 0; i < 2; i++) {
        json_t *x = json_object_get(root, keys[i]);
        if (!x || json_is_null(x)) continue;
        if (!json_is_integer(x) || json_integer_value(x) < 1) {
            serve_error_set(err, 400, keys[i], "\"%s\" must be a positive integer", keys[i]);
            return false;
        }
        const json_int_t v = json_integer_value(x);
        if (!out->max_tokens) out->max_tokens = v > INT32_MAX ? INT32_MAX : (int64_t)v; /* the context bounds it anyway */
    }
    double d = 0;
    if (!read_number(root, "temperature", 0, 2, false, &out->has_temperature, &d, err)) return false;
    out->temperature = (float)d;
    if (!read_number(root, "top_p", 0, 1, true, &out->has_top_p, &d, err)) return false;
    out->top_p = (float)d;
    json_t *x = json_object_get(root, "seed");
    if (x && !json_is_null(x)) {
        if (!json_is_integer(x)) {
            serve_error_set(err, 400, "seed", "\"seed\" must be an integer");
            return false;
        }
        out->has_seed = true;
        out->seed = (uint64_t)json_integer_value(x);
    }
    x = json_object_get(root, "n");
    if (x && !json_is_null(x) && (!json_is_integer(x) || json_integer_value(x) != 1)) {
        serve_error_set(err, 400, "n", "\"n\" must be 1: one answer per request");
        return false;
    }
    x = json_object_get(root, "stream");
    if (x && !json_is_null(x)) {
        if (!json_is_boolean(x)) {
            serve_error_set(err, 400, "stream", "\"stream\" must be true or false");
            return false;
        }
        out->stream = json_is_true(x);
    }
    x = json_object_get(root, "stream_options");
    if (x && !json_is_null(x)) {
        json_t *u = json_object_get(x, "include_usage");
        if (!json_is_object(x) || (u && !json_is_boolean(u))) {
            serve_error_set(err, 400, "stream_options", "\"stream_options\" must be {\"include_usage\": true|false}");
            return false;
        }
        out->include_usage = json_is_true(u);
    }
    /* options that would change the answer and that this server does not
     * implement are refused rather than silently ignored */
    x = json_object_get(root, "stop");
    if (x && !json_is_null(x) && !(json_is_array(x) && json_array_size(x) == 0)) {
        serve_error_set(err, 400, "stop", "stop sequences are not supported (generation stops at the model's EOS)");
        return false;
    }
    const char *unsupported[] = {"tools", "functions", "logit_bias"};
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++) {
        x = json_object_get(root, unsupported[i]);
        if (x && !json_is_null(x) && !(json_is_array(x) && json_array_size(x) == 0) &&
            !(json_is_object(x) && json_object_size(x) == 0)) {
            serve_error_set(err, 400, unsupported[i], "\"%s\" is not supported", unsupported[i]);
            return false;
        }
    }
    x = json_object_get(root, "logprobs");
    if (json_is_true(x)) {
        serve_error_set(err, 400, "logprobs", "logprobs are not supported");
        return false;
    }
    x = json_object_get(root, "model");
    if (x && !json_is_null(x)) {
        if (!json_is_string(x)) {
            serve_error_set(err, 400, "model", "\"model\" must be a string");
            return false;
        }
        if (!(out->model = strdup(json_string_value(x)))) {
            serve_error_set(err, 500, NULL, "out of memory");
            return false;
        }
    }
    return true;
}

static bool read_messages(json_t *root, size_t max_image_bytes, serve_chat_request *out, serve_error *err) {
    json_t *msgs = json_object_get(root, "messages");
    if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
        serve_error_set(err, 400, "messages", "\"messages\" must be a non-empty list");
        return false;
    }
    text_acc sys = {0}, user = {0};
    json_t *image_url = NULL;
    int n_images = 0, n_user = 0, n_sys = 0;
    bool ok = false;
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        if (!json_is_object(m) || !role) {
            serve_error_set(err, 400, "messages", "message %zu has no string \"role\"", i);
            goto done;
        }
        json_t *content = json_object_get(m, "content");
        if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            if (n_user) {
                serve_error_set(err, 400, "messages", "the system message must come before the user message");
                goto done;
            }
            n_sys++;
            if (!read_content(content, "system", &sys, &image_url, &n_images, err)) goto done;
        } else if (strcmp(role, "user") == 0) {
            if (n_user++) {
                serve_error_set(err, 400, "messages",
                                "one user message per request (a page and its prompt); conversations are not supported");
                goto done;
            }
            if (!content) {
                serve_error_set(err, 400, "messages", "the user message has no \"content\"");
                goto done;
            }
            if (!read_content(content, "user", &user, &image_url, &n_images, err)) goto done;
        } else {
            serve_error_set(err, 400, "messages",
                            "role \"%.40s\" is not supported: send an optional system message and one user message", role);
            goto done;
        }
    }
    if (!n_user) {
        serve_error_set(err, 400, "messages", "there is no user message");
        goto done;
    }
    if (n_images == 0) {
        serve_error_set(err, 400, "messages", "the user message has no image (an image_url part with a data URL)");
        goto done;
    }
    if (n_images > 1) {
        serve_error_set(err, 400, "messages", "the user message has %d images; the model reads one image per request",
                        n_images);
        goto done;
    }
    const char *text = user.p ? user.p : "";
    const char *ph = strstr(text, SERVE_IMAGE_PLACEHOLDER);
    const size_t phl = strlen(SERVE_IMAGE_PLACEHOLDER);
    if (ph && strstr(ph + phl, SERVE_IMAGE_PLACEHOLDER)) {
        serve_error_set(err, 400, "messages", "the text holds more %s placeholders than there are images",
                        SERVE_IMAGE_PLACEHOLDER);
        goto done;
    }
    /* a lone image marker would add a token the image rows do not fill */
    const char *markers[3] = {"<|img|>", "<|imgpad|>", "<|endofimg|>"};
    for (int k = 0; k < 3; k++) {
        const char *hit = strstr(text, markers[k]);
        while (hit && ph && hit >= ph && hit < ph + phl) hit = strstr(ph + phl, markers[k]);
        if (hit) {
            serve_error_set(err, 400, "messages", "the text holds a stray %s outside the image placeholder %s", markers[k],
                            SERVE_IMAGE_PLACEHOLDER);
            goto done;
        }
    }
    if (ph) {
        out->before_image = strndup(text, (size_t)(ph - text));
        out->prompt = strdup(ph + phl);
    } else { /* vLLM puts the placeholder and "\n" in front */
        out->before_image = strdup("");
        out->prompt = malloc(strlen(text) + 2);
        if (out->prompt) sprintf(out->prompt, "%s%s", user.any ? "\n" : "", text);
    }
    if (n_sys && !(out->system = strdup(sys.p ? sys.p : ""))) out->before_image = (free(out->before_image), NULL);
    if (!out->before_image || !out->prompt) {
        serve_error_set(err, 500, NULL, "out of memory");
        goto done;
    }
    out->mode = serve_mode_of_prompt(out->prompt);
    ok = read_data_url(json_string_value(image_url), json_string_length(image_url), max_image_bytes, out, err);
done:
    free(sys.p);
    free(user.p);
    return ok;
}

bool serve_chat_request_parse(const char *body, size_t len, size_t max_image_bytes, serve_chat_request *out,
                              serve_error *err) {
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (!root) {
        serve_error_set(err, 400, NULL, "the body is not valid JSON: %s (line %d, column %d)", jerr.text, jerr.line,
                        jerr.column);
        return false;
    }
    bool ok = json_is_object(root);
    if (!ok) serve_error_set(err, 400, NULL, "the body must be a JSON object");
    ok = ok && read_params(root, out, err) && read_messages(root, max_image_bytes, out, err);
    json_decref(root);
    if (!ok) serve_chat_request_free(out);
    return ok;
}
