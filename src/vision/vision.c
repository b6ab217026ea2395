/*
 * vision.c - the dots.vit encoder (docs/model.md §5), composed from kernels.h.
 *
 *   pixels [N, 3p^2] ─► x = pixels . Wpe^T + b ─► RMSNorm           (5.1)
 *   42 x:  a = RMSNorm(x) ─► qkv = a . Wqkv^T [N, 3D] ─► 2-D RoPE on q, k
 *          ─► per head softmax(q k^T / sqrt(d)) v (non-causal, tiled)
 *          ─► x += o . Wproj^T
 *          b = RMSNorm(x) ─► x += (silu(b . Wfc1^T) * (b . Wfc3^T)) . Wfc2^T  (5.3)
 *   ─► RMSNorm (post_trunk_norm)                                      (5.4)
 *   ─► LayerNorm(1e-6) ─► 4 rows -> 1 [N/4, 4D] ─► Linear+b ─► GELU(erf)
 *      ─► Linear+b ─► [N/4, hidden]                                   (5.5)
 *
 * The rows arrive merge-block-major (4.5), so the 2x2 merge is a plain
 * reinterpretation of 4 consecutive rows. The MLP runs in row chunks, so
 * its [N, 4224] intermediates never exist whole.
 */
#include "core/buffer.h"
#include "vision/vision.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* MLP rows per pass: each pass packs the three MLP weights again, so
 * passes are few; 2048 rows keep the [rows, 4224] intermediates at 35 MB each. */
#define MLP_CHUNK_ROWS 2048
#define ATTN_CHUNK_ROWS 512
#define ROWS_PER_TASK 64 /* RoPE rows per pool task */

typedef struct attn_job {
    const dots_kernels *k;
    const float *qkv; /* [N, 3D] */
    float *o;         /* [N, D] */
    int64_t n, D, d, n_chunks;
    float scale;
} attn_job;

static void attn_task(void *arg, int64_t t, int worker) {
    attn_job *j = arg;
    int64_t h = t / j->n_chunks, c = t % j->n_chunks;
    int64_t q0 = c * ATTN_CHUNK_ROWS, nq = j->n - q0 < ATTN_CHUNK_ROWS ? j->n - q0 : ATTN_CHUNK_ROWS;
    const int64_t ld = 3 * j->D;
    const float *q = j->qkv + q0 * ld + h * j->d;
    const float *k = j->qkv + j->D + h * j->d;
    const float *v = j->qkv + 2 * j->D + h * j->d;
    dots_attention(j->k, worker, j->o + q0 * j->D + h * j->d, j->D, q, ld, k, ld, v, ld, nq, j->n, j->d, j->scale, false, 0);
}

/* RoPE on q and k of every head, over the pool in row ranges. */
typedef struct rope_job {
    float *qkv;
    int64_t n_rows, H, d, D;
    const float *cos_t, *sin_t;
} rope_job;

static void rope_task(void *arg, int64_t t, int worker) {
    (void)worker;
    const rope_job *j = arg;
    int64_t r0 = t * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK < j->n_rows ? r0 + ROWS_PER_TASK : j->n_rows;
    for (int64_t r = r0; r < r1; r++)
        for (int64_t h = 0; h < j->H; h++) {
            dots_rope_apply(j->qkv + r * 3 * j->D + h * j->d, j->cos_t + r * j->d / 2, j->sin_t + r * j->d / 2, j->d);
            dots_rope_apply(j->qkv + r * 3 * j->D + j->D + h * j->d, j->cos_t + r * j->d / 2, j->sin_t + r * j->d / 2, j->d);
        }
}

/* cos/sin tables [N][d/2] of docs/model.md §5.2: the first half of each row from the
 * patch row, the second from the column, frequencies 10000^(-2j/(d/2)). */
static void rope_tables(const int32_t *pos, int64_t n, int64_t d, float *cos_t, float *sin_t) {
    const int64_t half = d / 2, quarter = d / 4;
    float inv[1024];
    for (int64_t j = 0; j < quarter; j++) inv[j] = 1.0f / powf(10000.0f, (float)(2 * j) / (float)half);
    for (int64_t t = 0; t < n; t++)
        for (int64_t i = 0; i < half; i++) {
            float a = (float)(i < quarter ? pos[t * 2] : pos[t * 2 + 1]) * inv[i % quarter];
            cos_t[t * half + i] = cosf(a);
            sin_t[t * half + i] = sinf(a);
        }
}

dots_status dots_vision_encode(dots_ctx *ctx, const dots_config *cfg, const dots_weights *w, const dots_kernels *k,
                               const dots_pixel_rows *rows, float **out, int64_t *n_out, dots_vision_dump_fn dump,
                               void *dump_user) {
    if (!cfg || !w || !rows || !rows->pixels || !out || !n_out)
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "vision: NULL argument");
    const dots_vision_config *vc = &cfg->vision;
    const dots_vision_weights *vw = &w->vision;
    const int64_t N = rows->n_patches, D = vc->embed_dim, d = vc->head_dim, H = vc->num_attention_heads;
    const int64_t I = vc->intermediate_size, P = rows->patch_dim, mm = (int64_t)vc->spatial_merge_size * vc->spatial_merge_size;
    const int64_t HID = vc->hidden_size, n_tok = N / mm;
    const float eps = (float)vc->rms_norm_eps;
    if (N <= 0 || N % mm != 0 || P != vw->patch_proj_w->n_elements / D || d > 2048)
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "vision: %lld patch rows of %lld values do not fit this model",
                         (long long)N, (long long)P);
    int64_t chunk = N < MLP_CHUNK_ROWS ? N : MLP_CHUNK_ROWS;
    float *x = dots_buffer_alloc(sizeof(float) * (size_t)(N * D));
    float *a = dots_buffer_alloc(sizeof(float) * (size_t)(N * D));
    float *o = dots_buffer_alloc(sizeof(float) * (size_t)(N * D));
    float *qkv = dots_buffer_alloc(sizeof(float) * (size_t)(N * 3 * D));
    float *g = dots_buffer_alloc(sizeof(float) * (size_t)(chunk * I));
    float *u = dots_buffer_alloc(sizeof(float) * (size_t)(chunk * I));
    float *cos_t = malloc(sizeof(float) * (size_t)(N * d / 2));
    float *sin_t = malloc(sizeof(float) * (size_t)(N * d / 2));
    float *merged = NULL, *emb = NULL;
    dots_status st = DOTS_OK;
    if (!x || !a || !o || !qkv || !g || !u || !cos_t || !sin_t) {
        st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "vision: cannot allocate activations for %lld patches", (long long)N);
        goto done;
    }
#define T(t) (t)->data, (t)->dtype
    /* 5.1 patch embedding: the conv is a GEMM with the weight as [D, 3p^2] (o is free here) */
    dots_weights_to_f32(o, T(vw->patch_proj_b), 0, D);
    dots_gemm(k, x, D, rows->pixels, P, T(vw->patch_proj_w), P, o, N, D, P);
    dots_rmsnorm(x, x, T(vw->patch_norm), N, D, eps);
    if (dump) dump(dump_user, "patch_embed", x, N, D);
    rope_tables(rows->positions, N, d, cos_t, sin_t);

    attn_job aj = {k, qkv, o, N, D, d, (N + ATTN_CHUNK_ROWS - 1) / ATTN_CHUNK_ROWS, 1.0f / sqrtf((float)d)};
    for (int32_t b = 0; b < vw->n_blocks; b++) {
        if (dots_poll_step(k, DOTS_STAGE_VISION, b, vw->n_blocks)) {
            st = DOTS_FAIL(ctx, DOTS_ERR_CANCELLED, "cancelled");
            goto done;
        }
        const dots_vit_block_weights *bw = &vw->blocks[b];
        dots_par_rmsnorm(k, a, x, T(bw->norm1), N, D, eps);
        dots_gemm(k, qkv, 3 * D, a, D, T(bw->qkv), D, NULL, N, 3 * D, D);
        rope_job rj = {qkv, N, H, d, D, cos_t, sin_t};
        dots_pool_run(k->pool, (N + ROWS_PER_TASK - 1) / ROWS_PER_TASK, rope_task, &rj);
        dots_pool_run(k->pool, H * aj.n_chunks, attn_task, &aj);
        dots_gemm(k, a, D, o, D, T(bw->proj), D, NULL, N, D, D);
        dots_par_add(k, x, a, N * D);
        dots_par_rmsnorm(k, a, x, T(bw->norm2), N, D, eps);
        for (int64_t r0 = 0; r0 < N; r0 += chunk) {
            int64_t nr = N - r0 < chunk ? N - r0 : chunk;
            dots_gemm(k, g, I, a + r0 * D, D, T(bw->fc1), D, NULL, nr, I, D);
            dots_gemm(k, u, I, a + r0 * D, D, T(bw->fc3), D, NULL, nr, I, D);
            dots_par_silu_mul(k, g, u, nr * I);
            dots_gemm(k, o + r0 * D, D, g, I, T(bw->fc2), I, NULL, nr, D, I);
        }
        dots_par_add(k, x, o, N * D);
        if (dump) {
            char name[32];
            snprintf(name, sizeof name, "block_%02d", b);
            dump(dump_user, name, x, N, D);
        }
    }
    if (vw->post_trunk_norm) dots_rmsnorm(x, x, T(vw->post_trunk_norm), N, D, eps);
    if (dump) dump(dump_user, "post_norm", x, N, D);

    /* the block buffers are done: free them before the merger allocates, so
     * the peak stays that of the blocks (a 200-dpi page has ~19k patches) */
    dots_buffer_free(qkv), qkv = NULL;
    dots_buffer_free(o), o = NULL;
    dots_buffer_free(g), g = NULL;
    dots_buffer_free(u), u = NULL;
    free(cos_t), cos_t = NULL;
    free(sin_t), sin_t = NULL;

    /* 5.5 merger: LayerNorm eps 1e-6 (fixed in the module), then groups of m^2 rows */
    dots_layernorm(a, x, vw->merger_ln_w->data, vw->merger_ln_b->data, vw->merger_ln_w->dtype, N, D, 1e-6f);
    merged = malloc(sizeof(float) * (size_t)(n_tok * mm * D));
    emb = malloc(sizeof(float) * (size_t)(n_tok * HID));
    float *b0 = malloc(sizeof(float) * (size_t)(mm * D)), *b2 = malloc(sizeof(float) * (size_t)HID);
    if (!merged || !emb || !b0 || !b2) {
        free(b0);
        free(b2);
        st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "vision: cannot allocate the merger's buffers");
        goto done;
    }
    dots_weights_to_f32(b0, T(vw->merger_fc0_b), 0, mm * D);
    dots_weights_to_f32(b2, T(vw->merger_fc2_b), 0, HID);
    dots_gemm(k, merged, mm * D, a, mm * D, T(vw->merger_fc0_w), mm * D, b0, n_tok, mm * D, mm * D);
    dots_gelu_erf(merged, n_tok * mm * D);
    dots_gemm(k, emb, HID, merged, mm * D, T(vw->merger_fc2_w), mm * D, b2, n_tok, HID, mm * D);
    free(b0);
    free(b2);
#undef T
    *out = emb;
    *n_out = n_tok;
    emb = NULL;
done:
    dots_buffer_free(x);
    dots_buffer_free(a);
    dots_buffer_free(o);
    dots_buffer_free(qkv);
    dots_buffer_free(g);
    dots_buffer_free(u);
    free(cos_t);
    free(sin_t);
    free(merged);
    free(emb);
    return st;
}

double dots_vision_flops(const dots_config *c, int64_t n) {
    const dots_vision_config *v = &c->vision;
    double D = v->embed_dim, I = v->intermediate_size, L = v->num_hidden_layers;
    double M = (double)v->spatial_merge_size * v->spatial_merge_size * D, P = 3.0 * v->patch_size * v->patch_size;
    double per_layer = 2.0 * n * D * (3 * D + D + 3 * I) + 4.0 * (double)n * n * D;
    return 2.0 * n * D * P + L * per_layer + 2.0 * ((double)n * D / M) * M * (M + v->hidden_size);
}
