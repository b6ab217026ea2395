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
 * one-row case (matrix-vector products), and a batched decode step is one
 * row for each of B sequences: the products read each weight once for all
 * of them, while RoPE and attention use each sequence's own position and
 * cache. Each cache holds exactly its request's tokens: cap is set by the
 * caller from the actual prompt and budget.
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
    free(s->inv_freq);
    memset(s, 0, sizeof *s);
}

void dots_lm_scratch_free(dots_lm_scratch *sc) {
    if (!sc) return;
    float **bufs[] = {&sc->x, &sc->a, &sc->q, &sc->o, &sc->g, &sc->u, &sc->tmp, &sc->last, &sc->logits};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) dots_buffer_free(*bufs[i]);
    free(sc->cos_t);
    free(sc->sin_t);
    free(sc->bias_q);
    free(sc->bias_k);
    free(sc->bias_v);
    memset(sc, 0, sizeof *sc);
}

int64_t dots_lm_state_bytes(const dots_lm_state *s, const dots_config *cfg) {
    const dots_text_config *t = &cfg->text;
    return 2 * (int64_t)t->num_hidden_layers * s->cap * t->num_key_value_heads * t->head_dim * (s->kv_bf16 ? 2 : 4);
}

dots_status dots_lm_state_init(dots_ctx *ctx, const dots_config *cfg, int64_t cap, bool kv_bf16, dots_lm_state *s) {
    const dots_text_config *t = &cfg->text;
    memset(s, 0, sizeof *s);
    if (cap <= 0 || cap > t->max_position_embeddings)
        return DOTS_FAIL(ctx, DOTS_ERR_LIMIT, "language model: %lld tokens is outside 1..%d (max_position_embeddings)",
                         (long long)cap, t->max_position_embeddings);
    const int64_t d = t->head_dim, KV = (int64_t)t->num_key_value_heads * d, L = t->num_hidden_layers;
    int64_t cache;
    if (!dots_mul_i64(L, cap, &cache) || !dots_mul_i64(cache, KV, &cache) || cache > (INT64_C(1) << 36))
        return DOTS_FAIL(ctx, DOTS_ERR_LIMIT, "language model: a KV cache for %lld tokens is too large", (long long)cap);
    s->cap = cap;
    /* malloc'd, not calloc'd: pages are touched only as tokens arrive */
    s->kv_bf16 = kv_bf16;
    const size_t es = kv_bf16 ? sizeof(uint16_t) : sizeof(float);
    s->k_cache = malloc(es * (size_t)cache);
    s->v_cache = malloc(es * (size_t)cache);
    s->inv_freq = malloc(sizeof(float) * (size_t)(d / 2));
    if (!s->k_cache || !s->v_cache || !s->inv_freq) {
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

/* A pass runs rows of one or more sequences: segment i is rows [row0, row0 +
 * rows) of the pass, the next tokens of seq at positions pos0 ... A prefill
 * chunk is one segment of many rows; a batched decode step is B segments of
 * one row each. */
typedef struct lm_seg {
    dots_lm_state *s;
    int64_t row0, rows, pos0;
} lm_seg;

/* Prefill attention of one segment: a task per query head. */
typedef struct lm_attn_job {
    const dots_kernels *k;
    const lm_seg *seg;
    const float *q; /* the segment's first row (ld = Q + 2 KV) */
    int64_t ldq, heads, group, d, layer_off;
    float *o;
    float scale;
} lm_attn_job;

static void lm_attn_task(void *arg, int64_t h, int worker) {
    lm_attn_job *j = arg;
    const dots_lm_state *s = j->seg->s;
    const int64_t kvh = h / j->group, off = j->layer_off + kvh * s->cap * j->d, rows = j->seg->rows, pos0 = j->seg->pos0;
    if (s->kv_bf16) {
        const uint16_t *kc = (const uint16_t *)s->k_cache + off, *vc = (const uint16_t *)s->v_cache + off;
        dots_attention_bf16_kv16(j->k->worker_scratch ? &j->k->worker_scratch[worker] : NULL, j->o + h * j->d, j->heads * j->d,
                                 j->q + h * j->d, j->ldq, kc, j->d, vc, j->d, rows, pos0 + rows, j->d, j->scale, true, pos0);
        return;
    }
    const float *kc = (const float *)s->k_cache + off, *vc = (const float *)s->v_cache + off;
    dots_attention(j->k, worker, j->o + h * j->d, j->heads * j->d, j->q + h * j->d, j->ldq, kc, j->d, vc, j->d, rows, pos0 + rows,
                   j->d, j->scale, true, pos0);
}

/* Decode attention over every segment of the pass: a task per (segment, KV
 * head, sub-group of its query heads), more sub-groups only when the pool
 * has more threads than tasks, so each key and value row is read once per
 * sub-group, not once per head. */
typedef struct lm_decode_attn_job {
    const dots_kernels *k;
    const lm_seg *segs;
    const float *q; /* rows at ldq */
    float *o;       /* rows at Q */
    int64_t ldq, Q, group, per_task, n_sub, nkv, d, layer;
    float scale;
} lm_decode_attn_job;

static void lm_decode_attn_task(void *arg, int64_t t, int worker) {
    const lm_decode_attn_job *j = arg;
    const int64_t per_seg = j->nkv * j->n_sub, ti = t % per_seg;
    const lm_seg *seg = &j->segs[t / per_seg];
    const dots_lm_state *s = seg->s;
    const int64_t kvh = ti / j->n_sub, h0 = kvh * j->group + (ti % j->n_sub) * j->per_task;
    const int64_t off = (j->layer * j->nkv + kvh) * s->cap * j->d; /* [layers][kv_heads][cap][d] */
    const size_t es = s->kv_bf16 ? 2 : 4;
    const void *kc = (const uint8_t *)s->k_cache + (size_t)off * es, *vc = (const uint8_t *)s->v_cache + (size_t)off * es;
    for (int64_t r = 0; r < seg->rows; r++) /* row r sees keys 0 .. pos0 + r */
        dots_attention_decode_group(j->k, worker, j->o + (seg->row0 + r) * j->Q + h0 * j->d,
                                    j->q + (seg->row0 + r) * j->ldq + h0 * j->d, (int)j->per_task, kc, j->d, vc, j->d,
                                    s->kv_bf16 ? DOTS_DTYPE_BF16 : DOTS_DTYPE_F32, seg->pos0 + r + 1, j->d, j->scale);
}

/* RoPE on the new rows' q and k, and k, v into their sequence's cache, over
 * the pool: a task per block of rows of one segment. */
#define ROPE_ROWS 32
typedef struct rope_job {
    const lm_seg *segs;
    const int64_t *first_task; /* [n_segs + 1] */
    int n_segs;
    float *q;
    const float *cos_t, *sin_t; /* per pass row */
    int64_t ldq, nh, nkv, d, Q, KV, layer;
} rope_job;

static void rope_task(void *arg, int64_t t, int worker) {
    (void)worker;
    const rope_job *j = arg;
    int i = 0;
    while (t >= j->first_task[i + 1]) i++;
    const lm_seg *seg = &j->segs[i];
    dots_lm_state *s = seg->s;
    const int64_t half = j->d / 2, b = t - j->first_task[i], layer_off = j->layer * s->cap * j->KV;
    const int64_t r0 = b * ROPE_ROWS, r1 = r0 + ROPE_ROWS < seg->rows ? r0 + ROPE_ROWS : seg->rows;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t row = seg->row0 + r;
        float *qr = j->q + row * j->ldq;
        const float *c = j->cos_t + row * half, *sn = j->sin_t + row * half;
        for (int64_t h = 0; h < j->nh; h++) dots_rope_apply(qr + h * j->d, c, sn, j->d);
        for (int64_t h = 0; h < j->nkv; h++) dots_rope_apply(qr + j->Q + h * j->d, c, sn, j->d);
        for (int64_t h = 0; h < j->nkv; h++) { /* head-major: each KV head's rows contiguous */
            const int64_t at = layer_off + (h * s->cap + seg->pos0 + r) * j->d;
            const float *kr = qr + j->Q + h * j->d, *vr = qr + j->Q + j->KV + h * j->d;
            if (s->kv_bf16) { /* rounded to nearest even, as the attention's own packing rounds */
                uint16_t *kd = (uint16_t *)s->k_cache + at, *vd = (uint16_t *)s->v_cache + at;
                for (int64_t c2 = 0; c2 < j->d; c2++) kd[c2] = dots_f32_to_bf16(kr[c2]), vd[c2] = dots_f32_to_bf16(vr[c2]);
            } else {
                memcpy((float *)s->k_cache + at, kr, sizeof(float) * (size_t)j->d);
                memcpy((float *)s->v_cache + at, vr, sizeof(float) * (size_t)j->d);
            }
        }
    }
}

/* Scratch for passes of up to rows rows, grown on demand. */
static bool ensure_scratch(const dots_text_config *t, dots_lm_scratch *sc, int64_t rows) {
    if (rows <= sc->rows) return true;
    const int64_t H = t->hidden_size, d = t->head_dim, Q = (int64_t)t->num_attention_heads * d;
    const int64_t KV = (int64_t)t->num_key_value_heads * d, F = t->intermediate_size;
    const int64_t mr = rows < LM_MLP_ROWS ? rows : LM_MLP_ROWS;
    const int64_t lr = rows < DOTS_LM_MAX_BATCH ? rows : DOTS_LM_MAX_BATCH;
    /* grown before a pass writes them: nothing to keep */
    float **bufs[] = {&sc->x, &sc->a, &sc->q, &sc->o, &sc->g, &sc->u, &sc->tmp, &sc->last};
    const int64_t sizes[] = {rows * H, rows * H, rows * (Q + 2 * KV), rows * Q, mr * F, mr * F, rows * H, lr * H};
    sc->rows = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        dots_buffer_free(*bufs[i]);
        *bufs[i] = dots_buffer_alloc(sizeof(float) * (size_t)sizes[i]);
        if (!*bufs[i]) return false;
    }
    float **tables[] = {&sc->cos_t, &sc->sin_t, &sc->bias_q, &sc->bias_k, &sc->bias_v};
    const int64_t tsizes[] = {rows * d / 2, rows * d / 2, Q, KV, KV};
    for (size_t i = 0; i < sizeof tsizes / sizeof *tsizes; i++) {
        float *p = realloc(*tables[i], sizeof(float) * (size_t)tsizes[i]);
        if (!p) return false;
        *tables[i] = p;
    }
    sc->rows = rows;
    return true;
}

/* Room for n rows of logits (a batch's output projection). */
static bool ensure_logits(dots_lm_scratch *sc, int n, int64_t V) {
    if (n <= sc->logit_rows) return true;
    dots_buffer_free(sc->logits);
    sc->logits = dots_buffer_alloc(sizeof(float) * (size_t)n * (size_t)V);
    sc->logit_rows = sc->logits ? n : 0;
    return sc->logits != NULL;
}

/* One pass over the layers for the rows of n_segs segments (embeds: the
 * pass's rows in order). logits: NULL, or one [vocab] per segment for its
 * last row. */
static void forward_pass(const dots_config *cfg, const dots_weights *w, const dots_kernels *k, dots_lm_scratch *sc,
                         const lm_seg *segs, int n_segs, int64_t rows, const float *embeds, float *const *logits) {
    const dots_text_config *t = &cfg->text;
    const int64_t H = t->hidden_size, d = t->head_dim, nh = t->num_attention_heads, nkv = t->num_key_value_heads;
    const int64_t Q = nh * d, KV = nkv * d, F = t->intermediate_size, ldq = Q + 2 * KV, half = d / 2;
    const float eps = (float)t->rms_norm_eps;
    float *x = sc->x, *a = sc->a, *q = sc->q, *o = sc->o;
    memcpy(x, embeds, sizeof(float) * (size_t)(rows * H));
    int64_t first_task[DOTS_LM_MAX_BATCH + 1];
    first_task[0] = 0;
    for (int i = 0; i < n_segs; i++) {
        const lm_seg *g = &segs[i];
        for (int64_t r = 0; r < g->rows; r++)
            for (int64_t j = 0; j < half; j++) {
                float ang = (float)(g->pos0 + r) * g->s->inv_freq[j];
                sc->cos_t[(g->row0 + r) * half + j] = cosf(ang);
                sc->sin_t[(g->row0 + r) * half + j] = sinf(ang);
            }
        first_task[i + 1] = first_task[i] + (g->rows + ROPE_ROWS - 1) / ROPE_ROWS;
    }
    /* decode attention when every segment is a few rows; a prefill chunk is one segment */
    bool decode = true;
    for (int i = 0; i < n_segs; i++) decode = decode && segs[i].rows <= DOTS_GEMV_MAX_M;
    const int64_t group = nh / nkv, threads = dots_pool_size(k->pool);
    int64_t n_sub = 1;
    while (n_segs * nkv * n_sub < threads && n_sub < group) /* the next divisor of the group */
        for (n_sub++; group % n_sub; n_sub++) {
        }
    for (int32_t l = 0; l < w->lm.n_layers; l++) {
        const dots_lm_layer_weights *L = &w->lm.layers[l];
        dots_par_rmsnorm(k, a, x, L->input_norm->data, L->input_norm->dtype, rows, H, eps);
        float *bq = NULL, *bk = NULL, *bv = NULL;
        if (L->q_b) {
            dots_weights_to_f32(sc->bias_q, L->q_b->data, L->q_b->dtype, 0, Q);
            dots_weights_to_f32(sc->bias_k, L->k_b->data, L->k_b->dtype, 0, KV);
            dots_weights_to_f32(sc->bias_v, L->v_b->data, L->v_b->dtype, 0, KV);
            bq = sc->bias_q, bk = sc->bias_k, bv = sc->bias_v;
        }
        const dots_gemm_item qkv[3] = {{L->q_w->data, L->q_w->dtype, Q, q, ldq, bq},
                                       {L->k_w->data, L->k_w->dtype, KV, q + Q, ldq, bk},
                                       {L->v_w->data, L->v_w->dtype, KV, q + Q + KV, ldq, bv}};
        dots_gemm_multi(k, a, H, rows, H, qkv, 3);
        rope_job rj = {segs, first_task, n_segs, q, sc->cos_t, sc->sin_t, ldq, nh, nkv, d, Q, KV, l};
        dots_pool_run(k->pool, first_task[n_segs], rope_task, &rj);
        if (decode) {
            lm_decode_attn_job dj = {k, segs, q, o, ldq, Q, group, group / n_sub, n_sub, nkv, d, l, 1.0f / sqrtf((float)d)};
            dots_pool_run(k->pool, n_segs * nkv * n_sub, lm_decode_attn_task, &dj);
        } else {
            for (int i = 0; i < n_segs; i++) {
                lm_attn_job aj = {k, &segs[i], q + segs[i].row0 * ldq, ldq, nh, group, d, (int64_t)l * segs[i].s->cap * KV,
                                  o + segs[i].row0 * Q, 1.0f / sqrtf((float)d)};
                dots_pool_run(k->pool, nh, lm_attn_task, &aj);
            }
        }
        dots_gemm(k, sc->tmp, H, o, Q, L->o_w->data, L->o_w->dtype, Q, NULL, rows, H, Q);
        dots_par_add(k, x, sc->tmp, rows * H);
        dots_par_rmsnorm(k, a, x, L->post_norm->data, L->post_norm->dtype, rows, H, eps);
        for (int64_t r0 = 0; r0 < rows; r0 += LM_MLP_ROWS) {
            int64_t nr = rows - r0 < LM_MLP_ROWS ? rows - r0 : LM_MLP_ROWS;
            const dots_gemm_item gu[2] = {{L->gate->data, L->gate->dtype, F, sc->g, F, NULL},
                                          {L->up->data, L->up->dtype, F, sc->u, F, NULL}};
            dots_gemm_multi(k, a + r0 * H, H, nr, H, gu, 2);
            dots_par_silu_mul(k, sc->g, sc->u, nr * F);
            dots_gemm(k, sc->tmp + r0 * H, H, sc->g, F, L->down->data, L->down->dtype, F, NULL, nr, H, F);
        }
        dots_par_add(k, x, sc->tmp, rows * H);
    }
    for (int i = 0; i < n_segs; i++) segs[i].s->n += segs[i].rows;
    if (!logits) return;
    /* the segments' last rows through the final norm and lm_head in one product */
    for (int i = 0; i < n_segs; i++)
        dots_rmsnorm(sc->last + i * H, x + (segs[i].row0 + segs[i].rows - 1) * H, w->lm.norm->data, w->lm.norm->dtype, 1, H, eps);
    const int64_t V = t->vocab_size;
    if (n_segs == 1) {
        dots_gemm(k, logits[0], V, sc->last, H, w->lm.lm_head->data, w->lm.lm_head->dtype, H, NULL, 1, V, H);
        return;
    }
    /* one product for all segments (the output projection is the largest
     * matrix), then each row to its sequence's buffer */
    dots_gemm(k, sc->logits, V, sc->last, H, w->lm.lm_head->data, w->lm.lm_head->dtype, H, NULL, n_segs, V, H);
    for (int i = 0; i < n_segs; i++) memcpy(logits[i], sc->logits + (int64_t)i * V, sizeof(float) * (size_t)V);
}

dots_status dots_lm_forward(dots_ctx *ctx, const dots_config *cfg, const dots_weights *w, const dots_kernels *k,
                            dots_lm_scratch *sc, dots_lm_state *s, const float *embeds, int64_t n, float *logits) {
    if (!cfg || !w || !k || !sc || !s || !embeds || n <= 0)
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "lm_forward: bad argument");
    if (s->n + n > s->cap)
        return DOTS_FAIL(ctx, DOTS_ERR_LIMIT, "language model: %lld tokens exceed the %lld-token cache",
                         (long long)(s->n + n), (long long)s->cap);
    const int64_t H = cfg->text.hidden_size;
    if (!ensure_scratch(&cfg->text, sc, n < LM_CHUNK ? n : LM_CHUNK))
        return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "language model: out of memory for %lld rows", (long long)n);
    for (int64_t i = 0; i < n; i += LM_CHUNK) {
        if (n > 1 && dots_poll_step(k, DOTS_STAGE_PREFILL, i, n)) return DOTS_FAIL(ctx, DOTS_ERR_CANCELLED, "cancelled");
        const int64_t rows = n - i < LM_CHUNK ? n - i : LM_CHUNK;
        const lm_seg seg = {s, 0, rows, s->n};
        forward_pass(cfg, w, k, sc, &seg, 1, rows, embeds + i * H, i + rows == n && logits ? &logits : NULL);
    }
    return DOTS_OK;
}

dots_status dots_lm_forward_batch(dots_ctx *ctx, const dots_config *cfg, const dots_weights *w, const dots_kernels *k,
                                  dots_lm_scratch *sc, dots_lm_state *const *seqs, int B, const float *embeds,
                                  float *const *logits) {
    if (!cfg || !w || !k || !sc || !seqs || !embeds || !logits || B <= 0 || B > DOTS_LM_MAX_BATCH)
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "lm_forward_batch: bad argument");
    lm_seg segs[DOTS_LM_MAX_BATCH];
    for (int b = 0; b < B; b++) {
        if (!seqs[b] || !logits[b]) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "lm_forward_batch: sequence %d is NULL", b);
        for (int c = 0; c < b; c++)
            if (seqs[c] == seqs[b])
                return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "lm_forward_batch: sequences %d and %d are the same", c, b);
        if (seqs[b]->n + 1 > seqs[b]->cap)
            return DOTS_FAIL(ctx, DOTS_ERR_LIMIT, "language model: sequence %d's %lld-token cache is full", b,
                             (long long)seqs[b]->cap);
        segs[b] = (lm_seg){seqs[b], b, 1, seqs[b]->n};
    }
    if (!ensure_scratch(&cfg->text, sc, B) || !ensure_logits(sc, B, cfg->text.vocab_size))
        return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "language model: out of memory for a batch of %d", B);
    forward_pass(cfg, w, k, sc, segs, B, B, embeds, logits);
    return DOTS_OK;
}
