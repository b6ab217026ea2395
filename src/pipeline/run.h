/*
 * run.h - one page end to end (internal entry with hooks for dumps and
 * teacher forcing; dots_run_image is this without hooks).
 */
#ifndef DOTS_RUN_H
#define DOTS_RUN_H

#include "core/internal.h"

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

dots_status dots_run_image_ex(dots_ctx *ctx, dots_state *st, const dots_image *img, const dots_run_params *p,
                              const dots_run_hooks *hooks, dots_run_result *out);

/* Whether dots_state_cancel() is in force on st. */
bool dots_state_cancelled(const dots_state *st);
/* The model st runs (borrowed). */
const dots_model *dots_state_model(const dots_state *st);

#endif
