/*
 * guided.h - the decoder's choices under the layout grammar and the loop
 * guard. In the layout modes only tokens that keep the answer a prefix of a
 * valid answer are candidates, and a token is taken only if the answer can
 * still be closed within the tokens left; otherwise the canonical closing
 * is emitted, so the answer is valid even when the budget runs out. The
 * loop guard closes the text cell it fires in (ban the cycle's next token
 * outside text; close the answer after 3 fires), and in the plain-text
 * modes stops generation.
 */
#ifndef DOTS_GUIDED_H
#define DOTS_GUIDED_H

#include "decode/layout_grammar.h"
#include "decode/loop_guard.h"
#include "decode/sampler.h"
#include "decode/token_mask.h"

#define DOTS_GUARD_FIRES_CLOSE_ANSWER 3

typedef struct dots_guided {
    dots_ctx *ctx;
    dots_tokenizer *tok;
    dots_token_mask *mask;     /* NULL: no grammar (plain-text modes, or turned off) */
    bool guard_on;
    const int32_t *eos;        /* the EOS ids */
    int n_eos;
    int32_t n_valid;           /* candidates are ids below this */
    dots_lg_state g;
    dots_loop_guard lg;
    int32_t queue[DOTS_LG_MAX_CLOSE];
    int n_queue, i_queue;      /* forced tokens still to emit */
    int32_t ban;               /* excluded from the next pick, -1 none */
    float *scratch;            /* [n_valid] masked logits */
    /* what happened, for the result */
    bool changed;              /* the grammar refused the model's first choice, or closed the answer */
    int32_t fired;             /* loop guard reports */
    int64_t first_at;          /* token index of the first, -1 */
    bool stop;                 /* the guard stopped a plain-text answer */
    double mask_s;             /* time spent making masks and choosing */
} dots_guided;

/* mask NULL: guard only. limits: the resized image and mode. */
dots_status dots_guided_init(dots_guided *d, dots_ctx *ctx, dots_tokenizer *tok, dots_token_mask *mask,
                             const dots_lg_limits *limits, bool guard_on, const int32_t *eos, int n_eos, int32_t n_valid);
void dots_guided_free(dots_guided *d);

/* The next token, from logits [>= n_valid], remaining tokens in the budget
 * including this one. */
int32_t dots_guided_pick(dots_guided *d, dots_sampler *s, const float *logits, int64_t remaining);
/* Records token t (index i of the answer): grammar state, loop guard. */
void dots_guided_accept(dots_guided *d, int32_t t, int64_t i);

#endif
