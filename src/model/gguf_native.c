/*
 * gguf_native.c - dots.ocr files made by llama.cpp's own tools: an LM file
 * (general.architecture "qwen2") and an mmproj file ("clip", projector
 * "dots_ocr"), with no dotsocr.* keys (docs/formats.md §4).
 *
 *   qwen2.* keys + tokenizer.ggml.tokens ─┐
 *   clip.* keys (mmproj) ─────────────────┴─► dots_config ─► the three
 *   config JSON texts, parsed and checked like a checkpoint's own
 *
 * What the files do not say comes from the official config (config.c's
 * defaults), and the special ids are looked up by their text in the
 * vocabulary, so a renumbered vocabulary cannot silently shift them.
 */
#include "model/gguf_native.h"

#include "model/config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

bool dots_gguf_is_native_lm(const dots_gguf *g) {
    return !dots_gguf_find(g, "dotsocr.config_json") && dots_gguf_is_string(g, "general.architecture", "qwen2");
}

bool dots_gguf_is_dots_mmproj(const dots_gguf *g) {
    return dots_gguf_is_string(g, "general.architecture", "clip") && dots_gguf_is_string(g, "clip.projector_type", "dots_ocr");
}

/* Reads an integer key into *v within [lo, hi]; absent keys keep *v unless
 * required. */
static dots_status get_int(dots_ctx *ctx, const char *label, const dots_gguf *g, const char *key, bool required, int64_t lo,
                           int64_t hi, int32_t *v) {
    uint64_t u;
    if (!dots_gguf_find(g, key)) {
        if (required) return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: metadata key %s is missing", label, key);
        return DOTS_OK;
    }
    if (!dots_gguf_get_uint(g, key, &u)) return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: metadata key %s is not an integer", label, key);
    if ((int64_t)u < lo || u > (uint64_t)hi)
        return DOTS_FAIL(ctx, DOTS_ERR_CONFIG, "%s: %s = %llu is out of range [%lld, %lld]", label, key, (unsigned long long)u,
                         (long long)lo, (long long)hi);
    *v = (int32_t)u;
    return DOTS_OK;
}

static dots_status get_real(dots_ctx *ctx, const char *label, const dots_gguf *g, const char *key, bool required, double *v) {
    float f;
    if (!dots_gguf_find(g, key)) {
        if (required) return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: metadata key %s is missing", label, key);
        return DOTS_OK;
    }
    if (!dots_gguf_get_f32(g, key, &f) || !(f > 0.0f) || f > 1e12f)
        return DOTS_FAIL(ctx, DOTS_ERR_CONFIG, "%s: metadata key %s must be a positive number", label, key);
    *v = f;
    return DOTS_OK;
}

/* The id of a token by its text in tokenizer.ggml.tokens, or -1. */
static int64_t token_id(const dots_gguf_kv *tokens, const char *text) {
    const size_t want = strlen(text);
    const uint8_t *p = tokens->value;
    for (uint64_t i = 0; i < tokens->n; i++) {
        const char *s;
        size_t n;
        p = dots_gguf_array_string(p, &s, &n);
        if (n == want && memcmp(s, text, n) == 0) return (int64_t)i;
    }
    return -1;
}

static dots_status text_config(dots_ctx *ctx, const char *label, const dots_gguf *g, dots_config *c) {
    dots_text_config *t = &c->text;
    const int64_t big = 1 << 24;
    dots_status st = DOTS_OK;
    /* llama.cpp's own defaults where its loader has one (docs/formats.md §4.2) */
    t->num_key_value_heads = 0;
    t->rope_theta = 10000.0;
    if (st == DOTS_OK) st = get_int(ctx, label, g, "qwen2.embedding_length", true, 1, 65536, &t->hidden_size);
    if (st == DOTS_OK) st = get_int(ctx, label, g, "qwen2.block_count", true, 1, 1024, &t->num_hidden_layers);
    if (st == DOTS_OK) st = get_int(ctx, label, g, "qwen2.attention.head_count", true, 1, 1024, &t->num_attention_heads);
    if (st == DOTS_OK) st = get_int(ctx, label, g, "qwen2.attention.head_count_kv", false, 1, 1024, &t->num_key_value_heads);
    if (st == DOTS_OK) st = get_int(ctx, label, g, "qwen2.feed_forward_length", true, 1, 1 << 20, &t->intermediate_size);
    if (st == DOTS_OK) st = get_int(ctx, label, g, "qwen2.context_length", false, 1, big, &t->max_position_embeddings);
    if (st == DOTS_OK) st = get_real(ctx, label, g, "qwen2.rope.freq_base", false, &t->rope_theta);
    if (st == DOTS_OK) st = get_real(ctx, label, g, "qwen2.attention.layer_norm_rms_epsilon", true, &t->rms_norm_eps);
    if (st != DOTS_OK) return st;
    if (!t->num_key_value_heads) t->num_key_value_heads = t->num_attention_heads;
    int32_t key_length = 0;
    st = get_int(ctx, label, g, "qwen2.attention.key_length", false, 1, 65536, &key_length);
    if (st != DOTS_OK) return st;
    if (key_length && key_length * t->num_attention_heads != t->hidden_size)
        return DOTS_FAIL(ctx, DOTS_ERR_UNSUPPORTED, "%s: qwen2.attention.key_length %d: only embedding_length / head_count is supported",
                         label, key_length);
    t->sliding_window = t->max_position_embeddings;
    t->max_window_layers = t->num_hidden_layers;
    t->tie_word_embeddings = dots_gguf_find_tensor(g, "output.weight") < 0;
    t->attention_bias = dots_gguf_find_tensor(g, "blk.0.attn_q.bias") >= 0;

    const dots_gguf_kv *tokens = dots_gguf_find(g, "tokenizer.ggml.tokens");
    if (!tokens || tokens->type != DOTS_GGUF_ARRAY || tokens->elem_type != DOTS_GGUF_STRING || tokens->n == 0 ||
        tokens->n > (uint64_t)big)
        return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: tokenizer.ggml.tokens is missing or not a list of strings", label);
    t->vocab_size = (int32_t)tokens->n;
    /* the prompt's and the stop set's ids, by text (docs/model.md §6.2, §9) */
    int64_t imgpad = token_id(tokens, "<|imgpad|>"), video = token_id(tokens, "<|video_pad|>");
    int64_t eot = token_id(tokens, "<|endoftext|>"), eoa = token_id(tokens, "<|endofassistant|>");
    if (imgpad < 0 || eot < 0 || eoa < 0)
        return DOTS_FAIL(ctx, DOTS_ERR_UNSUPPORTED,
                         "%s: the vocabulary has no <|imgpad|>, <|endoftext|> or <|endofassistant|>: not a dots.ocr model", label);
    t->image_token_id = (int32_t)imgpad;
    if (video >= 0) t->video_token_id = (int32_t)video;
    c->generation.eos_token_ids[0] = (int32_t)eot;
    c->generation.eos_token_ids[1] = (int32_t)eoa;
    c->generation.n_eos_token_ids = 2;
    return DOTS_OK;
}

static dots_status vision_config(dots_ctx *ctx, const char *label, const dots_gguf *g, dots_config *c) {
    dots_vision_config *v = &c->vision;
    dots_preprocessor_config *p = &c->preprocessor;
    bool b = false;
    if (!dots_gguf_get_bool(g, "clip.has_vision_encoder", &b) || !b)
        return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: clip.has_vision_encoder is not true", label);
    /* without it llama.cpp's graph runs GELU in the MLP: a different model */
    if (!dots_gguf_get_bool(g, "clip.use_silu", &b) || !b)
        return DOTS_FAIL(ctx, DOTS_ERR_UNSUPPORTED, "%s: clip.use_silu is not true (dots.ocr's vision MLP is SwiGLU)", label);
    int32_t proj = 0, min_px = 0, max_px = 0;
    dots_status st = DOTS_OK;
    if (st == DOTS_OK) st = get_int(ctx, label, g, "clip.vision.embedding_length", true, 1, 65536, &v->embed_dim);
    if (st == DOTS_OK) st = get_int(ctx, label, g, "clip.vision.feed_forward_length", true, 1, 1 << 20, &v->intermediate_size);
    if (st == DOTS_OK) st = get_int(ctx, label, g, "clip.vision.block_count", true, 1, 1024, &v->num_hidden_layers);
    if (st == DOTS_OK) st = get_int(ctx, label, g, "clip.vision.attention.head_count", true, 1, 1024, &v->num_attention_heads);
    if (st == DOTS_OK) st = get_int(ctx, label, g, "clip.vision.patch_size", true, 1, 1024, &v->patch_size);
    if (st == DOTS_OK) st = get_int(ctx, label, g, "clip.vision.projector.scale_factor", true, 1, 16, &v->spatial_merge_size);
    if (st == DOTS_OK) st = get_int(ctx, label, g, "clip.vision.projection_dim", true, 1, 65536, &proj);
    if (st == DOTS_OK) st = get_real(ctx, label, g, "clip.vision.attention.layer_norm_epsilon", true, &v->rms_norm_eps);
    if (st == DOTS_OK) st = get_int(ctx, label, g, "clip.vision.image_min_pixels", true, 1, 268435456, &min_px);
    if (st == DOTS_OK) st = get_int(ctx, label, g, "clip.vision.image_max_pixels", true, 1, 268435456, &max_px);
    if (st != DOTS_OK) return st;
    if (proj != c->text.hidden_size)
        return DOTS_FAIL(ctx, DOTS_ERR_CONFIG, "%s: clip.vision.projection_dim %d differs from the language model's width %d", label,
                         proj, c->text.hidden_size);
    if (!dots_gguf_get_f32_array(g, "clip.vision.image_mean", p->image_mean, 3) ||
        !dots_gguf_get_f32_array(g, "clip.vision.image_std", p->image_std, 3))
        return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: clip.vision.image_mean and image_std must be 3 floats each", label);
    v->hidden_size = v->embed_dim;
    v->post_norm = dots_gguf_find_tensor(g, "mm.post_norm.weight") >= 0;
    p->min_pixels = min_px;
    p->max_pixels = max_px;
    p->patch_size = v->patch_size;
    p->merge_size = v->spatial_merge_size;
    return DOTS_OK;
}

dots_status dots_gguf_native_configs(dots_ctx *ctx, const char *label, const dots_gguf *lm, const dots_gguf *mmproj,
                                     char *json[3], size_t len[3]) {
    if (!label || !lm || !mmproj || !json || !len) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "native configs: NULL argument");
    dots_config c;
    dots_config_init_default(&c);
    dots_status st = text_config(ctx, label, lm, &c);
    if (st == DOTS_OK) st = vision_config(ctx, label, mmproj, &c);
    if (st != DOTS_OK) return st;
    st = dots_config_to_json(ctx, &c, &json[0], &json[1], &json[2]);
    for (int i = 0; st == DOTS_OK && i < 3; i++) len[i] = strlen(json[i]);
    return st;
}

static bool has_suffix_ci(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

static bool contains_ci(const char *s, const char *word) {
    for (size_t k = strlen(word); *s; s++)
        if (strncasecmp(s, word, k) == 0) return true;
    return false;
}

dots_status dots_gguf_find_mmproj(dots_ctx *ctx, const char *lm_path, char **out) {
    if (!lm_path || !out) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "find mmproj: NULL argument");
    *out = NULL;
    const char *slash = strrchr(lm_path, '/');
    char *dir = slash ? strndup(lm_path, (size_t)(slash - lm_path) + (slash == lm_path)) : strdup(".");
    if (!dir) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    const char *lm_name = slash ? slash + 1 : lm_path;
    DIR *d = opendir(dir);
    if (!d) {
        dots_status st = DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: cannot list its directory to find the mmproj file; pass it with --mmproj",
                                   lm_path);
        free(dir);
        return st;
    }
    char *found = NULL, *second = NULL;
    int n_found = 0;
    dots_status st = DOTS_OK;
    for (struct dirent *e; st == DOTS_OK && (e = readdir(d));) {
        if (!has_suffix_ci(e->d_name, ".gguf") || !contains_ci(e->d_name, "mmproj") || strcmp(e->d_name, lm_name) == 0) continue;
        char *path = dots_path_join(dir, e->d_name);
        struct stat sb;
        if (!path) {
            st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
            break;
        }
        dots_gguf g;
        /* a file that is not one (or not readable) is simply not a candidate */
        bool ok = stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && dots_gguf_open(ctx, path, &g) == DOTS_OK;
        if (ok) {
            ok = dots_gguf_is_dots_mmproj(&g);
            dots_gguf_close(&g);
        }
        if (ok && n_found++ == 0) {
            found = path;
        } else if (ok && n_found == 2) {
            second = path;
        } else {
            free(path);
        }
    }
    closedir(d);
    free(dir);
    if (st == DOTS_OK && n_found == 0)
        st = DOTS_FAIL(ctx, DOTS_ERR_IO,
                       "%s: a llama.cpp language-model file; no dots.ocr mmproj file (*mmproj*.gguf) next to it: pass --mmproj FILE",
                       lm_path);
    else if (st == DOTS_OK && n_found > 1)
        st = DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "%s: %d dots.ocr mmproj files next to it (%s, %s%s): pass one with --mmproj",
                       lm_path, n_found, found, second, n_found > 2 ? ", ..." : "");
    free(second);
    if (st != DOTS_OK) {
        free(found);
        return st;
    }
    *out = found;
    return DOTS_OK;
}
