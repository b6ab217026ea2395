/*
 * sampler.h - choosing the next token from logits: greedy (argmax, the
 * default) or temperature + top-p with a seeded RNG owned by the sampler.
 * Only ids below n_valid are candidates: the padding rows of the vocabulary
 * (151688 and up) are never produced.
 */
#ifndef DOTS_SAMPLER_H
#define DOTS_SAMPLER_H

#include <stdbool.h>
#include <stdint.h>

typedef struct dots_sampler {
    float temperature; /* <= 0: greedy */
    float top_p;       /* (0, 1): nucleus; otherwise off */
    uint64_t rng;
    int32_t n_valid;
    float *probs;      /* [n_valid] scratch */
    struct dots_ranked { float p; int32_t id; } *ranked; /* [n_valid] scratch: candidates, most likely first */
} dots_sampler;

/* false on OOM. */
bool dots_sampler_init(dots_sampler *s, float temperature, float top_p, uint64_t seed, int32_t n_valid);
void dots_sampler_free(dots_sampler *s);
int32_t dots_sampler_pick(dots_sampler *s, const float *logits);

#endif
