/*
 * server.h - what the parts of `dotsocr serve` share: its settings, the
 * scheduler, the HTTP daemon (http.c), the JSON it answers (replies.c) and
 * the options of /v1/parse (parse_options.c).
 */
#ifndef DOTS_SERVE_SERVER_H
#define DOTS_SERVE_SERVER_H

#include "scheduler.h"

#include <jansson.h>
#include <stdatomic.h>

typedef struct serve_config {
    const char *host;            /* 127.0.0.1 */
    int32_t port;                /* 8000; 0: any free port (printed) */
    const char *api_key;         /* NULL: any Authorization (or none) is accepted */
    const char *model_name;      /* the id /v1/models lists */
    size_t max_body;             /* bytes; 413 past it */
    bool log_requests;           /* -v: a line per request on stderr */
    dots_page_options po;        /* /v1/parse's defaults; the generation ones apply to chat too */
} serve_config;

typedef struct serve_server {
    serve_config cfg;
    serve_sched *sched;
    struct MHD_Daemon *daemon;
    atomic_int active;           /* requests between their first byte and their end */
    atomic_bool draining;        /* SIGTERM: finish, answer, exit */
    atomic_ullong next_id;       /* chatcmpl-<n> */
    double t_start;
} serve_server;

/* http.c */
bool serve_http_start(serve_server *srv, char *errbuf, size_t errlen);
/* The port it listens on (after start, when cfg.port was 0). */
int32_t serve_http_port(const serve_server *srv);
/* Stops accepting connections; requests already in go on. */
void serve_http_quiesce(serve_server *srv);
void serve_http_stop(serve_server *srv);

/* replies.c: every answer's JSON (malloc'd text, NULL on OOM) */
char *serve_reply_error(const serve_error *e);
const char *serve_finish_reason(dots_stop_reason stop);
char *serve_reply_completion(const char *id, const char *model, const dots_run_result *r);
/* One Server-Sent Event "data: {...}\n\n" of a chat.completion.chunk:
 * role chunk (content NULL, first), a content delta, or the last one
 * (finish_reason set); usage only when r is given. */
char *serve_reply_chunk(const char *id, const char *model, bool first, const char *content, size_t len,
                        const char *finish_reason, const dots_run_result *usage);
char *serve_reply_models(const serve_server *srv);
char *serve_reply_health(serve_server *srv);
/* /v1/parse: the pages of a finished document job */
char *serve_reply_document(const serve_server *srv, const serve_job *job, bool layout_image);
/* HTTP status for a run's failure */
int serve_status_http(dots_status st);

/* parse_options.c: /v1/parse's key=value options onto po (whose defaults
 * come from the command line); false with a 400 naming the key. */
typedef struct serve_parse_options {
    dots_page_options po;
    char *prompt, *system;       /* owned copies po points at */
    char *pages;                 /* "1-3,5" or NULL for all */
    bool layout_image;
} serve_parse_options;
void serve_parse_options_init(serve_parse_options *o, const dots_page_options *defaults);
bool serve_parse_option(serve_parse_options *o, const char *key, const char *value, serve_error *err);
void serve_parse_options_free(serve_parse_options *o);
/* The 0-based pages spec names in a document of n pages (all when spec is
 * NULL); false with a 400. *out malloc'd. */
bool serve_parse_pages(const char *spec, int32_t n, int32_t **out, int32_t *n_out, serve_error *err);

#endif
