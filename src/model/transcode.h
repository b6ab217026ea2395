/*
 * transcode.h - block formats read from llama.cpp's files and re-encoded
 * as Q8_0 at load (Q4_1, Q5_0, Q5_1, Q5_K, Q6_K).
 */
#ifndef DOTS_TRANSCODE_H
#define DOTS_TRANSCODE_H

#include "core/internal.h"
#include "io/gguf.h"

/* Whether a ggml type id is one of the transcoded formats. */
bool dots_transcode_known(uint32_t ggml_type);
/* n elements (whole blocks) of a transcoded format to fp32; false when the
 * type or n does not fit. */
bool dots_transcode_dequantize_row(uint32_t ggml_type, const void *src, float *y, int64_t n);
/* rows x K of a transcoded format re-encoded as Q8_0 (K % 32 == 0): a
 * 64-byte aligned heap block of *out_bytes, free(); NULL on a bad shape or
 * out of memory. */
void *dots_transcode_to_q8_0(uint32_t ggml_type, const void *src, int64_t rows, int64_t K, size_t *out_bytes);

#endif
