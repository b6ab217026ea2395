/*
 * generate.c - writing random-weight checkpoints in the official layout
 * (dots_make_model), for tests and benchmarks: the real weights cannot be
 * downloaded here, so every test runs on models this file makes.
 *
 * The files are what transformers' save_pretrained would write: config.json,
 * generation_config.json, preprocessor_config.json and safetensors shards of
 * at most max_shard_bytes with a model.safetensors.index.json (or a single
 * model.safetensors when everything fits in one). Tensor names and shapes
 * come from weights.c, the same list the loader binds.
 *
 * Values are a pure function of (seed, tensor name, element index), so a
 * model is reproducible whatever the shard split.
 */
#include "core/fp.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/weights.h"
#include "tokenizer/added_tokens.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void dots_make_model_params_init(dots_make_model_params *p) {
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->preset = DOTS_PRESET_TINY;
    p->dtype = DOTS_DTYPE_BF16;
}

static void preset_config(dots_preset preset, dots_config *cfg) {
    dots_config_init_default(cfg);
    if (preset != DOTS_PRESET_TINY) return;
    /* Small enough for unit tests, same structure; the real vocabulary so the
     * special-token ids of docs/model.md §8.2 exist. */
    dots_text_config *t = &cfg->text;
    t->hidden_size = 64;
    t->num_hidden_layers = 2;
    t->num_attention_heads = 4;
    t->num_key_value_heads = 2;
    t->head_dim = 16;
    t->intermediate_size = 128;
    t->max_window_layers = 2;
    dots_vision_config *v = &cfg->vision;
    v->embed_dim = 64;
    v->hidden_size = 64;
    v->intermediate_size = 128;
    v->num_hidden_layers = 2;
    v->num_attention_heads = 4;
    v->head_dim = 16;
}

/* splitmix64: tiny, fast, and good enough for weights. */
static uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Not dots_hash_bytes: this hash seeds the weights, so changing it would
 * change every generated model. */
static uint64_t name_hash(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* Uniform in [-1, 1) for element i of a tensor with key k. */
static float uniform_pm1(uint64_t k, int64_t i) {
    uint64_t r = mix64(k ^ mix64((uint64_t)i));
    return (float)((double)(r >> 40) * (1.0 / 8388608.0) - 1.0);
}

/* Scale of each init kind: linear layers keep activations near unit
 * variance (uniform with variance 1/fan_in), norm weights near 1. */
static void init_params(const dots_expected_tensor *e, float *scale, float *offset) {
    int64_t fan_in = 1;
    for (int32_t d = 1; d < e->n_dims; d++) fan_in *= e->shape[d];
    switch (e->init_kind) {
    case DOTS_INIT_LINEAR: *scale = (float)sqrt(3.0 / (double)fan_in); *offset = 0; break;
    case DOTS_INIT_NORM: *scale = 0.1f; *offset = 1.0f; break;
    case DOTS_INIT_BIAS: *scale = 0.1f; *offset = 0; break;
    /* logits with a spread of ~10: the top two of 151,936 random logits are
     * then ~2 apart, far above fp32 rounding, so greedy choices don't flip
     * between implementations */
    case DOTS_INIT_LM_HEAD: *scale = 10.0f * (float)sqrt(3.0 / (double)fan_in); *offset = 0; break;
    default: *scale = (float)sqrt(3.0); *offset = 0; break; /* EMBED: unit variance */
    }
}

static int64_t tensor_numel(const dots_expected_tensor *e) {
    int64_t n = 1;
    for (int32_t d = 0; d < e->n_dims; d++) n *= e->shape[d];
    return n;
}

static dots_status write_all(dots_ctx *ctx, FILE *f, const char *path, const void *buf, size_t n) {
    if (n && fwrite(buf, 1, n, f) != n) return DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return DOTS_OK;
}

/* Streams one tensor's values in the requested dtype. */
static dots_status write_tensor(dots_ctx *ctx, FILE *f, const char *path, const dots_expected_tensor *e,
                                uint64_t seed, dots_dtype dtype, uint8_t *buf, size_t buf_elems) {
    uint64_t key = mix64(seed ^ name_hash(e->name));
    float scale, offset;
    init_params(e, &scale, &offset);
    int64_t n = tensor_numel(e);
    int esize = dots_dtype_size(dtype);
    for (int64_t i0 = 0; i0 < n; i0 += (int64_t)buf_elems) {
        int64_t m = n - i0 < (int64_t)buf_elems ? n - i0 : (int64_t)buf_elems;
        for (int64_t j = 0; j < m; j++) {
            float x = offset + scale * uniform_pm1(key, i0 + j);
            if (dtype == DOTS_DTYPE_F32) {
                memcpy(buf + 4 * j, &x, 4);
            } else {
                uint16_t h = dtype == DOTS_DTYPE_BF16 ? dots_f32_to_bf16(x) : dots_f32_to_f16(x);
                memcpy(buf + 2 * j, &h, 2);
            }
        }
        dots_status st = write_all(ctx, f, path, buf, (size_t)m * (size_t)esize);
        if (st != DOTS_OK) return st;
    }
    return DOTS_OK;
}

/* Writes text to dir/name through a temporary file and rename(). */
static dots_status write_text_file(dots_ctx *ctx, const char *dir, const char *name, const char *text) {
    char *path = dots_path_join(dir, name);
    char *tmp = path ? malloc(strlen(path) + 32) : NULL;
    if (!path || !tmp) {
        free(path);
        free(tmp);
        return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    }
    sprintf(tmp, "%s.tmp.%ld", path, (long)getpid());
    dots_status st = DOTS_OK;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        st = DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: %s", tmp, strerror(errno));
    } else {
        st = write_all(ctx, f, tmp, text, strlen(text));
        if (fclose(f) != 0 && st == DOTS_OK) st = DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: %s", tmp, strerror(errno));
        if (st == DOTS_OK && rename(tmp, path) != 0)
            st = DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: rename failed: %s", path, strerror(errno));
        if (st != DOTS_OK) unlink(tmp);
    }
    free(path);
    free(tmp);
    return st;
}

/* The dots.ocr tokenizer: the given Qwen2 tokenizer.json with the 45 added
 * tokens of docs/model.md §8.2, plus the matching tokenizer_config.json. */
static dots_status write_tokenizer(dots_ctx *ctx, const char *src, const char *dir) {
    char *text = NULL, *tok = NULL, *cfg = NULL;
    size_t len = 0;
    dots_status st = dots_read_small_file(ctx, src, 256u << 20, &text, &len);
    if (st == DOTS_OK) st = dots_write_dots_tokenizer(ctx, text, len, &tok, &cfg);
    if (st == DOTS_OK) st = write_text_file(ctx, dir, "tokenizer.json", tok);
    if (st == DOTS_OK) st = write_text_file(ctx, dir, "tokenizer_config.json", cfg);
    free(text);
    free(tok);
    free(cfg);
    return st;
}

typedef struct shard_plan {
    int64_t first, count; /* range of expected tensors */
    char name[64];
} shard_plan;

static dots_status write_shard(dots_ctx *ctx, const char *dir, const shard_plan *sh,
                               const dots_expected_tensor *exp, const dots_make_model_params *p) {
    dots_st_entry *entries = calloc((size_t)sh->count, sizeof *entries);
    char *path = dots_path_join(dir, sh->name);
    char *tmp = path ? malloc(strlen(path) + 32) : NULL;
    size_t buf_elems = 1u << 18;
    uint8_t *buf = malloc(buf_elems * 4);
    char *header = NULL;
    FILE *f = NULL;
    dots_status st = DOTS_OK;
    if (!entries || !path || !tmp || !buf) {
        st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    sprintf(tmp, "%s.tmp.%ld", path, (long)getpid());
    dots_st_dtype sdt = p->dtype == DOTS_DTYPE_F32 ? DOTS_ST_F32 : p->dtype == DOTS_DTYPE_F16 ? DOTS_ST_F16 : DOTS_ST_BF16;
    for (int64_t i = 0; i < sh->count; i++) {
        const dots_expected_tensor *e = &exp[sh->first + i];
        entries[i].name = e->name;
        entries[i].dtype = sdt;
        entries[i].n_dims = e->n_dims;
        memcpy(entries[i].shape, e->shape, sizeof e->shape);
    }
    size_t header_len = 0;
    uint64_t data_bytes = 0;
    st = dots_st_build_header(ctx, entries, sh->count, &header, &header_len, &data_bytes);
    if (st != DOTS_OK) goto done;
    f = fopen(tmp, "wb");
    if (!f) {
        st = DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: %s", tmp, strerror(errno));
        goto done;
    }
    st = write_all(ctx, f, tmp, header, header_len);
    if (st != DOTS_OK) goto done;
    if (p->sparse_zero) {
        /* All-zero weights as a hole: a full-size model in no time and no disk. */
        if (fflush(f) != 0 || ftruncate(fileno(f), (off_t)(header_len + data_bytes)) != 0) {
            st = DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: cannot extend: %s", tmp, strerror(errno));
            goto done;
        }
    } else {
        for (int64_t i = 0; i < sh->count && st == DOTS_OK; i++)
            st = write_tensor(ctx, f, tmp, &exp[sh->first + i], p->seed, p->dtype, buf, buf_elems);
        if (st != DOTS_OK) goto done;
    }
    int rc = fclose(f);
    f = NULL;
    if (rc != 0) {
        st = DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: %s", tmp, strerror(errno));
        goto done;
    }
    if (rename(tmp, path) != 0) st = DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: rename failed: %s", path, strerror(errno));
done:
    if (f) fclose(f);
    if (st != DOTS_OK && tmp) unlink(tmp);
    free(entries);
    free(path);
    free(tmp);
    free(buf);
    free(header);
    return st;
}

static dots_status write_index(dots_ctx *ctx, const char *dir, const shard_plan *shards, int32_t n_shards,
                               const dots_expected_tensor *exp, uint64_t total_bytes) {
    json_t *root = json_object(), *meta = json_object(), *map = json_object();
    bool ok = root && meta && map;
    for (int32_t s = 0; ok && s < n_shards; s++)
        for (int64_t i = 0; ok && i < shards[s].count; i++)
            ok = json_object_set_new(map, exp[shards[s].first + i].name, json_string(shards[s].name)) == 0;
    ok = ok && json_object_set_new(meta, "total_size", json_integer((json_int_t)total_bytes)) == 0;
    ok = ok && json_object_set(root, "metadata", meta) == 0 && json_object_set(root, "weight_map", map) == 0;
    char *text = ok ? json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(meta);
    json_decref(map);
    json_decref(root);
    if (!text) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory writing the index");
    dots_status st = write_text_file(ctx, dir, "model.safetensors.index.json", text);
    free(text);
    return st;
}

static dots_status remove_if_present(dots_ctx *ctx, const char *dir, const char *name) {
    char *path = dots_path_join(dir, name);
    if (!path) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    dots_status st = DOTS_OK;
    if (unlink(path) != 0 && errno != ENOENT) st = DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: %s", path, strerror(errno));
    free(path);
    return st;
}

dots_status dots_make_model(dots_ctx *ctx, const char *out_dir, const dots_make_model_params *p) {
    dots_ctx_begin_call(ctx);
    if (!out_dir || !p) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_make_model: NULL argument");
    if (p->preset != DOTS_PRESET_TINY && p->preset != DOTS_PRESET_FULL)
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_make_model: unknown preset %d", (int)p->preset);
    if ((unsigned)p->dtype >= DOTS_DTYPE_COUNT)
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_make_model: unknown dtype %d", (int)p->dtype);
    if (p->max_shard_bytes < 0)
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_make_model: negative shard size");
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST)
        return DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: cannot create: %s", out_dir, strerror(errno));
    struct stat sb;
    if (stat(out_dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: not a directory", out_dir);

    dots_config cfg;
    preset_config(p->preset, &cfg);
    dots_weights w;
    dots_expected_tensor *exp = NULL;
    int64_t n_exp = 0;
    dots_status st = dots_weights_expect(ctx, &cfg, &w, &exp, &n_exp);
    if (st != DOTS_OK) return st;
    shard_plan *shards = calloc((size_t)n_exp, sizeof *shards);
    char *cj = NULL, *gj = NULL, *pj = NULL;
    if (!shards) {
        st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    /* Plan shards like save_pretrained: fill in order, start a new shard when
     * the next tensor would overflow the current one. */
    int esize = dots_dtype_size(p->dtype);
    uint64_t total = 0;
    for (int64_t i = 0; i < n_exp; i++) total += (uint64_t)tensor_numel(&exp[i]) * (uint64_t)esize;
    uint64_t limit = p->max_shard_bytes > 0 ? (uint64_t)p->max_shard_bytes
                     : p->preset == DOTS_PRESET_TINY ? total / 5 * 3 /* two shards, to exercise the index */
                                                     : 5000000000ULL; /* transformers' "5GB" */
    int32_t n_shards = 0;
    uint64_t cur = 0;
    for (int64_t i = 0; i < n_exp; i++) {
        uint64_t b = (uint64_t)tensor_numel(&exp[i]) * (uint64_t)esize;
        if (n_shards == 0 || (cur > 0 && cur + b > limit)) {
            shards[n_shards].first = i;
            n_shards++;
            cur = 0;
        }
        shards[n_shards - 1].count++;
        cur += b;
    }
    for (int32_t s = 0; s < n_shards; s++) {
        if (n_shards == 1)
            snprintf(shards[s].name, sizeof shards[s].name, "model.safetensors");
        else
            snprintf(shards[s].name, sizeof shards[s].name, "model-%05d-of-%05d.safetensors", s + 1, n_shards);
    }
    /* A stale file of the other layout would shadow the new one. */
    st = remove_if_present(ctx, out_dir, "config.json");
    if (st == DOTS_OK) st = remove_if_present(ctx, out_dir, "model.safetensors");
    if (st == DOTS_OK) st = remove_if_present(ctx, out_dir, "model.safetensors.index.json");
    if (st != DOTS_OK) goto done;
    for (int32_t s = 0; s < n_shards && st == DOTS_OK; s++) {
        dots_log(ctx, DOTS_LOG_INFO, "writing %s (%lld tensors)", shards[s].name, (long long)shards[s].count);
        st = write_shard(ctx, out_dir, &shards[s], exp, p);
    }
    if (st == DOTS_OK && n_shards > 1) st = write_index(ctx, out_dir, shards, n_shards, exp, total);
    if (st != DOTS_OK) goto done;
    st = dots_config_to_json(ctx, &cfg, &cj, &gj, &pj);
    if (st == DOTS_OK) st = write_text_file(ctx, out_dir, "generation_config.json", gj);
    if (st == DOTS_OK) st = write_text_file(ctx, out_dir, "preprocessor_config.json", pj);
    if (st == DOTS_OK && p->tokenizer_path) st = write_tokenizer(ctx, p->tokenizer_path, out_dir);
    /* config.json last: a directory with a config is a complete model. */
    if (st == DOTS_OK) st = write_text_file(ctx, out_dir, "config.json", cj);
done:
    free(cj);
    free(gj);
    free(pj);
    free(shards);
    free(exp);
    dots_weights_free(&w);
    return st;
}
