/*
 * token_mask.h - which tokens keep the layout answer valid, per grammar
 * state: a byte trie over the vocabulary walked alongside the grammar (a
 * subtree is dropped at its first refused byte), and a small cache of the
 * masks already made, keyed by the state (most steps are inside a "text"
 * string, whose mask is the same every time).
 */
#ifndef DOTS_TOKEN_MASK_H
#define DOTS_TOKEN_MASK_H

#include "core/internal.h"
#include "decode/layout_grammar.h"

typedef struct dots_token_mask dots_token_mask;

/* Builds the trie of tok's vocabulary (ids below n_ids; added tokens are
 * never part of an answer's bytes). */
dots_status dots_token_mask_create(dots_ctx *ctx, const dots_tokenizer *tok, int32_t n_ids, dots_token_mask **out);
void dots_token_mask_free(dots_token_mask *m);

/* The tokens whose bytes s accepts, as bits [n_ids] (borrowed until the
 * next call). NULL only on OOM. */
const uint64_t *dots_token_mask_get(dots_token_mask *m, const dots_lg_state *s);

/* The bytes of token id (0 for added tokens); borrowed. */
const uint8_t *dots_token_mask_bytes(const dots_token_mask *m, int32_t id, size_t *len);

static inline bool dots_mask_has(const uint64_t *bits, int32_t id) { return (bits[id >> 6] >> (id & 63)) & 1; }

#endif
