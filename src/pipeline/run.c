/*
 * run.c - one page through the whole model (docs/model.md §4-9):
 *
 *   image ─► preprocess (4) ─► vision encoder (5) ─► merged rows [n, 1536]
 *   prompt ids (6.2) ─► embed, splice the rows at <|imgpad|> (6.4)
 *   ─► prefill (chunks) ─► loop: pick (greedy / sampled, padding ids
 *      excluded) ─► stream the text ─► stop at EOS / limit / callback
 *      ─► feed the token (decode step, KV cache)
 *
 * A dots_state is per request stream: its tokenizer, threads and kernels are
 * reused across pages; the KV cache is sized per page from the actual prompt
 * plus the generation budget.
 */
#include "pipeline/run.h"

#include "decode/guided.h"
#include "decode/sampler.h"
#include "kernels/kernels.h"
#include "lm/qwen2.h"
#include "model/weights.h"
#include "prompt/prompt.h"
#include "vision/vision.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


struct dots_state {
    const dots_model *model;
    dots_tokenizer *tok;
    dots_pool *pool;
    dots_scratch scratch;
    dots_scratch *worker_scratch; /* [pool size] */
    int n_workers;
    dots_kernels k;
    dots_poll poll;
    volatile int cancel; /* set by dots_state_cancel from any thread */
    dots_token_mask *mask; /* the layout constraint's vocabulary trie, made on first use */
};

const char *dots_stop_reason_name(dots_stop_reason stop) {
    static const char *const names[] = {"eos", "max-new-tokens", "callback", "context-full", "cancelled", "loop-guard"};
    return (unsigned)stop < sizeof names / sizeof *names ? names[stop] : "?";
}

const char *dots_stage_name(dots_stage stage) {
    static const char *const names[] = {"render", "preprocess", "vision", "prefill", "decode", "postprocess"};
    return (unsigned)stage < sizeof names / sizeof *names ? names[stage] : "?";
}

void dots_state_cancel(dots_state *st) {
    if (st) __atomic_store_n(&st->cancel, 1, __ATOMIC_RELAXED);
}

void dots_state_clear_cancel(dots_state *st) {
    if (st) __atomic_store_n(&st->cancel, 0, __ATOMIC_RELAXED);
}

bool dots_state_cancelled(const dots_state *st) { return st && __atomic_load_n(&st->cancel, __ATOMIC_RELAXED) != 0; }

const dots_model *dots_state_model(const dots_state *st) { return st ? st->model : NULL; }

const dots_kernels *dots_state_kernels(const dots_state *st) { return st ? &st->k : NULL; }

void dots_run_params_init(dots_run_params *p) {
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->mode = DOTS_MODE_LAYOUT_ALL;
    p->temperature = -1; /* the mode's */
    p->top_p = -1;
}

void dots_run_result_free(dots_run_result *r) {
    if (!r) return;
    free(r->text);
    free(r->tokens);
    memset(r, 0, sizeof *r);
}

void dots_state_free(dots_state *st) {
    if (!st) return;
    dots_tokenizer_free(st->tok);
    dots_token_mask_free(st->mask);
    dots_pool_free(st->pool);
    dots_scratch_free(&st->scratch);
    for (int i = 0; i < st->n_workers; i++) dots_scratch_free(&st->worker_scratch[i]);
    free(st->worker_scratch);
    free(st);
}

dots_status dots_state_create(dots_ctx *ctx, const dots_model *model, int32_t n_threads, dots_state **out) {
    dots_ctx_begin_call(ctx);
    if (!model || !out || n_threads < 0) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_state_create: bad argument");
    dots_state *st = calloc(1, sizeof *st);
    if (!st) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    st->model = model;
    st->pool = dots_pool_create(n_threads ? n_threads : dots_default_threads());
    st->k.isa = dots_cpu_isa();
    st->k.pool = st->pool;
    st->k.scratch = &st->scratch;
    st->n_workers = st->pool ? dots_pool_size(st->pool) : 0;
    st->worker_scratch = calloc((size_t)st->n_workers + 1, sizeof *st->worker_scratch);
    st->k.worker_scratch = st->worker_scratch;
    st->k.bf16 = dots_isa_bf16(st->k.isa); /* DOTS_PRECISION_AUTO */
    st->poll.cancel = &st->cancel;
    dots_status s = st->pool && st->worker_scratch ? DOTS_OK : DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "cannot start threads");
    if (s == DOTS_OK) {
        s = dots_tokenizer_open(ctx, dots_model_dir(model), &st->tok);
        if (s != DOTS_OK) {
            char msg[DOTS_ERRMSG_CAP];
            snprintf(msg, sizeof msg, "%s", dots_errmsg(ctx));
            dots_ctx_clear_error(ctx);
            s = DOTS_FAIL(ctx, s, "the model's tokenizer: %s", msg);
        }
    }
    if (s != DOTS_OK) {
        dots_state_free(st);
        return s;
    }
    *out = st;
    return DOTS_OK;
}

dots_status dots_state_set_precision(dots_ctx *ctx, dots_state *st, dots_precision precision) {
    dots_ctx_begin_call(ctx);
    if (!st || (precision != DOTS_PRECISION_FP32 && precision != DOTS_PRECISION_BF16 && precision != DOTS_PRECISION_AUTO))
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_state_set_precision: bad argument");
    st->k.bf16 = precision == DOTS_PRECISION_BF16 || (precision == DOTS_PRECISION_AUTO && dots_isa_bf16(st->k.isa));
    return DOTS_OK;
}

dots_precision dots_state_precision(const dots_state *st) {
    return st && st->k.bf16 && dots_isa_bf16(st->k.isa) ? DOTS_PRECISION_BF16 : DOTS_PRECISION_FP32;
}

static bool is_eos(const dots_config *cfg, int32_t t) {
    for (int i = 0; i < cfg->generation.n_eos_token_ids; i++)
        if (cfg->generation.eos_token_ids[i] == t) return true;
    return false;
}

void dots_seq_free(dots_seq *q) {
    if (!q) return;
    dots_guided_free(&q->gd);
    dots_run_result_free(&q->r);
    dots_tok_stream_free(q->stream);
    dots_sampler_free(&q->sampler);
    dots_lm_state_free(&q->lm);
    free(q->logits);
    memset(q, 0, sizeof *q);
}

dots_status dots_seq_begin(dots_ctx *ctx, dots_state *st, const dots_image *img, const dots_run_params *p,
                           const dots_run_hooks *hooks, dots_lm_scratch *sc, dots_seq *q) {
    memset(q, 0, sizeof *q);
    if (!st || !img || !p || !sc) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_run_image: NULL argument");
    if ((unsigned)p->mode >= DOTS_MODE_COUNT || p->max_new_tokens < 0 || isnan(p->temperature) || isnan(p->top_p) ||
        p->temperature > 100 || p->top_p > 1 || p->source_width_px < 0 || p->source_height_px < 0)
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_run_image: bad parameters");
    q->p = *p;
    { /* the mode's defaults where the caller left them */
        float t, tp;
        int32_t mn;
        dots_prompt_mode_defaults(p->mode, &t, &tp, &mn);
        if (q->p.temperature < 0) q->p.temperature = t;
        if (q->p.top_p < 0) q->p.top_p = tp;
        if (q->p.max_new_tokens == 0) q->p.max_new_tokens = mn;
        p = &q->p;
    }
    if (hooks) q->hooks = *hooks;
    const dots_config *cfg = dots_model_config(st->model);
    const dots_weights *w = dots_model_weights(st->model);
    const int64_t H = cfg->text.hidden_size, V = cfg->text.vocab_size;
    dots_run_result *r = &q->r;
    dots_pixel_rows rows = {0};
    dots_image resized = {0};
    float *image_rows = NULL, *embeds = NULL;
    int32_t *ids = NULL;
    int64_t n_ids = 0, n_image = 0;
    dots_status s;
    double t0 = dots_monotonic_s();
    /* the kernels see this call's progress callback; the state is one thread's */
    st->poll.fn = p->on_progress;
    st->poll.user = p->user;
    st->k.poll = &st->poll;
    if (dots_state_cancelled(st)) {
        s = DOTS_FAIL(ctx, DOTS_ERR_CANCELLED, "cancelled");
        goto done;
    }
    if (p->on_progress) p->on_progress(p->user, DOTS_STAGE_PREPROCESS, 0, 1);

    s = dots_preprocess(ctx, cfg, img, p->min_pixels, p->max_pixels, &resized, &rows);
    if (s != DOTS_OK) goto done;
    r->resized_width_px = resized.width_px;
    r->resized_height_px = resized.height_px;
    double t1 = dots_monotonic_s();
    r->preprocess_s = t1 - t0;
    s = dots_vision_encode(ctx, cfg, w, &st->k, &rows, &image_rows, &n_image, NULL, NULL);
    if (s != DOTS_OK) goto done;
    double t2 = dots_monotonic_s();
    r->vision_s = t2 - t1;
    dots_pixel_rows_free(&rows);

    dots_prompt_spec spec = {.mode = p->mode,
                             .bbox = {p->bbox[0], p->bbox[1], p->bbox[2], p->bbox[3]},
                             .custom = p->prompt,
                             .before_image = p->prompt_before_image,
                             .system = p->system,
                             .width = p->source_width_px ? p->source_width_px : img->width_px,
                             .height = p->source_height_px ? p->source_height_px : img->height_px};
    s = dots_prompt_build(ctx, st->tok, &spec, n_image, &ids, &n_ids);
    if (s != DOTS_OK) goto done;
    if (q->hooks.on_prompt) q->hooks.on_prompt(q->hooks.user, ids, n_ids);
    if (p->on_progress) p->on_progress(p->user, DOTS_STAGE_PREFILL, 0, n_ids);
    const bool forcing = q->hooks.forced != NULL;
    q->max_new = forcing ? q->hooks.n_forced : p->max_new_tokens;
    int64_t cap_tokens = n_ids + q->max_new;
    if (cap_tokens > cfg->text.max_position_embeddings) cap_tokens = cfg->text.max_position_embeddings;
    if (n_ids >= cap_tokens) {
        s = DOTS_FAIL(ctx, DOTS_ERR_LIMIT, "the prompt (%lld tokens) fills the %d-token context", (long long)n_ids,
                      cfg->text.max_position_embeddings);
        goto done;
    }
    embeds = malloc(sizeof(float) * (size_t)(n_ids * H));
    q->logits = malloc(sizeof(float) * (size_t)V);
    r->tokens = malloc(sizeof(int32_t) * (size_t)(q->max_new > 0 ? q->max_new : 1));
    if (!embeds || !q->logits || !r->tokens) {
        s = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory for a %lld-token prompt", (long long)n_ids);
        goto done;
    }
    dots_lm_embed(cfg, w, ids, n_ids, embeds);
    s = dots_prompt_splice(ctx, ids, n_ids, dots_tokenizer_token_id(st->tok, "<|imgpad|>"), embeds, H, image_rows, n_image);
    if (s == DOTS_OK) s = dots_lm_state_init(ctx, cfg, cap_tokens, st->k.bf16 && st->k.isa >= DOTS_ISA_AVX512BF16, &q->lm);
    if (s == DOTS_OK) s = dots_lm_forward(ctx, cfg, w, &st->k, sc, &q->lm, embeds, n_ids, q->logits);
    if (s != DOTS_OK) goto done;
    q->t_decode0 = dots_monotonic_s();
    r->prefill_s = q->t_decode0 - t2;
    r->n_prompt_tokens = n_ids;
    r->n_image_tokens = n_image;
    if (q->hooks.on_logits) q->hooks.on_logits(q->hooks.user, -1, q->logits, V);

    int32_t n_valid = dots_tokenizer_n_ids(st->tok) < V ? dots_tokenizer_n_ids(st->tok) : (int32_t)V;
    if (!dots_sampler_init(&q->sampler, p->temperature, p->top_p, p->seed, n_valid)) {
        s = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory for the sampler");
        goto done;
    }
    s = dots_tok_stream_create(ctx, st->tok, true, &q->stream);
    if (s != DOTS_OK) goto done;
    /* the layout modes' grammar and the loop guard; never under teacher
     * forcing, whose tokens are given */
    const bool layout = p->mode == DOTS_MODE_LAYOUT_ALL || p->mode == DOTS_MODE_LAYOUT_ONLY;
    if (layout && !p->no_json_constraint && !forcing && !st->mask) {
        s = dots_token_mask_create(ctx, st->tok, n_valid, &st->mask);
        if (s != DOTS_OK) goto done;
    }
    dots_lg_limits lim = {r->resized_width_px, r->resized_height_px, p->mode == DOTS_MODE_LAYOUT_ALL, {0}};
    s = dots_guided_init(&q->gd, ctx, st->tok, layout && !p->no_json_constraint && !forcing ? st->mask : NULL, &lim,
                         !p->no_loop_guard && !forcing, cfg->generation.eos_token_ids, cfg->generation.n_eos_token_ids,
                         n_valid);
    if (s != DOTS_OK) goto done;
    r->loop_guard_first_at = -1;
    r->stop = DOTS_STOP_MAX_TOKENS;
done:
    st->k.poll = NULL;
    dots_pixel_rows_free(&rows);
    dots_image_free(&resized);
    free(image_rows);
    free(embeds);
    free(ids);
    if (s != DOTS_OK) dots_seq_free(q);
    return s;
}

dots_status dots_seq_pick(dots_ctx *ctx, dots_state *st, dots_seq *q) {
    const dots_config *cfg = dots_model_config(st->model);
    const int64_t V = cfg->text.vocab_size;
    dots_run_result *r = &q->r;
    const bool forcing = q->hooks.forced != NULL;
    q->feed = false;
    if (q->done) return DOTS_OK;
    if (q->i >= q->max_new) { /* r->stop is already max-new-tokens */
        q->done = true;
        return DOTS_OK;
    }
    const int64_t i = q->i++;
    if (q->p.on_progress && i % 64 == 0) q->p.on_progress(q->p.user, DOTS_STAGE_DECODE, i, q->max_new);
    if (dots_state_cancelled(st) || q->cancel) {
        r->stop = DOTS_STOP_CANCELLED;
        q->done = true;
        return DOTS_OK;
    }
    int32_t t = forcing ? q->hooks.forced[i] : dots_guided_pick(&q->gd, &q->sampler, q->logits, q->max_new - i);
    if (t < 0 || t >= V) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "token %d is outside the vocabulary", t);
    r->tokens[r->n_tokens++] = t;
    const char *piece = "";
    size_t plen = 0;
    if (t < dots_tokenizer_n_ids(st->tok) && dots_tok_stream_push(ctx, q->stream, t, &piece, &plen) != DOTS_OK) {
        piece = "";
        plen = 0;
        dots_ctx_clear_error(ctx);
    }
    q->done = true;
    if (q->p.on_token && !q->p.on_token(q->p.user, t, piece, plen)) {
        r->stop = DOTS_STOP_CALLBACK;
        return DOTS_OK;
    }
    if (is_eos(cfg, t)) {
        r->stop = DOTS_STOP_EOS;
        if (!forcing) return DOTS_OK; /* teacher forcing feeds every given token */
    }
    dots_guided_accept(&q->gd, t, i);
    if (q->gd.stop) {
        r->stop = DOTS_STOP_LOOP_GUARD;
        return DOTS_OK;
    }
    if (q->lm.n >= q->lm.cap) {
        r->stop = DOTS_STOP_CONTEXT;
        return DOTS_OK;
    }
    if (i + 1 == q->max_new && !forcing) return DOTS_OK; /* no need for the logits after the last one */
    q->done = false;
    q->feed = true;
    q->next = t;
    return DOTS_OK;
}

void dots_seq_fed(dots_seq *q, const dots_config *cfg) {
    if (q->hooks.on_logits) q->hooks.on_logits(q->hooks.user, q->i - 1, q->logits, cfg->text.vocab_size);
}

dots_status dots_seq_finish(dots_ctx *ctx, dots_state *st, dots_seq *q, dots_run_result *out) {
    dots_run_result *r = &q->r;
    r->decode_s = dots_monotonic_s() - q->t_decode0;
    r->constrained = q->gd.changed;
    r->loop_guard_fired = q->gd.fired;
    r->loop_guard_first_at = q->gd.first_at;
    r->constraint_s = q->gd.mask_s;
    dots_status s = dots_tok_decode(ctx, st->tok, r->tokens, (size_t)r->n_tokens, true, &r->text, &r->text_len);
    if (s != DOTS_OK) return s;
    *out = *r;
    memset(r, 0, sizeof *r);
    return DOTS_OK;
}

dots_status dots_run_image_ex(dots_ctx *ctx, dots_state *st, const dots_image *img, const dots_run_params *p,
                              const dots_run_hooks *hooks, dots_run_result *out) {
    if (!st || !img || !p || !out) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_run_image: NULL argument");
    const dots_config *cfg = dots_model_config(st->model);
    const dots_weights *w = dots_model_weights(st->model);
    dots_lm_scratch sc = {0};
    dots_seq q;
    float *tok_embed = malloc(sizeof(float) * (size_t)cfg->text.hidden_size);
    if (!tok_embed) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    dots_status s = dots_seq_begin(ctx, st, img, p, hooks, &sc, &q);
    while (s == DOTS_OK) {
        s = dots_seq_pick(ctx, st, &q);
        if (s != DOTS_OK || !q.feed) break;
        dots_lm_embed(cfg, w, &q.next, 1, tok_embed);
        s = dots_lm_forward(ctx, cfg, w, &st->k, &sc, &q.lm, tok_embed, 1, q.logits);
        if (s == DOTS_OK) dots_seq_fed(&q, cfg);
    }
    if (s == DOTS_OK) s = dots_seq_finish(ctx, st, &q, out);
    dots_seq_free(&q);
    dots_lm_scratch_free(&sc);
    free(tok_embed);
    return s;
}

dots_status dots_run_image(dots_ctx *ctx, dots_state *st, const dots_image *img, const dots_run_params *p,
                           dots_run_result *out) {
    dots_ctx_begin_call(ctx);
    return dots_run_image_ex(ctx, st, img, p, NULL, out);
}
