/*
 * checkpoint.c - mapping and cross-checking the weight files of a checkpoint
 * directory (see checkpoint.h).
 *
 * With an index, its weight_map must agree with the shards: every listed
 * tensor is in the shard it names, no tensor is in two shards, and shard
 * names are plain file names (an index must not reach outside the
 * directory). Like transformers, tensors a shard holds but the index does not
 * list are still loaded (with a warning).
 */
#include "io/checkpoint.h"

#include "core/strmap.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int64_t dots_store_find(const dots_tensor_store *s, const char *name) {
    if (!s || !name || s->n_slots == 0) return -1;
    size_t mask = s->n_slots - 1;
    for (size_t i = (size_t)dots_hash_bytes(name, strlen(name)) & mask;; i = (i + 1) & mask) {
        int64_t e = s->slots[i];
        if (e < 0) return -1;
        if (strcmp(s->entries[e].st->name, name) == 0) return e;
    }
}

const uint8_t *dots_store_data(const dots_tensor_store *s, int64_t entry) {
    const dots_store_entry *e = &s->entries[entry];
    return s->files[e->file].data + s->headers[e->file].data_offset + e->st->begin;
}

void dots_store_close(dots_tensor_store *s) {
    if (!s) return;
    for (int32_t i = 0; i < s->n_files; i++) {
        if (s->files) dots_mapped_file_close(&s->files[i]);
        if (s->headers) dots_st_header_free(&s->headers[i]);
        if (s->file_names) free(s->file_names[i]);
    }
    free(s->files);
    free(s->headers);
    free(s->file_names);
    free(s->entries);
    free(s->slots);
    memset(s, 0, sizeof *s);
}

static bool is_plain_file_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 255 || s[0] == '.') return false;
    return strchr(s, '/') == NULL && strchr(s, '\\') == NULL;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Maps and parses one weight file into slot i (already counted in n_files). */
static dots_status open_file(dots_ctx *ctx, dots_tensor_store *s, const char *dir, int32_t i) {
    char *path = dots_path_join(dir, s->file_names[i]);
    if (!path) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    dots_status st = dots_mapped_file_open(ctx, path, &s->files[i]);
    free(path);
    if (st != DOTS_OK) return st;
    return dots_st_parse(ctx, s->file_names[i], s->files[i].data, s->files[i].size, &s->headers[i]);
}

/* Builds entries[] and the name hash over all files; rejects duplicates. */
static dots_status build_lookup(dots_ctx *ctx, dots_tensor_store *s) {
    int64_t n = 0;
    for (int32_t i = 0; i < s->n_files; i++) n += s->headers[i].n_tensors;
    s->entries = calloc((size_t)(n ? n : 1), sizeof *s->entries);
    size_t cap = 16;
    while (cap < (size_t)n * 2) cap *= 2;
    s->slots = malloc(cap * sizeof *s->slots);
    if (!s->entries || !s->slots) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory for %lld tensors", (long long)n);
    for (size_t i = 0; i < cap; i++) s->slots[i] = -1;
    s->n_slots = cap;
    for (int32_t f = 0; f < s->n_files; f++) {
        for (int64_t j = 0; j < s->headers[f].n_tensors; j++) {
            const dots_st_tensor *t = &s->headers[f].tensors[j];
            int64_t prev = dots_store_find(s, t->name);
            if (prev >= 0)
                return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "tensor '%.200s' is in both %s and %s", t->name,
                                 s->file_names[s->entries[prev].file], s->file_names[f]);
            int64_t e = s->n_entries++;
            s->entries[e].st = t;
            s->entries[e].file = f;
            size_t mask = cap - 1, k = (size_t)dots_hash_bytes(t->name, strlen(t->name)) & mask;
            while (s->slots[k] >= 0) k = (k + 1) & mask;
            s->slots[k] = e;
        }
    }
    return DOTS_OK;
}

static dots_status open_sharded(dots_ctx *ctx, dots_tensor_store *s, const char *dir, const char *index_path) {
    char *text = NULL;
    size_t len = 0;
    const char *label = "model.safetensors.index.json";
    dots_status st = dots_read_small_file(ctx, index_path, DOTS_MAX_INDEX_BYTES, &text, &len);
    if (st != DOTS_OK) return st;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!root) return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: not valid JSON: %s (line %d)", label, jerr.text, jerr.line);
    json_t *map = json_object_get(root, "weight_map");
    const char *name;
    json_t *val;
    if (!json_is_object(root) || !json_is_object(map)) {
        st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: weight_map: missing or not an object", label);
        goto done;
    }
    /* Distinct shard names, in order of first appearance. */
    size_t n_map = json_object_size(map);
    s->file_names = calloc(n_map ? n_map : 1, sizeof *s->file_names);
    if (!s->file_names) {
        st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    json_object_foreach(map, name, val) {
        if (!json_is_string(val) || !is_plain_file_name(json_string_value(val))) {
            st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT,
                           "%s: weight_map['%.200s']: must be a plain file name inside the model directory",
                           label, name);
            goto done;
        }
        const char *file = json_string_value(val);
        int32_t k = 0;
        while (k < s->n_files && strcmp(s->file_names[k], file) != 0) k++;
        if (k == s->n_files) {
            if (s->n_files == DOTS_MAX_SHARDS) {
                st = DOTS_FAIL(ctx, DOTS_ERR_LIMIT, "%s: more than %d shards", label, DOTS_MAX_SHARDS);
                goto done;
            }
            s->file_names[s->n_files] = strdup(file);
            if (!s->file_names[s->n_files]) {
                st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
                goto done;
            }
            s->n_files++;
        }
    }
    if (s->n_files == 0) {
        st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: weight_map is empty", label);
        goto done;
    }
    qsort(s->file_names, (size_t)s->n_files, sizeof *s->file_names, cmp_str);
    s->files = calloc((size_t)s->n_files, sizeof *s->files);
    s->headers = calloc((size_t)s->n_files, sizeof *s->headers);
    if (!s->files || !s->headers) {
        st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (int32_t i = 0; i < s->n_files; i++) {
        char *path = dots_path_join(dir, s->file_names[i]);
        bool exists = path && file_exists(path);
        free(path);
        if (!exists) {
            st = DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: shard %s is missing from %s", label, s->file_names[i], dir);
            goto done;
        }
        st = open_file(ctx, s, dir, i);
        if (st != DOTS_OK) goto done;
    }
    st = build_lookup(ctx, s);
    if (st != DOTS_OK) goto done;
    uint64_t total = 0;
    json_object_foreach(map, name, val) {
        int64_t e = dots_store_find(s, name);
        const char *file = json_string_value(val);
        if (e < 0) {
            st = DOTS_FAIL(ctx, DOTS_ERR_TENSOR, "%s: tensor '%.200s' is listed in %s but %s does not contain it",
                           file, name, label, file);
            goto done;
        }
        if (strcmp(s->file_names[s->entries[e].file], file) != 0) {
            st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: tensor '%.200s' is mapped to %s but found in %s", label,
                           name, file, s->file_names[s->entries[e].file]);
            goto done;
        }
    }
    for (int64_t e = 0; e < s->n_entries; e++) {
        total += s->entries[e].st->end - s->entries[e].st->begin;
        if (!json_object_get(map, s->entries[e].st->name))
            dots_log(ctx, DOTS_LOG_WARN, "%s: tensor '%.200s' is not listed in %s; loading it anyway",
                     s->file_names[s->entries[e].file], s->entries[e].st->name, label);
    }
    const json_t *ts = json_object_get(json_object_get(root, "metadata"), "total_size");
    if (json_is_integer(ts) && (uint64_t)json_integer_value(ts) != total)
        dots_log(ctx, DOTS_LOG_WARN, "%s: metadata.total_size says %lld bytes, the shards hold %llu", label,
                 (long long)json_integer_value(ts), (unsigned long long)total);
    s->sharded = true;
done:
    json_decref(root);
    return st;
}

dots_status dots_store_open(dots_ctx *ctx, const char *dir, dots_tensor_store *out) {
    if (!dir || !out) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_store_open: NULL argument");
    dots_tensor_store s = {0};
    dots_status st;
    char *single = dots_path_join(dir, "model.safetensors");
    char *index = dots_path_join(dir, "model.safetensors.index.json");
    if (!single || !index) {
        st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    /* transformers looks for the single file first; so do we. */
    if (file_exists(single)) {
        s.n_files = 1;
        s.files = calloc(1, sizeof *s.files);
        s.headers = calloc(1, sizeof *s.headers);
        s.file_names = calloc(1, sizeof *s.file_names);
        if (!s.files || !s.headers || !s.file_names || !(s.file_names[0] = strdup("model.safetensors"))) {
            st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
        st = open_file(ctx, &s, dir, 0);
        if (st == DOTS_OK) st = build_lookup(ctx, &s);
    } else if (file_exists(index)) {
        st = open_sharded(ctx, &s, dir, index);
    } else {
        st = DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: no model.safetensors or model.safetensors.index.json", dir);
    }
done:
    free(single);
    free(index);
    if (st != DOTS_OK) {
        dots_store_close(&s);
        return st;
    }
    *out = s;
    return DOTS_OK;
}
