/*
 * batch.c - several runs decoded together (continuous batching):
 *
 *   add ─► [page: render] ─► preprocess ─► vision ─► prefill   (per run, alone)
 *   step: every running sequence picks its next token (its own sampler,
 *         constraint, loop guard, stop rules); those that go on feed their
 *         tokens through the language model in ONE pass (dots_lm_forward_batch:
 *         each weight read once for all of them, attention per sequence)
 *   take: a finished run leaves with its result; its slot takes the next add
 *
 * Decode is bound by the bandwidth of streaming the weights, so a step of B
 * sequences costs little more than a step of one until the cores are busy.
 * The runs' tokens are the ones each would get alone: the batched products
 * give every row the bits it gets as a single row (test_kernels).
 */
#include "pipeline/page.h"

#include "model/weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_MAX_RUNS 64

typedef enum run_phase { RUN_FREE = 0, RUN_RUNNING, RUN_FINISHED } run_phase;

typedef struct batch_run {
    run_phase phase;
    int64_t id;
    uint64_t finished_order; /* when it finished: takes go oldest first */
    bool is_page;
    dots_seq seq;            /* valid unless no_seq */
    bool no_seq;             /* a replayed page: nothing to decode */
    dots_page_job page;
    dots_status error;       /* what ended the run early (DOTS_OK: it ran to its stop) */
    char *error_msg;
} batch_run;

struct dots_batch {
    dots_state *st;
    int32_t max_runs;
    batch_run runs[BATCH_MAX_RUNS];
    int64_t next_id;
    uint64_t finish_clock;
    dots_lm_scratch sc;      /* one pass scratch for every prefill and step */
    float *embeds;           /* [max_runs][hidden]: a step's input rows */
};

void dots_batch_free(dots_batch *b) {
    if (!b) return;
    for (int i = 0; i < b->max_runs; i++) {
        batch_run *r = &b->runs[i];
        if (r->phase == RUN_FREE) continue;
        if (!r->no_seq) dots_seq_free(&r->seq);
        if (r->is_page) dots_page_job_free(&r->page);
        free(r->error_msg);
    }
    dots_lm_scratch_free(&b->sc);
    free(b->embeds);
    free(b);
}

dots_status dots_batch_create(dots_ctx *ctx, dots_state *st, int32_t max_runs, dots_batch **out) {
    dots_ctx_begin_call(ctx);
    if (!st || !out || max_runs < 1 || max_runs > BATCH_MAX_RUNS)
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_batch_create: need a state and 1..%d runs", BATCH_MAX_RUNS);
    dots_batch *b = calloc(1, sizeof *b);
    const dots_config *cfg = dots_model_config(dots_state_model(st));
    if (b) b->embeds = malloc(sizeof(float) * (size_t)max_runs * (size_t)cfg->text.hidden_size);
    if (!b || !b->embeds) {
        dots_batch_free(b);
        return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    }
    b->st = st;
    b->max_runs = max_runs;
    *out = b;
    return DOTS_OK;
}

static batch_run *free_slot(dots_batch *b) {
    for (int i = 0; i < b->max_runs; i++)
        if (b->runs[i].phase == RUN_FREE) return &b->runs[i];
    return NULL;
}

static batch_run *find_run(dots_batch *b, int64_t id) {
    if (id < 0) return NULL;
    for (int i = 0; i < b->max_runs; i++)
        if (b->runs[i].phase != RUN_FREE && b->runs[i].id == id) return &b->runs[i];
    return NULL;
}

static void finish_run(dots_batch *b, batch_run *r) {
    r->phase = RUN_FINISHED;
    r->finished_order = b->finish_clock++;
}

/* Ends r with the context's current error, kept for its take. */
static void fail_run(dots_batch *b, batch_run *r, dots_ctx *ctx, dots_status s) {
    r->error = s;
    free(r->error_msg);
    r->error_msg = strdup(ctx ? dots_errmsg(ctx) : "failed");
    finish_run(b, r);
}

static dots_status add_common(dots_ctx *ctx, dots_batch *b, const dots_image *img, const dots_run_params *p,
                              const dots_run_hooks *hooks, bool is_page, dots_page_job *page, int64_t *id) {
    batch_run *r = free_slot(b);
    if (!r) {
        if (page) dots_page_job_free(page);
        return DOTS_FAIL(ctx, DOTS_ERR_LIMIT, "the batch holds %d runs already (take finished ones first)", b->max_runs);
    }
    memset(r, 0, sizeof *r);
    r->is_page = is_page;
    if (page) r->page = *page;
    if (is_page && page->replay) {
        r->no_seq = true;
    } else {
        dots_status s = dots_seq_begin(ctx, b->st, img, p, hooks, &b->sc, &r->seq);
        if (s != DOTS_OK) {
            if (is_page) dots_page_job_free(&r->page);
            memset(r, 0, sizeof *r);
            return s;
        }
    }
    r->id = b->next_id++;
    r->phase = RUN_RUNNING;
    if (r->no_seq) finish_run(b, r);
    *id = r->id;
    return DOTS_OK;
}

dots_status dots_batch_add(dots_ctx *ctx, dots_batch *b, const dots_image *img, const dots_run_params *params, int64_t *id) {
    dots_ctx_begin_call(ctx);
    if (!b || !img || !params || !id) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_batch_add: NULL argument");
    return add_common(ctx, b, img, params, NULL, false, NULL, id);
}

dots_status dots_batch_add_ex(dots_ctx *ctx, dots_batch *b, const dots_image *img, const dots_run_params *params,
                              const dots_run_hooks *hooks, int64_t *id) {
    if (!b || !img || !params || !id) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_batch_add: NULL argument");
    return add_common(ctx, b, img, params, hooks, false, NULL, id);
}

dots_status dots_batch_add_page(dots_ctx *ctx, dots_batch *b, dots_document *doc, int32_t page, const dots_page_options *opts,
                                int64_t *id) {
    dots_ctx_begin_call(ctx);
    if (!b || !doc || !opts || !id) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_batch_add_page: NULL argument");
    if (!free_slot(b))
        return DOTS_FAIL(ctx, DOTS_ERR_LIMIT, "the batch holds %d runs already (take finished ones first)", b->max_runs);
    dots_page_job job;
    dots_status s = dots_page_job_begin(ctx, b->st, doc, page, opts, &job);
    if (s != DOTS_OK) return s;
    /* the job moves into the slot: model_img points into it, so re-aim it there */
    const bool fitz = job.model_img == &job.fitz;
    s = add_common(ctx, b, job.model_img, &job.rp, NULL, true, &job, id);
    if (s == DOTS_OK) {
        batch_run *r = find_run(b, *id);
        r->page.model_img = fitz ? &r->page.fitz : &r->page.img;
    }
    return s;
}

dots_status dots_batch_step(dots_ctx *ctx, dots_batch *b) {
    dots_ctx_begin_call(ctx);
    if (!b) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_batch_step: NULL argument");
    dots_state *st = b->st;
    const dots_config *cfg = dots_model_config(dots_state_model(st));
    const dots_weights *w = dots_model_weights(dots_state_model(st));
    const int64_t H = cfg->text.hidden_size;
    dots_lm_state *seqs[BATCH_MAX_RUNS];
    float *logits[BATCH_MAX_RUNS];
    batch_run *fed[BATCH_MAX_RUNS];
    int n = 0;
    for (int i = 0; i < b->max_runs; i++) {
        batch_run *r = &b->runs[i];
        if (r->phase != RUN_RUNNING) continue;
        dots_status s = dots_seq_pick(ctx, st, &r->seq);
        if (s != DOTS_OK) {
            fail_run(b, r, ctx, s);
            dots_ctx_clear_error(ctx);
            continue;
        }
        if (!r->seq.feed) {
            finish_run(b, r);
            continue;
        }
        dots_lm_embed(cfg, w, &r->seq.next, 1, b->embeds + n * H);
        seqs[n] = &r->seq.lm;
        logits[n] = r->seq.logits;
        fed[n++] = r;
    }
    if (n == 0) return DOTS_OK;
    dots_status s = dots_lm_forward_batch(ctx, cfg, w, dots_state_kernels(st), &b->sc, seqs, n, b->embeds, logits);
    if (s != DOTS_OK) { /* every sequence of the pass has a half-written cache: they end with the error */
        for (int i = 0; i < n; i++) fail_run(b, fed[i], ctx, s);
        return s;
    }
    for (int i = 0; i < n; i++) dots_seq_fed(&fed[i]->seq, cfg);
    return DOTS_OK;
}

int32_t dots_batch_running(const dots_batch *b) {
    int32_t n = 0;
    for (int i = 0; b && i < b->max_runs; i++) n += b->runs[i].phase == RUN_RUNNING;
    return n;
}

int32_t dots_batch_finished(const dots_batch *b) {
    int32_t n = 0;
    for (int i = 0; b && i < b->max_runs; i++) n += b->runs[i].phase == RUN_FINISHED;
    return n;
}

int64_t dots_batch_finished_id(const dots_batch *b) {
    const batch_run *best = NULL;
    for (int i = 0; b && i < b->max_runs; i++) {
        const batch_run *r = &b->runs[i];
        if (r->phase == RUN_FINISHED && (!best || r->finished_order < best->finished_order)) best = r;
    }
    return best ? best->id : -1;
}

int64_t dots_batch_kv_bytes(const dots_batch *b) {
    if (!b) return 0;
    const dots_config *cfg = dots_model_config(dots_state_model(b->st));
    int64_t bytes = 0;
    for (int i = 0; i < b->max_runs; i++)
        if (b->runs[i].phase != RUN_FREE && !b->runs[i].no_seq) bytes += dots_lm_state_bytes(&b->runs[i].seq.lm, cfg);
    return bytes;
}

static void release(batch_run *r) {
    if (!r->no_seq) dots_seq_free(&r->seq);
    if (r->is_page) dots_page_job_free(&r->page);
    free(r->error_msg);
    memset(r, 0, sizeof *r);
}

/* The finished run id of the given kind, or an error. */
static dots_status take_check(dots_ctx *ctx, dots_batch *b, int64_t id, bool page, batch_run **out) {
    batch_run *r = b ? find_run(b, id) : NULL;
    if (!r) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "the batch has no run %lld", (long long)id);
    if (r->phase != RUN_FINISHED) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "run %lld has not finished", (long long)id);
    if (r->is_page != page)
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "run %lld is %s: take it with %s", (long long)id,
                         r->is_page ? "a page" : "an image run", r->is_page ? "dots_batch_take_page" : "dots_batch_take");
    if (r->error != DOTS_OK) {
        dots_status s = DOTS_FAIL(ctx, r->error, "%s", r->error_msg ? r->error_msg : "failed");
        release(r);
        return s;
    }
    *out = r;
    return DOTS_OK;
}

dots_status dots_batch_take(dots_ctx *ctx, dots_batch *b, int64_t id, dots_run_result *out) {
    dots_ctx_begin_call(ctx);
    if (!b || !out) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_batch_take: NULL argument");
    batch_run *r;
    dots_status s = take_check(ctx, b, id, false, &r);
    if (s != DOTS_OK) return s;
    s = dots_seq_finish(ctx, b->st, &r->seq, out);
    release(r);
    return s;
}

dots_status dots_batch_take_page(dots_ctx *ctx, dots_batch *b, int64_t id, dots_page_result *out) {
    dots_ctx_begin_call(ctx);
    if (!b || !out) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_batch_take_page: NULL argument");
    batch_run *r;
    dots_status s = take_check(ctx, b, id, true, &r);
    if (s != DOTS_OK) return s;
    dots_run_result run = {0};
    if (!r->no_seq) s = dots_seq_finish(ctx, b->st, &r->seq, &run);
    if (s == DOTS_OK) s = dots_page_job_finish(ctx, &r->page, r->no_seq ? NULL : &run, out);
    dots_run_result_free(&run);
    release(r);
    return s;
}

dots_status dots_batch_cancel(dots_ctx *ctx, dots_batch *b, int64_t id) {
    dots_ctx_begin_call(ctx);
    batch_run *r = b ? find_run(b, id) : NULL;
    if (!r) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "the batch has no run %lld", (long long)id);
    if (r->phase == RUN_RUNNING) r->seq.cancel = true;
    return DOTS_OK;
}
