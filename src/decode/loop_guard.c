/*
 * loop_guard.c - see loop_guard.h. run[p] grows while each token equals
 * the one p places back; a cycle of period p then spans run[p] + p tokens.
 */
#include "decode/loop_guard.h"

#include <string.h>

void dots_loop_guard_init(dots_loop_guard *g) { memset(g, 0, sizeof *g); }

static int32_t back(const dots_loop_guard *g, int p) { /* the token p places before the newest */
    return g->recent[(g->n - 1 - p) % (2 * DOTS_LOOP_MAX_PERIOD)];
}

int dots_loop_guard_push(dots_loop_guard *g, int32_t t) {
    g->recent[g->n % (2 * DOTS_LOOP_MAX_PERIOD)] = t;
    g->n++;
    int fired = 0;
    for (int p = 1; p <= DOTS_LOOP_MAX_PERIOD; p++) {
        if (g->n > p && back(g, p) == t) g->run[p]++;
        else g->run[p] = 0;
        if (!fired && g->run[p] + p >= DOTS_LOOP_SPAN) fired = p;
    }
    if (fired) memset(g->run, 0, sizeof g->run);
    return fired;
}

int32_t dots_loop_guard_next(const dots_loop_guard *g, int period) {
    /* in a cycle of period p the next token is the one p - 1 places back */
    return period >= 1 && period <= DOTS_LOOP_MAX_PERIOD && g->n >= period ? back(g, period - 1) : -1;
}
