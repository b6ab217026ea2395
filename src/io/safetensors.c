/*
 * safetensors.c - validating reader and header writer for safetensors files.
 * The format table is in safetensors.h.
 *
 * Everything in a header is hostile until checked: sizes are compared before
 * they are used, every product is overflow-checked, and the tensors must tile
 * the data section exactly, so a tensor's bytes always lie inside the file.
 */
#include "io/safetensors.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    int size;
} st_dtypes[DOTS_ST_DTYPE_COUNT] = {
    [DOTS_ST_BOOL] = {"BOOL", 1},       [DOTS_ST_U8] = {"U8", 1},
    [DOTS_ST_I8] = {"I8", 1},           [DOTS_ST_F8_E5M2] = {"F8_E5M2", 1},
    [DOTS_ST_F8_E4M3] = {"F8_E4M3", 1}, [DOTS_ST_I16] = {"I16", 2},
    [DOTS_ST_U16] = {"U16", 2},         [DOTS_ST_F16] = {"F16", 2},
    [DOTS_ST_BF16] = {"BF16", 2},       [DOTS_ST_I32] = {"I32", 4},
    [DOTS_ST_U32] = {"U32", 4},         [DOTS_ST_F32] = {"F32", 4},
    [DOTS_ST_F64] = {"F64", 8},         [DOTS_ST_I64] = {"I64", 8},
    [DOTS_ST_U64] = {"U64", 8},
};

const char *dots_st_dtype_name(dots_st_dtype t) {
    return ((unsigned)t < DOTS_ST_DTYPE_COUNT) ? st_dtypes[t].name : "?";
}

int dots_st_dtype_size(dots_st_dtype t) {
    return ((unsigned)t < DOTS_ST_DTYPE_COUNT) ? st_dtypes[t].size : 0;
}

bool dots_st_dtype_to_dtype(dots_st_dtype t, dots_dtype *out) {
    switch (t) {
    case DOTS_ST_F32: *out = DOTS_DTYPE_F32; return true;
    case DOTS_ST_F16: *out = DOTS_DTYPE_F16; return true;
    case DOTS_ST_BF16: *out = DOTS_DTYPE_BF16; return true;
    default: return false;
    }
}

static bool dtype_from_name(const char *s, dots_st_dtype *out) {
    for (int i = 0; i < DOTS_ST_DTYPE_COUNT; i++) {
        if (strcmp(s, st_dtypes[i].name) == 0) {
            *out = (dots_st_dtype)i;
            return true;
        }
    }
    return false;
}

void dots_st_header_free(dots_st_header *h) {
    if (!h) return;
    for (int64_t i = 0; i < h->n_tensors; i++) free(h->tensors[i].name);
    free(h->tensors);
    h->tensors = NULL;
    h->n_tensors = 0;
}

/* Reads a JSON integer that must be >= 0. JSON reals (1.0, 1e3) are refused:
 * the reference writer only emits integers. */
static bool get_nonneg_int(const json_t *v, uint64_t *out) {
    if (!json_is_integer(v)) return false;
    json_int_t x = json_integer_value(v);
    if (x < 0) return false;
    *out = (uint64_t)x;
    return true;
}

static dots_status parse_entry(dots_ctx *ctx, const char *label, const char *name, const json_t *obj,
                               dots_st_tensor *t) {
    if (!json_is_object(obj))
        return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: tensor '%.200s': entry is not a JSON object", label,
                         name);
    /* Unknown keys are ignored, as the reference reader does. */
    const json_t *jd = json_object_get(obj, "dtype");
    const json_t *js = json_object_get(obj, "shape");
    const json_t *jo = json_object_get(obj, "data_offsets");
    if (!json_is_string(jd))
        return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: tensor '%.200s': missing or non-string dtype", label,
                         name);
    if (!dtype_from_name(json_string_value(jd), &t->dtype))
        return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: tensor '%.200s': unknown dtype '%.40s'", label, name,
                         json_string_value(jd));
    if (!json_is_array(js))
        return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: tensor '%.200s': missing or non-array shape", label,
                         name);
    size_t nd = json_array_size(js);
    if (nd > DOTS_ST_MAX_DIMS)
        return DOTS_FAIL(ctx, DOTS_ERR_LIMIT, "%s: tensor '%.200s': %zu dimensions (limit %d)", label,
                         name, nd, DOTS_ST_MAX_DIMS);
    int64_t numel = 1;
    t->n_dims = (int32_t)nd;
    for (size_t i = 0; i < nd; i++) {
        uint64_t d;
        if (!get_nonneg_int(json_array_get(js, i), &d))
            return DOTS_FAIL(ctx, DOTS_ERR_FORMAT,
                             "%s: tensor '%.200s': shape[%zu] is not a non-negative integer", label,
                             name, i);
        t->shape[i] = (int64_t)d;
        if (!dots_mul_i64(numel, (int64_t)d, &numel))
            return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: tensor '%.200s': shape product overflows",
                             label, name);
    }
    t->n_elements = numel;
    if (!json_is_array(jo) || json_array_size(jo) != 2 ||
        !get_nonneg_int(json_array_get(jo, 0), &t->begin) ||
        !get_nonneg_int(json_array_get(jo, 1), &t->end))
        return DOTS_FAIL(ctx, DOTS_ERR_FORMAT,
                         "%s: tensor '%.200s': data_offsets must be [begin, end] non-negative integers",
                         label, name);
    if (t->end < t->begin)
        return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: tensor '%.200s': data_offsets end %llu < begin %llu",
                         label, name, (unsigned long long)t->end, (unsigned long long)t->begin);
    int64_t nbytes;
    if (!dots_mul_i64(numel, dots_st_dtype_size(t->dtype), &nbytes))
        return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: tensor '%.200s': byte size overflows", label, name);
    if ((uint64_t)nbytes != t->end - t->begin)
        return DOTS_FAIL(ctx, DOTS_ERR_FORMAT,
                         "%s: tensor '%.200s': %llu data bytes but shape x %s needs %lld", label, name,
                         (unsigned long long)(t->end - t->begin), dots_st_dtype_name(t->dtype),
                         (long long)nbytes);
    return DOTS_OK;
}

static int cmp_by_range(const void *a, const void *b) {
    const dots_st_tensor *x = *(const dots_st_tensor *const *)a;
    const dots_st_tensor *y = *(const dots_st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* The tensors must cover [0, data_size) exactly once: sorted by begin, each
 * starts where the previous one ended. */
static dots_status check_tiling(dots_ctx *ctx, const char *label, dots_st_tensor *ts, int64_t n,
                                uint64_t data_size) {
    dots_st_tensor **order = malloc((size_t)(n > 0 ? n : 1) * sizeof *order);
    if (!order) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "%s: out of memory", label);
    for (int64_t i = 0; i < n; i++) order[i] = &ts[i];
    qsort(order, (size_t)n, sizeof *order, cmp_by_range);
    uint64_t pos = 0;
    dots_status st = DOTS_OK;
    /* Out-of-file ranges first: "past the end" explains a truncated file
     * better than the hole or overlap it also causes. */
    for (int64_t i = 0; i < n && st == DOTS_OK; i++) {
        const dots_st_tensor *t = order[i];
        if (t->end > data_size)
            st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT,
                           "%s: tensor '%.200s': data ends at %llu, past the end of the file's %llu data bytes (truncated?)",
                           label, t->name, (unsigned long long)t->end, (unsigned long long)data_size);
    }
    for (int64_t i = 0; i < n && st == DOTS_OK; i++) {
        const dots_st_tensor *t = order[i];
        if (t->begin > pos) {
            st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT,
                           "%s: tensor '%.200s': a hole of %llu bytes before its data at %llu", label,
                           t->name, (unsigned long long)(t->begin - pos), (unsigned long long)t->begin);
            break;
        }
        if (t->begin < pos) {
            st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: tensor '%.200s': data [%llu, %llu) overlaps another tensor",
                           label, t->name, (unsigned long long)t->begin, (unsigned long long)t->end);
            break;
        }
        pos = t->end;
    }
    if (st == DOTS_OK && pos != data_size)
        st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: %llu trailing bytes after the last tensor", label,
                       (unsigned long long)(data_size - pos));
    free(order);
    return st;
}

dots_status dots_st_parse(dots_ctx *ctx, const char *label, const uint8_t *file, uint64_t file_size,
                          dots_st_header *out) {
    if (!label || (!file && file_size) || !out)
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_st_parse: NULL argument");
    if (file_size < 8)
        return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: %llu bytes, too short for a safetensors file", label,
                         (unsigned long long)file_size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | file[i];
    if (n > DOTS_ST_MAX_HEADER_BYTES)
        return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: header length %llu is over the %llu-byte limit", label,
                         (unsigned long long)n, DOTS_ST_MAX_HEADER_BYTES);
    if (n > file_size - 8)
        return DOTS_FAIL(ctx, DOTS_ERR_FORMAT,
                         "%s: header length %llu runs past the end of the %llu-byte file", label,
                         (unsigned long long)n, (unsigned long long)file_size);
    if (n < 2)
        return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: header of %llu bytes cannot hold a JSON object", label,
                         (unsigned long long)n);

    json_error_t jerr;
    json_t *root = json_loadb((const char *)file + 8, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: header is not valid JSON: %s (at byte %d)", label,
                         jerr.text, jerr.position);
    dots_status st = DOTS_OK;
    dots_st_tensor *ts = NULL;
    int64_t nt = 0;
    if (!json_is_object(root)) {
        st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: header is not a JSON object", label);
        goto done;
    }
    size_t cap = json_object_size(root);
    ts = calloc(cap ? cap : 1, sizeof *ts);
    if (!ts) {
        st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "%s: out of memory for %zu tensors", label, cap);
        goto done;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(val)) {
                st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: __metadata__ is not an object", label);
                goto done;
            }
            const char *mk;
            json_t *mv;
            json_object_foreach(val, mk, mv) {
                if (!json_is_string(mv)) {
                    st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: __metadata__ value of '%.100s' is not a string",
                                   label, mk);
                    goto done;
                }
            }
            continue;
        }
        size_t klen = strlen(key);
        if (klen == 0 || klen > DOTS_ST_MAX_NAME_BYTES) {
            st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: tensor name of %zu bytes (must be 1..%d)", label, klen,
                           DOTS_ST_MAX_NAME_BYTES);
            goto done;
        }
        dots_st_tensor *t = &ts[nt];
        st = parse_entry(ctx, label, key, val, t);
        if (st != DOTS_OK) goto done;
        t->name = strdup(key);
        if (!t->name) {
            st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "%s: out of memory", label);
            goto done;
        }
        nt++;
    }
    st = check_tiling(ctx, label, ts, nt, file_size - 8 - n);
    if (st != DOTS_OK) goto done;
    out->tensors = ts;
    out->n_tensors = nt;
    out->data_offset = 8 + n;
    ts = NULL;
done:
    if (ts) {
        for (int64_t i = 0; i < nt; i++) free(ts[i].name);
        free(ts);
    }
    json_decref(root);
    return st;
}

/* ---------------------------------------------------------------- writer */

dots_status dots_st_build_header(dots_ctx *ctx, const dots_st_entry *entries, int64_t n, char **out,
                                 size_t *out_len, uint64_t *data_bytes) {
    if (!entries || n < 0 || !out || !out_len || !data_bytes)
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_st_build_header: bad argument");
    json_t *root = json_object();
    json_t *meta = json_object();
    dots_status st = DOTS_OK;
    char *text = NULL;
    if (!root || !meta || json_object_set_new(meta, "format", json_string("pt")) != 0 ||
        json_object_set_new(root, "__metadata__", meta) != 0) {
        if (!root) json_decref(meta);
        st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory building a safetensors header");
        goto done;
    }
    uint64_t pos = 0;
    for (int64_t i = 0; i < n; i++) {
        const dots_st_entry *e = &entries[i];
        int64_t numel = 1, nbytes;
        json_t *shape = json_array();
        for (int32_t d = 0; d < e->n_dims; d++) {
            if (!dots_mul_i64(numel, e->shape[d], &numel)) numel = -1;
            json_array_append_new(shape, json_integer(e->shape[d]));
        }
        if (numel < 0 || !dots_mul_i64(numel, dots_st_dtype_size(e->dtype), &nbytes)) {
            json_decref(shape);
            st = DOTS_FAIL(ctx, DOTS_ERR_LIMIT, "tensor %s: size overflows", e->name);
            goto done;
        }
        json_t *offs = json_array();
        json_array_append_new(offs, json_integer((json_int_t)pos));
        json_array_append_new(offs, json_integer((json_int_t)(pos + (uint64_t)nbytes)));
        json_t *obj = json_object();
        json_object_set_new(obj, "dtype", json_string(dots_st_dtype_name(e->dtype)));
        json_object_set_new(obj, "shape", shape);
        json_object_set_new(obj, "data_offsets", offs);
        if (json_object_set_new(root, e->name, obj) != 0) {
            st = DOTS_FAIL(ctx, DOTS_ERR_INTERNAL, "cannot add tensor %s to a header", e->name);
            goto done;
        }
        pos += (uint64_t)nbytes;
    }
    text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text) {
        st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory serialising a safetensors header");
        goto done;
    }
    size_t jlen = strlen(text);
    size_t padded = (jlen + 7) / 8 * 8; /* keeps the data section 8-byte aligned */
    char *buf = malloc(8 + padded);
    if (!buf) {
        st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (int i = 0; i < 8; i++) buf[i] = (char)(((uint64_t)padded >> (8 * i)) & 0xff);
    memcpy(buf + 8, text, jlen);
    memset(buf + 8 + jlen, ' ', padded - jlen);
    *out = buf;
    *out_len = 8 + padded;
    *data_bytes = pos;
done:
    free(text);
    json_decref(root);
    return st;
}
