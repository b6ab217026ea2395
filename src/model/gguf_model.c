/*
 * gguf_model.c - dots.ocr as one GGUF file (dotsocr convert).
 *
 *   checkpoint (safetensors dir or GGUF) ─► every tensor, HF name
 *        ─► llama.cpp name + the type policy ─► bytes: copied, widened,
 *           rounded to bf16 or quantized (ggml's reference quantizers)
 *   config.json, generation_config.json, preprocessor_config.json,
 *   tokenizer.json ─► string keys dotsocr.*, verbatim
 *   + llama.cpp's qwen2.* and clip.* keys, so the metadata reads the same
 *
 * Tensor names, block layouts and the LM/vision keys are llama.cpp's
 * (docs/formats.md §4), so the tensors can be exchanged with that ecosystem. Its own
 * converter writes two files (LM + mmproj); ours holds both towers.
 */
#include "model/gguf_model.h"
#include "model/gguf_vocab.h"

#include "core/fp.h"
#include "core/threads.h"
#include "io/atomic_file.h"
#include "io/gguf.h"
#include "kernels/kernels.h"
#include "kernels/quant.h"
#include "model/weights.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *const dots_gguf_json_key[DOTS_SOURCE_JSON_COUNT] = {"dotsocr.config_json", "dotsocr.generation_config_json",
                                                                 "dotsocr.preprocessor_config_json"};

/* ------------------------------------------------------------------ names */

typedef struct name_rule {
    const char *hf_prefix; /* up to the layer number, or the whole name */
    const char *hf_suffix; /* after the layer number ("" when there is none) */
    const char *gguf_fmt;  /* with %d for the layer when numbered */
} name_rule;

static const name_rule rules[] = {
    {"model.embed_tokens.weight", NULL, "token_embd.weight"},
    {"model.norm.weight", NULL, "output_norm.weight"},
    {"lm_head.weight", NULL, "output.weight"},
    {"model.layers.", ".input_layernorm.weight", "blk.%d.attn_norm.weight"},
    {"model.layers.", ".self_attn.q_proj.weight", "blk.%d.attn_q.weight"},
    {"model.layers.", ".self_attn.q_proj.bias", "blk.%d.attn_q.bias"},
    {"model.layers.", ".self_attn.k_proj.weight", "blk.%d.attn_k.weight"},
    {"model.layers.", ".self_attn.k_proj.bias", "blk.%d.attn_k.bias"},
    {"model.layers.", ".self_attn.v_proj.weight", "blk.%d.attn_v.weight"},
    {"model.layers.", ".self_attn.v_proj.bias", "blk.%d.attn_v.bias"},
    {"model.layers.", ".self_attn.o_proj.weight", "blk.%d.attn_output.weight"},
    {"model.layers.", ".post_attention_layernorm.weight", "blk.%d.ffn_norm.weight"},
    {"model.layers.", ".mlp.gate_proj.weight", "blk.%d.ffn_gate.weight"},
    {"model.layers.", ".mlp.up_proj.weight", "blk.%d.ffn_up.weight"},
    {"model.layers.", ".mlp.down_proj.weight", "blk.%d.ffn_down.weight"},
    {"vision_tower.patch_embed.patchifier.proj.weight", NULL, "v.patch_embd.weight"},
    {"vision_tower.patch_embed.patchifier.proj.bias", NULL, "v.patch_embd.bias"},
    /* llama.cpp's dots graph applies v.pre_ln here, never v.norm_embd (gguf.md §4.3) */
    {"vision_tower.patch_embed.patchifier.norm.weight", NULL, "v.pre_ln.weight"},
    {"vision_tower.blocks.", ".norm1.weight", "v.blk.%d.ln1.weight"},
    {"vision_tower.blocks.", ".attn.qkv.weight", "v.blk.%d.attn_qkv.weight"},
    {"vision_tower.blocks.", ".attn.proj.weight", "v.blk.%d.attn_out.weight"},
    {"vision_tower.blocks.", ".norm2.weight", "v.blk.%d.ln2.weight"},
    {"vision_tower.blocks.", ".mlp.fc1.weight", "v.blk.%d.ffn_gate.weight"},
    {"vision_tower.blocks.", ".mlp.fc3.weight", "v.blk.%d.ffn_up.weight"},
    {"vision_tower.blocks.", ".mlp.fc2.weight", "v.blk.%d.ffn_down.weight"},
    {"vision_tower.post_trunk_norm.weight", NULL, "mm.post_norm.weight"},
    {"vision_tower.merger.ln_q.weight", NULL, "mm.input_norm.weight"},
    {"vision_tower.merger.ln_q.bias", NULL, "mm.input_norm.bias"},
    {"vision_tower.merger.mlp.0.weight", NULL, "mm.0.weight"},
    {"vision_tower.merger.mlp.0.bias", NULL, "mm.0.bias"},
    {"vision_tower.merger.mlp.2.weight", NULL, "mm.2.weight"},
    {"vision_tower.merger.mlp.2.bias", NULL, "mm.2.bias"},
};

bool dots_gguf_name_for(const char *hf, char *out, size_t cap) {
    if (!hf || !out || cap == 0) return false;
    for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++) {
        const name_rule *ru = &rules[r];
        size_t np = strlen(ru->hf_prefix);
        if (!ru->hf_suffix) {
            if (strcmp(hf, ru->hf_prefix) != 0) continue;
            return (size_t)snprintf(out, cap, "%s", ru->gguf_fmt) < cap;
        }
        if (strncmp(hf, ru->hf_prefix, np) != 0) continue;
        const char *p = hf + np;
        int layer = 0, digits = 0;
        while (*p >= '0' && *p <= '9' && digits < 6) layer = layer * 10 + (*p++ - '0'), digits++;
        if (!digits || strcmp(p, ru->hf_suffix) != 0) continue;
        const char *pct = strstr(ru->gguf_fmt, "%d"); /* the layer goes where the rule has %d */
        return (size_t)snprintf(out, cap, "%.*s%d%s", (int)(pct - ru->gguf_fmt), ru->gguf_fmt, layer, pct + 2) < cap;
    }
    return false;
}

/* ------------------------------------------------------------ conversion */

void dots_convert_params_init(dots_convert_params *p) {
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->type = DOTS_DTYPE_BF16;
    p->vision_type = DOTS_DTYPE_COUNT;
}

static uint32_t ggml_type_of(dots_dtype t) {
    switch (t) {
    case DOTS_DTYPE_F32: return DOTS_GGML_F32;
    case DOTS_DTYPE_F16: return DOTS_GGML_F16;
    case DOTS_DTYPE_BF16: return DOTS_GGML_BF16;
    case DOTS_DTYPE_Q8_0: return DOTS_GGML_Q8_0;
    case DOTS_DTYPE_Q4_0: return DOTS_GGML_Q4_0;
    default: return DOTS_GGML_Q4_K;
    }
}

static bool is_4bit(dots_dtype t) { return t == DOTS_DTYPE_Q4_0 || t == DOTS_DTYPE_Q4_K; }

/* The stored type of one tensor. Precise where precision is cheap: norms
 * and biases F32 (llama.cpp's rule); the conv kernel (rows of 14 in ggml's
 * layout) F32 unless the file is bf16 or f16, and in llama.cpp's pair F16 in
 * an f16 file and F32 in every other (its converter's rule: ggml's CPU
 * backend has no convolution with a BF16 kernel, and llama.cpp aborts
 * setting up the vision graph of an mmproj that has one); a matrix whose rows are not whole
 * blocks (vision fc2 rows are 4224 = 16.5 x 256) falls back to Q8_0; the
 * output projection stays Q8_0 in 4-bit files (llama.cpp uses Q6_K there). */
static dots_dtype stored_type(const dots_expected_tensor *e, dots_dtype want, bool llama_pair) {
    if (e->n_dims < 2) return DOTS_DTYPE_F32;
    if (e->n_dims == 4 || strcmp(e->name, "vision_tower.patch_embed.patchifier.proj.weight") == 0) {
        if (llama_pair) return want == DOTS_DTYPE_F16 ? DOTS_DTYPE_F16 : DOTS_DTYPE_F32;
        return dots_dtype_is_quant(want) ? DOTS_DTYPE_F32 : want;
    }
    if (strcmp(e->name, "lm_head.weight") == 0 && is_4bit(want)) return DOTS_DTYPE_Q8_0;
    int64_t K = e->shape[e->n_dims - 1];
    if (K % dots_dtype_block(want) != 0) return K % 32 == 0 ? DOTS_DTYPE_Q8_0 : DOTS_DTYPE_BF16;
    return want;
}

typedef struct quant_job {
    dots_dtype t;
    const float *src;
    uint8_t *dst;
    int64_t K, row_bytes;
} quant_job;

static void quant_task(void *arg, int64_t r, int worker) {
    (void)worker;
    quant_job *j = arg;
    dots_quantize_row(j->t, j->src + r * j->K, j->dst + r * j->row_bytes, j->K);
}

typedef struct convert_state {
    dots_ctx *ctx;
    dots_gguf_writer w;
    dots_atomic_file af;
    dots_pool *pool;
    float *f32;
    uint8_t *out;
    int64_t chunk_elems;
    char *chat_template; /* the source's, or NULL */
} convert_state;

static dots_status write_tensor(convert_state *c, const dots_tensor *src, dots_dtype to) {
    int64_t n = src->n_elements, K = src->shape[src->n_dims - 1];
    if (to == src->dtype) /* the same encoding: the bytes as they are (bf16 -> bf16 is bit-exact) */
        return dots_gguf_write_data(c->ctx, &c->w, c->af.f, src->data, (size_t)dots_dtype_bytes(to, n));
    int64_t rows_per_chunk = c->chunk_elems / K > 0 ? c->chunk_elems / K : 1;
    for (int64_t r0 = 0; r0 * K < n; r0 += rows_per_chunk) {
        int64_t nr = (n / K - r0) < rows_per_chunk ? n / K - r0 : rows_per_chunk, m = nr * K;
        dots_weights_to_f32(c->f32, src->data, src->dtype, r0 * K, m);
        size_t bytes = (size_t)dots_dtype_bytes(to, m);
        if (to == DOTS_DTYPE_F32) {
            memcpy(c->out, c->f32, bytes);
        } else if (to == DOTS_DTYPE_BF16 || to == DOTS_DTYPE_F16) {
            uint16_t *o = (uint16_t *)c->out;
            for (int64_t i = 0; i < m; i++) o[i] = to == DOTS_DTYPE_BF16 ? dots_f32_to_bf16(c->f32[i]) : dots_f32_to_f16(c->f32[i]);
        } else {
            quant_job j = {to, c->f32, c->out, K, dots_dtype_bytes(to, K)};
            dots_pool_run(c->pool, nr, quant_task, &j);
        }
        dots_status st = dots_gguf_write_data(c->ctx, &c->w, c->af.f, c->out, bytes);
        if (st != DOTS_OK) return st;
    }
    return DOTS_OK;
}

/* The chat template of the source, or NULL: a checkpoint's
 * tokenizer_config.json "chat_template" (a string), else chat_template.json's,
 * else a GGUF's tokenizer.chat_template. */
static char *read_chat_template(dots_ctx *ctx, const dots_model *m) {
    char *out = NULL;
    if (!dots_model_is_gguf(m)) {
        static const char *const files[] = {"tokenizer_config.json", "chat_template.json"};
        for (int i = 0; i < 2 && !out; i++) {
            char *path = dots_path_join(dots_model_dir(m), files[i]), *text = NULL;
            size_t len = 0;
            struct stat sb;
            if (path && stat(path, &sb) == 0 && dots_read_small_file(ctx, path, 64u << 20, &text, &len) == DOTS_OK) {
                json_t *root = json_loadb(text, len, 0, NULL);
                const json_t *t = json_object_get(root, "chat_template");
                if (json_is_string(t)) out = strdup(json_string_value(t));
                json_decref(root);
            }
            dots_ctx_clear_error(ctx);
            free(text);
            free(path);
        }
        return out;
    }
    dots_gguf g;
    if (dots_gguf_open(ctx, dots_model_dir(m), &g) != DOTS_OK) {
        dots_ctx_clear_error(ctx);
        return NULL;
    }
    const char *s;
    size_t n;
    if (dots_gguf_get_string(&g, "tokenizer.chat_template", &s, &n) && (out = malloc(n + 1))) {
        memcpy(out, s, n);
        out[n] = '\0';
    }
    dots_gguf_close(&g);
    return out;
}

/* tokenizer.json of the source: the directory's file, or the GGUF's key. */
static dots_status read_tokenizer_text(dots_ctx *ctx, const dots_model *m, const char *path, char **text, size_t *len) {
    if (path || !dots_model_is_gguf(m)) {
        char *p = path ? NULL : dots_path_join(dots_model_dir(m), "tokenizer.json");
        if (!path && !p) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
        dots_status st = dots_read_small_file(ctx, path ? path : p, 256u << 20, text, len);
        if (st != DOTS_OK && !path)
            st = DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: no tokenizer.json to embed (pass --tokenizer FILE)", dots_model_dir(m));
        free(p);
        return st;
    }
    dots_gguf g;
    dots_status st = dots_gguf_open(ctx, dots_model_dir(m), &g);
    if (st != DOTS_OK) return st;
    const char *s;
    size_t n;
    if (!dots_gguf_get_string(&g, DOTS_GGUF_TOKENIZER_KEY, &s, &n)) {
        dots_gguf_close(&g);
        return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: no %s to copy (pass --tokenizer FILE)", dots_model_dir(m), DOTS_GGUF_TOKENIZER_KEY);
    }
    *text = malloc(n + 1);
    if (*text) {
        memcpy(*text, s, n);
        (*text)[n] = 0;
        *len = n;
    }
    dots_gguf_close(&g);
    return *text ? DOTS_OK : DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
}

static void write_general_keys(dots_gguf_writer *w, const char *arch, uint32_t file_type) {
    dots_gguf_kv_string(w, "general.architecture", arch, strlen(arch));
    dots_gguf_kv_string(w, "general.name", "dots.ocr", 8);
    dots_gguf_kv_u32(w, "general.file_type", file_type);
    dots_gguf_kv_u32(w, "general.quantization_version", 2);
}

/* llama.cpp's qwen2 metadata (gguf.md §4.2), exact key types. */
static void write_lm_keys(dots_gguf_writer *w, const dots_config *c) {
    const dots_text_config *t = &c->text;
    dots_gguf_kv_u32(w, "qwen2.context_length", (uint32_t)t->max_position_embeddings);
    dots_gguf_kv_u32(w, "qwen2.embedding_length", (uint32_t)t->hidden_size);
    dots_gguf_kv_u32(w, "qwen2.block_count", (uint32_t)t->num_hidden_layers);
    dots_gguf_kv_u32(w, "qwen2.feed_forward_length", (uint32_t)t->intermediate_size);
    dots_gguf_kv_u32(w, "qwen2.attention.head_count", (uint32_t)t->num_attention_heads);
    dots_gguf_kv_u32(w, "qwen2.attention.head_count_kv", (uint32_t)t->num_key_value_heads);
    dots_gguf_kv_f32(w, "qwen2.rope.freq_base", (float)t->rope_theta);
    dots_gguf_kv_f32(w, "qwen2.attention.layer_norm_rms_epsilon", (float)t->rms_norm_eps);
}

/* llama.cpp's clip metadata for the dots_ocr projector (gguf.md §4.3). */
static void write_clip_keys(dots_gguf_writer *w, const dots_config *c) {
    const dots_vision_config *v = &c->vision;
    dots_gguf_kv_string(w, "clip.projector_type", "dots_ocr", 8);
    dots_gguf_kv_bool(w, "clip.has_vision_encoder", true);
    dots_gguf_kv_bool(w, "clip.use_silu", true);
    dots_gguf_kv_u32(w, "clip.vision.image_size", 0);
    dots_gguf_kv_u32(w, "clip.vision.patch_size", (uint32_t)v->patch_size);
    dots_gguf_kv_u32(w, "clip.vision.embedding_length", (uint32_t)v->embed_dim);
    dots_gguf_kv_u32(w, "clip.vision.feed_forward_length", (uint32_t)v->intermediate_size);
    dots_gguf_kv_u32(w, "clip.vision.block_count", (uint32_t)v->num_hidden_layers);
    dots_gguf_kv_u32(w, "clip.vision.attention.head_count", (uint32_t)v->num_attention_heads);
    dots_gguf_kv_u32(w, "clip.vision.projection_dim", (uint32_t)v->hidden_size);
    dots_gguf_kv_f32(w, "clip.vision.attention.layer_norm_epsilon", (float)v->rms_norm_eps);
    dots_gguf_kv_f32_array(w, "clip.vision.image_mean", c->preprocessor.image_mean, 3);
    dots_gguf_kv_f32_array(w, "clip.vision.image_std", c->preprocessor.image_std, 3);
    dots_gguf_kv_u32(w, "clip.vision.image_min_pixels", (uint32_t)c->preprocessor.min_pixels);
    dots_gguf_kv_u32(w, "clip.vision.image_max_pixels", (uint32_t)c->preprocessor.max_pixels);
    dots_gguf_kv_u32(w, "clip.vision.projector.scale_factor", (uint32_t)v->spatial_merge_size);
}

/* The special ids llama.cpp-based runners need (gguf.md §5.4): EOS and the
 * end-of-assistant token dots.ocr stops on, [PAD], no BOS. */
static void write_special_ids(dots_gguf_writer *w) {
    dots_gguf_kv_u32(w, "tokenizer.ggml.eos_token_id", 151643);
    dots_gguf_kv_u32(w, "tokenizer.ggml.padding_token_id", 151680);
    dots_gguf_kv_u32(w, "tokenizer.ggml.eot_token_id", 151673);
    dots_gguf_kv_bool(w, "tokenizer.ggml.add_bos_token", false);
}

/* What one output file holds. */
typedef enum part { PART_ALL, PART_LM, PART_VISION } part;

static const uint32_t file_types[DOTS_DTYPE_COUNT] = {0, 1, 32, 7, 2, 14};

/* Builds the metadata of one file. */
static dots_status write_keys(dots_ctx *ctx, dots_gguf_writer *w, const dots_model *model, part which, dots_dtype lm_t,
                              dots_dtype vis_t, const char *tok, size_t tok_len, const char *mmproj_name,
                              const char *chat_template) {
    const dots_config *cfg = dots_model_config(model);
    write_general_keys(w, which == PART_VISION ? "clip" : "qwen2", file_types[which == PART_VISION ? vis_t : lm_t]);
    if (which == PART_VISION) dots_gguf_kv_string(w, "general.type", "mmproj", 6);
    if (which != PART_VISION) write_lm_keys(w, cfg);
    if (which != PART_LM) write_clip_keys(w, cfg);
    if (which != PART_VISION) write_special_ids(w);
    if (which == PART_LM) { /* the vocabulary as llama.cpp reads it (gguf.md §5) */
        dots_ggml_vocab v;
        dots_status st = dots_ggml_vocab_build(ctx, tok, tok_len, cfg->text.vocab_size, &v);
        if (st != DOTS_OK) return st;
        dots_gguf_kv_string(w, "tokenizer.ggml.model", "gpt2", 4);
        dots_gguf_kv_string(w, "tokenizer.ggml.pre", "qwen2", 5);
        dots_gguf_kv_string_array(w, "tokenizer.ggml.tokens", (const char *const *)v.tokens, v.token_len, (uint64_t)v.n_tokens);
        dots_gguf_kv_i32_array(w, "tokenizer.ggml.token_type", v.types, (uint64_t)v.n_tokens);
        dots_gguf_kv_string_array(w, "tokenizer.ggml.merges", (const char *const *)v.merges, v.merge_len, (uint64_t)v.n_merges);
        dots_ggml_vocab_free(&v);
        dots_gguf_kv_string(w, DOTS_GGUF_MMPROJ_KEY, mmproj_name, strlen(mmproj_name));
    }
    for (int i = 0; i < DOTS_SOURCE_JSON_COUNT; i++) {
        size_t n;
        const char *s = dots_model_source_json(model, i, &n);
        if (s) dots_gguf_kv_string(w, dots_gguf_json_key[i], s, n);
    }
    if (which != PART_VISION) dots_gguf_kv_string(w, DOTS_GGUF_TOKENIZER_KEY, tok, tok_len);
    /* llama-server and llama-mtmd-cli build their prompts from it */
    if (which != PART_VISION && chat_template)
        dots_gguf_kv_string(w, "tokenizer.chat_template", chat_template, strlen(chat_template));
    return DOTS_OK;
}

/* One output file: its keys, the tensors of its part, written atomically. */
static dots_status write_file(convert_state *c, const dots_model *model, const char *path, part which,
                              const dots_expected_tensor *exp, const dots_tensor *const *src, const dots_dtype *to, int64_t n_exp,
                              dots_dtype lm_t, dots_dtype vis_t, const char *tok, size_t tok_len, const char *mmproj_name) {
    dots_ctx *ctx = c->ctx;
    dots_gguf_writer_init(&c->w);
    dots_status st = write_keys(ctx, &c->w, model, which, lm_t, vis_t, tok, tok_len, mmproj_name, c->chat_template);
    for (int64_t i = 0; i < n_exp && st == DOTS_OK; i++) {
        if ((which == PART_LM && exp[i].is_vision) || (which == PART_VISION && !exp[i].is_vision)) continue;
        char gname[DOTS_GGUF_MAX_NAME + 1];
        dots_gguf_name_for(exp[i].name, gname, sizeof gname);
        st = dots_gguf_add_tensor(ctx, &c->w, gname, ggml_type_of(to[i]), src[i]->n_dims, src[i]->shape);
    }
    bool opened = false;
    if (st == DOTS_OK && !(opened = dots_atomic_open(&c->af, path)))
        st = DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    if (st == DOTS_OK) st = dots_gguf_write_header(ctx, &c->w, c->af.f);
    for (int64_t i = 0; i < n_exp && st == DOTS_OK; i++) {
        if ((which == PART_LM && exp[i].is_vision) || (which == PART_VISION && !exp[i].is_vision)) continue;
        st = write_tensor(c, src[i], to[i]);
        if (st == DOTS_OK)
            dots_log(ctx, DOTS_LOG_DEBUG, "%s: %s -> %s", exp[i].name, dots_dtype_name(src[i]->dtype), dots_dtype_name(to[i]));
    }
    if (st == DOTS_OK) {
        opened = false;
        if (!dots_atomic_commit(&c->af)) st = DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    }
    if (opened) dots_atomic_abort(&c->af);
    dots_gguf_writer_free(&c->w);
    return st;
}

/* The mmproj path as the LM file records it: its name when both files share
 * a directory (the pair can then move together), else its absolute path.
 * NULL on OOM; the caller frees. */
static char *mmproj_reference(const char *lm_path, const char *mm_path) {
    const char *ls = strrchr(lm_path, '/'), *ms = strrchr(mm_path, '/');
    size_t ld = ls ? (size_t)(ls - lm_path) + 1 : 0, md = ms ? (size_t)(ms - mm_path) + 1 : 0;
    if (ld == md && strncmp(lm_path, mm_path, ld) == 0) return strdup(mm_path + md);
    char *abs = realpath(mm_path, NULL);
    return abs ? abs : strdup(mm_path);
}

dots_status dots_convert_gguf(dots_ctx *ctx, const dots_model *model, const char *out_path, const dots_convert_params *p) {
    dots_ctx_begin_call(ctx);
    if (!model || !out_path || !p) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_convert_gguf: NULL argument");
    if (p->mmproj_path && strcmp(p->mmproj_path, out_path) == 0)
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "convert: the LM and mmproj files must differ (%s)", out_path);
    dots_dtype lm_t = p->type, vis_t = p->vision_type == DOTS_DTYPE_COUNT ? p->type : p->vision_type;
    for (int i = 0; i < 2; i++) {
        dots_dtype t = i ? vis_t : lm_t;
        if (t != DOTS_DTYPE_BF16 && t != DOTS_DTYPE_F16 && t != DOTS_DTYPE_F32 && !dots_dtype_is_quant(t))
            return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_convert_gguf: unsupported type %d", (int)t);
    }
    const dots_config *cfg = dots_model_config(model);
    convert_state c = {.ctx = ctx, .chunk_elems = 4 << 20};
    dots_expected_tensor *exp = NULL;
    int64_t n_exp = 0;
    dots_weights shadow;
    char *tok = NULL;
    size_t tok_len = 0;
    const dots_tensor **src = NULL;
    dots_dtype *to = NULL;
    dots_status st = read_tokenizer_text(ctx, model, p->tokenizer_path, &tok, &tok_len);
    c.chat_template = read_chat_template(ctx, model);
    if (st == DOTS_OK) st = dots_weights_expect(ctx, cfg, &shadow, &exp, &n_exp);
    if (st != DOTS_OK) goto done;
    dots_weights_free(&shadow); /* only the names and shapes are needed */

    /* the source tensors, by the same expected list the model was bound with */
    src = calloc((size_t)n_exp, sizeof *src);
    to = calloc((size_t)n_exp, sizeof *to);
    if (!src || !to) {
        st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < n_exp && st == DOTS_OK; i++) {
        char gname[DOTS_GGUF_MAX_NAME + 1];
        src[i] = dots_model_bound_tensor(model, i);
        if (!src[i] || !dots_gguf_name_for(exp[i].name, gname, sizeof gname))
            st = DOTS_FAIL(ctx, DOTS_ERR_INTERNAL, "convert: no tensor or GGUF name for %s", exp[i].name);
        else if (src[i]->shape[src[i]->n_dims - 1] > c.chunk_elems)
            st = DOTS_FAIL(ctx, DOTS_ERR_LIMIT, "convert: tensor %s has rows of %lld elements", exp[i].name,
                           (long long)src[i]->shape[src[i]->n_dims - 1]);
        else
            to[i] = stored_type(&exp[i], exp[i].is_vision ? vis_t : lm_t, p->mmproj_path != NULL);
    }
    if (st == DOTS_OK) {
        c.pool = dots_pool_create(p->threads > 0 ? p->threads : dots_default_threads());
        c.f32 = malloc((size_t)c.chunk_elems * sizeof(float) + 8960 * sizeof(float));
        c.out = malloc((size_t)c.chunk_elems * sizeof(float) + 8960 * sizeof(float));
        if (!c.pool || !c.f32 || !c.out) st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    }
    if (st == DOTS_OK && !p->mmproj_path)
        st = write_file(&c, model, out_path, PART_ALL, exp, src, to, n_exp, lm_t, vis_t, tok, tok_len, NULL);
    /* the pair: the vision file first, so that an LM file never names a missing one */
    if (st == DOTS_OK && p->mmproj_path)
        st = write_file(&c, model, p->mmproj_path, PART_VISION, exp, src, to, n_exp, lm_t, vis_t, tok, tok_len, NULL);
    if (st == DOTS_OK && p->mmproj_path) {
        char *ref = mmproj_reference(out_path, p->mmproj_path);
        st = ref ? write_file(&c, model, out_path, PART_LM, exp, src, to, n_exp, lm_t, vis_t, tok, tok_len, ref)
                 : DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
        free(ref);
    }
done:
    free(src);
    free(to);
    free(c.chat_template);
    dots_pool_free(c.pool);
    free(c.f32);
    free(c.out);
    free(exp);
    free(tok);
    return st;
}
