/*
 * replies.c - the JSON the server answers, in OpenAI's shapes for the chat
 * endpoints (docs/serving.md) and dotsocr's own for /v1/parse.
 */
#include "server.h"

#include "base64.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char *dump(json_t *o) {
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(o);
    return s;
}

/* the text of a run as a JSON string: jansson refuses invalid UTF-8, which
 * the decoded answer never is (broken bytes become U+FFFD) */
static json_t *text_value(const char *s, size_t n) {
    json_t *v = json_stringn(s ? s : "", s ? n : 0);
    return v ? v : json_string("");
}

char *serve_reply_error(const serve_error *e) {
    return dump(json_pack("{s:{s:s,s:s,s:o,s:i}}", "error", "message", e->message, "type", e->type ? e->type : "error",
                          "param", e->param ? json_string(e->param) : json_null(), "code", e->status));
}

const char *serve_finish_reason(dots_stop_reason stop) {
    switch (stop) {
    case DOTS_STOP_EOS: return "stop";
    case DOTS_STOP_MAX_TOKENS:
    case DOTS_STOP_CONTEXT:
    case DOTS_STOP_LOOP_GUARD: return "length"; /* cut short: the answer is incomplete */
    default: return "abort";
    }
}

static json_t *usage(const dots_run_result *r) {
    return json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)r->n_prompt_tokens, "completion_tokens",
                     (json_int_t)r->n_tokens, "total_tokens", (json_int_t)(r->n_prompt_tokens + r->n_tokens));
}

char *serve_reply_completion(const char *id, const char *model, const dots_run_result *r) {
    return dump(json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:{s:s,s:o},s:n,s:s,s:s}],s:o}", "id", id, "object",
                          "chat.completion", "created", (json_int_t)time(NULL), "model", model, "choices", "index", 0,
                          "message", "role", "assistant", "content", text_value(r->text, r->text_len), "logprobs",
                          "finish_reason", serve_finish_reason(r->stop), "stop_reason", dots_stop_reason_name(r->stop),
                          "usage", usage(r)));
}

char *serve_reply_chunk(const char *id, const char *model, bool first, const char *content, size_t len,
                        const char *finish_reason, const dots_run_result *r) {
    json_t *o = json_pack("{s:s,s:s,s:I,s:s}", "id", id, "object", "chat.completion.chunk", "created",
                          (json_int_t)time(NULL), "model", model);
    if (!o) return NULL;
    if (r) { /* the usage chunk: no choices */
        json_object_set_new(o, "choices", json_array());
        json_object_set_new(o, "usage", usage(r));
    } else {
        json_t *delta = json_object();
        if (first) json_object_set_new(delta, "role", json_string("assistant"));
        if (content || first) json_object_set_new(delta, "content", text_value(content, len));
        json_object_set_new(o, "choices",
                            json_pack("[{s:i,s:o,s:n,s:o}]", "index", 0, "delta", delta, "logprobs", "finish_reason",
                                      finish_reason ? json_string(finish_reason) : json_null()));
    }
    char *body = dump(o);
    if (!body) return NULL;
    char *ev = malloc(strlen(body) + 9);
    if (ev) sprintf(ev, "data: %s\n\n", body);
    free(body);
    return ev;
}

char *serve_reply_models(const serve_server *srv) {
    return dump(json_pack("{s:s,s:[{s:s,s:s,s:I,s:s}]}", "object", "list", "data", "id", srv->cfg.model_name, "object",
                          "model", "created", (json_int_t)srv->t_start, "owned_by", "dotsocr"));
}

char *serve_reply_health(serve_server *srv) {
    serve_stats s;
    serve_sched_stats(srv->sched, &s);
    return dump(json_pack("{s:s,s:s,s:{s:i,s:i,s:i,s:i},s:{s:I,s:I,s:I,s:I,s:I}}", "status",
                          s.draining ? "draining" : "ok", "model", srv->cfg.model_name, "queue", "waiting", s.queued,
                          "max", s.max_queue, "running", s.running, "batch", s.batch, "totals", "completed",
                          (json_int_t)s.completed, "cancelled", (json_int_t)s.cancelled, "failed",
                          (json_int_t)s.failed, "rejected", (json_int_t)s.rejected, "tokens", (json_int_t)s.tokens));
}

int serve_status_http(dots_status st) {
    switch (st) {
    case DOTS_ERR_INVALID_ARGUMENT:
    case DOTS_ERR_FORMAT:
    case DOTS_ERR_LIMIT:
    case DOTS_ERR_UNSUPPORTED: return 400;
    case DOTS_ERR_OUT_OF_MEMORY:
    case DOTS_ERR_CANCELLED: return 503; /* transient: the client retries */
    default: return 500;
    }
}

static json_t *page_json(const dots_page_result *r, bool layout_image) {
    json_t *p = json_pack("{s:i,s:s,s:i,s:i,s:i,s:i,s:i}", "page", r->page + 1, "mode", dots_prompt_mode_name(r->mode),
                          "width", r->source_width_px, "height", r->source_height_px, "model_width",
                          r->model_width_px, "model_height", r->model_height_px, "dpi", r->render_dpi);
    if (!p) return NULL;
    json_t *cells = json_array();
    for (int64_t i = 0; i < r->n_cells; i++) {
        const dots_cell *c = &r->cells[i];
        json_t *cell = json_object();
        if (c->has_bbox)
            json_object_set_new(cell, "bbox", json_pack("[f,f,f,f]", c->bbox[0], c->bbox[1], c->bbox[2], c->bbox[3]));
        if (c->has_quad) {
            json_t *q = json_array();
            for (int k = 0; k < 8; k++) json_array_append_new(q, json_real(c->quad[k]));
            json_object_set_new(cell, "quad", q);
        }
        if (c->category) json_object_set_new(cell, "category", json_string(c->category));
        if (c->text) json_object_set_new(cell, "text", text_value(c->text, strlen(c->text)));
        json_array_append_new(cells, cell);
    }
    json_object_set_new(p, "cells", cells);
    json_object_set_new(p, "filtered", json_boolean(r->filtered));
    if (r->markdown) json_object_set_new(p, "markdown", text_value(r->markdown, strlen(r->markdown)));
    if (r->markdown_nohf) json_object_set_new(p, "markdown_nohf", text_value(r->markdown_nohf, strlen(r->markdown_nohf)));
    if (r->svg) json_object_set_new(p, "svg", text_value(r->svg, strlen(r->svg)));
    if (r->render_error) json_object_set_new(p, "render_error", json_string(r->render_error));
    json_object_set_new(p, "answer", text_value(r->answer, r->answer ? strlen(r->answer) : 0));
    if (layout_image && r->layout_jpeg) {
        char *b64 = serve_base64_encode(r->layout_jpeg, r->layout_jpeg_len);
        char *url = b64 ? malloc(strlen(b64) + 32) : NULL;
        if (url) {
            sprintf(url, "data:image/jpeg;base64,%s", b64);
            json_object_set_new(p, "layout_image", json_string(url));
        }
        free(url);
        free(b64);
    }
    json_object_set_new(p, "finish_reason", json_string(serve_finish_reason(r->stop)));
    json_object_set_new(p, "stop_reason", json_string(dots_stop_reason_name(r->stop)));
    json_object_set_new(p, "usage", json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)r->n_prompt_tokens,
                                              "completion_tokens", (json_int_t)r->n_tokens, "image_tokens",
                                              (json_int_t)r->n_image_tokens));
    return p;
}

char *serve_reply_document(const serve_server *srv, const serve_job *j, bool layout_image) {
    json_t *pages = json_array();
    for (int32_t i = 0; i < j->n_pages; i++) {
        if (j->page_status[i] == DOTS_OK) {
            json_array_append_new(pages, page_json(&j->page_res[i], layout_image));
        } else {
            serve_error e;
            serve_error_set(&e, serve_status_http(j->page_status[i]), NULL, "%s",
                            j->page_status[i] == DOTS_ERR_CANCELLED && !j->page_error[i][0] ? "cancelled"
                                                                                            : j->page_error[i]);
            json_array_append_new(pages, json_pack("{s:i,s:{s:s,s:s,s:i}}", "page", j->pages[i] + 1, "error", "message",
                                                   e.message, "type", e.type, "code", e.status));
        }
    }
    return dump(json_pack("{s:s,s:s,s:i,s:o}", "object", "dotsocr.parse", "model", srv->cfg.model_name, "n_pages",
                          j->n_pages, "pages", pages));
}
