/*
 * qwen2.h - the Qwen2 language model of dots.ocr (docs/model.md §7): a KV cache sized
 * for one request, and a forward pass over any number of new tokens.
 */
#ifndef DOTS_QWEN2_H
#define DOTS_QWEN2_H

#include "kernels/kernels.h"
#include "model/weights.h"

/* Per-pass scratch: activations for up to `rows` rows, and per-row RoPE
 * tables. One is enough for any number of sequences run one pass at a time
 * (a batch keeps one for all its sequences, so that a long prefill's
 * buffers are not held once per sequence). */
typedef struct dots_lm_scratch {
    int64_t rows;      /* rows the buffers below hold */
    float *x, *a, *q, *o, *g, *u, *tmp; /* [rows] each (g, u: MLP row blocks) */
    float *cos_t, *sin_t; /* [rows][head_dim / 2] */
    float *last;       /* [rows][hidden]: the rows whose logits are wanted */
    float *bias_q, *bias_k, *bias_v; /* widened biases */
    float *logits;     /* [logit_rows][vocab]: a batch's output projection */
    int logit_rows;
} dots_lm_scratch;

typedef struct dots_lm_state {
    int64_t cap;       /* tokens the cache holds (prompt + generation budget) */
    int64_t n;         /* tokens in the cache so far = position of the next */
    void *k_cache;     /* [layers][kv_heads][cap][head_dim], post-RoPE; fp32, or bf16 when kv_bf16.
                        * Head-major: a decode step streams each head's rows contiguously */
    void *v_cache;     /* [layers][kv_heads][cap][head_dim] */
    bool kv_bf16;      /* the cache holds bf16 (precision bf16 on AVX512_BF16): half the bytes each
                        * decode step reads, and the attention products on vdpbf16ps */
    float *inv_freq;   /* [head_dim / 2] */
} dots_lm_state;

/* Allocates the cache for cap tokens (checked against limits: the cache is
 * 2 x layers x cap x kv x d values), in bf16 when kv_bf16. */
dots_status dots_lm_state_init(dots_ctx *ctx, const dots_config *cfg, int64_t cap, bool kv_bf16, dots_lm_state *s);
void dots_lm_state_free(dots_lm_state *s);
/* Bytes of the KV cache of s. */
int64_t dots_lm_state_bytes(const dots_lm_state *s, const dots_config *cfg);
void dots_lm_scratch_free(dots_lm_scratch *sc);

/* Token ids -> embeddings [n, hidden] (fp32). */
void dots_lm_embed(const dots_config *cfg, const dots_weights *w, const int32_t *ids, int64_t n, float *out);

/* Runs n new tokens (embeddings [n, hidden]) at positions s->n ...,
 * appending to the cache, in chunks. If logits is not NULL it receives the
 * logits [vocab] of the last token (final norm + lm_head on that row only). */
dots_status dots_lm_forward(dots_ctx *ctx, const dots_config *cfg, const dots_weights *w, const dots_kernels *k,
                            dots_lm_scratch *sc, dots_lm_state *s, const float *embeds, int64_t n, float *logits);

/* One decode step of B independent sequences: row b of embeds [B, hidden]
 * is the next token of seqs[b], at that sequence's own position and against
 * its own cache. Every matrix product takes the B rows in one pass over the
 * weights; attention stays per sequence. logits[b] (each [vocab], not NULL)
 * receives sequence b's next-token logits. B <= DOTS_LM_MAX_BATCH; the same
 * state may not appear twice. */
#define DOTS_LM_MAX_BATCH 64
dots_status dots_lm_forward_batch(dots_ctx *ctx, const dots_config *cfg, const dots_weights *w, const dots_kernels *k,
                                  dots_lm_scratch *sc, dots_lm_state *const *seqs, int B, const float *embeds,
                                  float *const *logits);

#endif
