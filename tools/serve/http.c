/*
 * http.c - the HTTP side of `dotsocr serve`, on libmicrohttpd with a thread
 * per connection: a handler may block until its job is done (polling its
 * socket, so that a client that hangs up cancels its run), and a streamed
 * answer's reader blocks until the next tokens arrive.
 *
 *   GET  /health               ready, queue depth, batch occupancy (no key needed)
 *   GET  /v1/models            the served model
 *   POST /v1/chat/completions  OpenAI chat completions (docs/serving.md)
 *   POST /v1/parse             a document (raw body or multipart) -> its pages' results
 */
#include "server.h"

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#define RETRY_AFTER_S "10"

typedef enum route { ROUTE_NONE, ROUTE_HEALTH, ROUTE_MODELS, ROUTE_CHAT, ROUTE_PARSE } route;

typedef struct request {
    serve_server *srv;
    route route;
    bool method_ok;
    char *body;
    size_t n, cap;
    bool too_big;
} request;

/* ------------------------------------------------------------ answers */

static enum MHD_Result send_text(request *rq, struct MHD_Connection *c, unsigned status, char *text,
                                 const char *content_type) {
    static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"code\":500}}";
    struct MHD_Response *resp =
        text ? MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE)
             : MHD_create_response_from_buffer(sizeof oom - 1, (void *)oom, MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    if (!text) status = 500;
    MHD_add_response_header(resp, "Content-Type", content_type);
    if (status == 429 || status == 503) MHD_add_response_header(resp, "Retry-After", RETRY_AFTER_S);
    if (status == 401) MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    if (atomic_load(&rq->srv->draining)) MHD_add_response_header(resp, "Connection", "close");
    const enum MHD_Result r = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return r;
}

static enum MHD_Result send_json(request *rq, struct MHD_Connection *c, unsigned status, char *json) {
    return send_text(rq, c, status, json, "application/json");
}

static enum MHD_Result send_error(request *rq, struct MHD_Connection *c, const serve_error *e) {
    return send_json(rq, c, (unsigned)e->status, serve_reply_error(e));
}

/* ------------------------------------------------------------ waiting */

static int conn_fd(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

/* Whether the peer closed its side (or the socket failed). Data waiting to be
 * read (a pipelined request) is not a hang-up. */
static bool client_gone(int fd) {
    if (fd < 0) return false;
#ifdef POLLRDHUP /* Linux: the peer's FIN, even with data left to read */
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return true;
#else
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLHUP | POLLERR | POLLNVAL)) return true;
#endif
    char b;
    return (p.revents & POLLIN) && recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/* Waits until job is done (or, with until_started, generating); false when
 * the client hung up meanwhile (the job is then cancelled). */
static bool wait_job(serve_server *srv, struct MHD_Connection *c, serve_job *j, bool until_started) {
    const int fd = conn_fd(c);
    bool ok = true;
    serve_sched_lock(srv->sched);
    while (!j->done && !(until_started && j->started)) {
        serve_job_wait(srv->sched, j, 100);
        if (!j->done && client_gone(fd)) {
            serve_job_cancel(srv->sched, j);
            ok = false;
            break;
        }
    }
    serve_sched_unlock(srv->sched);
    return ok;
}

/* -v: one line per answered chat request */
static void log_chat(const serve_job *j, bool streamed) {
    const dots_run_result *r = &j->res;
    fprintf(stderr,
            "dotsocr serve: chat %s%s: %lld prompt + %lld generated tokens (%s); queued %.2f s, preprocess %.2f s, "
            "vision %.2f s, prefill %.2f s, decode %.2f s\n",
            dots_prompt_mode_name(j->req.mode), streamed ? " (streamed)" : "", (long long)r->n_prompt_tokens,
            (long long)r->n_tokens, dots_stop_reason_name(r->stop), j->t_begin - j->t_submit, r->preprocess_s,
            r->vision_s, r->prefill_s, r->decode_s);
}

/* ------------------------------------------------------------ streaming */

typedef struct stream {
    serve_server *srv;
    serve_job *job;
    int fd;
    char id[48];
    char *model;
    int phase;            /* 0 role, 1 tokens, 2 end, 3 usage, 4 [DONE], 5 over */
    size_t sent;          /* bytes of the answer sent */
    char *pending;
    size_t pend_len, pend_off;
    bool include_usage;
} stream;

static char *concat2(char *a, char *b) {
    if (!a || !b) {
        free(a);
        free(b);
        return NULL;
    }
    char *out = malloc(strlen(a) + strlen(b) + 1);
    if (out) sprintf(out, "%s%s", a, b);
    free(a);
    free(b);
    return out;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    stream *s = cls;
    serve_job *j = s->job;
    for (;;) {
        if (s->pending && s->pend_off < s->pend_len) {
            size_t n = s->pend_len - s->pend_off;
            if (n > max) n = max;
            memcpy(buf, s->pending + s->pend_off, n);
            s->pend_off += n;
            return (ssize_t)n;
        }
        free(s->pending);
        s->pending = NULL;
        s->pend_off = 0;
        char *ev = NULL;
        switch (s->phase) {
        case 0:
            ev = serve_reply_chunk(s->id, s->model, true, NULL, 0, NULL, NULL);
            s->phase = 1;
            break;
        case 1: {
            serve_sched_lock(s->srv->sched);
            while (!j->done && j->text_len <= s->sent) {
                serve_job_wait(s->srv->sched, j, 100);
                if (!j->done && client_gone(s->fd)) {
                    serve_job_cancel(s->srv->sched, j);
                    serve_sched_unlock(s->srv->sched);
                    return MHD_CONTENT_READER_END_WITH_ERROR;
                }
            }
            if (!j->done) {
                ev = serve_reply_chunk(s->id, s->model, false, j->text + s->sent, j->text_len - s->sent, NULL, NULL);
                s->sent = j->text_len;
            } else {
                s->phase = 2;
            }
            serve_sched_unlock(s->srv->sched);
            if (s->phase == 2) continue;
            break;
        }
        case 2: /* done: j->res is the driver's no more */
            if (j->status != DOTS_OK) {
                serve_error e;
                serve_error_set(&e, serve_status_http(j->status), NULL, "%s", j->error);
                char *err = serve_reply_error(&e);
                ev = err ? malloc(strlen(err) + 9) : NULL;
                if (ev) sprintf(ev, "data: %s\n\n", err);
                free(err);
                s->phase = 4;
            } else {
                const dots_run_result *r = &j->res;
                /* the final text is the streamed text plus what the decoder
                 * held back at the end (an incomplete character) */
                const bool prefix = s->sent <= r->text_len && (!s->sent || memcmp(r->text, j->text, s->sent) == 0);
                char *rest = prefix && r->text_len > s->sent
                                 ? serve_reply_chunk(s->id, s->model, false, r->text + s->sent, r->text_len - s->sent,
                                                     NULL, NULL)
                                 : strdup("");
                ev = concat2(rest, serve_reply_chunk(s->id, s->model, false, NULL, 0, serve_finish_reason(r->stop), NULL));
                s->phase = s->include_usage ? 3 : 4;
            }
            break;
        case 3:
            ev = serve_reply_chunk(s->id, s->model, false, NULL, 0, NULL, &j->res);
            s->phase = 4;
            break;
        case 4:
            ev = strdup("data: [DONE]\n\n");
            s->phase = 5;
            break;
        default: return MHD_CONTENT_READER_END_OF_STREAM;
        }
        if (!ev) return MHD_CONTENT_READER_END_WITH_ERROR;
        s->pending = ev;
        s->pend_len = strlen(ev);
    }
}

static void stream_free(void *cls) {
    stream *s = cls;
    if (s->srv->cfg.log_requests && s->job->done && s->job->status == DOTS_OK) log_chat(s->job, true);
    serve_sched_lock(s->srv->sched);
    serve_job_cancel(s->srv->sched, s->job); /* nothing if it is done */
    serve_sched_unlock(s->srv->sched);
    serve_job_release(s->srv->sched, s->job);
    free(s->pending);
    free(s->model);
    free(s);
}

/* ------------------------------------------------------------ endpoints */

static void make_id(serve_server *srv, char *id, size_t n) {
    snprintf(id, n, "chatcmpl-%llx%llx", (unsigned long long)srv->t_start,
             (unsigned long long)atomic_fetch_add(&srv->next_id, 1));
}

/* One image (not a PDF, one frame) decoded to RGB, alpha on white. */
static bool decode_image(const uint8_t *data, size_t len, dots_image *img, serve_error *e) {
    dots_ctx *ctx = NULL;
    dots_document *doc = NULL;
    if (dots_ctx_create(&ctx) != DOTS_OK) {
        serve_error_set(e, 500, NULL, "out of memory");
        return false;
    }
    bool ok = false;
    if (dots_document_open_memory(ctx, data, len, "the image", &doc) != DOTS_OK) {
        serve_error_set(e, dots_errcode(ctx) == DOTS_ERR_OUT_OF_MEMORY ? 503 : 400, "messages",
                        "the image does not decode: %s", dots_errmsg(ctx));
    } else if (dots_document_is_pdf(doc) || dots_document_n_pages(doc) != 1) {
        serve_error_set(e, 400, "messages", "the image is a %s; send one page as an image, or the file to /v1/parse",
                        dots_document_is_pdf(doc) ? "PDF" : "multi-page file");
    } else if (dots_document_render_page(ctx, doc, 0, 0, img, NULL) != DOTS_OK) {
        serve_error_set(e, 400, "messages", "the image does not decode: %s", dots_errmsg(ctx));
    } else {
        ok = true;
    }
    dots_document_close(doc);
    dots_ctx_free(ctx);
    return ok;
}

static enum MHD_Result chat(request *rq, struct MHD_Connection *c) {
    serve_server *srv = rq->srv;
    serve_error e;
    serve_job *j = serve_job_new(SERVE_JOB_CHAT);
    if (!j) {
        serve_error_set(&e, 503, NULL, "out of memory");
        return send_error(rq, c, &e);
    }
    if (!serve_chat_request_parse(rq->body ? rq->body : "", rq->n, srv->cfg.max_body, &j->req, &e) ||
        !decode_image(j->req.image, j->req.image_len, &j->img, &e)) {
        serve_job_release(srv->sched, j);
        return send_error(rq, c, &e);
    }
    const serve_chat_request *q = &j->req;
    const dots_page_options *d = &srv->cfg.po;
    dots_run_params *p = &j->rp;
    dots_run_params_init(p);
    p->mode = q->mode;
    p->prompt = q->prompt;
    p->prompt_before_image = q->before_image;
    p->system = q->system ? q->system : ""; /* no system message unless the request has one */
    p->max_new_tokens = q->max_tokens ? (int32_t)q->max_tokens : d->max_new_tokens;
    p->temperature = q->has_temperature ? q->temperature : d->temperature;
    p->top_p = q->has_top_p ? q->top_p : d->top_p;
    p->seed = q->has_seed ? q->seed : d->seed ? d->seed : (uint64_t)time(NULL) * 2654435761u + atomic_load(&srv->next_id);
    p->min_pixels = d->min_pixels;
    p->max_pixels = d->max_pixels;
    p->no_json_constraint = d->no_json_constraint;
    p->no_loop_guard = d->no_loop_guard;
    p->on_token = serve_job_token_fn();
    p->user = j;
    if (!serve_sched_submit(srv->sched, j, &e)) {
        serve_job_release(srv->sched, j);
        return send_error(rq, c, &e);
    }
    const char *model = q->model ? q->model : srv->cfg.model_name;
    char id[48];
    make_id(srv, id, sizeof id);
    if (!wait_job(srv, c, j, q->stream)) { /* hung up: nothing to answer */
        serve_job_release(srv->sched, j);
        return MHD_NO;
    }
    if (j->done && j->status != DOTS_OK) {
        serve_error_set(&e, serve_status_http(j->status), NULL, "%s", j->error);
        serve_job_release(srv->sched, j);
        return send_error(rq, c, &e);
    }
    if (!q->stream) {
        if (srv->cfg.log_requests) log_chat(j, false);
        char *json = serve_reply_completion(id, model, &j->res);
        serve_job_release(srv->sched, j);
        return send_json(rq, c, 200, json);
    }
    stream *s = calloc(1, sizeof *s);
    struct MHD_Response *resp = NULL;
    if (s && (s->model = strdup(model))) {
        s->srv = srv;
        s->job = j;
        s->fd = conn_fd(c);
        s->include_usage = q->include_usage;
        snprintf(s->id, sizeof s->id, "%s", id);
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, s, stream_free);
    }
    if (!resp) {
        if (s) free(s->model);
        free(s);
        serve_sched_lock(srv->sched);
        serve_job_cancel(srv->sched, j);
        serve_sched_unlock(srv->sched);
        serve_job_release(srv->sched, j);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    const enum MHD_Result r = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    return r;
}

/* /v1/parse's form: the file part and the option fields */
typedef struct form {
    serve_parse_options *opts;
    serve_error *err;
    bool failed;
    char *file;
    size_t file_len, file_cap;
    size_t max;
    char *field;       /* the option being read (values may come in pieces) */
    char *key;
    size_t field_len;
} form;

static bool form_flush(form *f) {
    if (!f->key) return true;
    const bool ok = serve_parse_option(f->opts, f->key, f->field ? f->field : "", f->err);
    free(f->key);
    free(f->field);
    f->key = f->field = NULL;
    f->field_len = 0;
    return ok;
}

static enum MHD_Result form_iter(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                                 const char *content_type, const char *transfer_encoding, const char *data,
                                 uint64_t off, size_t size) {
    (void)kind, (void)content_type, (void)transfer_encoding;
    form *f = cls;
    if (f->failed) return MHD_NO;
    if (filename || (key && strcmp(key, "file") == 0)) {
        if (off == 0 && f->file_len) {
            serve_error_set(f->err, 400, "file", "one file per request");
            f->failed = true;
            return MHD_NO;
        }
        if (f->file_len + size > f->file_cap) {
            size_t cap = f->file_cap ? f->file_cap * 2 : 65536;
            while (cap < f->file_len + size) cap *= 2;
            char *p = realloc(f->file, cap);
            if (!p) goto oom;
            f->file = p;
            f->file_cap = cap;
        }
        if (size) memcpy(f->file + f->file_len, data, size);
        f->file_len += size;
        return MHD_YES;
    }
    if (!key) return MHD_YES;
    if (!f->key || strcmp(f->key, key) != 0 || off == 0) {
        if (!form_flush(f)) {
            f->failed = true;
            return MHD_NO;
        }
        if (!(f->key = strdup(key))) goto oom;
    }
    char *p = realloc(f->field, f->field_len + size + 1);
    if (!p) goto oom;
    f->field = p;
    if (size) memcpy(f->field + f->field_len, data, size);
    f->field_len += size;
    f->field[f->field_len] = '\0';
    return MHD_YES;
oom:
    serve_error_set(f->err, 503, NULL, "out of memory");
    f->failed = true;
    return MHD_NO;
}

typedef struct query_ctx {
    serve_parse_options *opts;
    serve_error *err;
    bool failed;
} query_ctx;

static enum MHD_Result query_iter(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    query_ctx *q = cls;
    if (q->failed) return MHD_NO;
    if (!serve_parse_option(q->opts, key, value ? value : "", q->err)) q->failed = true;
    return q->failed ? MHD_NO : MHD_YES;
}

static enum MHD_Result parse_document(request *rq, struct MHD_Connection *c) {
    serve_server *srv = rq->srv;
    serve_error e;
    serve_parse_options opts;
    serve_parse_options_init(&opts, &srv->cfg.po);
    opts.po.layout_image = false;
    form f = {.opts = &opts, .err = &e, .max = srv->cfg.max_body};
    const char *data = rq->body;
    size_t len = rq->n;
    serve_job *j = NULL;
    enum MHD_Result r;
    query_ctx qc = {&opts, &e, false};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, query_iter, &qc);
    if (qc.failed) goto fail;
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (ct && strncasecmp(ct, "multipart/form-data", 19) == 0) {
        struct MHD_PostProcessor *pp = MHD_create_post_processor(c, 65536, form_iter, &f);
        if (!pp) {
            serve_error_set(&e, 400, NULL, "the multipart body has no boundary");
            goto fail;
        }
        const enum MHD_Result pr = MHD_post_process(pp, rq->body ? rq->body : "", rq->n);
        MHD_destroy_post_processor(pp); /* flushes the last field */
        if (f.failed || !form_flush(&f)) goto fail;
        if (pr != MHD_YES) {
            serve_error_set(&e, 400, NULL, "the multipart body is malformed");
            goto fail;
        }
        if (!f.file_len) {
            serve_error_set(&e, 400, "file", "the form has no file (a part named \"file\", or with a filename)");
            goto fail;
        }
        data = f.file;
        len = f.file_len;
    }
    if (!len) {
        serve_error_set(&e, 400, NULL, "the body is empty: send an image or a PDF (raw, or as a multipart \"file\")");
        goto fail;
    }
    if (!(j = serve_job_new(SERVE_JOB_DOCUMENT))) {
        serve_error_set(&e, 503, NULL, "out of memory");
        goto fail;
    }
    dots_ctx *ctx = NULL;
    if (dots_ctx_create(&ctx) != DOTS_OK) {
        serve_error_set(&e, 503, NULL, "out of memory");
        goto fail;
    }
    if (dots_document_open_memory(ctx, data, len, "the document", &j->doc) != DOTS_OK) {
        serve_error_set(&e, 400, NULL, "the document does not open: %s", dots_errmsg(ctx));
        dots_ctx_free(ctx);
        goto fail;
    }
    dots_ctx_free(ctx);
    if (!serve_parse_pages(opts.pages, dots_document_n_pages(j->doc), &j->pages, &j->n_pages, &e)) goto fail;
    j->page_res = calloc((size_t)j->n_pages, sizeof *j->page_res);
    j->page_status = calloc((size_t)j->n_pages, sizeof *j->page_status);
    j->page_error = calloc((size_t)j->n_pages, sizeof *j->page_error);
    if (!j->page_res || !j->page_status || !j->page_error) {
        serve_error_set(&e, 503, NULL, "out of memory");
        goto fail;
    }
    j->po = opts.po;
    j->po.layout_image = opts.layout_image;
    j->po.on_token = serve_job_token_fn();
    j->po.user = j;
    j->opt_prompt = opts.prompt; /* the job owns them now */
    j->opt_system = opts.system;
    opts.prompt = opts.system = NULL;
    if (!serve_sched_submit(srv->sched, j, &e)) goto fail;
    if (!wait_job(srv, c, j, false)) {
        r = MHD_NO;
        goto out;
    }
    int status = 200;
    bool any_ok = false;
    for (int32_t i = 0; i < j->n_pages; i++) any_ok |= j->page_status[i] == DOTS_OK;
    if (!any_ok) status = serve_status_http(j->page_status[0]);
    r = send_json(rq, c, (unsigned)status, serve_reply_document(srv, j, opts.layout_image));
    goto out;
fail:
    r = send_error(rq, c, &e);
out:
    if (j) serve_job_release(srv->sched, j);
    free(f.file);
    free(f.field);
    free(f.key);
    serve_parse_options_free(&opts);
    return r;
}

/* ------------------------------------------------------------ dispatch */

static bool authorized(const serve_server *srv, struct MHD_Connection *c) {
    if (!srv->cfg.api_key) return true;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) return false;
    h += 7;
    /* the same time whatever the key's first wrong byte */
    const size_t a = strlen(h), b = strlen(srv->cfg.api_key);
    unsigned diff = a != b;
    for (size_t i = 0; i < a; i++) diff |= (unsigned char)h[i] ^ (unsigned char)srv->cfg.api_key[b ? i % b : 0];
    return diff == 0;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **req_cls) {
    (void)version;
    serve_server *srv = cls;
    request *rq = *req_cls;
    serve_error e;
    if (!rq) { /* the headers: route, authorise, check the announced size */
        if (!(rq = calloc(1, sizeof *rq))) return MHD_NO;
        rq->srv = srv;
        *req_cls = rq;
        atomic_fetch_add(&srv->active, 1);
        const bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
        if (strcmp(url, "/health") == 0) rq->route = ROUTE_HEALTH, rq->method_ok = get;
        else if (strcmp(url, "/v1/models") == 0) rq->route = ROUTE_MODELS, rq->method_ok = get;
        else if (strcmp(url, "/v1/chat/completions") == 0) rq->route = ROUTE_CHAT, rq->method_ok = post;
        else if (strcmp(url, "/v1/parse") == 0) rq->route = ROUTE_PARSE, rq->method_ok = post;
        if (rq->route == ROUTE_NONE) {
            serve_error_set(&e, 404, NULL, "no endpoint %.100s %.200s (there are GET /health, GET /v1/models, "
                                           "POST /v1/chat/completions, POST /v1/parse)", method, url);
            return send_error(rq, c, &e);
        }
        if (!rq->method_ok) {
            serve_error_set(&e, 405, NULL, "%.200s does not take %.20s", url, method);
            return send_error(rq, c, &e);
        }
        if (rq->route != ROUTE_HEALTH && !authorized(srv, c)) {
            serve_error_set(&e, 401, NULL, "a valid API key is needed (Authorization: Bearer KEY)");
            return send_error(rq, c, &e);
        }
        /* A body announced too big is refused before it is sent only when the
         * client waits for "100 Continue" to send it; others are read and
         * dropped, so that a client that writes its whole body before reading
         * sees the 413 rather than a broken pipe. */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        const char *expect = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
        if (cl && expect && strcasecmp(expect, "100-continue") == 0 && strtoull(cl, NULL, 10) > srv->cfg.max_body) {
            serve_error_set(&e, 413, NULL, "the body (%.20s bytes) is over the server's limit of %zu bytes", cl,
                            srv->cfg.max_body);
            return send_error(rq, c, &e);
        }
        return MHD_YES;
    }
    if (*upload_size) { /* a piece of the body */
        const size_t n = *upload_size;
        *upload_size = 0;
        if (rq->too_big || rq->n + n > srv->cfg.max_body) {
            rq->too_big = true;
            return MHD_YES;
        }
        if (rq->n + n + 1 > rq->cap) {
            size_t cap = rq->cap ? rq->cap : 65536;
            while (cap < rq->n + n + 1) cap *= 2;
            char *p = realloc(rq->body, cap);
            if (!p) {
                rq->too_big = true; /* answered as out of memory below */
                return MHD_YES;
            }
            rq->body = p;
            rq->cap = cap;
        }
        memcpy(rq->body + rq->n, upload, n);
        rq->n += n;
        rq->body[rq->n] = '\0';
        return MHD_YES;
    }
    if (rq->too_big) {
        if (rq->n + 1 > rq->cap && rq->n < srv->cfg.max_body) serve_error_set(&e, 503, NULL, "out of memory");
        else serve_error_set(&e, 413, NULL, "the body is over the server's limit of %zu bytes", srv->cfg.max_body);
        return send_error(rq, c, &e);
    }
    switch (rq->route) {
    case ROUTE_HEALTH: {
        char *json = serve_reply_health(srv);
        return send_json(rq, c, atomic_load(&srv->draining) ? 503 : 200, json);
    }
    case ROUTE_MODELS: return send_json(rq, c, 200, serve_reply_models(srv));
    case ROUTE_CHAT: return chat(rq, c);
    case ROUTE_PARSE: return parse_document(rq, c);
    default: return MHD_NO;
    }
}

static void completed(void *cls, struct MHD_Connection *c, void **req_cls, enum MHD_RequestTerminationCode toe) {
    (void)c, (void)toe;
    serve_server *srv = cls;
    request *rq = *req_cls;
    if (!rq) return;
    free(rq->body);
    free(rq);
    *req_cls = NULL;
    atomic_fetch_sub(&srv->active, 1);
}

bool serve_http_start(serve_server *srv, char *errbuf, size_t errlen) {
    char port[16];
    snprintf(port, sizeof port, "%d", srv->cfg.port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    const int gai = getaddrinfo(srv->cfg.host, port, &hints, &ai);
    if (gai != 0 || !ai) {
        snprintf(errbuf, errlen, "cannot resolve --host %s: %s", srv->cfg.host, gai_strerror(gai));
        return false;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    srv->daemon = MHD_start_daemon(flags, (uint16_t)srv->cfg.port, NULL, NULL, handler, srv, MHD_OPTION_SOCK_ADDR,
                                   ai->ai_addr, MHD_OPTION_NOTIFY_COMPLETED, completed, srv,
                                   MHD_OPTION_CONNECTION_LIMIT, 1024u, MHD_OPTION_CONNECTION_TIMEOUT, 300u,
                                   MHD_OPTION_LISTEN_BACKLOG_SIZE, 256u, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!srv->daemon) {
        snprintf(errbuf, errlen, "cannot listen on %s:%d (in use, or not an address of this machine)", srv->cfg.host,
                 srv->cfg.port);
        return false;
    }
    return true;
}

int32_t serve_http_port(const serve_server *srv) {
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return di ? di->port : srv->cfg.port;
}

void serve_http_quiesce(serve_server *srv) {
    const MHD_socket fd = MHD_quiesce_daemon(srv->daemon);
    if (fd != MHD_INVALID_SOCKET) close(fd);
}

void serve_http_stop(serve_server *srv) {
    if (srv->daemon) MHD_stop_daemon(srv->daemon);
    srv->daemon = NULL;
}
