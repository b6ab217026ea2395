/*
 * safetensors.h - reading and writing the safetensors container.
 *
 *   offset      size   contents
 *   0           8      N, u64 little-endian: header length
 *   8           N      JSON object, UTF-8, padded with spaces (to 8 bytes
 *                      by the official writer):
 *                        "__metadata__": {string: string}      (optional)
 *                        "<name>": {"dtype": "BF16",
 *                                   "shape": [d0, d1, ...],
 *                                   "data_offsets": [begin, end]}
 *   8+N         ...    tensor data, little-endian, C-contiguous; offsets are
 *                      relative to 8+N
 *
 * A valid file (the rules of the reference implementation):
 *   N <= 100,000,000 and 8 + N <= file size; the header parses as a JSON
 *   object with unique keys; every shape product fits in 64 bits and
 *   end - begin == numel * dtype size; the [begin, end) ranges tile the data
 *   exactly, from 0 with no gap or overlap, to the end of the file.
 */
#ifndef DOTS_SAFETENSORS_H
#define DOTS_SAFETENSORS_H

#include "core/internal.h"

#define DOTS_ST_MAX_HEADER_BYTES 100000000ULL /* the reference implementation's limit */
#define DOTS_ST_MAX_DIMS 8                    /* no real tensor needs more; bounds the struct */
#define DOTS_ST_MAX_NAME_BYTES 1024           /* keeps names printable in one-line messages */

typedef enum dots_st_dtype {
    DOTS_ST_BOOL = 0, DOTS_ST_U8, DOTS_ST_I8, DOTS_ST_F8_E5M2, DOTS_ST_F8_E4M3,
    DOTS_ST_I16, DOTS_ST_U16, DOTS_ST_F16, DOTS_ST_BF16,
    DOTS_ST_I32, DOTS_ST_U32, DOTS_ST_F32, DOTS_ST_F64, DOTS_ST_I64, DOTS_ST_U64,
    DOTS_ST_DTYPE_COUNT
} dots_st_dtype;

typedef struct dots_st_tensor {
    char *name;                     /* owned, NUL-terminated UTF-8 */
    dots_st_dtype dtype;
    int32_t n_dims;
    int64_t shape[DOTS_ST_MAX_DIMS];
    int64_t n_elements;
    uint64_t begin, end;            /* byte range relative to the data start */
} dots_st_tensor;

typedef struct dots_st_header {
    dots_st_tensor *tensors;        /* [n_tensors], in header order */
    int64_t n_tensors;
    uint64_t data_offset;           /* 8 + N: file offset of the data section */
} dots_st_header;

const char *dots_st_dtype_name(dots_st_dtype t);
int dots_st_dtype_size(dots_st_dtype t);
/* Maps a safetensors dtype to an engine dtype; false if not F32/F16/BF16. */
bool dots_st_dtype_to_dtype(dots_st_dtype t, dots_dtype *out);

/* Parses and validates the header of a whole safetensors file held in
 * file[0..file_size) (typically mmap'd). Only the header bytes are read.
 * label names the file in messages. On failure *out is untouched. */
dots_status dots_st_parse(dots_ctx *ctx, const char *label, const uint8_t *file, uint64_t file_size,
                          dots_st_header *out);
void dots_st_header_free(dots_st_header *h);

/* ---- writing ---- */

typedef struct dots_st_entry {
    const char *name;
    dots_st_dtype dtype;
    int32_t n_dims;
    int64_t shape[DOTS_ST_MAX_DIMS];
} dots_st_entry;

/* Builds the 8-byte length + JSON header for entries laid out back to back
 * in the given order, padded with spaces to a multiple of 8. *out (heap) is
 * written before the data; *data_bytes is the total data size to follow. */
dots_status dots_st_build_header(dots_ctx *ctx, const dots_st_entry *entries, int64_t n,
                                 char **out, size_t *out_len, uint64_t *data_bytes);

#endif /* DOTS_SAFETENSORS_H */
