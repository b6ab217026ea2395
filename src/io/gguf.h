/*
 * gguf.h - reading and writing the GGUF container (ggml's model file).
 *
 *   offset  contents (all little-endian, packed)
 *   0       "GGUF", u32 version (2 or 3), u64 tensor_count, u64 kv_count
 *   24      kv_count x (string key, u32 type, value)
 *           tensor_count x (string name, u32 n_dims, n_dims x u64 ne
 *                           (innermost first), u32 ggml type, u64 offset)
 *           zeros up to general.alignment (default 32)
 *   data    tensors, each at data + offset, offsets multiples of the alignment
 *
 * Strings are u64 length + bytes, no terminator. A valid file for us is what
 * ggml's own reader accepts (docs/formats.md §1.6): no nested arrays, unique
 * keys and names, names under 64 bytes, known type ids, ne[0] a multiple of
 * the block size, every tensor inside the file. The whole file is mapped;
 * values and tensor data are used in place.
 */
#ifndef DOTS_GGUF_H
#define DOTS_GGUF_H

#include "core/strbuf.h"
#include "io/mapped_file.h"

#include <stdio.h>

enum {
    DOTS_GGUF_UINT8 = 0, DOTS_GGUF_INT8, DOTS_GGUF_UINT16, DOTS_GGUF_INT16, DOTS_GGUF_UINT32, DOTS_GGUF_INT32,
    DOTS_GGUF_FLOAT32, DOTS_GGUF_BOOL, DOTS_GGUF_STRING, DOTS_GGUF_ARRAY, DOTS_GGUF_UINT64, DOTS_GGUF_INT64,
    DOTS_GGUF_FLOAT64, DOTS_GGUF_VALUE_TYPE_COUNT
};

/* ggml tensor type ids we read or write (the others are recognised by size only). */
enum {
    DOTS_GGML_F32 = 0, DOTS_GGML_F16 = 1, DOTS_GGML_Q4_0 = 2, DOTS_GGML_Q4_1 = 3, DOTS_GGML_Q5_0 = 6, DOTS_GGML_Q5_1 = 7,
    DOTS_GGML_Q8_0 = 8, DOTS_GGML_Q4_K = 12, DOTS_GGML_Q5_K = 13,
    DOTS_GGML_Q6_K = 14, DOTS_GGML_BF16 = 30, DOTS_GGML_TYPE_COUNT = 43
};

#define DOTS_GGUF_MAX_NAME 63          /* ggml's GGML_MAX_NAME minus the NUL */
#define DOTS_GGUF_MAX_STRING (1u << 30) /* ggml's reader limit */
#define DOTS_GGUF_DEFAULT_ALIGNMENT 32

typedef struct dots_gguf_kv {
    const char *key;       /* points into the map; key_len bytes, not terminated */
    uint32_t key_len;
    uint32_t type;         /* DOTS_GGUF_* */
    uint32_t elem_type;    /* arrays: the element type */
    uint64_t n;            /* arrays: element count; strings: byte length */
    const uint8_t *value;  /* the encoded value (for strings: the bytes) */
} dots_gguf_kv;

typedef struct dots_gguf_tensor {
    char name[DOTS_GGUF_MAX_NAME + 1];
    uint32_t n_dims;
    int64_t ne[4];         /* ggml order: ne[0] innermost; unused dims are 1 */
    uint32_t type;         /* ggml type id */
    uint64_t offset;       /* from the data section */
    uint64_t nbytes;
    const uint8_t *data;
} dots_gguf_tensor;

typedef struct dots_gguf {
    dots_mapped_file file;
    uint32_t version, alignment;
    dots_gguf_kv *kvs;
    int64_t n_kv;
    dots_gguf_tensor *tensors;
    int64_t n_tensors;
    uint64_t data_start;
} dots_gguf;

/* ggml's name for a type id ("Q8_0"), or NULL for an unknown or removed id. */
const char *dots_ggml_type_name(uint32_t type);
/* Elements per block and bytes per block of a type; false if unknown. */
bool dots_ggml_type_block(uint32_t type, int64_t *block, int64_t *bytes);

/* Maps and validates path. On failure *out is zeroed and the message names
 * the file and what is wrong. */
dots_status dots_gguf_open(dots_ctx *ctx, const char *path, dots_gguf *out);
void dots_gguf_close(dots_gguf *g);
/* The same checks on size bytes at data (not copied; g->file stays zeroed):
 * for the fuzzer. Free with free(g->kvs), free(g->tensors). */
dots_status dots_gguf_parse(dots_ctx *ctx, const char *label, const uint8_t *data, uint64_t size, dots_gguf *g);

const dots_gguf_kv *dots_gguf_find(const dots_gguf *g, const char *key);
int64_t dots_gguf_find_tensor(const dots_gguf *g, const char *name);
/* Typed getters: false when the key is absent or of another type. */
bool dots_gguf_get_string(const dots_gguf *g, const char *key, const char **s, size_t *len);
bool dots_gguf_get_u32(const dots_gguf *g, const char *key, uint32_t *v);

bool dots_gguf_get_uint(const dots_gguf *g, const char *key, uint64_t *v); /* any integer type, >= 0 */
bool dots_gguf_get_f32(const dots_gguf *g, const char *key, float *v);     /* f32 or f64 */
/* Whether key is a string equal to want. */
bool dots_gguf_is_string(const dots_gguf *g, const char *key, const char *want);
bool dots_gguf_get_bool(const dots_gguf *g, const char *key, bool *v);
/* An f32 array of exactly n elements. */
bool dots_gguf_get_f32_array(const dots_gguf *g, const char *key, float *v, uint64_t n);
/* Walks a string array (kv->value of a validated file): the string at p,
 * and where the next one starts. */
const uint8_t *dots_gguf_array_string(const uint8_t *p, const char **s, size_t *len);
/* Element i of an integer array (i32, u32, i8, u8); INT32_MIN for others. */
int32_t dots_gguf_array_i32(const dots_gguf_kv *kv, uint64_t i);

/* ---- writing ----
 * Build the metadata with the kv_* calls, declare every tensor with
 * add_tensor (offsets follow from the sizes), then write the file: the
 * header at once, then each tensor's bytes in declaration order. */
typedef struct dots_gguf_writer {
    dots_strbuf kv;        /* encoded KV records */
    int64_t n_kv;
    dots_strbuf info;      /* encoded tensor-info records */
    int64_t n_tensors;
    uint64_t data_size;    /* running sum of padded tensor sizes */
    uint64_t *sizes;       /* nbytes per declared tensor */
    int64_t sizes_cap;
    int64_t n_written;     /* tensors whose bytes were written */
    uint64_t pos_in_tensor;
} dots_gguf_writer;

void dots_gguf_writer_init(dots_gguf_writer *w);
void dots_gguf_writer_free(dots_gguf_writer *w);
void dots_gguf_kv_string(dots_gguf_writer *w, const char *key, const char *s, size_t len);
void dots_gguf_kv_u32(dots_gguf_writer *w, const char *key, uint32_t v);
void dots_gguf_kv_f32(dots_gguf_writer *w, const char *key, float v);
void dots_gguf_kv_bool(dots_gguf_writer *w, const char *key, bool v);
void dots_gguf_kv_f32_array(dots_gguf_writer *w, const char *key, const float *v, uint32_t n);
void dots_gguf_kv_string_array(dots_gguf_writer *w, const char *key, const char *const *s, const size_t *len, uint64_t n);
void dots_gguf_kv_i32_array(dots_gguf_writer *w, const char *key, const int32_t *v, uint64_t n);
/* shape in PyTorch order (outermost first); written reversed. */
dots_status dots_gguf_add_tensor(dots_ctx *ctx, dots_gguf_writer *w, const char *name, uint32_t type, int32_t n_dims,
                                 const int64_t *shape);
/* Header, KVs, infos and padding. */
dots_status dots_gguf_write_header(dots_ctx *ctx, dots_gguf_writer *w, FILE *f);
/* Appends bytes of the current tensor; when a tensor is complete, pads it. */
dots_status dots_gguf_write_data(dots_ctx *ctx, dots_gguf_writer *w, FILE *f, const void *data, size_t n);

#endif
