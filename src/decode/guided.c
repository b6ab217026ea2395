/*
 * guided.c - see guided.h.
 */
#include "decode/guided.h"

#include "tokenizer/tokenizer_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TRIES 8 /* candidates refused for the budget before closing */

dots_status dots_guided_init(dots_guided *d, dots_ctx *ctx, dots_tokenizer *tok, dots_token_mask *mask,
                             const dots_lg_limits *limits, bool guard_on, const int32_t *eos, int n_eos, int32_t n_valid) {
    memset(d, 0, sizeof *d);
    d->ctx = ctx;
    d->tok = tok;
    d->mask = mask;
    d->guard_on = guard_on;
    d->eos = eos;
    d->n_eos = n_eos;
    d->n_valid = n_valid;
    d->ban = -1;
    d->first_at = -1;
    dots_lg_init(&d->g, limits);
    dots_loop_guard_init(&d->lg);
    if (mask && !(d->scratch = malloc(sizeof(float) * (size_t)n_valid)))
        return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory for the layout constraint");
    return DOTS_OK;
}

void dots_guided_free(dots_guided *d) {
    if (!d) return;
    free(d->scratch);
    d->scratch = NULL;
}

static bool is_eos(const dots_guided *d, int32_t t) {
    for (int i = 0; i < d->n_eos; i++)
        if (d->eos[i] == t) return true;
    return false;
}

/* The canonical closing of s (until the current object ends, or the whole
 * answer) as tokens: the bytes that finish a split character one byte token
 * each, the ASCII rest through the tokenizer. Returns the count (<= cap). */
static int closing_tokens(dots_guided *d, const dots_lg_state *s, bool until_object, int32_t *out, int cap) {
    uint8_t bytes[DOTS_LG_MAX_CLOSE];
    size_t n_utf8 = 0, n = dots_lg_closing(s, until_object, bytes, &n_utf8);
    int k = 0;
    for (size_t i = 0; i < n_utf8 && k < cap; i++) out[k++] = d->tok->byte_id[bytes[i]];
    if (n > n_utf8) {
        int32_t *ids = NULL;
        size_t n_ids = 0;
        if (dots_tok_encode(d->ctx, d->tok, (const char *)bytes + n_utf8, n - n_utf8, &ids, &n_ids) == DOTS_OK) {
            for (size_t i = 0; i < n_ids && k < cap; i++) out[k++] = ids[i];
        } else { /* cannot happen for ASCII; bytes are always tokens of their own */
            dots_ctx_clear_error(d->ctx);
            for (size_t i = n_utf8; i < n && k < cap; i++) out[k++] = d->tok->byte_id[bytes[i]];
        }
        free(ids);
    }
    return k;
}

static void queue_closing(dots_guided *d, bool until_object) {
    d->n_queue = closing_tokens(d, &d->g, until_object, d->queue, DOTS_LG_MAX_CLOSE);
    d->i_queue = 0;
}

/* Whether token t keeps the answer closable within left tokens after it. */
static bool fits(dots_guided *d, int32_t t, int64_t left) {
    if (is_eos(d, t)) return dots_lg_complete(&d->g);
    size_t n = 0;
    const uint8_t *b = dots_token_mask_bytes(d->mask, t, &n);
    dots_lg_state s = d->g;
    if (!n || !dots_lg_feed_bytes(&s, b, n)) return false;
    if (dots_lg_complete(&s)) return true;
    int32_t tmp[DOTS_LG_MAX_CLOSE];
    return closing_tokens(d, &s, false, tmp, DOTS_LG_MAX_CLOSE) <= left;
}

static int32_t argmax(const float *x, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

int32_t dots_guided_pick(dots_guided *d, dots_sampler *s, const float *logits, int64_t remaining) {
    if (d->i_queue < d->n_queue) return d->queue[d->i_queue++];
    if (!d->mask) return dots_sampler_pick(s, logits); /* guard only: it stops, it never steers */
    double t0 = dots_monotonic_s();
    const bool done = dots_lg_complete(&d->g);
    const uint64_t *bits = dots_token_mask_get(d->mask, &d->g);
    float *m = d->scratch;
    /* one pass: the masked logits, and the model's own first choice */
    int32_t first = 0;
    for (int32_t w = 0, base = 0; base < d->n_valid; w++, base += 64) {
        uint64_t word = bits ? bits[w] : 0;
        int32_t end = base + 64 < d->n_valid ? base + 64 : d->n_valid;
        for (int32_t i = base; i < end; i++) {
            if (logits[i] > logits[first]) first = i;
            m[i] = (word >> (i - base)) & 1 ? logits[i] : -INFINITY;
        }
    }
    for (int i = 0; i < d->n_eos; i++)
        if (d->eos[i] >= 0 && d->eos[i] < d->n_valid) m[d->eos[i]] = done ? logits[d->eos[i]] : -INFINITY;
    if (d->ban >= 0 && d->ban < d->n_valid) m[d->ban] = -INFINITY;
    d->ban = -1;
    if (!(m[first] > -INFINITY)) d->changed = true;
    int32_t pick = -1;
    for (int tries = 0; tries < MAX_TRIES; tries++) {
        int32_t t = s->temperature > 0 ? dots_sampler_pick(s, m) : argmax(m, d->n_valid);
        if (t < 0 || t >= d->n_valid || !(m[t] > -INFINITY)) break; /* nothing left */
        if (fits(d, t, remaining - 1)) {
            pick = t;
            break;
        }
        m[t] = -INFINITY;
    }
    if (pick < 0) { /* close the answer now: it fits, since the state before did */
        d->changed = true;
        if (done) {
            pick = d->n_eos ? d->eos[0] : 0;
        } else {
            queue_closing(d, false);
            pick = d->n_queue ? d->queue[d->i_queue++] : (d->n_eos ? d->eos[0] : 0);
        }
    }
    d->mask_s += dots_monotonic_s() - t0;
    return pick;
}

void dots_guided_accept(dots_guided *d, int32_t t, int64_t i) {
    if (d->mask && !is_eos(d, t)) {
        size_t n = 0;
        const uint8_t *b = dots_token_mask_bytes(d->mask, t, &n);
        dots_lg_state s = d->g;
        if (n && dots_lg_feed_bytes(&s, b, n)) d->g = s;
    }
    if (!d->guard_on) return;
    int period = dots_loop_guard_push(&d->lg, t);
    if (!period) return;
    d->fired++;
    if (d->first_at < 0) d->first_at = i;
    if (!d->mask) {
        d->stop = true; /* plain text: a loop is the end of what the page says */
        return;
    }
    if (d->i_queue < d->n_queue) return; /* already closing */
    if (d->fired >= DOTS_GUARD_FIRES_CLOSE_ANSWER) {
        queue_closing(d, false);
    } else if (dots_lg_in_text(&d->g)) {
        queue_closing(d, true); /* end the cell; the model goes on with the next one */
    } else {
        d->ban = dots_loop_guard_next(&d->lg, period);
    }
}
