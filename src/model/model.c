/*
 * model.c - opening a dots.ocr checkpoint directory: configs, weight files,
 * and every tensor bound by name and shape (dots_model_open and friends).
 *
 *   config.json ─► dots_config ─► expected tensors (names, shapes)
 *   weight files ─► dots_tensor_store ─┘ bind: present? float dtype? shape?
 *   generation_config.json, preprocessor_config.json ─► defaults if absent
 */
#include "core/cpu.h"
#include "core/threads.h"
#include "io/checkpoint.h"
#include "kernels/kernels.h"
#include "io/gguf.h"
#include "model/config.h"
#include "model/gguf_model.h"
#include "model/gguf_native.h"
#include "model/transcode.h"
#include "model/weights.h"

#include <unistd.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define DOTS_MAX_CONFIG_BYTES (16u << 20) /* the real config.json is ~2 kB */

struct dots_model {
    char *dir;                /* the checkpoint directory, or the .gguf file */
    void *ram;                /* dots_model_load_to_ram: the weights' copy */
    size_t ram_bytes;
    dots_config config;
    bool is_gguf;
    dots_gguf gguf;           /* is_gguf: the mapped file, configs and tensors in it */
    dots_gguf mmproj;         /* has_mmproj: the vision tower's file of llama.cpp's pair */
    bool has_mmproj;
    char *json[DOTS_SOURCE_JSON_COUNT]; /* the config files' texts as read (NULL when absent) */
    size_t json_len[DOTS_SOURCE_JSON_COUNT];
    dots_tensor_store store;
    dots_tensor *tensors;     /* [n_bound], what the weights struct points into */
    int64_t n_bound;
    void **copies;            /* aligned copies of misaligned tensors, and re-encoded ones */
    int64_t n_transcoded, transcoded_bytes; /* matrices re-encoded as Q8_0 (transcode.c) */
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
    dots_gguf_close(&m->gguf);
    dots_gguf_close(&m->mmproj);
    if (m->ram) munmap(m->ram, m->ram_bytes);
    for (int i = 0; i < DOTS_SOURCE_JSON_COUNT; i++) free(m->json[i]);
    free(m->dir);
    free(m);
}

bool dots_model_is_gguf(const dots_model *m) { return m && m->is_gguf; }

const dots_tensor *dots_model_bound_tensor(const dots_model *m, int64_t i) {
    return m && i >= 0 && i < m->n_bound ? &m->tensors[i] : NULL; /* bound in expected order */
}

const char *dots_model_source_json(const dots_model *m, int which, size_t *len) {
    if (!m || which < 0 || which >= DOTS_SOURCE_JSON_COUNT) return NULL;
    if (len) *len = m->json_len[which];
    return m->json[which];
}

const dots_config *dots_model_config(const dots_model *m) { return m ? &m->config : NULL; }
const char *dots_model_dir(const dots_model *m) { return m ? m->dir : NULL; }
const dots_weights *dots_model_weights(const dots_model *m) { return m ? &m->weights : NULL; }

const char *dots_model_file_path(const dots_model *m, int32_t i) {
    if (m && m->is_gguf && i == 0) return m->gguf.file.path;
    if (m && m->is_gguf) return m->has_mmproj && i == 1 ? m->mmproj.file.path : NULL;
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

static void count_bound(dots_model *m, const dots_expected_tensor *e, const dots_tensor *t, int64_t nbytes) {
    *e->slot = t;
    m->info.n_tensors++;
    m->info.n_params += t->n_elements;
    m->info.bytes_by_dtype[t->dtype] += nbytes;
    if (e->is_vision) {
        m->info.n_tensors_vision++;
        m->info.n_params_vision += t->n_elements;
    } else {
        m->info.n_tensors_lm++;
        m->info.n_params_lm += t->n_elements;
        m->info.bytes_lm += nbytes;
        if (e->slot == (const dots_tensor **)&m->weights.lm.embed) m->info.bytes_lm_embed = nbytes;
        if (m->weights.lm.layers && e->slot == (const dots_tensor **)&m->weights.lm.layers[0].q_w) m->info.lm_matrix_dtype = t->dtype;
    }
}

static bool ggml_to_dtype(uint32_t type, dots_dtype *dt) {
    switch (type) {
    case DOTS_GGML_F32: *dt = DOTS_DTYPE_F32; return true;
    case DOTS_GGML_F16: *dt = DOTS_DTYPE_F16; return true;
    case DOTS_GGML_BF16: *dt = DOTS_DTYPE_BF16; return true;
    case DOTS_GGML_Q8_0: *dt = DOTS_DTYPE_Q8_0; return true;
    case DOTS_GGML_Q4_0: *dt = DOTS_DTYPE_Q4_0; return true;
    case DOTS_GGML_Q4_K: *dt = DOTS_DTYPE_Q4_K; return true;
    default: return false;
    }
}

/* The mapped files: the safetensors shards, or the GGUF file (and its mmproj). */
static int32_t n_model_files(const dots_model *m) { return m->is_gguf ? 1 + m->has_mmproj : m->store.n_files; }
static const dots_mapped_file *model_file(const dots_model *m, int32_t f) {
    return m->is_gguf ? (f == 0 ? &m->gguf.file : &m->mmproj.file) : &m->store.files[f];
}

/* Binds expected tensor e (a Hugging Face name) to its llama.cpp-named
 * tensor in the GGUF file: ggml dims reversed give the PyTorch shape. */
static dots_status bind_one_gguf(dots_ctx *ctx, dots_model *m, const dots_expected_tensor *e) {
    char want[96], got[96], gname[DOTS_GGUF_MAX_NAME + 1];
    format_shape(want, sizeof want, e->n_dims, e->shape);
    if (!dots_gguf_name_for(e->name, gname, sizeof gname))
        return DOTS_FAIL(ctx, DOTS_ERR_INTERNAL, "no GGUF name for tensor %s", e->name);
    const dots_gguf *g = &m->gguf;
    int32_t file_index = 0;
    int64_t idx = dots_gguf_find_tensor(g, gname);
    if (idx < 0 && m->has_mmproj) { /* llama.cpp's pair: the vision tower is in the mmproj file */
        g = &m->mmproj;
        file_index = 1;
        idx = dots_gguf_find_tensor(g, gname);
    }
    if (idx < 0)
        return DOTS_FAIL(ctx, DOTS_ERR_TENSOR, "%s: tensor %s (%s) %s is missing", m->has_mmproj ? "the GGUF pair" : m->dir, gname,
                         e->name, want);
    const dots_gguf_tensor *gt = &g->tensors[idx];
    dots_dtype dt;
    const bool transcode = dots_transcode_known(gt->type) && gt->n_dims == 2 && gt->ne[0] % 32 == 0;
    if (!transcode && !ggml_to_dtype(gt->type, &dt))
        return DOTS_FAIL(ctx, DOTS_ERR_UNSUPPORTED,
                         "%s: tensor %s has type %s (F32, F16, BF16, Q8_0, Q4_0 and Q4_K are read as they are; Q4_1, Q5_0, "
                         "Q5_1, Q5_K and Q6_K matrices are re-encoded as Q8_0)",
                         m->dir, gname, dots_ggml_type_name(gt->type));
    if (transcode) dt = DOTS_DTYPE_Q8_0;
    int64_t shape[DOTS_TENSOR_MAX_DIMS];
    for (uint32_t d = 0; d < gt->n_dims; d++) shape[d] = gt->ne[gt->n_dims - 1 - d];
    int32_t nd = (int32_t)gt->n_dims;
    if (!shape_is(nd, shape, e->n_dims, e->shape) && !(e->alt_n_dims && shape_is(nd, shape, e->alt_n_dims, e->alt_shape))) {
        format_shape(got, sizeof got, nd, shape);
        return DOTS_FAIL(ctx, DOTS_ERR_TENSOR, "%s: tensor %s has shape %s, expected %s", m->dir, gname, got, want);
    }
    if (dots_dtype_is_quant(dt) && e->n_dims < 2)
        return DOTS_FAIL(ctx, DOTS_ERR_TENSOR, "%s: tensor %s: a 1-D tensor must be F32, F16 or BF16, not %s", m->dir, gname,
                         dots_dtype_name(dt));
    if ((uintptr_t)gt->data % (uintptr_t)(dots_dtype_size(dt) ? dots_dtype_size(dt) : 1) != 0)
        return DOTS_FAIL(ctx, DOTS_ERR_TENSOR, "%s: tensor %s is misaligned", m->dir, gname);
    dots_tensor *t = &m->tensors[m->n_bound++];
    t->name = gt->name;
    t->dtype = dt;
    t->n_dims = nd;
    memset(t->shape, 0, sizeof t->shape);
    memcpy(t->shape, shape, sizeof(int64_t) * (size_t)nd);
    t->n_elements = 1;
    for (int32_t d = 0; d < nd; d++) t->n_elements *= shape[d];
    t->data = gt->data;
    t->file_index = file_index;
    int64_t nbytes = (int64_t)gt->nbytes;
    if (transcode) {
        size_t out_bytes = 0;
        void *copy = dots_transcode_to_q8_0(gt->type, gt->data, shape[0], shape[1], &out_bytes);
        if (!copy) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory re-encoding tensor %s as Q8_0", gname);
        m->copies[m->n_copies++] = copy;
        t->data = copy;
        nbytes = (int64_t)out_bytes;
        m->n_transcoded++;
        m->info.n_reencoded++;
        m->transcoded_bytes += nbytes;
    }
    count_bound(m, e, t, nbytes);
    return DOTS_OK;
}

/* Binds expected tensor e to the store entry of the same name. */
static dots_status bind_one(dots_ctx *ctx, dots_model *m, const dots_expected_tensor *e) {
    if (m->is_gguf) return bind_one_gguf(ctx, m, e);
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
    count_bound(m, e, t, (int64_t)(st->end - st->begin));
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
    if (m->n_transcoded)
        dots_log(ctx, DOTS_LOG_INFO, "%lld matrices in Q4_1/Q5_0/Q5_1/Q5_K/Q6_K re-encoded as Q8_0 at load (%.1f MB in memory)",
                 (long long)m->n_transcoded, (double)m->transcoded_bytes / 1e6);
    m->info.n_tensors_unused =
        (m->is_gguf ? m->gguf.n_tensors + (m->has_mmproj ? m->mmproj.n_tensors : 0) : m->store.n_entries) - m->info.n_tensors;
    if (m->info.n_tensors_unused > 0)
        dots_log(ctx, DOTS_LOG_WARN, "%lld tensors in the weight files are not used by dots.ocr",
                 (long long)m->info.n_tensors_unused);
    if (m->is_gguf) {
        m->info.n_files = n_model_files(m);
        for (int32_t f = 0; f < m->info.n_files; f++) m->info.mapped_bytes += (int64_t)model_file(m, f)->size;
        return DOTS_OK;
    }
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

static const char *const json_file[DOTS_SOURCE_JSON_COUNT] = {"config.json", "generation_config.json",
                                                               "preprocessor_config.json"};

/* The three config texts: files of the directory, or strings of the GGUF
 * file (dotsocr.config_json, ...: the same texts, stored by convert). */
static dots_status read_config_texts(dots_ctx *ctx, dots_model *m) {
    for (int i = 0; i < DOTS_SOURCE_JSON_COUNT; i++) {
        if (!m->is_gguf) {
            dots_status st = read_optional(ctx, m->dir, json_file[i], &m->json[i], &m->json_len[i]);
            if (st != DOTS_OK) return st;
            continue;
        }
        const char *s;
        size_t n;
        if (!dots_gguf_get_string(&m->gguf, dots_gguf_json_key[i], &s, &n)) continue;
        if (n > DOTS_MAX_CONFIG_BYTES)
            return DOTS_FAIL(ctx, DOTS_ERR_LIMIT, "%s: %s is over %u bytes", m->dir, dots_gguf_json_key[i], DOTS_MAX_CONFIG_BYTES);
        if (!(m->json[i] = malloc(n + 1))) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
        memcpy(m->json[i], s, n);
        m->json[i][n] = 0;
        m->json_len[i] = n;
    }
    return DOTS_OK;
}

static dots_status load_configs(dots_ctx *ctx, dots_model *m) {
    dots_status st = read_config_texts(ctx, m);
    if (st != DOTS_OK) return st;
    if (!m->json[0] && m->is_gguf && m->has_mmproj && dots_gguf_is_native_lm(&m->gguf)) {
        st = dots_gguf_native_configs(ctx, m->dir, &m->gguf, &m->mmproj, m->json, m->json_len);
        if (st != DOTS_OK) return st;
        m->info.config_from_metadata = true;
    }
    if (!m->json[0] && m->is_gguf)
        return DOTS_FAIL(ctx, DOTS_ERR_UNSUPPORTED,
                         "%s: no %s in this GGUF file (dotsocr convert writes it, also into llama.cpp-style LM + mmproj "
                         "pairs; files from llama.cpp's own converter are not supported)", m->dir, dots_gguf_json_key[0]);
    if (!m->json[0]) return DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: no config.json (is this a dots.ocr checkpoint directory?)", m->dir);
    /* dots_config_parse is a public entry point and clears the error state;
     * no error is recorded yet, so nothing is lost. */
    st = dots_config_parse(ctx, m->json[0], m->json_len[0], &m->config);
    if (st != DOTS_OK) return st;

    if (m->json[1]) st = dots_generation_config_parse(ctx, m->json[1], m->json_len[1], &m->config);
    if (st != DOTS_OK) return st;
    if (!m->config.has_generation_config)
        dots_log(ctx, DOTS_LOG_INFO, "no generation_config.json: using the official EOS ids and limits");

    if (m->json[2]) st = dots_preprocessor_config_parse(ctx, m->json[2], m->json_len[2], &m->config);
    if (st != DOTS_OK) return st;
    if (!m->config.has_preprocessor_config)
        dots_log(ctx, DOTS_LOG_INFO, "no preprocessor_config.json: using the official pixel limits, mean and std");
    return dots_config_check_consistency(ctx, &m->config);
}

/* The vision file of an LM + mmproj pair. Ours: the LM file names it
 * (dotsocr.mmproj, relative to the LM file's directory) and both carry the
 * same config.json text. llama.cpp's: the one dots.ocr mmproj file next to
 * the LM file. An explicit path (--mmproj) wins over both. An mmproj file
 * given alone is refused with a message saying which file to pass. */
static dots_status open_mmproj(dots_ctx *ctx, dots_model *m, const char *explicit_path) {
    const char *s;
    size_t n;
    if (dots_gguf_is_string(&m->gguf, "general.type", "mmproj"))
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT,
                         "%s: this is the vision (mmproj) file of an LM + mmproj pair; pass the language-model file", m->dir);
    const bool native = dots_gguf_is_native_lm(&m->gguf);
    char *path = NULL;
    if (explicit_path) {
        if (!(path = strdup(explicit_path))) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    } else if (dots_gguf_find(&m->gguf, DOTS_GGUF_MMPROJ_KEY)) {
        if (!dots_gguf_get_string(&m->gguf, DOTS_GGUF_MMPROJ_KEY, &s, &n))
            return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: %s is not a string", m->dir, DOTS_GGUF_MMPROJ_KEY);
        if (n == 0 || n > 4096 || memchr(s, 0, n))
            return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: bad %s value", m->dir, DOTS_GGUF_MMPROJ_KEY);
        if (s[0] == '/') {
            path = strndup(s, n);
        } else {
            const char *slash = strrchr(m->dir, '/');
            size_t dl = slash ? (size_t)(slash - m->dir) + 1 : 0;
            if ((path = malloc(dl + n + 1))) {
                memcpy(path, m->dir, dl);
                memcpy(path + dl, s, n);
                path[dl + n] = 0;
            }
        }
        if (!path) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    } else if (native) {
        dots_status st = dots_gguf_find_mmproj(ctx, m->dir, &path);
        if (st != DOTS_OK) return st;
    } else {
        return DOTS_OK; /* one file holds both towers */
    }
    struct stat sb;
    dots_status st = stat(path, &sb) != 0 ? DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: its vision (mmproj) file %s is missing (keep the "
                                                                       "pair together, or pass --mmproj FILE)", m->dir, path)
                     /* the name may come from the file: never a FIFO or device */
                     : !S_ISREG(sb.st_mode) ? DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: its mmproj file %s is not a regular file", m->dir, path)
                                            : dots_gguf_open(ctx, path, &m->mmproj);
    if (st == DOTS_OK) {
        m->has_mmproj = true;
        const char *a, *b;
        size_t na, nb;
        if (!dots_gguf_is_dots_mmproj(&m->mmproj)) {
            st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: %s is not a dots.ocr mmproj file (clip, projector dots_ocr)", m->dir, path);
        } else if (!native) {
            bool ok = dots_gguf_get_string(&m->gguf, dots_gguf_json_key[0], &a, &na) &&
                      dots_gguf_get_string(&m->mmproj, dots_gguf_json_key[0], &b, &nb) && na == nb && memcmp(a, b, na) == 0;
            if (!ok)
                st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: its mmproj file %s comes from another model (config.json differs)", m->dir,
                               path);
        }
        if (st == DOTS_OK && native)
            dots_log(ctx, DOTS_LOG_INFO, "%s: a llama.cpp language-model file; vision tower from %s", m->dir, path);
    } /* else the open's message names the mmproj path */
    free(path);
    return st;
}

static dots_status open_model(dots_ctx *ctx, const char *path, const char *mmproj, dots_model **out) {
    dots_ctx_begin_call(ctx);
    if (!path || !out) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_model_open: NULL argument");
    struct stat sb;
    if (stat(path, &sb) != 0) return DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: %s", path, strerror(errno));
    if (!S_ISDIR(sb.st_mode) && !S_ISREG(sb.st_mode))
        return DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: not a model directory or regular file (a FIFO, socket or device)", path);
    if (mmproj && S_ISDIR(sb.st_mode))
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "%s: an mmproj file goes with a GGUF language-model file, not a directory", path);
    dots_model *m = calloc(1, sizeof *m);
    if (!m) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    m->dir = strdup(path);
    m->is_gguf = !S_ISDIR(sb.st_mode);
    dots_status st = m->dir ? DOTS_OK : DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    /* a file is a GGUF model; anything else must be a checkpoint directory */
    if (st == DOTS_OK && m->is_gguf) st = dots_gguf_open(ctx, path, &m->gguf);
    if (st == DOTS_OK && m->is_gguf) st = open_mmproj(ctx, m, mmproj);
    if (st == DOTS_OK) st = load_configs(ctx, m);
    if (st == DOTS_OK && !m->is_gguf) st = dots_store_open(ctx, m->dir, &m->store);
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

dots_status dots_model_open(dots_ctx *ctx, const char *path, dots_model **out) { return open_model(ctx, path, NULL, out); }

dots_status dots_model_open_pair(dots_ctx *ctx, const char *lm_path, const char *mmproj_path, dots_model **out) {
    dots_ctx_begin_call(ctx);
    if (!lm_path || !mmproj_path || !out) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_model_open_pair: NULL argument");
    return open_model(ctx, lm_path, mmproj_path, out);
}

dots_status dots_model_make_resident(dots_ctx *ctx, const dots_model *m, bool lock, int64_t *bytes) {
    dots_ctx_begin_call(ctx);
    if (!m) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_model_make_resident: NULL model");
    if (m->ram) { /* copied to anonymous memory: already touched */
        if (lock && mlock(m->ram, m->ram_bytes) != 0)
            dots_log(ctx, DOTS_LOG_WARN, "mlock of the weights failed (%s)", strerror(errno));
        if (bytes) *bytes = (int64_t)m->ram_bytes;
        return DOTS_OK;
    }
    int64_t total = 0;
    volatile uint64_t sink = 0;
    int32_t n_files = n_model_files(m);
    for (int32_t f = 0; f < n_files; f++) {
        const dots_mapped_file *mf = model_file(m, f);
        for (uint64_t off = 0; off < mf->size; off += 4096) sink += mf->data[off];
        /* On some VMs the first full read of freshly mapped pages is still ~5x
         * slower than later ones after every page was touched once (measured
         * here: 1.6 s then 0.3 s for 5 GB); one read of every cache line
         * pays that before timing starts. */
        uint64_t acc = 0;
        for (uint64_t off = 0; off + 8 <= mf->size; off += 64) {
            uint64_t v;
            memcpy(&v, mf->data + off, 8);
            acc += v;
        }
        sink += acc;
        if (lock && mf->size && mlock(mf->data, (size_t)mf->size) != 0)
            dots_log(ctx, DOTS_LOG_WARN, "%s: mlock failed (%s); pages were read but may be evicted", mf->path, strerror(errno));
        total += (int64_t)mf->size;
    }
    (void)sink;
    if (bytes) *bytes = total;
    return DOTS_OK;
}

/* Whether [p, p + n) lies in one of the model's mapped files (not in a heap
 * copy of a misaligned tensor, whose pages must never be dropped). */
static bool in_mapped_file(const dots_model *m, const void *p, size_t n) {
    int32_t n_files = n_model_files(m);
    for (int32_t f = 0; f < n_files; f++) {
        const dots_mapped_file *mf = model_file(m, f);
        const uint8_t *q = p;
        if (mf->data && q >= mf->data && q + n <= mf->data + mf->size) return true;
    }
    return false;
}

/* Whether tensor t is one of the language model's matrices that decode
 * streams (not the embedding: its rows are looked up one by one). */
static bool is_lm_matrix(const dots_model *m, const dots_tensor *t) {
    const dots_lm_weights *lm = &m->weights.lm;
    if (t == lm->lm_head) return lm->lm_head != lm->embed;
    for (int32_t l = 0; l < lm->n_layers; l++) {
        const dots_lm_layer_weights *L = &lm->layers[l];
        if (t == L->q_w || t == L->k_w || t == L->v_w || t == L->o_w || t == L->gate || t == L->up || t == L->down) return true;
    }
    return false;
}

/* The type tensor t takes in RAM: the block formats of the language model's
 * matrices are repacked 16 rows at a time (kernels/repack.c) where the int8
 * decode kernel runs (VNNI); the rest keep the file's bytes. */
static dots_dtype ram_dtype(const dots_model *m, const dots_tensor *t, bool repack) {
    if (!repack || t->n_dims != 2 || !is_lm_matrix(m, t) || !dots_repack_fits(t->dtype, t->shape[0], t->shape[1])) return t->dtype;
    return dots_repack_type(t->dtype);
}

/* The copy is split into pieces of about LOAD_PIECE_BYTES (whole groups of
 * 16 rows where rows are repacked) taken by every CPU: on these VMs most of
 * the time is the first touch of the new pages (the hypervisor backs them)
 * and the scalar repacking, and both scale with cores. */
#define LOAD_PIECE_BYTES ((int64_t)1 << 20)

typedef struct load_piece {
    int64_t tensor, row0, rows; /* rows of the tensor viewed as [N, K] (K = last dim) */
} load_piece;

typedef struct load_job {
    const dots_model *m;
    const dots_tensor *src;   /* the tensors as bound (file or heap data) */
    const dots_dtype *to;     /* their types in memory */
    uint8_t *const *dst;      /* their places in the copy */
    const load_piece *pieces;
} load_job;

/* Rows per piece of tensor t copied as type to: about LOAD_PIECE_BYTES,
 * whole groups of 16 rows where it is repacked. */
static int64_t piece_rows(const dots_tensor *t, dots_dtype to) {
    const int64_t row = dots_dtype_bytes(t->dtype, t->shape[t->n_dims - 1]), step = to != t->dtype ? 16 : 1;
    return (LOAD_PIECE_BYTES / (row * step) > 0 ? LOAD_PIECE_BYTES / (row * step) : 1) * step;
}

static void load_piece_task(void *arg, int64_t task, int worker) {
    (void)worker;
    const load_job *j = arg;
    const load_piece *p = &j->pieces[task];
    const dots_tensor *t = &j->src[p->tensor];
    const int64_t K = t->shape[t->n_dims - 1];
    const size_t in_row = (size_t)dots_dtype_bytes(t->dtype, K), out_row = (size_t)dots_dtype_bytes(j->to[p->tensor], K);
    const uint8_t *from = (const uint8_t *)t->data + (size_t)p->row0 * in_row;
    uint8_t *into = j->dst[p->tensor] + (size_t)p->row0 * out_row;
    if (j->to[p->tensor] != t->dtype) dots_repack_r16(t->dtype, from, into, p->rows, K);
    else memcpy(into, from, (size_t)p->rows * in_row);
    /* drop the source pages at once (those wholly inside the piece), so the
     * peak RSS is one copy, not two */
    const uintptr_t page = 4096, b = ((uintptr_t)from + page - 1) & ~(page - 1),
                    e = ((uintptr_t)from + (size_t)p->rows * in_row) & ~(page - 1);
    if (e > b && in_mapped_file(j->m, from, (size_t)p->rows * in_row)) madvise((void *)b, (size_t)(e - b), MADV_DONTNEED);
}

dots_status dots_model_load_to_ram(dots_ctx *ctx, dots_model *m) {
    dots_ctx_begin_call(ctx);
    if (!m) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_model_load_to_ram: NULL model");
    if (m->ram) return DOTS_OK;
    const size_t huge = 2u << 20;
    size_t total = 0;
    const bool repack = dots_cpu_isa() >= DOTS_ISA_AVX512VNNI;
    dots_dtype *to = malloc(sizeof *to * (size_t)(m->n_bound ? m->n_bound : 1));
    uint8_t **dst = malloc(sizeof *dst * (size_t)(m->n_bound ? m->n_bound : 1));
    int64_t n_pieces = 0;
    for (int64_t i = 0; to && dst && i < m->n_bound; i++) {
        const dots_tensor *t = &m->tensors[i];
        to[i] = ram_dtype(m, t, repack);
        total += ((size_t)dots_dtype_bytes(to[i], t->n_elements) + 63) / 64 * 64;
        const int64_t N = t->n_elements / t->shape[t->n_dims - 1], per = piece_rows(t, to[i]);
        n_pieces += (N + per - 1) / per;
    }
    load_piece *pieces = to && dst ? malloc(sizeof *pieces * (size_t)(n_pieces ? n_pieces : 1)) : NULL;
    if (!pieces) {
        free(to);
        free(dst);
        return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory planning the weights' copy");
    }
    size_t bytes = (total + huge - 1) / huge * huge;
    /* one extra huge page so the region can start on a 2 MB boundary */
    uint8_t *raw = mmap(NULL, bytes + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) {
        free(to);
        free(dst);
        free(pieces);
        return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "cannot allocate %zu bytes for the weights", bytes);
    }
    uint8_t *base = (uint8_t *)(((uintptr_t)raw + huge - 1) & ~(uintptr_t)(huge - 1));
    if (base > raw) munmap(raw, (size_t)(base - raw));
    size_t tail = (size_t)(raw + bytes + huge - (base + bytes));
    if (tail) munmap(base + bytes, tail);
#ifdef MADV_HUGEPAGE
    madvise(base, bytes, MADV_HUGEPAGE); /* advisory: fine if the kernel says no */
#endif
    size_t off = 0;
    int64_t n_repacked = 0, k = 0;
    for (int64_t i = 0; i < m->n_bound; i++) {
        const dots_tensor *t = &m->tensors[i];
        dst[i] = base + off;
        off += ((size_t)dots_dtype_bytes(to[i], t->n_elements) + 63) / 64 * 64;
        n_repacked += to[i] != t->dtype;
        const int64_t N = t->n_elements / t->shape[t->n_dims - 1], per = piece_rows(t, to[i]);
        for (int64_t r = 0; r < N; r += per) pieces[k++] = (load_piece){i, r, N - r < per ? N - r : per};
    }
    load_job job = {m, m->tensors, to, dst, pieces};
    dots_pool *pool = dots_pool_create(dots_default_threads()); /* NULL: all on this thread */
    dots_pool_run(pool, n_pieces, load_piece_task, &job);
    dots_pool_free(pool);
    for (int64_t i = 0; i < m->n_bound; i++) {
        m->tensors[i].data = dst[i];
        m->tensors[i].dtype = to[i];
    }
    free(to);
    free(dst);
    free(pieces);
    /* the copies of misaligned and re-encoded tensors are no longer referenced */
    for (int64_t i = 0; i < m->n_copies; i++) free(m->copies[i]);
    m->n_copies = 0;
    /* drop this process's pages of the files (the page cache keeps them) */
    int32_t n_files = n_model_files(m);
    for (int32_t f = 0; f < n_files; f++) {
        const dots_mapped_file *mf = model_file(m, f);
        if (mf->size) madvise((void *)mf->data, (size_t)mf->size, MADV_DONTNEED);
    }
    m->ram = base;
    m->ram_bytes = bytes;
    dots_log(ctx, DOTS_LOG_INFO, "weights copied to %zu bytes of anonymous memory (%lld matrices repacked 16 rows at a time)",
             bytes, (long long)n_repacked);
    return DOTS_OK;
}

dots_status dots_model_place(dots_ctx *ctx, dots_model *m, dots_placement placement) {
    dots_ctx_begin_call(ctx);
    if (!m || (unsigned)placement > DOTS_PLACE_COPY) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_model_place: bad argument");
    if (placement == DOTS_PLACE_MAP) return DOTS_OK;
    if (placement == DOTS_PLACE_AUTO) {
        /* bf16 maps zero-copy; block formats are copied because the copy
         * repacks them 16 rows at a time for the decode kernels */
        dots_model_info info;
        if (dots_model_get_info(m, &info) != DOTS_OK) return DOTS_OK;
        dots_dtype t = info.lm_matrix_dtype;
        if (t != DOTS_DTYPE_Q8_0 && t != DOTS_DTYPE_Q4_0 && t != DOTS_DTYPE_Q4_K) return DOTS_OK;
    }
    return dots_model_load_to_ram(ctx, m);
}
