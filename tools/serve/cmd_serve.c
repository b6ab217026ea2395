/*
 * cmd_serve.c - `dotsocr serve`: the model behind an OpenAI-compatible HTTP
 * server (docs/serving.md). The model loads once; one thread drives the
 * decode batch (scheduler.c) and HTTP threads queue requests into it
 * (http.c). SIGTERM or Ctrl-C: stop accepting connections, finish every
 * accepted request, answer it, exit 0; a second one cancels what runs.
 */
#include "../cli.h"
#include "server.h"

#include <libgen.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char help_serve[] =
    "usage: dotsocr serve --model MODEL [--host 127.0.0.1] [--port 8000] [--api-key KEY]\n"
    "                     [--batch N] [--max-queue N] [--max-body-mb N] [--served-model-name NAME]\n"
    "                     [--threads N] [--precision auto|fp32|bf16] [--mmproj FILE] [--no-mmap|--mmap]\n"
    "                     [generation and page options of 'dotsocr parse']\n"
    "  Serves the model over HTTP:\n"
    "    POST /v1/chat/completions  OpenAI chat completions, as the official dots.ocr / dots.mocr\n"
    "                               parser sends them (one image per request; \"stream\": true for\n"
    "                               Server-Sent Events); the answer is the model's raw text\n"
    "    POST /v1/parse             an image or a PDF (raw body, or multipart field \"file\") with\n"
    "                               parse options as query parameters or form fields (mode, pages,\n"
    "                               dpi, bbox, max_new_tokens, temperature, top_p, seed, prompt,\n"
    "                               system, min_pixels, max_pixels, fitz_preprocess, layout_image,\n"
    "                               json_constraint, loop_guard): every page's cells (boxes in the\n"
    "                               document's pixels), Markdown and raw answer as JSON\n"
    "    GET  /v1/models, GET /health (queue depth, batch occupancy; 503 while draining)\n"
    "  Requests decode together in a batch of --batch runs (default: as for parse); up to\n"
    "  --max-queue (default 128) more wait, and past that the answer is 429 with Retry-After.\n"
    "  A client that disconnects cancels its run. --api-key (or DOTSOCR_API_KEY): requests\n"
    "  need 'Authorization: Bearer KEY'; without it any key (or none) is accepted. Any \"model\"\n"
    "  name is accepted; /v1/models lists --served-model-name (default: the model's folder).\n"
    "  Bodies over --max-body-mb (default 64) get 413. Listens on 127.0.0.1 unless --host says\n"
    "  otherwise; --port 0 picks a free port. The line 'listening on http://HOST:PORT' on\n"
    "  stderr says when it is ready; -v adds a line per request (status, tokens, times).\n"
    "  Chat requests that leave temperature, top_p or the token budget out get the mode's\n"
    "  defaults (greedy, except image-to-svg), or --temperature/--top-p/--max-new-tokens; the\n"
    "  mode is recognised from the prompt (an official prompt, else general). --min-pixels and\n"
    "  --max-pixels change what the model sees: off by default, because a lower cap moves every\n"
    "  box of the official client, which maps boxes back with the default limits.\n";

int dots_cmd_serve(int argc, char **argv) {
    static const struct option opts[] = {CLI_PAGE_OPTIONS,
                                         {"host", required_argument, NULL, 2001},
                                         {"port", required_argument, NULL, 2002},
                                         {"api-key", required_argument, NULL, 2003},
                                         {"batch", required_argument, NULL, 2004},
                                         {"max-queue", required_argument, NULL, 2005},
                                         {"max-body-mb", required_argument, NULL, 2006},
                                         {"served-model-name", required_argument, NULL, 2007},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0, 0, 0, 0}};
    cli_page_args a;
    cli_page_args_init(&a);
    serve_server srv;
    memset(&srv, 0, sizeof srv);
    srv.cfg.host = "127.0.0.1";
    srv.cfg.port = 8000;
    srv.cfg.api_key = getenv("DOTSOCR_API_KEY");
    int64_t batch = 0, max_queue = 128, max_body_mb = 64, port = 8000;
    int c, rc;
    while ((c = getopt_long(argc, argv, "vqh", opts, NULL)) != -1) {
        if ((rc = cli_page_option("serve", c, optarg, &a)) >= 0) {
            if (rc) return rc;
            continue;
        }
        switch (c) {
        case 2001: srv.cfg.host = optarg; break;
        case 2002: if (cli_int("serve", "--port", optarg, 0, 65535, &port)) return DOTS_EXIT_USAGE; break;
        case 2003: srv.cfg.api_key = optarg; break;
        case 2004: if (cli_int("serve", "--batch", optarg, 1, 64, &batch)) return DOTS_EXIT_USAGE; break;
        case 2005: if (cli_int("serve", "--max-queue", optarg, 0, 100000, &max_queue)) return DOTS_EXIT_USAGE; break;
        case 2006: if (cli_int("serve", "--max-body-mb", optarg, 1, 4096, &max_body_mb)) return DOTS_EXIT_USAGE; break;
        case 2007: srv.cfg.model_name = optarg; break;
        case 'v': cli_more_verbose(); break;
        case 'q': cli_quiet(); break;
        case 'h': fputs(help_serve, stdout); return 0;
        default: return cli_bad_option("serve", argc, argv, opts, "vqh");
        }
    }
    if ((rc = cli_page_args_check("serve", &a))) return rc;
    if (argc != optind) return cli_usage("serve", "unexpected argument '%s'", argv[optind]);
    if (srv.cfg.api_key && !*srv.cfg.api_key) srv.cfg.api_key = NULL;
    if (srv.cfg.model_name && !*srv.cfg.model_name) return cli_usage("serve", "--served-model-name is empty");
    srv.cfg.port = (int32_t)port;
    srv.cfg.max_body = (size_t)max_body_mb << 20;
    srv.cfg.po = a.po;
    srv.cfg.log_requests = cli_verbosity() >= 1;
    srv.t_start = (double)time(NULL);

    dots_ctx *ctx = cli_make_ctx();
    if (!ctx) return 1;
    dots_model *model = NULL;
    char *name_buf = NULL;
    rc = 1;
    if (cli_open_model(ctx, a.model, a.mmproj, a.placement, &model) != DOTS_OK) {
        rc = cli_fail(ctx);
        goto done;
    }
    if (!srv.cfg.model_name) { /* the model folder's (or file's) name */
        name_buf = strdup(a.model);
        if (!name_buf) goto done;
        size_t n = strlen(name_buf);
        while (n > 1 && name_buf[n - 1] == '/') name_buf[--n] = '\0';
        srv.cfg.model_name = basename(name_buf);
    }
    if (!batch) batch = cli_default_batch(model, a.threads, &a.po, a.precision);
    /* The signals are taken by this thread alone (sigwait); every thread
     * made from here on inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    char err[512];
    srv.sched = serve_sched_create(model, (int32_t)a.threads, a.precision, (int32_t)batch, (int32_t)max_queue, err,
                                   sizeof err);
    if (!srv.sched) {
        fprintf(stderr, "dotsocr: error: %s\n", err);
        goto done;
    }
    if (!serve_http_start(&srv, err, sizeof err)) {
        fprintf(stderr, "dotsocr: error: %s\n", err);
        goto done;
    }
    const bool v6 = strchr(srv.cfg.host, ':') != NULL;
    fprintf(stderr, "dotsocr serve: listening on http://%s%s%s:%d (model '%s', batch %lld, queue %lld%s)\n",
            v6 ? "[" : "", srv.cfg.host, v6 ? "]" : "", serve_http_port(&srv), srv.cfg.model_name, (long long)batch,
            (long long)max_queue, srv.cfg.api_key ? ", API key required" : "");
    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "dotsocr serve: %s: no new connections; finishing the requests in hand\n",
            sig == SIGTERM ? "SIGTERM" : "interrupted");
    atomic_store(&srv.draining, true);
    serve_http_quiesce(&srv);
    serve_sched_close(srv.sched);
    /* until every accepted job is done and answered; a second signal
     * cancels what runs, and a client that never reads its answer is given
     * 30 s once the work is over */
    const struct timespec tick = {0, 100000000L};
    bool aborted = false;
    double idle_since = -1;
    for (;;) {
        serve_stats st;
        serve_sched_stats(srv.sched, &st);
        const int active = atomic_load(&srv.active);
        if (st.active == 0 && active == 0) break;
        if (st.active == 0) {
            if (idle_since < 0) idle_since = cli_now();
            else if (cli_now() - idle_since > 30) break;
        }
        /* sigpending + sigwait rather than sigtimedwait, which macOS lacks */
        sigset_t pending;
        if (sigpending(&pending) == 0 && (sigismember(&pending, SIGTERM) || sigismember(&pending, SIGINT))) {
            sigwait(&sigs, &sig);
            if (!aborted) {
                fprintf(stderr, "dotsocr serve: cancelling the runs in progress\n");
                serve_sched_abort(srv.sched);
                aborted = true;
            }
        } else {
            nanosleep(&tick, NULL);
        }
    }
    rc = aborted ? 130 : 0;
done:
    serve_http_stop(&srv);
    serve_sched_free(srv.sched);
    free(name_buf);
    dots_model_close(model);
    dots_ctx_free(ctx);
    if (rc == 0) fprintf(stderr, "dotsocr serve: stopped\n");
    return rc;
}
