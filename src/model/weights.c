/*
 * weights.c - the list of tensors a config implies (docs/model.md §3.1), used both to
 * bind a checkpoint and to generate one.
 */
#include "model/weights.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct expect_list {
    dots_expected_tensor *items;
    int64_t n, cap;
} expect_list;

static dots_expected_tensor *add(expect_list *l, const dots_tensor **slot, bool is_vision, int init_kind,
                                 int32_t n_dims, int64_t d0, int64_t d1, const char *fmt, ...)
    DOTS_PRINTF(8, 9);

static dots_expected_tensor *add(expect_list *l, const dots_tensor **slot, bool is_vision, int init_kind,
                                 int32_t n_dims, int64_t d0, int64_t d1, const char *fmt, ...) {
    if (l->n == l->cap) return NULL; /* sized exactly by the caller */
    dots_expected_tensor *e = &l->items[l->n++];
    memset(e, 0, sizeof *e);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->name, sizeof e->name, fmt, ap);
    va_end(ap);
    e->n_dims = n_dims;
    e->shape[0] = d0;
    e->shape[1] = d1;
    e->slot = slot;
    e->is_vision = is_vision;
    e->init_kind = init_kind;
    return e;
}

void dots_weights_free(dots_weights *w) {
    if (!w) return;
    free(w->vision.blocks);
    free(w->lm.layers);
    memset(w, 0, sizeof *w);
}

dots_status dots_weights_expect(dots_ctx *ctx, const dots_config *cfg, dots_weights *w,
                                dots_expected_tensor **out, int64_t *n_out) {
    if (!cfg || !w || !out || !n_out)
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_weights_expect: NULL argument");
    const dots_text_config *t = &cfg->text;
    const dots_vision_config *v = &cfg->vision;
    memset(w, 0, sizeof *w);
    w->vision.n_blocks = v->num_hidden_layers;
    w->lm.n_layers = t->num_hidden_layers;
    w->vision.blocks = calloc((size_t)v->num_hidden_layers, sizeof *w->vision.blocks);
    w->lm.layers = calloc((size_t)t->num_hidden_layers, sizeof *w->lm.layers);
    expect_list l = {0};
    l.cap = 4 + 12 * (int64_t)t->num_hidden_layers + 11 + 7 * (int64_t)v->num_hidden_layers;
    l.items = calloc((size_t)l.cap, sizeof *l.items);
    if (!w->vision.blocks || !w->lm.layers || !l.items) {
        free(l.items);
        dots_weights_free(w);
        return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory listing tensors");
    }

    /* ---- language model (docs/model.md §3.1, prefix "model.") ---- */
    const int64_t H = t->hidden_size, V = t->vocab_size, F = t->intermediate_size;
    const int64_t Q = (int64_t)t->num_attention_heads * t->head_dim;
    const int64_t K = (int64_t)t->num_key_value_heads * t->head_dim;
    dots_lm_weights *lm = &w->lm;
    add(&l, &lm->embed, false, DOTS_INIT_EMBED, 2, V, H, "model.embed_tokens.weight");
    for (int32_t i = 0; i < t->num_hidden_layers; i++) {
        dots_lm_layer_weights *L = &lm->layers[i];
        add(&l, &L->input_norm, false, DOTS_INIT_NORM, 1, H, 0, "model.layers.%d.input_layernorm.weight", i);
        add(&l, &L->q_w, false, DOTS_INIT_LINEAR, 2, Q, H, "model.layers.%d.self_attn.q_proj.weight", i);
        if (t->attention_bias)
            add(&l, &L->q_b, false, DOTS_INIT_BIAS, 1, Q, 0, "model.layers.%d.self_attn.q_proj.bias", i);
        add(&l, &L->k_w, false, DOTS_INIT_LINEAR, 2, K, H, "model.layers.%d.self_attn.k_proj.weight", i);
        if (t->attention_bias)
            add(&l, &L->k_b, false, DOTS_INIT_BIAS, 1, K, 0, "model.layers.%d.self_attn.k_proj.bias", i);
        add(&l, &L->v_w, false, DOTS_INIT_LINEAR, 2, K, H, "model.layers.%d.self_attn.v_proj.weight", i);
        if (t->attention_bias)
            add(&l, &L->v_b, false, DOTS_INIT_BIAS, 1, K, 0, "model.layers.%d.self_attn.v_proj.bias", i);
        add(&l, &L->o_w, false, DOTS_INIT_LINEAR, 2, H, Q, "model.layers.%d.self_attn.o_proj.weight", i);
        add(&l, &L->post_norm, false, DOTS_INIT_NORM, 1, H, 0,
            "model.layers.%d.post_attention_layernorm.weight", i);
        add(&l, &L->gate, false, DOTS_INIT_LINEAR, 2, F, H, "model.layers.%d.mlp.gate_proj.weight", i);
        add(&l, &L->up, false, DOTS_INIT_LINEAR, 2, F, H, "model.layers.%d.mlp.up_proj.weight", i);
        add(&l, &L->down, false, DOTS_INIT_LINEAR, 2, H, F, "model.layers.%d.mlp.down_proj.weight", i);
    }
    add(&l, &lm->norm, false, DOTS_INIT_NORM, 1, H, 0, "model.norm.weight");
    if (!t->tie_word_embeddings) add(&l, &lm->lm_head, false, DOTS_INIT_LM_HEAD, 2, V, H, "lm_head.weight");

    /* ---- vision tower (docs/model.md §3.1, prefix "vision_tower.") ---- */
    const int64_t D = v->embed_dim, I = v->intermediate_size, P = v->patch_size;
    const int64_t C = v->num_channels, M = (int64_t)v->spatial_merge_size * v->spatial_merge_size * D;
    dots_vision_weights *vw = &w->vision;
    dots_expected_tensor *conv = add(&l, &vw->patch_proj_w, true, DOTS_INIT_LINEAR, 4, D, C,
                                     "vision_tower.patch_embed.patchifier.proj.weight");
    conv->shape[2] = P;
    conv->shape[3] = P;
    /* Some exports pre-flatten the conv to [D, 3 p^2] (docs/model.md §3.5): same bytes. */
    conv->alt_n_dims = 2;
    conv->alt_shape[0] = D;
    conv->alt_shape[1] = C * P * P;
    add(&l, &vw->patch_proj_b, true, DOTS_INIT_BIAS, 1, D, 0, "vision_tower.patch_embed.patchifier.proj.bias");
    add(&l, &vw->patch_norm, true, DOTS_INIT_NORM, 1, D, 0, "vision_tower.patch_embed.patchifier.norm.weight");
    for (int32_t j = 0; j < v->num_hidden_layers; j++) {
        dots_vit_block_weights *B = &vw->blocks[j];
        add(&l, &B->norm1, true, DOTS_INIT_NORM, 1, D, 0, "vision_tower.blocks.%d.norm1.weight", j);
        add(&l, &B->qkv, true, DOTS_INIT_LINEAR, 2, 3 * D, D, "vision_tower.blocks.%d.attn.qkv.weight", j);
        add(&l, &B->proj, true, DOTS_INIT_LINEAR, 2, D, D, "vision_tower.blocks.%d.attn.proj.weight", j);
        add(&l, &B->norm2, true, DOTS_INIT_NORM, 1, D, 0, "vision_tower.blocks.%d.norm2.weight", j);
        add(&l, &B->fc1, true, DOTS_INIT_LINEAR, 2, I, D, "vision_tower.blocks.%d.mlp.fc1.weight", j);
        add(&l, &B->fc3, true, DOTS_INIT_LINEAR, 2, I, D, "vision_tower.blocks.%d.mlp.fc3.weight", j);
        add(&l, &B->fc2, true, DOTS_INIT_LINEAR, 2, D, I, "vision_tower.blocks.%d.mlp.fc2.weight", j);
    }
    if (v->post_norm)
        add(&l, &vw->post_trunk_norm, true, DOTS_INIT_NORM, 1, D, 0, "vision_tower.post_trunk_norm.weight");
    add(&l, &vw->merger_ln_w, true, DOTS_INIT_NORM, 1, D, 0, "vision_tower.merger.ln_q.weight");
    add(&l, &vw->merger_ln_b, true, DOTS_INIT_BIAS, 1, D, 0, "vision_tower.merger.ln_q.bias");
    add(&l, &vw->merger_fc0_w, true, DOTS_INIT_LINEAR, 2, M, M, "vision_tower.merger.mlp.0.weight");
    add(&l, &vw->merger_fc0_b, true, DOTS_INIT_BIAS, 1, M, 0, "vision_tower.merger.mlp.0.bias");
    add(&l, &vw->merger_fc2_w, true, DOTS_INIT_LINEAR, 2, v->hidden_size, M, "vision_tower.merger.mlp.2.weight");
    add(&l, &vw->merger_fc2_b, true, DOTS_INIT_BIAS, 1, v->hidden_size, 0, "vision_tower.merger.mlp.2.bias");

    *out = l.items;
    *n_out = l.n;
    return DOTS_OK;
}
