/*
 * qwen2.h - the Qwen2 language model of dots.ocr (docs/model.md §7): a KV cache sized
 * for one request, and a forward pass over any number of new tokens.
 */
#ifndef DOTS_QWEN2_H
#define DOTS_QWEN2_H

#include "kernels/kernels.h"
#include "model/weights.h"

typedef struct dots_lm_state {
    int64_t cap;       /* tokens the cache holds (prompt + generation budget) */
    int64_t n;         /* tokens in the cache so far = position of the next */
    int64_t chunk;     /* rows per forward pass (prefill is cut into chunks) */
    int64_t scratch_rows; /* rows the scratch buffers below hold */
    void *k_cache;     /* [layers][kv_heads][cap][head_dim], post-RoPE; fp32, or bf16 when kv_bf16.
                        * Head-major: a decode step streams each head's rows contiguously */
    void *v_cache;     /* [layers][kv_heads][cap][head_dim] */
    bool kv_bf16;      /* the cache holds bf16 (precision bf16 on AVX512_BF16): half the bytes each
                        * decode step reads, and the attention products on vdpbf16ps */
    float *x, *a, *q, *o, *g, *u, *tmp; /* scratch for scratch_rows rows (g, u: MLP row blocks) */
    float *inv_freq;   /* [head_dim / 2] */
    float *cos_t, *sin_t; /* [chunk][head_dim / 2] */
    float *bias_q, *bias_k, *bias_v; /* scratch for widened biases */
} dots_lm_state;

/* Allocates the cache for cap tokens (checked against limits: the cache is
 * 2 x layers x cap x kv x d values), in bf16 when kv_bf16. */
dots_status dots_lm_state_init(dots_ctx *ctx, const dots_config *cfg, int64_t cap, bool kv_bf16, dots_lm_state *s);
void dots_lm_state_free(dots_lm_state *s);

/* Token ids -> embeddings [n, hidden] (fp32). */
void dots_lm_embed(const dots_config *cfg, const dots_weights *w, const int32_t *ids, int64_t n, float *out);

/* Runs n new tokens (embeddings [n, hidden]) at positions s->n ...,
 * appending to the cache, in chunks. If logits is not NULL it receives the
 * logits [vocab] of the last token (final norm + lm_head on that row only). */
dots_status dots_lm_forward(dots_ctx *ctx, const dots_config *cfg, const dots_weights *w, const dots_kernels *k,
                            dots_lm_state *s, const float *embeds, int64_t n, float *logits);

#endif
