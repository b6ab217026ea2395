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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DOTS_DEFAULT_MAX_NEW_TOKENS 16384 /* the official parser's max_completion_tokens */

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

void dots_run_params_init(dots_run_params *p) {
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->mode = DOTS_MODE_LAYOUT_ALL;
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
    st->k.bf16 = st->k.isa >= DOTS_ISA_AVX512BF16; /* DOTS_PRECISION_AUTO */
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
    st->k.bf16 = precision == DOTS_PRECISION_BF16 || (precision == DOTS_PRECISION_AUTO && st->k.isa >= DOTS_ISA_AVX512BF16);
    return DOTS_OK;
}

dots_precision dots_state_precision(const dots_state *st) {
    return st && st->k.bf16 && st->k.isa >= DOTS_ISA_AVX512BF16 ? DOTS_PRECISION_BF16 : DOTS_PRECISION_FP32;
}

static bool is_eos(const dots_config *cfg, int32_t t) {
    for (int i = 0; i < cfg->generation.n_eos_token_ids; i++)
        if (cfg->generation.eos_token_ids[i] == t) return true;
    return false;
}

dots_status dots_run_image_ex(dots_ctx *ctx, dots_state *st, const dots_image *img, const dots_run_params *p,
                              const dots_run_hooks *hooks, dots_run_result *out) {
    if (!st || !img || !p || !out) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_run_image: NULL argument");
    if ((unsigned)p->mode >= DOTS_MODE_COUNT || p->max_new_tokens < 0 || !(p->temperature >= 0) || !(p->top_p >= 0))
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_run_image: bad parameters");
    const dots_config *cfg = dots_model_config(st->model);
    const dots_weights *w = dots_model_weights(st->model);
    const int64_t H = cfg->text.hidden_size, V = cfg->text.vocab_size;
    dots_run_result r = {0};
    dots_pixel_rows rows = {0};
    dots_image resized = {0};
    float *image_rows = NULL, *embeds = NULL, *logits = NULL, *tok_embed = NULL;
    int32_t *ids = NULL;
    int64_t n_ids = 0, n_image = 0, cap_tokens = 0;
    dots_lm_state lm = {0};
    dots_sampler sampler = {0};
    dots_tok_stream *stream = NULL;
    dots_guided gd = {0};
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
    r.resized_width_px = resized.width_px;
    r.resized_height_px = resized.height_px;
    double t1 = dots_monotonic_s();
    r.preprocess_s = t1 - t0;
    s = dots_vision_encode(ctx, cfg, w, &st->k, &rows, &image_rows, &n_image, NULL, NULL);
    if (s != DOTS_OK) goto done;
    double t2 = dots_monotonic_s();
    r.vision_s = t2 - t1;
    dots_pixel_rows_free(&rows);

    s = dots_prompt_build(ctx, st->tok, p->mode, p->bbox, n_image, &ids, &n_ids);
    if (s != DOTS_OK) goto done;
    if (hooks && hooks->on_prompt) hooks->on_prompt(hooks->user, ids, n_ids);
    if (p->on_progress) p->on_progress(p->user, DOTS_STAGE_PREFILL, 0, n_ids);
    int64_t max_new = hooks && hooks->forced ? hooks->n_forced : p->max_new_tokens ? p->max_new_tokens : DOTS_DEFAULT_MAX_NEW_TOKENS;
    cap_tokens = n_ids + max_new;
    if (cap_tokens > cfg->text.max_position_embeddings) cap_tokens = cfg->text.max_position_embeddings;
    if (n_ids >= cap_tokens) {
        s = DOTS_FAIL(ctx, DOTS_ERR_LIMIT, "the prompt (%lld tokens) fills the %d-token context", (long long)n_ids,
                      cfg->text.max_position_embeddings);
        goto done;
    }
    embeds = malloc(sizeof(float) * (size_t)(n_ids * H));
    logits = malloc(sizeof(float) * (size_t)V);
    tok_embed = malloc(sizeof(float) * (size_t)H);
    r.tokens = malloc(sizeof(int32_t) * (size_t)(max_new > 0 ? max_new : 1));
    if (!embeds || !logits || !tok_embed || !r.tokens) {
        s = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory for a %lld-token prompt", (long long)n_ids);
        goto done;
    }
    dots_lm_embed(cfg, w, ids, n_ids, embeds);
    s = dots_prompt_splice(ctx, ids, n_ids, embeds, H, image_rows, n_image);
    if (s == DOTS_OK) s = dots_lm_state_init(ctx, cfg, cap_tokens, st->k.bf16 && st->k.isa >= DOTS_ISA_AVX512BF16, &lm);
    if (s == DOTS_OK) s = dots_lm_forward(ctx, cfg, w, &st->k, &lm, embeds, n_ids, logits);
    if (s != DOTS_OK) goto done;
    free(embeds);
    embeds = NULL;
    double t3 = dots_monotonic_s();
    r.prefill_s = t3 - t2;
    if (hooks && hooks->on_logits) hooks->on_logits(hooks->user, -1, logits, V);

    int32_t n_valid = dots_tokenizer_n_ids(st->tok) < V ? dots_tokenizer_n_ids(st->tok) : (int32_t)V;
    if (!dots_sampler_init(&sampler, p->temperature, p->top_p, p->seed, n_valid)) {
        s = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory for the sampler");
        goto done;
    }
    s = dots_tok_stream_create(ctx, st->tok, true, &stream);
    if (s != DOTS_OK) goto done;
    /* the layout modes' grammar and the loop guard; never under teacher
     * forcing, whose tokens are given */
    const bool forcing = hooks && hooks->forced;
    const bool layout = p->mode == DOTS_MODE_LAYOUT_ALL || p->mode == DOTS_MODE_LAYOUT_ONLY;
    if (layout && !p->no_json_constraint && !forcing && !st->mask) {
        s = dots_token_mask_create(ctx, st->tok, n_valid, &st->mask);
        if (s != DOTS_OK) goto done;
    }
    dots_lg_limits lim = {r.resized_width_px, r.resized_height_px, p->mode == DOTS_MODE_LAYOUT_ALL, {0}};
    s = dots_guided_init(&gd, ctx, st->tok, layout && !p->no_json_constraint && !forcing ? st->mask : NULL, &lim,
                         !p->no_loop_guard && !forcing, cfg->generation.eos_token_ids, cfg->generation.n_eos_token_ids,
                         n_valid);
    if (s != DOTS_OK) goto done;
    r.loop_guard_first_at = -1;
    r.stop = DOTS_STOP_MAX_TOKENS;
    for (int64_t i = 0; i < max_new; i++) {
        if (p->on_progress && i % 64 == 0) p->on_progress(p->user, DOTS_STAGE_DECODE, i, max_new);
        if (dots_state_cancelled(st)) {
            r.stop = DOTS_STOP_CANCELLED;
            break;
        }
        int32_t t = forcing ? hooks->forced[i] : dots_guided_pick(&gd, &sampler, logits, max_new - i);
        if (t < 0 || t >= V) {
            s = DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "token %d is outside the vocabulary", t);
            goto done;
        }
        r.tokens[r.n_tokens++] = t;
        const char *piece = "";
        size_t plen = 0;
        if (t < dots_tokenizer_n_ids(st->tok) && dots_tok_stream_push(ctx, stream, t, &piece, &plen) != DOTS_OK) {
            piece = "";
            plen = 0;
            dots_ctx_clear_error(ctx);
        }
        if (p->on_token && !p->on_token(p->user, t, piece, plen)) {
            r.stop = DOTS_STOP_CALLBACK;
            break;
        }
        if (is_eos(cfg, t)) {
            r.stop = DOTS_STOP_EOS;
            if (!forcing) break; /* teacher forcing feeds every given token */
        }
        dots_guided_accept(&gd, t, i);
        if (gd.stop) {
            r.stop = DOTS_STOP_LOOP_GUARD;
            break;
        }
        if (lm.n >= lm.cap) {
            r.stop = DOTS_STOP_CONTEXT;
            break;
        }
        if (i + 1 == max_new && !(hooks && hooks->forced)) break; /* no need for the logits after the last one */
        dots_lm_embed(cfg, w, &t, 1, tok_embed);
        s = dots_lm_forward(ctx, cfg, w, &st->k, &lm, tok_embed, 1, logits);
        if (s != DOTS_OK) goto done;
        if (hooks && hooks->on_logits) hooks->on_logits(hooks->user, i, logits, V);
    }
    r.decode_s = dots_monotonic_s() - t3;
    r.constrained = gd.changed;
    r.loop_guard_fired = gd.fired;
    r.loop_guard_first_at = gd.first_at;
    r.constraint_s = gd.mask_s;
    s = dots_tok_decode(ctx, st->tok, r.tokens, (size_t)r.n_tokens, true, &r.text, &r.text_len);
    if (s != DOTS_OK) goto done;
    r.n_prompt_tokens = n_ids;
    r.n_image_tokens = n_image;
    *out = r;
    memset(&r, 0, sizeof r);
done:
    st->k.poll = NULL;
    dots_guided_free(&gd);
    dots_run_result_free(&r);
    dots_tok_stream_free(stream);
    dots_sampler_free(&sampler);
    dots_lm_state_free(&lm);
    dots_pixel_rows_free(&rows);
    dots_image_free(&resized);
    free(image_rows);
    free(embeds);
    free(logits);
    free(tok_embed);
    free(ids);
    return s;
}

dots_status dots_run_image(dots_ctx *ctx, dots_state *st, const dots_image *img, const dots_run_params *p,
                           dots_run_result *out) {
    dots_ctx_begin_call(ctx);
    return dots_run_image_ex(ctx, st, img, p, NULL, out);
}
