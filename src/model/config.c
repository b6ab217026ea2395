/*
 * config.c - config.json, generation_config.json and preprocessor_config.json
 * into a typed dots_config (docs/model.md §2).
 *
 * Each part is described once, by a field table, which drives both parsing
 * (type and range checks whose messages name the key) and writing (the model
 * generator emits the same keys). Missing keys, and keys set to null, take
 * the official dots.ocr values; keys we don't know are ignored, as
 * transformers does.
 */
#include "model/config.h"

#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- defaults */

dots_status dots_config_init_default(dots_config *cfg) {
    if (!cfg) return DOTS_ERR_INVALID_ARGUMENT;
    memset(cfg, 0, sizeof *cfg);
    dots_text_config *t = &cfg->text;
    t->hidden_size = 1536;
    t->num_hidden_layers = 28;
    t->num_attention_heads = 12;
    t->num_key_value_heads = 2;
    t->head_dim = 128;
    t->intermediate_size = 8960;
    t->max_position_embeddings = 131072;
    t->vocab_size = 151936;
    t->sliding_window = 131072;
    t->max_window_layers = 28;
    t->image_token_id = 151665;
    t->video_token_id = 151656;
    t->rms_norm_eps = 1e-6;
    t->rope_theta = 1000000.0;
    t->attention_dropout = 0.0;
    t->initializer_range = 0.02;
    t->tie_word_embeddings = false;
    t->attention_bias = true;
    t->use_sliding_window = false;
    t->use_cache = true;
    strcpy(t->hidden_act, "silu");
    strcpy(t->torch_dtype, "bfloat16");
    strcpy(t->transformers_version, "4.51.0");

    dots_vision_config *v = &cfg->vision;
    v->embed_dim = 1536;
    v->hidden_size = 1536;
    v->intermediate_size = 4224;
    v->num_hidden_layers = 42;
    v->num_attention_heads = 12;
    v->head_dim = 128;
    v->num_channels = 3;
    v->patch_size = 14;
    v->spatial_merge_size = 2;
    v->temporal_patch_size = 1;
    v->rms_norm_eps = 1e-5;
    v->init_merger_std = 0.02;
    v->initializer_range = 0.02;
    v->use_bias = false;
    v->post_norm = true;
    v->is_causal = false;
    strcpy(v->attn_implementation, "flash_attention_2");

    dots_generation_config *g = &cfg->generation;
    g->eos_token_ids[0] = 151643; /* <|endoftext|> */
    g->eos_token_ids[1] = 151673; /* <|endofassistant|> */
    g->n_eos_token_ids = 2;
    g->max_length = 32768;
    g->do_sample = false;
    g->temperature = 1.0;
    g->top_p = 1.0;
    g->top_k = 0;

    dots_preprocessor_config *p = &cfg->preprocessor;
    p->min_pixels = 3136;
    p->max_pixels = 11289600;
    p->patch_size = 14;
    p->merge_size = 2;
    p->temporal_patch_size = 1;
    const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
    const float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    memcpy(p->image_mean, mean, sizeof mean);
    memcpy(p->image_std, std, sizeof std);
    return DOTS_OK;
}

/* ---------------------------------------------------------- field tables */

typedef enum { F_I32, F_I64, F_F64, F_BOOL, F_STR } field_kind;

typedef struct field_desc {
    const char *key;
    field_kind kind;
    size_t offset;
    size_t str_cap; /* F_STR: size of the char array */
    double lo, hi;  /* numeric range, inclusive (F_F64 requires lo < x for lo == 0 eps fields, see excl) */
    bool lo_exclusive;
} field_desc;

#define FI32(S, k, lo, hi) {#k, F_I32, offsetof(S, k), 0, lo, hi, false}
#define FI64(S, k, lo, hi) {#k, F_I64, offsetof(S, k), 0, lo, hi, false}
#define FF64(S, k, lo, hi, ex) {#k, F_F64, offsetof(S, k), 0, lo, hi, ex}
#define FBOOL(S, k) {#k, F_BOOL, offsetof(S, k), 0, 0, 0, false}
#define FSTR(S, k) {#k, F_STR, offsetof(S, k), sizeof(((S *)0)->k), 0, 0, false}

/* Upper bounds are far above any real model; they keep every later product
 * (hidden x layers x tokens) inside 64 bits and stop absurd allocations. */
static const field_desc text_fields[] = {
    FI32(dots_text_config, hidden_size, 1, 65536),
    FI32(dots_text_config, num_hidden_layers, 1, 1024),
    FI32(dots_text_config, num_attention_heads, 1, 1024),
    FI32(dots_text_config, num_key_value_heads, 1, 1024),
    FI32(dots_text_config, intermediate_size, 1, 1 << 20),
    FI32(dots_text_config, max_position_embeddings, 1, 1 << 24),
    FI32(dots_text_config, vocab_size, 1, 1 << 24),
    FI32(dots_text_config, sliding_window, 0, 2147483647.0),
    FI32(dots_text_config, max_window_layers, 0, 1 << 20),
    FI32(dots_text_config, image_token_id, 0, 1 << 24),
    FI32(dots_text_config, video_token_id, 0, 1 << 24),
    FF64(dots_text_config, rms_norm_eps, 0, 1, true),
    FF64(dots_text_config, rope_theta, 0, 1e12, true),
    FF64(dots_text_config, attention_dropout, 0, 1, false),
    FF64(dots_text_config, initializer_range, 0, 1e3, false),
    FBOOL(dots_text_config, tie_word_embeddings),
    FBOOL(dots_text_config, attention_bias),
    FBOOL(dots_text_config, use_sliding_window),
    FBOOL(dots_text_config, use_cache),
    FSTR(dots_text_config, hidden_act),
    FSTR(dots_text_config, torch_dtype),
    FSTR(dots_text_config, transformers_version),
};

static const field_desc vision_fields[] = {
    FI32(dots_vision_config, embed_dim, 1, 65536),
    FI32(dots_vision_config, hidden_size, 1, 65536),
    FI32(dots_vision_config, intermediate_size, 1, 1 << 20),
    FI32(dots_vision_config, num_hidden_layers, 1, 1024),
    FI32(dots_vision_config, num_attention_heads, 1, 1024),
    FI32(dots_vision_config, num_channels, 1, 16),
    FI32(dots_vision_config, patch_size, 1, 1024),
    FI32(dots_vision_config, spatial_merge_size, 1, 16),
    FI32(dots_vision_config, temporal_patch_size, 1, 16),
    FF64(dots_vision_config, rms_norm_eps, 0, 1, true),
    FF64(dots_vision_config, init_merger_std, 0, 1e3, false),
    FF64(dots_vision_config, initializer_range, 0, 1e3, false),
    FBOOL(dots_vision_config, use_bias),
    FBOOL(dots_vision_config, post_norm),
    FBOOL(dots_vision_config, is_causal),
    FSTR(dots_vision_config, attn_implementation),
};

static const field_desc generation_fields[] = {
    FI32(dots_generation_config, max_length, 1, 1 << 24),
    FBOOL(dots_generation_config, do_sample),
    FF64(dots_generation_config, temperature, 0, 1e6, false),
    FF64(dots_generation_config, top_p, 0, 1, false),
    FI32(dots_generation_config, top_k, 0, 1 << 24),
};

/* max_pixels up to 2^28 (16384^2): the official limit is 11,289,600. */
static const field_desc preprocessor_fields[] = {
    FI64(dots_preprocessor_config, min_pixels, 1, 268435456.0),
    FI64(dots_preprocessor_config, max_pixels, 1, 268435456.0),
    FI32(dots_preprocessor_config, patch_size, 1, 1024),
    FI32(dots_preprocessor_config, merge_size, 1, 16),
    FI32(dots_preprocessor_config, temporal_patch_size, 1, 16),
};

#define N_FIELDS(a) (sizeof(a) / sizeof((a)[0]))

/* Reads the fields present in obj into the struct at base. label + prefix
 * name the key in messages ("config.json: vision_config.patch_size: ..."). */
static dots_status read_fields(dots_ctx *ctx, const char *label, const char *prefix, const json_t *obj,
                               const field_desc *fields, size_t n_fields, void *base) {
    for (size_t i = 0; i < n_fields; i++) {
        const field_desc *f = &fields[i];
        const json_t *v = json_object_get(obj, f->key);
        if (!v || json_is_null(v)) continue;
        char *dst = (char *)base + f->offset;
        switch (f->kind) {
        case F_I32:
        case F_I64: {
            if (!json_is_integer(v))
                return DOTS_FAIL(ctx, DOTS_ERR_CONFIG, "%s: %s%s: must be an integer", label, prefix,
                                 f->key);
            json_int_t x = json_integer_value(v);
            if ((double)x < f->lo || (double)x > f->hi)
                return DOTS_FAIL(ctx, DOTS_ERR_CONFIG, "%s: %s%s: %lld is outside [%.0f, %.0f]", label,
                                 prefix, f->key, (long long)x, f->lo, f->hi);
            if (f->kind == F_I32)
                *(int32_t *)dst = (int32_t)x;
            else
                *(int64_t *)dst = (int64_t)x;
            break;
        }
        case F_F64: {
            if (!json_is_number(v))
                return DOTS_FAIL(ctx, DOTS_ERR_CONFIG, "%s: %s%s: must be a number", label, prefix,
                                 f->key);
            double x = json_number_value(v);
            bool below = f->lo_exclusive ? !(x > f->lo) : !(x >= f->lo);
            if (!isfinite(x) || below || x > f->hi)
                return DOTS_FAIL(ctx, DOTS_ERR_CONFIG, "%s: %s%s: %g is outside %s%g, %g]", label, prefix,
                                 f->key, x, f->lo_exclusive ? "(" : "[", f->lo, f->hi);
            *(double *)dst = x;
            break;
        }
        case F_BOOL:
            if (!json_is_boolean(v))
                return DOTS_FAIL(ctx, DOTS_ERR_CONFIG, "%s: %s%s: must be true or false", label, prefix,
                                 f->key);
            *(bool *)dst = json_is_true(v);
            break;
        case F_STR: {
            if (!json_is_string(v))
                return DOTS_FAIL(ctx, DOTS_ERR_CONFIG, "%s: %s%s: must be a string", label, prefix,
                                 f->key);
            const char *s = json_string_value(v);
            if (strlen(s) >= f->str_cap)
                return DOTS_FAIL(ctx, DOTS_ERR_CONFIG, "%s: %s%s: '%.40s...' is too long", label, prefix,
                                 f->key, s);
            strcpy(dst, s);
            break;
        }
        }
    }
    return DOTS_OK;
}

static dots_status write_fields(json_t *obj, const field_desc *fields, size_t n_fields, const void *base) {
    for (size_t i = 0; i < n_fields; i++) {
        const field_desc *f = &fields[i];
        const char *src = (const char *)base + f->offset;
        json_t *v = NULL;
        switch (f->kind) {
        case F_I32: v = json_integer(*(const int32_t *)src); break;
        case F_I64: v = json_integer((json_int_t) * (const int64_t *)src); break;
        case F_F64: v = json_real(*(const double *)src); break;
        case F_BOOL: v = json_boolean(*(const bool *)src); break;
        case F_STR: v = json_string(src); break;
        }
        if (!v || json_object_set_new(obj, f->key, v) != 0) return DOTS_ERR_OUT_OF_MEMORY;
    }
    return DOTS_OK;
}

static json_t *load_object(dots_ctx *ctx, const char *label, const char *text, size_t len,
                           dots_status *st) {
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        *st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: not valid JSON: %s (line %d, column %d)", label,
                        jerr.text, jerr.line, jerr.column);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        *st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: top level is not a JSON object", label);
        return NULL;
    }
    *st = DOTS_OK;
    return root;
}

/* ------------------------------------------------------------ config.json */

static dots_status check_text(dots_ctx *ctx, const char *label, dots_text_config *t, const json_t *root) {
    if (t->hidden_size % t->num_attention_heads != 0)
        return DOTS_FAIL(ctx, DOTS_ERR_CONFIG,
                         "%s: num_attention_heads: %d does not divide hidden_size %d", label,
                         t->num_attention_heads, t->hidden_size);
    t->head_dim = t->hidden_size / t->num_attention_heads;
    const json_t *hd = json_object_get(root, "head_dim");
    if (hd && !json_is_null(hd) &&
        (!json_is_integer(hd) || json_integer_value(hd) != t->head_dim))
        return DOTS_FAIL(ctx, DOTS_ERR_UNSUPPORTED,
                         "%s: head_dim: only hidden_size / num_attention_heads (%d) is supported", label,
                         t->head_dim);
    if (t->head_dim % 2 != 0)
        return DOTS_FAIL(ctx, DOTS_ERR_CONFIG, "%s: hidden_size / num_attention_heads = %d must be even for RoPE",
                         label, t->head_dim);
    if (t->num_attention_heads % t->num_key_value_heads != 0)
        return DOTS_FAIL(ctx, DOTS_ERR_CONFIG,
                         "%s: num_key_value_heads: %d does not divide num_attention_heads %d", label,
                         t->num_key_value_heads, t->num_attention_heads);
    if (t->image_token_id >= t->vocab_size)
        return DOTS_FAIL(ctx, DOTS_ERR_CONFIG, "%s: image_token_id: %d is not below vocab_size %d", label,
                         t->image_token_id, t->vocab_size);
    if (t->video_token_id >= t->vocab_size)
        return DOTS_FAIL(ctx, DOTS_ERR_CONFIG, "%s: video_token_id: %d is not below vocab_size %d", label,
                         t->video_token_id, t->vocab_size);
    if (strcmp(t->hidden_act, "silu") != 0)
        return DOTS_FAIL(ctx, DOTS_ERR_UNSUPPORTED, "%s: hidden_act: '%s' is not supported (only \"silu\")",
                         label, t->hidden_act);
    if (t->use_sliding_window)
        return DOTS_FAIL(ctx, DOTS_ERR_UNSUPPORTED,
                         "%s: use_sliding_window: true is not supported (dots.ocr attends to the full context)",
                         label);
    const json_t *rs = json_object_get(root, "rope_scaling");
    if (rs && !json_is_null(rs))
        return DOTS_FAIL(ctx, DOTS_ERR_UNSUPPORTED,
                         "%s: rope_scaling: only null is supported (dots.ocr uses plain 1-D RoPE)", label);
    return DOTS_OK;
}

static dots_status check_vision(dots_ctx *ctx, const char *label, dots_vision_config *v,
                                const dots_text_config *t) {
    if (v->embed_dim % v->num_attention_heads != 0)
        return DOTS_FAIL(ctx, DOTS_ERR_CONFIG,
                         "%s: vision_config.num_attention_heads: %d does not divide embed_dim %d", label,
                         v->num_attention_heads, v->embed_dim);
    v->head_dim = v->embed_dim / v->num_attention_heads;
    /* 2-D RoPE rotates pairs (i, i + d/2), half of them by row and half by column. */
    if (v->head_dim % 4 != 0)
        return DOTS_FAIL(ctx, DOTS_ERR_CONFIG,
                         "%s: vision_config: head dim embed_dim / num_attention_heads = %d must be a multiple of 4 for 2-D RoPE",
                         label, v->head_dim);
    if (v->hidden_size != t->hidden_size)
        return DOTS_FAIL(ctx, DOTS_ERR_CONFIG,
                         "%s: vision_config.hidden_size: %d must equal hidden_size %d (merged vision tokens are spliced into the LM)",
                         label, v->hidden_size, t->hidden_size);
    if (v->num_channels != 3)
        return DOTS_FAIL(ctx, DOTS_ERR_UNSUPPORTED, "%s: vision_config.num_channels: %d (only 3, RGB)",
                         label, v->num_channels);
    if (v->temporal_patch_size != 1)
        return DOTS_FAIL(ctx, DOTS_ERR_UNSUPPORTED,
                         "%s: vision_config.temporal_patch_size: %d (only 1, single images)", label,
                         v->temporal_patch_size);
    if (v->use_bias)
        return DOTS_FAIL(ctx, DOTS_ERR_UNSUPPORTED,
                         "%s: vision_config.use_bias: true is not supported (dots.ocr has no vision linear biases)",
                         label);
    if (v->is_causal)
        return DOTS_FAIL(ctx, DOTS_ERR_UNSUPPORTED,
                         "%s: vision_config.is_causal: true is not supported (dots.vit is bidirectional)",
                         label);
    return DOTS_OK;
}

dots_status dots_config_parse(dots_ctx *ctx, const char *json, size_t len, dots_config *cfg) {
    dots_ctx_begin_call(ctx);
    if (!json || !cfg) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_config_parse: NULL argument");
    const char *label = "config.json";
    dots_status st;
    json_t *root = load_object(ctx, label, json, len, &st);
    if (!root) return st;
    dots_config tmp;
    dots_config_init_default(&tmp);

    const json_t *mt = json_object_get(root, "model_type");
    if (!mt) {
        st = DOTS_FAIL(ctx, DOTS_ERR_CONFIG, "%s: model_type: missing (expected \"dots_ocr\")", label);
        goto done;
    }
    if (!json_is_string(mt) || strcmp(json_string_value(mt), "dots_ocr") != 0) {
        st = DOTS_FAIL(ctx, DOTS_ERR_CONFIG, "%s: model_type: expected \"dots_ocr\", got %.60s", label,
                       json_is_string(mt) ? json_string_value(mt) : "a non-string");
        goto done;
    }
    const json_t *arch = json_object_get(root, "architectures");
    if (arch && !json_is_null(arch) && !json_is_array(arch)) {
        st = DOTS_FAIL(ctx, DOTS_ERR_CONFIG, "%s: architectures: must be a list of strings", label);
        goto done;
    }
    st = read_fields(ctx, label, "", root, text_fields, N_FIELDS(text_fields), &tmp.text);
    if (st != DOTS_OK) goto done;
    st = check_text(ctx, label, &tmp.text, root);
    if (st != DOTS_OK) goto done;

    const json_t *vc = json_object_get(root, "vision_config");
    if (vc && !json_is_null(vc)) {
        if (!json_is_object(vc)) {
            st = DOTS_FAIL(ctx, DOTS_ERR_CONFIG, "%s: vision_config: must be an object", label);
            goto done;
        }
        const json_t *vmt = json_object_get(vc, "model_type");
        if (vmt && !json_is_null(vmt) &&
            (!json_is_string(vmt) || strcmp(json_string_value(vmt), "dots_vit") != 0)) {
            st = DOTS_FAIL(ctx, DOTS_ERR_CONFIG, "%s: vision_config.model_type: expected \"dots_vit\"", label);
            goto done;
        }
        st = read_fields(ctx, label, "vision_config.", vc, vision_fields, N_FIELDS(vision_fields),
                         &tmp.vision);
        if (st != DOTS_OK) goto done;
    }
    if ((!vc || json_is_null(vc)) && tmp.vision.hidden_size != tmp.text.hidden_size) {
        /* the defaults are the real 1.2B tower: say that the section is missing, not that a width differs */
        st = DOTS_FAIL(ctx, DOTS_ERR_CONFIG,
                       "%s: vision_config is missing, and the default vision tower (hidden_size %d) does not fit this "
                       "language model (hidden_size %d)",
                       label, tmp.vision.hidden_size, tmp.text.hidden_size);
        goto done;
    }
    st = check_vision(ctx, label, &tmp.vision, &tmp.text);
    if (st != DOTS_OK) goto done;
    *cfg = tmp;
done:
    json_decref(root);
    return st;
}

/* ------------------------------------------------ generation_config.json */

dots_status dots_generation_config_parse(dots_ctx *ctx, const char *json, size_t len, dots_config *cfg) {
    const char *label = "generation_config.json";
    dots_status st;
    json_t *root = load_object(ctx, label, json, len, &st);
    if (!root) return st;
    dots_generation_config g;
    dots_config defaults;
    dots_config_init_default(&defaults);
    g = defaults.generation;
    st = read_fields(ctx, label, "", root, generation_fields, N_FIELDS(generation_fields), &g);
    if (st != DOTS_OK) goto done;
    const json_t *eos = json_object_get(root, "eos_token_id");
    if (eos && !json_is_null(eos)) {
        g.n_eos_token_ids = 0;
        size_t n = json_is_array(eos) ? json_array_size(eos) : 1;
        if (n == 0 || n > DOTS_MAX_EOS_IDS) {
            st = DOTS_FAIL(ctx, DOTS_ERR_CONFIG, "%s: eos_token_id: %zu ids (must be 1..%d)", label, n,
                           DOTS_MAX_EOS_IDS);
            goto done;
        }
        for (size_t i = 0; i < n; i++) {
            const json_t *v = json_is_array(eos) ? json_array_get(eos, i) : eos;
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= (1 << 24)) {
                st = DOTS_FAIL(ctx, DOTS_ERR_CONFIG, "%s: eos_token_id: entries must be token ids", label);
                goto done;
            }
            g.eos_token_ids[g.n_eos_token_ids++] = (int32_t)json_integer_value(v);
        }
    }
    cfg->generation = g;
    cfg->has_generation_config = true;
done:
    json_decref(root);
    return st;
}

/* ------------------------------------------------ preprocessor_config.json */

static dots_status read_float3(dots_ctx *ctx, const char *label, const json_t *root, const char *key,
                               float out[3], bool positive) {
    const json_t *a = json_object_get(root, key);
    if (!a || json_is_null(a)) return DOTS_OK;
    if (!json_is_array(a) || json_array_size(a) != 3)
        return DOTS_FAIL(ctx, DOTS_ERR_CONFIG, "%s: %s: must be a list of 3 numbers", label, key);
    float tmp[3];
    for (size_t i = 0; i < 3; i++) {
        const json_t *v = json_array_get(a, i);
        double x = json_is_number(v) ? json_number_value(v) : NAN;
        /* checked as the float it becomes: 1e-45 is positive but rounds to 0 */
        if (!isfinite(x) || (positive && !((float)x > 0)) || fabs(x) > 1e6)
            return DOTS_FAIL(ctx, DOTS_ERR_CONFIG, "%s: %s[%zu]: must be a finite%s number", label, key, i,
                             positive ? " positive" : "");
        tmp[i] = (float)x;
    }
    memcpy(out, tmp, sizeof tmp);
    return DOTS_OK;
}

dots_status dots_preprocessor_config_parse(dots_ctx *ctx, const char *json, size_t len,
                                           dots_config *cfg) {
    const char *label = "preprocessor_config.json";
    dots_status st;
    json_t *root = load_object(ctx, label, json, len, &st);
    if (!root) return st;
    dots_config defaults;
    dots_config_init_default(&defaults);
    dots_preprocessor_config p = defaults.preprocessor;
    /* Newer transformers write the pixel budget as size {shortest_edge,
     * longest_edge}; explicit min_pixels / max_pixels take precedence. */
    const json_t *size = json_object_get(root, "size");
    if (size && json_is_object(size)) {
        static const field_desc size_fields[] = {
            {"shortest_edge", F_I64, offsetof(dots_preprocessor_config, min_pixels), 0, 1, 268435456.0, false},
            {"longest_edge", F_I64, offsetof(dots_preprocessor_config, max_pixels), 0, 1, 268435456.0, false},
        };
        st = read_fields(ctx, label, "size.", size, size_fields, 2, &p);
        if (st != DOTS_OK) goto done;
    }
    st = read_fields(ctx, label, "", root, preprocessor_fields, N_FIELDS(preprocessor_fields), &p);
    if (st != DOTS_OK) goto done;
    st = read_float3(ctx, label, root, "image_mean", p.image_mean, false);
    if (st != DOTS_OK) goto done;
    st = read_float3(ctx, label, root, "image_std", p.image_std, true);
    if (st != DOTS_OK) goto done;
    if (p.min_pixels > p.max_pixels) {
        st = DOTS_FAIL(ctx, DOTS_ERR_CONFIG, "%s: min_pixels %lld is above max_pixels %lld", label,
                       (long long)p.min_pixels, (long long)p.max_pixels);
        goto done;
    }
    cfg->preprocessor = p;
    cfg->has_preprocessor_config = true;
done:
    json_decref(root);
    return st;
}

dots_status dots_config_check_consistency(dots_ctx *ctx, const dots_config *cfg) {
    const dots_preprocessor_config *p = &cfg->preprocessor;
    const dots_vision_config *v = &cfg->vision;
    const char *label = "preprocessor_config.json";
    if (p->patch_size != v->patch_size)
        return DOTS_FAIL(ctx, DOTS_ERR_CONFIG, "%s: patch_size: %d differs from vision_config.patch_size %d",
                         label, p->patch_size, v->patch_size);
    if (p->merge_size != v->spatial_merge_size)
        return DOTS_FAIL(ctx, DOTS_ERR_CONFIG,
                         "%s: merge_size: %d differs from vision_config.spatial_merge_size %d", label,
                         p->merge_size, v->spatial_merge_size);
    if (p->temporal_patch_size != v->temporal_patch_size)
        return DOTS_FAIL(ctx, DOTS_ERR_CONFIG,
                         "%s: temporal_patch_size: %d differs from vision_config.temporal_patch_size %d",
                         label, p->temporal_patch_size, v->temporal_patch_size);
    for (int i = 0; i < cfg->generation.n_eos_token_ids; i++)
        if (cfg->generation.eos_token_ids[i] >= cfg->text.vocab_size)
            return DOTS_FAIL(ctx, DOTS_ERR_CONFIG, "generation_config.json: eos_token_id: %d is not below vocab_size %d",
                             cfg->generation.eos_token_ids[i], cfg->text.vocab_size);
    return DOTS_OK;
}

/* ----------------------------------------------------------------- write */

static char *dump(json_t *root) {
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(root);
    return s;
}

dots_status dots_config_to_json(dots_ctx *ctx, const dots_config *cfg, char **config_json,
                                char **generation_json, char **preprocessor_json) {
    if (!cfg || !config_json || !generation_json || !preprocessor_json)
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_config_to_json: NULL argument");
    json_t *root = json_object();
    json_t *vc = json_object();
    json_t *gen = json_object();
    json_t *pre = json_object();
    json_t *eos = json_array();
    json_t *mean = json_array();
    json_t *std = json_array();
    bool ok = root && vc && gen && pre && eos && mean && std;
    if (ok) {
        json_t *arch = json_array();
        ok = arch && json_array_append_new(arch, json_string("DotsOCRForCausalLM")) == 0 &&
             json_object_set_new(root, "architectures", arch) == 0 &&
             json_object_set_new(root, "model_type", json_string("dots_ocr")) == 0 &&
             write_fields(root, text_fields, N_FIELDS(text_fields), &cfg->text) == DOTS_OK &&
             json_object_set_new(root, "rope_scaling", json_null()) == 0 &&
             json_object_set_new(vc, "model_type", json_string("dots_vit")) == 0 &&
             write_fields(vc, vision_fields, N_FIELDS(vision_fields), &cfg->vision) == DOTS_OK;
        if (ok) {
            ok = json_object_set(root, "vision_config", vc) == 0;
        }
        for (int i = 0; ok && i < cfg->generation.n_eos_token_ids; i++)
            ok = json_array_append_new(eos, json_integer(cfg->generation.eos_token_ids[i])) == 0;
        ok = ok && json_object_set(gen, "eos_token_id", eos) == 0 &&
             json_object_set_new(gen, "max_length", json_integer(cfg->generation.max_length)) == 0;
        for (int i = 0; ok && i < 3; i++)
            ok = json_array_append_new(mean, json_real(cfg->preprocessor.image_mean[i])) == 0 &&
                 json_array_append_new(std, json_real(cfg->preprocessor.image_std[i])) == 0;
        ok = ok && json_object_set_new(pre, "image_processor_type", json_string("Qwen2VLImageProcessor")) == 0 &&
             json_object_set_new(pre, "processor_class", json_string("DotsVLProcessor")) == 0 &&
             write_fields(pre, preprocessor_fields, N_FIELDS(preprocessor_fields), &cfg->preprocessor) == DOTS_OK &&
             json_object_set(pre, "image_mean", mean) == 0 && json_object_set(pre, "image_std", std) == 0;
    }
    json_decref(vc);
    json_decref(eos);
    json_decref(mean);
    json_decref(std);
    char *a = ok ? dump(root) : (json_decref(root), NULL);
    char *b = ok ? dump(gen) : (json_decref(gen), NULL);
    char *c = ok ? dump(pre) : (json_decref(pre), NULL);
    if (!a || !b || !c) {
        free(a);
        free(b);
        free(c);
        return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory writing config JSON");
    }
    *config_json = a;
    *generation_json = b;
    *preprocessor_json = c;
    return DOTS_OK;
}
