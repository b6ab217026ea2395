/*
 * loop_guard.h - notices when generation has fallen into a cycle: the same
 * block of 1 to DOTS_LOOP_MAX_PERIOD tokens repeated back to back over at
 * least DOTS_LOOP_SPAN tokens. Real pages repeat too (a table whose rows
 * are alike, a row of empty cells, a run of dots), so the span is long:
 * 1024 tokens is about 50 identical three-cell table rows (about 20 tokens
 * each) or 250 empty cells in a row, while the loops users report run for
 * thousands of tokens. No penalty touches the logits: the guard only says
 * when, the decoder acts.
 */
#ifndef DOTS_LOOP_GUARD_H
#define DOTS_LOOP_GUARD_H

#include <stdbool.h>
#include <stdint.h>

#define DOTS_LOOP_MAX_PERIOD 64
#define DOTS_LOOP_SPAN 1024

typedef struct dots_loop_guard {
    int32_t recent[2 * DOTS_LOOP_MAX_PERIOD]; /* ring of the last tokens (more than a period) */
    int64_t n;                            /* tokens seen */
    int32_t run[DOTS_LOOP_MAX_PERIOD + 1]; /* run[p]: tokens in a row equal to the one p before */
} dots_loop_guard;

void dots_loop_guard_init(dots_loop_guard *g);
/* Adds token t; returns the period of a cycle that now spans
 * DOTS_LOOP_SPAN tokens (and forgets it, so the next report needs a new
 * full span), or 0. */
int dots_loop_guard_push(dots_loop_guard *g, int32_t t);
/* The token that would continue a cycle of that period. */
int32_t dots_loop_guard_next(const dots_loop_guard *g, int period);

#endif
