/*
 * gguf.c - the GGUF reader and writer (see gguf.h; facts in docs/formats.md §1).
 */
#include "io/gguf.h"

#include "core/strmap.h"

#include <stdlib.h>
#include <string.h>

typedef struct ggml_type_info {
    const char *name;
    int64_t block, bytes;
} ggml_type_info;

/* Block sizes from ggml's type traits; ids 4, 5, 31-33, 36-38 were removed. */
static const ggml_type_info type_info[DOTS_GGML_TYPE_COUNT] = {
    [0] = {"F32", 1, 4},        [1] = {"F16", 1, 2},        [2] = {"Q4_0", 32, 18},    [3] = {"Q4_1", 32, 20},
    [6] = {"Q5_0", 32, 22},     [7] = {"Q5_1", 32, 24},     [8] = {"Q8_0", 32, 34},    [9] = {"Q8_1", 32, 36},
    [10] = {"Q2_K", 256, 84},   [11] = {"Q3_K", 256, 110},  [12] = {"Q4_K", 256, 144}, [13] = {"Q5_K", 256, 176},
    [14] = {"Q6_K", 256, 210},  [15] = {"Q8_K", 256, 292},  [16] = {"IQ2_XXS", 256, 66}, [17] = {"IQ2_XS", 256, 74},
    [18] = {"IQ3_XXS", 256, 98}, [19] = {"IQ1_S", 256, 50}, [20] = {"IQ4_NL", 32, 18}, [21] = {"IQ3_S", 256, 110},
    [22] = {"IQ2_S", 256, 82},  [23] = {"IQ4_XS", 256, 136}, [24] = {"I8", 1, 1},      [25] = {"I16", 1, 2},
    [26] = {"I32", 1, 4},       [27] = {"I64", 1, 8},       [28] = {"F64", 1, 8},      [29] = {"IQ1_M", 256, 56},
    [30] = {"BF16", 1, 2},      [34] = {"TQ1_0", 256, 54},  [35] = {"TQ2_0", 256, 66}, [39] = {"MXFP4", 32, 17},
    [40] = {"NVFP4", 64, 36},   [41] = {"Q1_0", 128, 18},   [42] = {"Q2_0", 64, 18},
};

const char *dots_ggml_type_name(uint32_t type) { return type < DOTS_GGML_TYPE_COUNT ? type_info[type].name : NULL; }

bool dots_ggml_type_block(uint32_t type, int64_t *block, int64_t *bytes) {
    if (type >= DOTS_GGML_TYPE_COUNT || !type_info[type].name) return false;
    *block = type_info[type].block;
    *bytes = type_info[type].bytes;
    return true;
}

static const uint8_t scalar_size[DOTS_GGUF_VALUE_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

/* ---------------------------------------------------------------- reading */

typedef struct cursor {
    const uint8_t *base;
    uint64_t pos, size;
} cursor;

static bool take(cursor *c, uint64_t n, const uint8_t **p) {
    if (n > c->size - c->pos) return false;
    if (p) *p = c->base + c->pos;
    c->pos += n;
    return true;
}

static bool rd_u32(cursor *c, uint32_t *v) {
    const uint8_t *p;
    if (!take(c, 4, &p)) return false;
    *v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    return true;
}

static bool rd_u64(cursor *c, uint64_t *v) {
    uint32_t lo, hi;
    if (!rd_u32(c, &lo) || !rd_u32(c, &hi)) return false;
    *v = (uint64_t)hi << 32 | lo;
    return true;
}

static bool rd_string(cursor *c, const uint8_t **s, uint64_t *len) {
    return rd_u64(c, len) && *len <= DOTS_GGUF_MAX_STRING && take(c, *len, s);
}

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void dots_gguf_close(dots_gguf *g) {
    if (!g) return;
    free(g->kvs);
    free(g->tensors);
    dots_mapped_file_close(&g->file);
    memset(g, 0, sizeof *g);
}

static dots_status parse_kvs(dots_ctx *ctx, dots_gguf *g, cursor *c, const char *path) {
    dots_strmap seen;
    if (!dots_strmap_init(&seen, (size_t)g->n_kv + 1)) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    dots_status st = DOTS_OK;
    for (int64_t i = 0; i < g->n_kv && st == DOTS_OK; i++) {
        dots_gguf_kv *kv = &g->kvs[i];
        const uint8_t *key;
        uint64_t key_len;
        if (!rd_string(c, &key, &key_len) || !rd_u32(c, &kv->type)) {
            st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: metadata entry %lld runs past the end of the file", path, (long long)i);
            break;
        }
        if (key_len == 0 || key_len > 65535) {
            st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: metadata entry %lld has an empty or over-long key", path, (long long)i);
            break;
        }
        kv->key = (const char *)key;
        kv->key_len = (uint32_t)key_len;
        int32_t prev;
        if (!dots_strmap_put(&seen, kv->key, kv->key_len, (int32_t)i, &prev)) {
            st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: duplicate metadata key %.*s", path, (int)(key_len > 200 ? 200 : key_len),
                           kv->key);
            break;
        }
        uint32_t t = kv->type;
        bool ok = true;
        if (t >= DOTS_GGUF_VALUE_TYPE_COUNT) {
            ok = false;
        } else if (t == DOTS_GGUF_STRING) {
            ok = rd_string(c, &kv->value, &kv->n);
        } else if (t == DOTS_GGUF_ARRAY) {
            uint32_t et;
            uint64_t n;
            ok = rd_u32(c, &et) && rd_u64(c, &n) && et < DOTS_GGUF_VALUE_TYPE_COUNT && et != DOTS_GGUF_ARRAY &&
                 n <= DOTS_GGUF_MAX_STRING;
            if (ok) {
                kv->elem_type = et;
                kv->n = n;
                kv->value = c->base + c->pos;
                if (et == DOTS_GGUF_STRING) {
                    /* each element is at least its 8-byte length: bounds the loop by the file size */
                    ok = n <= (c->size - c->pos) / 8;
                    for (uint64_t k = 0; ok && k < n; k++) {
                        const uint8_t *s;
                        uint64_t len;
                        ok = rd_string(c, &s, &len);
                    }
                } else {
                    ok = take(c, n * scalar_size[et], NULL); /* n <= 2^30: no overflow */
                }
            }
        } else {
            kv->n = 1;
            ok = take(c, scalar_size[t], &kv->value);
        }
        if (!ok)
            st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: metadata %.*s: bad value type or value past the end of the file", path,
                           (int)(key_len > 200 ? 200 : key_len), kv->key);
    }
    dots_strmap_free(&seen);
    return st;
}

static dots_status parse_tensors(dots_ctx *ctx, dots_gguf *g, cursor *c, const char *path) {
    dots_strmap seen;
    if (!dots_strmap_init(&seen, (size_t)g->n_tensors + 1)) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    dots_status st = DOTS_OK;
    for (int64_t i = 0; i < g->n_tensors && st == DOTS_OK; i++) {
        dots_gguf_tensor *t = &g->tensors[i];
        const uint8_t *name;
        uint64_t name_len;
        if (!rd_string(c, &name, &name_len) || !rd_u32(c, &t->n_dims)) {
            st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: tensor info %lld runs past the end of the file", path, (long long)i);
            break;
        }
        if (name_len == 0 || name_len > DOTS_GGUF_MAX_NAME || memchr(name, 0, name_len)) {
            st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: tensor %lld: name empty, over %d bytes or containing NUL", path,
                           (long long)i, DOTS_GGUF_MAX_NAME);
            break;
        }
        memcpy(t->name, name, name_len);
        t->name[name_len] = 0;
        if (!dots_strmap_put(&seen, t->name, name_len, (int32_t)i, NULL)) {
            st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: duplicate tensor name %s", path, t->name);
            break;
        }
        if (t->n_dims < 1 || t->n_dims > 4) {
            st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: tensor %s: %u dimensions (1 to 4 allowed)", path, t->name, t->n_dims);
            break;
        }
        bool ok = true;
        for (int d = 0; d < 4; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims && ok; d++) {
            uint64_t v = 0;
            ok = rd_u64(c, &v) && v <= (uint64_t)INT64_MAX;
            t->ne[d] = (int64_t)v;
        }
        ok = ok && rd_u32(c, &t->type) && rd_u64(c, &t->offset);
        if (!ok) {
            st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: tensor %s: bad dimensions or info past the end of the file", path, t->name);
            break;
        }
        int64_t block, bytes;
        if (!dots_ggml_type_block(t->type, &block, &bytes)) {
            st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: tensor %s: unknown ggml type id %u", path, t->name, t->type);
            break;
        }
        if (t->ne[0] % block != 0) {
            st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: tensor %s: row of %lld elements is not a whole number of %s blocks", path,
                           t->name, (long long)t->ne[0], type_info[t->type].name);
            break;
        }
        uint64_t nb = (uint64_t)(t->ne[0] / block), n;
        ok = !__builtin_mul_overflow(nb, (uint64_t)bytes, &n);
        for (int d = 1; d < 4 && ok; d++) ok = !__builtin_mul_overflow(n, (uint64_t)t->ne[d], &n);
        int64_t elems = 1;
        for (int d = 0; d < 4 && ok; d++) ok = !__builtin_mul_overflow(elems, t->ne[d], &elems);
        if (!ok) {
            st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: tensor %s: size overflows", path, t->name);
            break;
        }
        t->nbytes = n;
    }
    dots_strmap_free(&seen);
    return st;
}

dots_status dots_gguf_parse(dots_ctx *ctx, const char *path, const uint8_t *data, uint64_t size, dots_gguf *out) {
    if (!path || !out || (!data && size)) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_gguf_parse: NULL argument");
    memset(out, 0, sizeof *out);
    dots_gguf g = {0};
    dots_status st = DOTS_OK;
    cursor c = {data, 0, size};
    const uint8_t *magic;
    uint64_t n_tensors = 0, n_kv = 0;
    if (!take(&c, 4, &magic) || memcmp(magic, "GGUF", 4) != 0) {
        st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: not a GGUF file (no GGUF magic; a model is a checkpoint directory or a .gguf file)", path);
        goto fail;
    }
    if (!rd_u32(&c, &g.version) || !rd_u64(&c, &n_tensors) || !rd_u64(&c, &n_kv)) {
        st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: truncated GGUF header", path);
        goto fail;
    }
    if ((g.version & 0xFFFF) == 0) {
        st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: big-endian GGUF files are not supported", path);
        goto fail;
    }
    if (g.version < 2 || g.version > 3) {
        st = DOTS_FAIL(ctx, DOTS_ERR_UNSUPPORTED, "%s: GGUF version %u (2 or 3 supported)", path, g.version);
        goto fail;
    }
    /* a KV record takes at least 14 bytes and a tensor info 33: counts
     * beyond what the file can hold are corrupt, not huge allocations */
    if (n_kv > size / 14 || n_tensors > size / 33) {
        st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: %llu tensors / %llu metadata entries cannot fit in %llu bytes", path,
                       (unsigned long long)n_tensors, (unsigned long long)n_kv, (unsigned long long)size);
        goto fail;
    }
    g.n_kv = (int64_t)n_kv;
    g.n_tensors = (int64_t)n_tensors;
    g.kvs = calloc(n_kv + 1, sizeof *g.kvs);
    g.tensors = calloc(n_tensors + 1, sizeof *g.tensors);
    if (!g.kvs || !g.tensors) {
        st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    st = parse_kvs(ctx, &g, &c, path);
    if (st != DOTS_OK) goto fail;
    g.alignment = DOTS_GGUF_DEFAULT_ALIGNMENT;
    const dots_gguf_kv *al = dots_gguf_find(&g, "general.alignment");
    if (al) {
        uint32_t a = al->type == DOTS_GGUF_UINT32 ? le32(al->value) : 0;
        if (a == 0 || (a & (a - 1)) != 0) {
            st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: general.alignment must be a u32 power of two", path);
            goto fail;
        }
        g.alignment = a;
    }
    st = parse_tensors(ctx, &g, &c, path);
    if (st != DOTS_OK) goto fail;
    uint64_t pad = (g.alignment - c.pos % g.alignment) % g.alignment;
    g.data_start = c.pos + pad;
    /* ggml's rule: tensors in info order, each at the aligned end of the previous one */
    uint64_t expect = 0;
    for (int64_t i = 0; i < g.n_tensors; i++) {
        dots_gguf_tensor *t = &g.tensors[i];
        if (t->offset != expect) {
            st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: tensor %s has offset %llu, expected %llu", path, t->name,
                           (unsigned long long)t->offset, (unsigned long long)expect);
            goto fail;
        }
        if (g.data_start > size || t->offset > size - g.data_start ||
            t->nbytes > size - g.data_start - t->offset) {
            st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: tensor %s (%llu bytes at %llu) runs past the end of the file", path,
                           t->name, (unsigned long long)t->nbytes, (unsigned long long)(g.data_start + t->offset));
            goto fail;
        }
        t->data = data + g.data_start + t->offset;
        expect = t->offset + t->nbytes + (g.alignment - t->nbytes % g.alignment) % g.alignment;
    }
    *out = g;
    return DOTS_OK;
fail:
    free(g.kvs);
    free(g.tensors);
    return st;
}

dots_status dots_gguf_open(dots_ctx *ctx, const char *path, dots_gguf *out) {
    if (!path || !out) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_gguf_open: NULL argument");
    memset(out, 0, sizeof *out);
    dots_mapped_file f;
    dots_status st = dots_mapped_file_open(ctx, path, &f);
    if (st != DOTS_OK) return st;
    st = dots_gguf_parse(ctx, path, f.data, f.size, out);
    if (st != DOTS_OK) {
        dots_mapped_file_close(&f);
        return st;
    }
    out->file = f;
    return DOTS_OK;
}



const dots_gguf_kv *dots_gguf_find(const dots_gguf *g, const char *key) {
    if (!g || !key) return NULL;
    size_t n = strlen(key);
    for (int64_t i = 0; i < g->n_kv; i++)
        if (g->kvs[i].key_len == n && memcmp(g->kvs[i].key, key, n) == 0) return &g->kvs[i];
    return NULL;
}

int64_t dots_gguf_find_tensor(const dots_gguf *g, const char *name) {
    if (!g || !name) return -1;
    for (int64_t i = 0; i < g->n_tensors; i++)
        if (strcmp(g->tensors[i].name, name) == 0) return i;
    return -1;
}

bool dots_gguf_get_string(const dots_gguf *g, const char *key, const char **s, size_t *len) {
    const dots_gguf_kv *kv = dots_gguf_find(g, key);
    if (!kv || kv->type != DOTS_GGUF_STRING) return false;
    *s = (const char *)kv->value;
    *len = (size_t)kv->n;
    return true;
}

bool dots_gguf_get_u32(const dots_gguf *g, const char *key, uint32_t *v) {
    const dots_gguf_kv *kv = dots_gguf_find(g, key);
    if (!kv || kv->type != DOTS_GGUF_UINT32) return false;
    *v = le32(kv->value);
    return true;
}

/* Any integer key as an unsigned value: llama.cpp writes u32, other
 * writers i32 or u64. Negative values are refused. */
bool dots_gguf_get_uint(const dots_gguf *g, const char *key, uint64_t *v) {
    const dots_gguf_kv *kv = dots_gguf_find(g, key);
    if (!kv) return false;
    const uint8_t *p = kv->value;
    uint64_t lo = le32(p);
    switch (kv->type) {
    case DOTS_GGUF_UINT8: *v = p[0]; return true;
    case DOTS_GGUF_INT8: *v = p[0]; return !(p[0] & 0x80);
    case DOTS_GGUF_UINT16: *v = p[0] | (uint64_t)p[1] << 8; return true;
    case DOTS_GGUF_INT16: *v = p[0] | (uint64_t)p[1] << 8; return !(p[1] & 0x80);
    case DOTS_GGUF_UINT32: *v = lo; return true;
    case DOTS_GGUF_INT32: *v = lo; return !(lo >> 31);
    case DOTS_GGUF_UINT64: *v = lo | (uint64_t)le32(p + 4) << 32; return true;
    case DOTS_GGUF_INT64: *v = lo | (uint64_t)le32(p + 4) << 32; return !(*v >> 63);
    default: return false;
    }
}

bool dots_gguf_is_string(const dots_gguf *g, const char *key, const char *want) {
    const char *s;
    size_t n;
    return want && dots_gguf_get_string(g, key, &s, &n) && n == strlen(want) && memcmp(s, want, n) == 0;
}

bool dots_gguf_get_f32(const dots_gguf *g, const char *key, float *v) {
    const dots_gguf_kv *kv = dots_gguf_find(g, key);
    if (!kv || (kv->type != DOTS_GGUF_FLOAT32 && kv->type != DOTS_GGUF_FLOAT64)) return false;
    if (kv->type == DOTS_GGUF_FLOAT32) {
        uint32_t u = le32(kv->value);
        memcpy(v, &u, 4);
    } else {
        uint64_t u = le32(kv->value) | (uint64_t)le32(kv->value + 4) << 32;
        double d;
        memcpy(&d, &u, 8);
        *v = (float)d;
    }
    return true;
}

bool dots_gguf_get_bool(const dots_gguf *g, const char *key, bool *v) {
    const dots_gguf_kv *kv = dots_gguf_find(g, key);
    if (!kv || kv->type != DOTS_GGUF_BOOL) return false;
    *v = kv->value[0] != 0;
    return true;
}

bool dots_gguf_get_f32_array(const dots_gguf *g, const char *key, float *v, uint64_t n) {
    const dots_gguf_kv *kv = dots_gguf_find(g, key);
    if (!kv || kv->type != DOTS_GGUF_ARRAY || kv->elem_type != DOTS_GGUF_FLOAT32 || kv->n != n) return false;
    for (uint64_t i = 0; i < n; i++) {
        uint32_t u = le32(kv->value + 4 * i);
        memcpy(&v[i], &u, 4);
    }
    return true;
}

const uint8_t *dots_gguf_array_string(const uint8_t *p, const char **s, size_t *len) {
    uint64_t n = le32(p) | (uint64_t)le32(p + 4) << 32;
    *s = (const char *)p + 8;
    *len = (size_t)n;
    return p + 8 + n;
}

int32_t dots_gguf_array_i32(const dots_gguf_kv *kv, uint64_t i) {
    const uint8_t *p = kv->value + scalar_size[kv->elem_type] * i;
    switch (kv->elem_type) {
    case DOTS_GGUF_INT32:
    case DOTS_GGUF_UINT32: return (int32_t)le32(p);
    case DOTS_GGUF_INT8: return (int8_t)p[0];
    case DOTS_GGUF_UINT8: return p[0];
    default: return INT32_MIN;
    }
}

/* ---------------------------------------------------------------- writing */

static void put_u32(dots_strbuf *b, uint32_t v) {
    uint8_t p[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    dots_strbuf_add(b, (const char *)p, 4);
}

static void put_u64(dots_strbuf *b, uint64_t v) {
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}

static void put_str(dots_strbuf *b, const char *s, size_t n) {
    put_u64(b, n);
    dots_strbuf_add(b, s, n);
}

void dots_gguf_writer_init(dots_gguf_writer *w) { memset(w, 0, sizeof *w); }

void dots_gguf_writer_free(dots_gguf_writer *w) {
    if (!w) return;
    free(w->kv.p);
    free(w->info.p);
    free(w->sizes);
    memset(w, 0, sizeof *w);
}

static void kv_head(dots_gguf_writer *w, const char *key, uint32_t type) {
    put_str(&w->kv, key, strlen(key));
    put_u32(&w->kv, type);
    w->n_kv++;
}

void dots_gguf_kv_string(dots_gguf_writer *w, const char *key, const char *s, size_t len) {
    kv_head(w, key, DOTS_GGUF_STRING);
    put_str(&w->kv, s, len);
}

void dots_gguf_kv_u32(dots_gguf_writer *w, const char *key, uint32_t v) {
    kv_head(w, key, DOTS_GGUF_UINT32);
    put_u32(&w->kv, v);
}

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

void dots_gguf_kv_f32(dots_gguf_writer *w, const char *key, float v) {
    kv_head(w, key, DOTS_GGUF_FLOAT32);
    put_u32(&w->kv, f32_bits(v));
}

void dots_gguf_kv_bool(dots_gguf_writer *w, const char *key, bool v) {
    kv_head(w, key, DOTS_GGUF_BOOL);
    uint8_t b = v ? 1 : 0;
    dots_strbuf_add(&w->kv, (const char *)&b, 1);
}

void dots_gguf_kv_f32_array(dots_gguf_writer *w, const char *key, const float *v, uint32_t n) {
    kv_head(w, key, DOTS_GGUF_ARRAY);
    put_u32(&w->kv, DOTS_GGUF_FLOAT32);
    put_u64(&w->kv, n);
    for (uint32_t i = 0; i < n; i++) put_u32(&w->kv, f32_bits(v[i]));
}

void dots_gguf_kv_string_array(dots_gguf_writer *w, const char *key, const char *const *s, const size_t *len, uint64_t n) {
    kv_head(w, key, DOTS_GGUF_ARRAY);
    put_u32(&w->kv, DOTS_GGUF_STRING);
    put_u64(&w->kv, n);
    for (uint64_t i = 0; i < n; i++) put_str(&w->kv, s[i], len[i]);
}

void dots_gguf_kv_i32_array(dots_gguf_writer *w, const char *key, const int32_t *v, uint64_t n) {
    kv_head(w, key, DOTS_GGUF_ARRAY);
    put_u32(&w->kv, DOTS_GGUF_INT32);
    put_u64(&w->kv, n);
    for (uint64_t i = 0; i < n; i++) put_u32(&w->kv, (uint32_t)v[i]);
}

static uint64_t pad_to(uint64_t n) { return (n + DOTS_GGUF_DEFAULT_ALIGNMENT - 1) / DOTS_GGUF_DEFAULT_ALIGNMENT * DOTS_GGUF_DEFAULT_ALIGNMENT; }

dots_status dots_gguf_add_tensor(dots_ctx *ctx, dots_gguf_writer *w, const char *name, uint32_t type, int32_t n_dims,
                                 const int64_t *shape) {
    size_t len = strlen(name);
    int64_t block, bytes;
    if (len == 0 || len > DOTS_GGUF_MAX_NAME || n_dims < 1 || n_dims > 4 || !dots_ggml_type_block(type, &block, &bytes))
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "gguf: cannot write tensor %s (name, dims or type)", name);
    if (shape[n_dims - 1] % block != 0)
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "gguf: tensor %s: rows of %lld are not whole %s blocks", name,
                         (long long)shape[n_dims - 1], dots_ggml_type_name(type));
    if (w->n_tensors == w->sizes_cap) {
        int64_t cap = w->sizes_cap ? 2 * w->sizes_cap : 64;
        uint64_t *s = realloc(w->sizes, (size_t)cap * sizeof *s);
        if (!s) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
        w->sizes = s;
        w->sizes_cap = cap;
    }
    uint64_t nbytes = (uint64_t)(shape[n_dims - 1] / block * bytes);
    for (int32_t d = 0; d < n_dims - 1; d++) nbytes *= (uint64_t)shape[d];
    put_str(&w->info, name, len);
    put_u32(&w->info, (uint32_t)n_dims);
    for (int32_t d = n_dims - 1; d >= 0; d--) put_u64(&w->info, (uint64_t)shape[d]);
    put_u32(&w->info, type);
    put_u64(&w->info, w->data_size);
    w->sizes[w->n_tensors++] = nbytes;
    w->data_size += pad_to(nbytes);
    return DOTS_OK;
}

static dots_status write_bytes(dots_ctx *ctx, FILE *f, const void *p, size_t n) {
    if (n && fwrite(p, 1, n, f) != n) return DOTS_FAIL(ctx, DOTS_ERR_IO, "gguf: write failed (disk full?)");
    return DOTS_OK;
}

static const uint8_t zeros[DOTS_GGUF_DEFAULT_ALIGNMENT];

dots_status dots_gguf_write_header(dots_ctx *ctx, dots_gguf_writer *w, FILE *f) {
    if (w->kv.oom || w->info.oom) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory building the GGUF header");
    dots_strbuf h = {0};
    dots_strbuf_add(&h, "GGUF", 4);
    put_u32(&h, 3);
    put_u64(&h, (uint64_t)w->n_tensors);
    put_u64(&h, (uint64_t)w->n_kv);
    if (h.oom) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    dots_status st = write_bytes(ctx, f, h.p, h.n);
    free(h.p);
    if (st == DOTS_OK) st = write_bytes(ctx, f, w->kv.p, w->kv.n);
    if (st == DOTS_OK) st = write_bytes(ctx, f, w->info.p, w->info.n);
    uint64_t end = 24 + w->kv.n + w->info.n;
    if (st == DOTS_OK) st = write_bytes(ctx, f, zeros, (size_t)(pad_to(end) - end));
    return st;
}

dots_status dots_gguf_write_data(dots_ctx *ctx, dots_gguf_writer *w, FILE *f, const void *data, size_t n) {
    const uint8_t *p = data;
    while (n > 0) {
        if (w->n_written >= w->n_tensors) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "gguf: more data than tensors");
        uint64_t left = w->sizes[w->n_written] - w->pos_in_tensor;
        size_t k = n < left ? n : (size_t)left;
        dots_status st = write_bytes(ctx, f, p, k);
        if (st != DOTS_OK) return st;
        p += k;
        n -= k;
        w->pos_in_tensor += k;
        if (w->pos_in_tensor == w->sizes[w->n_written]) {
            uint64_t sz = w->sizes[w->n_written];
            st = write_bytes(ctx, f, zeros, (size_t)(pad_to(sz) - sz));
            if (st != DOTS_OK) return st;
            w->n_written++;
            w->pos_in_tensor = 0;
        }
    }
    return DOTS_OK;
}
