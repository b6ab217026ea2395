/*
 * sampler.c - greedy and temperature / top-p sampling (see sampler.h).
 * Greedy ties go to the lowest id, as torch.argmax does.
 */
#include "decode/sampler.h"

#include <math.h>
#include <stdlib.h>

bool dots_sampler_init(dots_sampler *s, float temperature, float top_p, uint64_t seed, int32_t n_valid) {
    s->temperature = temperature;
    s->top_p = top_p;
    s->rng = seed ^ 0x9e3779b97f4a7c15ULL;
    if (!s->rng) s->rng = 1;
    s->n_valid = n_valid;
    s->probs = NULL;
    s->ranked = NULL;
    if (temperature > 0) {
        s->probs = malloc(sizeof(float) * (size_t)n_valid);
        s->ranked = malloc(sizeof *s->ranked * (size_t)n_valid);
        if (!s->probs || !s->ranked) {
            dots_sampler_free(s);
            return false;
        }
    }
    return true;
}

void dots_sampler_free(dots_sampler *s) {
    free(s->probs);
    free(s->ranked);
    s->probs = NULL;
    s->ranked = NULL;
}

static double uniform01(dots_sampler *s) { /* xorshift64* */
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return (double)((s->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}


/* Most likely first, ties by id: a total order, so the sort's result does
 * not depend on the qsort (plain qsort: qsort_r differs between glibc and
 * the BSDs / macOS). */
static int by_prob_desc(const void *a, const void *b) {
    const struct dots_ranked *x = a, *y = b;
    return x->p < y->p ? 1 : x->p > y->p ? -1 : (x->id > y->id) - (x->id < y->id);
}

int32_t dots_sampler_pick(dots_sampler *s, const float *logits) {
    int32_t best = 0;
    for (int32_t i = 1; i < s->n_valid; i++)
        if (logits[i] > logits[best]) best = i;
    if (s->temperature <= 0) return best;
    double sum = 0;
    for (int32_t i = 0; i < s->n_valid; i++) sum += (s->probs[i] = expf((logits[i] - logits[best]) / s->temperature));
    int32_t n = 0;
    /* candidates: enough to reach top_p; tiny probabilities never matter */
    for (int32_t i = 0; i < s->n_valid; i++)
        if (s->probs[i] / sum > 1e-9) s->ranked[n++] = (struct dots_ranked){s->probs[i], i};
    qsort(s->ranked, (size_t)n, sizeof *s->ranked, by_prob_desc);
    double mass = 0, limit = (s->top_p > 0 && s->top_p < 1) ? s->top_p * sum : sum;
    int32_t keep = 0;
    while (keep < n && mass < limit) mass += s->ranked[keep++].p;
    double r = uniform01(s) * mass, acc = 0;
    for (int32_t i = 0; i < keep; i++) {
        acc += s->ranked[i].p;
        if (r < acc) return s->ranked[i].id;
    }
    return s->ranked[keep > 0 ? keep - 1 : 0].id;
}
