/*
 * model.c - opening a dots.ocr checkpoint directory: configs, weight files,
 * and every tensor bound by name and shape (dots_model_open and friends).
 *
 *   config.json ─► dots_config ─► expected tensors (names, shapes)
 *   weight files ─► dots_tensor_store ─┘ bind: present? float dtype? shape?
 *   generation_config.json, preprocessor_config.json ─► defaults if absent
 */
#include "io/checkpoint.h"
#include "model/config.h"
#include "model/weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define DOTS_MAX_CONFIG_BYTES (16u << 20) /* the real config.json is ~2 kB */

struct dots_model {
    char *dir;
    dots_config config;
    dots_tensor_store store;
    dots_tensor *tensors;     /* [n_bound], what the weights struct points into */
    int64_t n_bound;
    void **copies;            /* aligned copies of misaligned tensors */
    int64_t n_copies;
    dots_weights weights;
    dots_model_info info;
};

void dots_model_close(dots_model *m) {
    if (!m) return;
    for (int64_t i = 0; i < m->n_copies; i++) free(m->copies[i]);
    free(m->copies);
    free(m->tensors);
    dots_weights_free(&m->weights);
    dots_store_close(&m->store);
    free(m->dir);
    free(m);
}

const dots_config *dots_model_config(const dots_model *m) { return m ? &m->config : NULL; }
const char *dots_model_dir(const dots_model *m) { return m ? m->dir : NULL; }
const dots_weights *dots_model_weights(const dots_model *m) { return m ? &m->weights : NULL; }

const char *dots_model_file_path(const dots_model *m, int32_t i) {
    if (!m || i < 0 || i >= m->store.n_files) return NULL;
    return m->store.files[i].path;
}

dots_status dots_model_get_info(const dots_model *m, dots_model_info *out) {
    if (!m || !out) return DOTS_ERR_INVALID_ARGUMENT;
    *out = m->info;
    return DOTS_OK;
}

static void format_shape(char *buf, size_t cap, int32_t n, const int64_t *shape) {
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int32_t i = 0; i < n && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

static bool shape_is(int32_t n, const int64_t *shape, int32_t en, const int64_t *eshape) {
    if (n != en) return false;
    for (int32_t i = 0; i < n; i++)
        if (shape[i] != eshape[i]) return false;
    return true;
}

static const char *where_missing(const dots_model *m) {
    return m->store.sharded ? "model.safetensors.index.json" : "model.safetensors";
}

/* Binds expected tensor e to the store entry of the same name. */
static dots_status bind_one(dots_ctx *ctx, dots_model *m, const dots_expected_tensor *e) {
    char want[96], got[96];
    format_shape(want, sizeof want, e->n_dims, e->shape);
    int64_t idx = dots_store_find(&m->store, e->name);
    if (idx < 0)
        return DOTS_FAIL(ctx, DOTS_ERR_TENSOR, "tensor %s %s is missing (not in %s)", e->name, want,
                         where_missing(m));
    const dots_store_entry *se = &m->store.entries[idx];
    const dots_st_tensor *st = se->st;
    const char *file = m->store.file_names[se->file];
    dots_dtype dt;
    if (!dots_st_dtype_to_dtype(st->dtype, &dt))
        return DOTS_FAIL(ctx, DOTS_ERR_TENSOR, "%s: tensor %s has dtype %s (BF16, F16 or F32 expected)", file,
                         e->name, dots_st_dtype_name(st->dtype));
    if (!shape_is(st->n_dims, st->shape, e->n_dims, e->shape) &&
        !(e->alt_n_dims && shape_is(st->n_dims, st->shape, e->alt_n_dims, e->alt_shape))) {
        format_shape(got, sizeof got, st->n_dims, st->shape);
        return DOTS_FAIL(ctx, DOTS_ERR_TENSOR, "%s: tensor %s has shape %s, expected %s", file, e->name, got,
                         want);
    }
    dots_tensor *t = &m->tensors[m->n_bound++];
    t->name = st->name;
    t->dtype = dt;
    t->n_dims = st->n_dims;
    memcpy(t->shape, st->shape, sizeof t->shape);
    t->n_elements = st->n_elements;
    t->file_index = se->file;
    const uint8_t *data = dots_store_data(&m->store, idx);
    size_t esize = (size_t)dots_dtype_size(dt);
    if ((uintptr_t)data % esize != 0) {
        /* Only a foreign writer misaligns data (the official one pads to 8);
         * reading it in place would be undefined behaviour, so copy it. */
        size_t nbytes = (size_t)(st->end - st->begin);
        void *copy = NULL;
        if (posix_memalign(&copy, 64, nbytes ? nbytes : 64) != 0)
            return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory copying misaligned tensor %s", e->name);
        memcpy(copy, data, nbytes);
        m->copies[m->n_copies++] = copy;
        data = copy;
        dots_log(ctx, DOTS_LOG_WARN, "%s: tensor %s is misaligned; copied", file, e->name);
    }
    t->data = data;
    *e->slot = t;
    m->info.n_tensors++;
    m->info.n_params += st->n_elements;
    m->info.bytes_by_dtype[dt] += (int64_t)(st->end - st->begin);
    if (e->is_vision) {
        m->info.n_tensors_vision++;
        m->info.n_params_vision += st->n_elements;
    } else {
        m->info.n_tensors_lm++;
        m->info.n_params_lm += st->n_elements;
    }
    return DOTS_OK;
}

static dots_status bind_all(dots_ctx *ctx, dots_model *m) {
    dots_expected_tensor *exp = NULL;
    int64_t n_exp = 0;
    dots_status st = dots_weights_expect(ctx, &m->config, &m->weights, &exp, &n_exp);
    if (st != DOTS_OK) return st;
    m->tensors = calloc((size_t)n_exp, sizeof *m->tensors);
    m->copies = calloc((size_t)n_exp, sizeof *m->copies);
    if (!m->tensors || !m->copies) {
        free(exp);
        return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    }
    for (int64_t i = 0; i < n_exp && st == DOTS_OK; i++) st = bind_one(ctx, m, &exp[i]);
    free(exp);
    if (st != DOTS_OK) return st;
    if (m->config.text.tie_word_embeddings) m->weights.lm.lm_head = m->weights.lm.embed;
    m->info.n_tensors_unused = m->store.n_entries - m->info.n_tensors;
    if (m->info.n_tensors_unused > 0)
        dots_log(ctx, DOTS_LOG_WARN, "%lld tensors in the weight files are not used by dots.ocr",
                 (long long)m->info.n_tensors_unused);
    m->info.n_files = m->store.n_files;
    for (int32_t i = 0; i < m->store.n_files; i++) m->info.mapped_bytes += (int64_t)m->store.files[i].size;
    return DOTS_OK;
}

/* Reads dir/name into *text when the file exists; *text = NULL otherwise. */
static dots_status read_optional(dots_ctx *ctx, const char *dir, const char *name, char **text, size_t *len) {
    *text = NULL;
    char *path = dots_path_join(dir, name);
    if (!path) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    struct stat sb;
    dots_status st = DOTS_OK;
    if (stat(path, &sb) == 0) st = dots_read_small_file(ctx, path, DOTS_MAX_CONFIG_BYTES, text, len);
    free(path);
    return st;
}

static dots_status load_configs(dots_ctx *ctx, dots_model *m) {
    char *text = NULL;
    size_t len = 0;
    dots_status st = read_optional(ctx, m->dir, "config.json", &text, &len);
    if (st != DOTS_OK) return st;
    if (!text) return DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: no config.json (is this a dots.ocr checkpoint directory?)", m->dir);
    /* dots_config_parse is a public entry point and clears the error state;
     * no error is recorded yet, so nothing is lost. */
    st = dots_config_parse(ctx, text, len, &m->config);
    free(text);
    if (st != DOTS_OK) return st;

    st = read_optional(ctx, m->dir, "generation_config.json", &text, &len);
    if (st == DOTS_OK && text) st = dots_generation_config_parse(ctx, text, len, &m->config);
    free(text);
    if (st != DOTS_OK) return st;
    if (!m->config.has_generation_config)
        dots_log(ctx, DOTS_LOG_INFO, "no generation_config.json: using the official EOS ids and limits");

    st = read_optional(ctx, m->dir, "preprocessor_config.json", &text, &len);
    if (st == DOTS_OK && text) st = dots_preprocessor_config_parse(ctx, text, len, &m->config);
    free(text);
    if (st != DOTS_OK) return st;
    if (!m->config.has_preprocessor_config)
        dots_log(ctx, DOTS_LOG_INFO, "no preprocessor_config.json: using the official pixel limits, mean and std");
    return dots_config_check_consistency(ctx, &m->config);
}

dots_status dots_model_open(dots_ctx *ctx, const char *path, dots_model **out) {
    dots_ctx_begin_call(ctx);
    if (!path || !out) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_model_open: NULL argument");
    struct stat sb;
    if (stat(path, &sb) != 0) return DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: no such file or directory", path);
    if (!S_ISDIR(sb.st_mode)) {
        size_t n = strlen(path);
        if (n >= 5 && strcmp(path + n - 5, ".gguf") == 0)
            return DOTS_FAIL(ctx, DOTS_ERR_UNSUPPORTED, "%s: GGUF files are not supported yet; pass the checkpoint directory", path);
        return DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: not a directory (pass the checkpoint directory)", path);
    }
    dots_model *m = calloc(1, sizeof *m);
    if (!m) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    m->dir = strdup(path);
    dots_status st = m->dir ? DOTS_OK : DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    if (st == DOTS_OK) st = load_configs(ctx, m);
    if (st == DOTS_OK) st = dots_store_open(ctx, m->dir, &m->store);
    if (st == DOTS_OK) st = bind_all(ctx, m);
    if (st != DOTS_OK) {
        dots_model_close(m);
        return st;
    }
    dots_log(ctx, DOTS_LOG_INFO, "%s: %lld tensors, %lld parameters in %d file(s)", path,
             (long long)m->info.n_tensors, (long long)m->info.n_params, m->info.n_files);
    *out = m;
    return DOTS_OK;
}

dots_status dots_model_make_resident(dots_ctx *ctx, const dots_model *m, bool lock, int64_t *bytes) {
    dots_ctx_begin_call(ctx);
    if (!m) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_model_make_resident: NULL model");
    int64_t total = 0;
    volatile uint8_t sink = 0;
    for (int32_t f = 0; f < m->store.n_files; f++) {
        const dots_mapped_file *mf = &m->store.files[f];
        for (uint64_t off = 0; off < mf->size; off += 4096) sink ^= mf->data[off];
        if (lock && mf->size && mlock(mf->data, (size_t)mf->size) != 0)
            dots_log(ctx, DOTS_LOG_WARN, "%s: mlock failed (%s); pages were read but may be evicted", mf->path, strerror(errno));
        total += (int64_t)mf->size;
    }
    (void)sink;
    if (bytes) *bytes = total;
    return DOTS_OK;
}
