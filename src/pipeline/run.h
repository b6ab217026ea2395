/*
 * run.h - one page end to end (internal entry with hooks for dumps and
 * teacher forcing; dots_run_image is this without hooks).
 */
#ifndef DOTS_RUN_H
#define DOTS_RUN_H

#include "core/internal.h"
#include "decode/guided.h"
#include "decode/sampler.h"
#include "lm/qwen2.h"

typedef struct dots_run_hooks {
    void *user;
    /* the prompt ids, once built */
    void (*on_prompt)(void *user, const int32_t *ids, int64_t n);
    /* logits [vocab] after the prefill (step -1) and after each fed token */
    void (*on_logits)(void *user, int64_t step, const float *logits, int64_t vocab);
    /* teacher forcing: feed these tokens instead of choosing */
    const int32_t *forced;
    int64_t n_forced;
} dots_run_hooks;

/* One page's run in progress, between its prefill and its end: what a
 * single run steps alone and what a batch steps together with others. */
typedef struct dots_seq {
    dots_run_params p;
    dots_run_hooks hooks;
    dots_lm_state lm;     /* this sequence's KV cache */
    float *logits;        /* [vocab]: the next token's */
    dots_sampler sampler;
    dots_tok_stream *stream;
    dots_guided gd;
    dots_run_result r;    /* filled as tokens come */
    int64_t max_new, i;   /* budget, tokens picked */
    double t_decode0;
    int32_t next;         /* after dots_seq_pick with feed: the token to run */
    bool feed, done;
    bool cancel;          /* stop at the next pick (a batch's per-sequence cancel) */
} dots_seq;

/* Preprocess, vision, prompt and prefill (with sc as the pass scratch): q
 * then holds the first token's logits. On failure q is freed. */
dots_status dots_seq_begin(dots_ctx *ctx, dots_state *st, const dots_image *img, const dots_run_params *p,
                           const dots_run_hooks *hooks, dots_lm_scratch *sc, dots_seq *q);
/* Picks the next token from q->logits and applies every stop rule: then
 * either q->done, or q->feed with q->next to run through the model (whose
 * logits land in q->logits; call dots_seq_fed after). */
dots_status dots_seq_pick(dots_ctx *ctx, dots_state *st, dots_seq *q);
void dots_seq_fed(dots_seq *q, const dots_config *cfg);
/* The result of a done sequence (moved to out). */
dots_status dots_seq_finish(dots_ctx *ctx, dots_state *st, dots_seq *q, dots_run_result *out);
void dots_seq_free(dots_seq *q);

/* The kernels and tokenizer of st (borrowed), for the batch. */
const dots_kernels *dots_state_kernels(const dots_state *st);

dots_status dots_run_image_ex(dots_ctx *ctx, dots_state *st, const dots_image *img, const dots_run_params *p,
                              const dots_run_hooks *hooks, dots_run_result *out);

/* Whether dots_state_cancel() is in force on st. */
bool dots_state_cancelled(const dots_state *st);
/* The model st runs (borrowed). */
const dots_model *dots_state_model(const dots_state *st);

#endif
