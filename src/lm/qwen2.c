/*
 * qwen2.c - the Qwen2 decoder (docs/model.md §7), composed from kernels.h.
 *
 *   per layer: a = RMSNorm(x) ─► q = a Wq^T + bq, k = a Wk^T + bk, v = a Wv^T + bv
 *              ─► RoPE(q, k) at positions n.. (theta 1e6, pairs (i, i+64))
 *              ─► append k, v to the cache ─► causal GQA attention (head h
 *                 reads kv head h / (heads / kv_heads)) ─► x += o Wo^T
 *              b = RMSNorm(x) ─► x += (silu(b Wgate^T) * (b Wup^T)) Wdown^T
 *   then RMSNorm and lm_head on the last row only.
 *
 * Prefill runs in chunks of rows (matrix-matrix products); decode is the
 * one-row case (matrix-vector products). The cache holds exactly the
 * request's tokens: cap is set by the caller from the actual prompt.
 */
#include "core/buffer.h"
#include "lm/qwen2.h"

#include "core/fp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Rows per forward pass: a whole prompt goes through each layer at once,
 * so each weight matrix is widened and packed once per prefill, not once
 * per small chunk. The MLP's [rows, 8960] intermediates go in row blocks. */
#define LM_CHUNK 4096
#define LM_MLP_ROWS 512

void dots_lm_state_free(dots_lm_state *s) {
    if (!s) return;
    free(s->k_cache);
    free(s->v_cache);
    dots_buffer_free(s->x);
    dots_buffer_free(s->a);
    dots_buffer_free(s->q);
    dots_buffer_free(s->o);
    dots_buffer_free(s->g);
    dots_buffer_free(s->u);
    dots_buffer_free(s->tmp);
    free(s->inv_freq);
    free(s->cos_t);
    free(s->sin_t);
    free(s->bias_q);
    free(s->bias_k);
    free(s->bias_v);
    memset(s, 0, sizeof *s);
}

dots_status dots_lm_state_init(dots_ctx *ctx, const dots_config *cfg, int64_t cap, bool kv_bf16, dots_lm_state *s) {
    const dots_text_config *t = &cfg->text;
    memset(s, 0, sizeof *s);
    if (cap <= 0 || cap > t->max_position_embeddings)
        return DOTS_FAIL(ctx, DOTS_ERR_LIMIT, "language model: %lld tokens is outside 1..%d (max_position_embeddings)",
                         (long long)cap, t->max_position_embeddings);
    const int64_t H = t->hidden_size, d = t->head_dim, Q = (int64_t)t->num_attention_heads * d;
    const int64_t KV = (int64_t)t->num_key_value_heads * d, F = t->intermediate_size, L = t->num_hidden_layers;
    int64_t cache;
    if (!dots_mul_i64(L, cap, &cache) || !dots_mul_i64(cache, KV, &cache) || cache > (INT64_C(1) << 36))
        return DOTS_FAIL(ctx, DOTS_ERR_LIMIT, "language model: a KV cache for %lld tokens is too large", (long long)cap);
    (void)H, (void)F;
    s->cap = cap;
    s->chunk = LM_CHUNK;
    /* malloc'd, not calloc'd: pages are touched only as tokens arrive */
    s->kv_bf16 = kv_bf16;
    const size_t es = kv_bf16 ? sizeof(uint16_t) : sizeof(float);
    s->k_cache = malloc(es * (size_t)cache);
    s->v_cache = malloc(es * (size_t)cache);
    s->inv_freq = malloc(sizeof(float) * (size_t)(d / 2));
    s->bias_q = malloc(sizeof(float) * (size_t)Q);
    s->bias_k = malloc(sizeof(float) * (size_t)KV);
    s->bias_v = malloc(sizeof(float) * (size_t)KV);
    if (!s->k_cache || !s->v_cache || !s->inv_freq || !s->bias_q || !s->bias_k || !s->bias_v) {
        dots_lm_state_free(s);
        return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "language model: cannot allocate the KV cache for %lld tokens",
                         (long long)cap);
    }
    /* as transformers computes it: fp32 1 / theta^(2j/d) */
    for (int64_t j = 0; j < d / 2; j++) s->inv_freq[j] = 1.0f / powf((float)t->rope_theta, (float)(2 * j) / (float)d);
    return DOTS_OK;
}

void dots_lm_embed(const dots_config *cfg, const dots_weights *w, const int32_t *ids, int64_t n, float *out) {
    const int64_t H = cfg->text.hidden_size;
    for (int64_t i = 0; i < n; i++) dots_weights_to_f32(out + i * H, w->lm.embed->data, w->lm.embed->dtype, (int64_t)ids[i] * H, H);
}

typedef struct lm_attn_job {
    const dots_kernels *k;
    dots_lm_state *s;
    const float *q; /* [rows, Q] within the q buffer (ld = Q + 2 KV) */
    int64_t ldq, rows, pos0, heads, group, d, KV, layer_off;
    float *o;
    float scale;
} lm_attn_job;

static void lm_attn_task(void *arg, int64_t h, int worker) {
    lm_attn_job *j = arg;
    const int64_t kvh = h / j->group, off = j->layer_off + kvh * j->s->cap * j->d;
    if (j->s->kv_bf16) {
        const uint16_t *kc = (const uint16_t *)j->s->k_cache + off, *vc = (const uint16_t *)j->s->v_cache + off;
        dots_attention_bf16_kv16(j->k->worker_scratch ? &j->k->worker_scratch[worker] : NULL, j->o + h * j->d, j->heads * j->d,
                                 j->q + h * j->d, j->ldq, kc, j->d, vc, j->d, j->rows, j->pos0 + j->rows, j->d, j->scale, true,
                                 j->pos0);
        return;
    }
    const float *kc = (const float *)j->s->k_cache + off, *vc = (const float *)j->s->v_cache + off;
    dots_attention(j->k, worker, j->o + h * j->d, j->heads * j->d, j->q + h * j->d, j->ldq, kc, j->d, vc, j->d, j->rows,
                   j->pos0 + j->rows, j->d, j->scale, true, j->pos0);
}

/* One decode step: a task per KV head and sub-group of its query heads
 * (more sub-groups only when the pool has more threads than KV heads), so
 * each key and value row is read once per sub-group, not once per head. */
typedef struct lm_decode_attn_job {
    const dots_kernels *k;
    dots_lm_state *s;
    const float *q; /* rows at ldq */
    float *o;       /* rows at Q */
    int64_t ldq, Q, rows, group, per_task, n_sub, d, KV, layer_off, pos0;
    float scale;
} lm_decode_attn_job;

static void lm_decode_attn_task(void *arg, int64_t t, int worker) {
    const lm_decode_attn_job *j = arg;
    const int64_t kvh = t / j->n_sub, h0 = kvh * j->group + (t % j->n_sub) * j->per_task,
                  off = j->layer_off + kvh * j->s->cap * j->d;
    const size_t es = j->s->kv_bf16 ? 2 : 4;
    const void *kc = (const uint8_t *)j->s->k_cache + (size_t)off * es, *vc = (const uint8_t *)j->s->v_cache + (size_t)off * es;
    for (int64_t r = 0; r < j->rows; r++) /* row r sees keys 0 .. pos0 + r */
        dots_attention_decode_group(j->k, worker, j->o + r * j->Q + h0 * j->d, j->q + r * j->ldq + h0 * j->d, (int)j->per_task, kc,
                                    j->d, vc, j->d, j->s->kv_bf16 ? DOTS_DTYPE_BF16 : DOTS_DTYPE_F32, j->pos0 + r + 1, j->d,
                                    j->scale);
}

/* RoPE on the new rows' q and k, and k, v into the cache, over the pool. */
#define ROPE_ROWS 32
typedef struct rope_job {
    dots_lm_state *s;
    float *q;
    int64_t ldq, rows, nh, nkv, d, Q, KV, layer_off, pos0;
} rope_job;

static void rope_task(void *arg, int64_t t, int worker) {
    (void)worker;
    const rope_job *j = arg;
    const int64_t half = j->d / 2, r1 = (t + 1) * ROPE_ROWS < j->rows ? (t + 1) * ROPE_ROWS : j->rows;
    dots_lm_state *s = j->s;
    for (int64_t r = t * ROPE_ROWS; r < r1; r++) {
        float *qr = j->q + r * j->ldq;
        for (int64_t h = 0; h < j->nh; h++) dots_rope_apply(qr + h * j->d, s->cos_t + r * half, s->sin_t + r * half, j->d);
        for (int64_t h = 0; h < j->nkv; h++) dots_rope_apply(qr + j->Q + h * j->d, s->cos_t + r * half, s->sin_t + r * half, j->d);
        for (int64_t h = 0; h < j->nkv; h++) { /* head-major: each KV head's rows contiguous */
            const int64_t at = j->layer_off + (h * s->cap + j->pos0 + r) * j->d;
            const float *kr = qr + j->Q + h * j->d, *vr = qr + j->Q + j->KV + h * j->d;
            if (s->kv_bf16) { /* rounded to nearest even, as the attention's own packing rounds */
                uint16_t *kd = (uint16_t *)s->k_cache + at, *vd = (uint16_t *)s->v_cache + at;
                for (int64_t c = 0; c < j->d; c++) kd[c] = dots_f32_to_bf16(kr[c]), vd[c] = dots_f32_to_bf16(vr[c]);
            } else {
                memcpy((float *)s->k_cache + at, kr, sizeof(float) * (size_t)j->d);
                memcpy((float *)s->v_cache + at, vr, sizeof(float) * (size_t)j->d);
            }
        }
    }
}

/* Scratch for passes of up to rows rows, grown on demand. */
static bool ensure_scratch(const dots_text_config *t, dots_lm_state *s, int64_t rows) {
    if (rows <= s->scratch_rows) return true;
    const int64_t H = t->hidden_size, d = t->head_dim, Q = (int64_t)t->num_attention_heads * d;
    const int64_t KV = (int64_t)t->num_key_value_heads * d, F = t->intermediate_size;
    const int64_t mr = rows < LM_MLP_ROWS ? rows : LM_MLP_ROWS;
    /* grown before a pass writes them: nothing to keep */
    float **bufs[] = {&s->x, &s->a, &s->q, &s->o, &s->g, &s->u, &s->tmp};
    const int64_t sizes[] = {rows * H, rows * H, rows * (Q + 2 * KV), rows * Q, mr * F, mr * F, rows * H};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        dots_buffer_free(*bufs[i]);
        *bufs[i] = dots_buffer_alloc(sizeof(float) * (size_t)sizes[i]);
        if (!*bufs[i]) {
            s->scratch_rows = 0;
            return false;
        }
    }
    float **tables[] = {&s->cos_t, &s->sin_t};
    for (size_t i = 0; i < 2; i++) {
        float *p = realloc(*tables[i], sizeof(float) * (size_t)(rows * d / 2));
        if (!p) {
            s->scratch_rows = 0;
            return false;
        }
        *tables[i] = p;
    }
    s->scratch_rows = rows;
    return true;
}

static dots_status forward_chunk(const dots_config *cfg, const dots_weights *w, const dots_kernels *k, dots_lm_state *s,
                                 const float *embeds, int64_t rows, float *logits) {
    const dots_text_config *t = &cfg->text;
    const int64_t H = t->hidden_size, d = t->head_dim, nh = t->num_attention_heads, nkv = t->num_key_value_heads;
    const int64_t Q = nh * d, KV = nkv * d, F = t->intermediate_size, ldq = Q + 2 * KV, half = d / 2;
    const float eps = (float)t->rms_norm_eps;
    const int64_t pos0 = s->n;
    float *x = s->x, *a = s->a, *q = s->q, *o = s->o;
    memcpy(x, embeds, sizeof(float) * (size_t)(rows * H));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < half; i++) {
            float ang = (float)(pos0 + r) * s->inv_freq[i];
            s->cos_t[r * half + i] = cosf(ang);
            s->sin_t[r * half + i] = sinf(ang);
        }
    for (int32_t l = 0; l < w->lm.n_layers; l++) {
        const dots_lm_layer_weights *L = &w->lm.layers[l];
        dots_par_rmsnorm(k, a, x, L->input_norm->data, L->input_norm->dtype, rows, H, eps);
        float *bq = NULL, *bk = NULL, *bv = NULL;
        if (L->q_b) {
            dots_weights_to_f32(s->bias_q, L->q_b->data, L->q_b->dtype, 0, Q);
            dots_weights_to_f32(s->bias_k, L->k_b->data, L->k_b->dtype, 0, KV);
            dots_weights_to_f32(s->bias_v, L->v_b->data, L->v_b->dtype, 0, KV);
            bq = s->bias_q, bk = s->bias_k, bv = s->bias_v;
        }
        const dots_gemm_item qkv[3] = {{L->q_w->data, L->q_w->dtype, Q, q, ldq, bq},
                                       {L->k_w->data, L->k_w->dtype, KV, q + Q, ldq, bk},
                                       {L->v_w->data, L->v_w->dtype, KV, q + Q + KV, ldq, bv}};
        dots_gemm_multi(k, a, H, rows, H, qkv, 3);
        const int64_t layer_off = (int64_t)l * s->cap * KV;
        rope_job rj = {s, q, ldq, rows, nh, nkv, d, Q, KV, layer_off, pos0};
        dots_pool_run(k->pool, (rows + ROPE_ROWS - 1) / ROPE_ROWS, rope_task, &rj);
        if (rows <= DOTS_GEMV_MAX_M) { /* decode (and a prompt's last few rows) */
            const int64_t group = nh / nkv, threads = dots_pool_size(k->pool);
            int64_t n_sub = 1;
            while (nkv * n_sub < threads && n_sub < group) /* the next divisor of the group */
                for (n_sub++; group % n_sub; n_sub++) {
                }
            lm_decode_attn_job dj = {k, s, q, o, ldq, Q, rows, group, group / n_sub, n_sub, d, KV, layer_off, pos0,
                                     1.0f / sqrtf((float)d)};
            dots_pool_run(k->pool, nkv * n_sub, lm_decode_attn_task, &dj);
        } else {
            lm_attn_job aj = {k, s, q, ldq, rows, pos0, nh, nh / nkv, d, KV, layer_off, o, 1.0f / sqrtf((float)d)};
            dots_pool_run(k->pool, nh, lm_attn_task, &aj);
        }
        dots_gemm(k, s->tmp, H, o, Q, L->o_w->data, L->o_w->dtype, Q, NULL, rows, H, Q);
        dots_par_add(k, x, s->tmp, rows * H);
        dots_par_rmsnorm(k, a, x, L->post_norm->data, L->post_norm->dtype, rows, H, eps);
        for (int64_t r0 = 0; r0 < rows; r0 += LM_MLP_ROWS) {
            int64_t nr = rows - r0 < LM_MLP_ROWS ? rows - r0 : LM_MLP_ROWS;
            const dots_gemm_item gu[2] = {{L->gate->data, L->gate->dtype, F, s->g, F, NULL},
                                          {L->up->data, L->up->dtype, F, s->u, F, NULL}};
            dots_gemm_multi(k, a + r0 * H, H, nr, H, gu, 2);
            dots_par_silu_mul(k, s->g, s->u, nr * F);
            dots_gemm(k, s->tmp + r0 * H, H, s->g, F, L->down->data, L->down->dtype, F, NULL, nr, H, F);
        }
        dots_par_add(k, x, s->tmp, rows * H);
    }
    s->n += rows;
    if (logits) {
        const float *last = x + (rows - 1) * H;
        dots_rmsnorm(a, last, w->lm.norm->data, w->lm.norm->dtype, 1, H, eps);
        dots_gemm(k, logits, t->vocab_size, a, H, w->lm.lm_head->data, w->lm.lm_head->dtype, H, NULL, 1, t->vocab_size, H);
    }
    return DOTS_OK;
}

dots_status dots_lm_forward(dots_ctx *ctx, const dots_config *cfg, const dots_weights *w, const dots_kernels *k,
                            dots_lm_state *s, const float *embeds, int64_t n, float *logits) {
    if (!cfg || !w || !k || !s || !embeds || n <= 0) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "lm_forward: bad argument");
    if (s->n + n > s->cap)
        return DOTS_FAIL(ctx, DOTS_ERR_LIMIT, "language model: %lld tokens exceed the %lld-token cache",
                         (long long)(s->n + n), (long long)s->cap);
    const int64_t H = cfg->text.hidden_size;
    if (!ensure_scratch(&cfg->text, s, n < s->chunk ? n : s->chunk))
        return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "language model: out of memory for %lld rows", (long long)n);
    for (int64_t i = 0; i < n; i += s->chunk) {
        if (n > 1 && dots_poll_step(k, DOTS_STAGE_PREFILL, i, n)) return DOTS_FAIL(ctx, DOTS_ERR_CANCELLED, "cancelled");
        int64_t rows = n - i < s->chunk ? n - i : s->chunk;
        dots_status st = forward_chunk(cfg, w, k, s, embeds + i * H, rows, i + rows == n ? logits : NULL);
        if (st != DOTS_OK) return st;
    }
    return DOTS_OK;
}
