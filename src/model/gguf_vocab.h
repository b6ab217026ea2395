/*
 * gguf_vocab.h - llama.cpp's tokenizer.ggml.* arrays from tokenizer.json.
 */
#ifndef DOTS_GGUF_VOCAB_H
#define DOTS_GGUF_VOCAB_H

#include "core/internal.h"

typedef struct dots_ggml_vocab {
    char **tokens;      /* [n_tokens], NUL-terminated, token_len bytes */
    size_t *token_len;
    int32_t *types;     /* llama.cpp token types: 1 normal, 3 control, 4 user-defined, 5 unused */
    int64_t n_tokens;   /* = the embedding's rows */
    char **merges;      /* [n_merges] "left right" */
    size_t *merge_len;
    int64_t n_merges;
} dots_ggml_vocab;

/* Builds the arrays for vocab_size ids from tokenizer.json text. On failure
 * *out is empty and the error names what is wrong. */
dots_status dots_ggml_vocab_build(dots_ctx *ctx, const char *json, size_t len, int64_t vocab_size, dots_ggml_vocab *out);
void dots_ggml_vocab_free(dots_ggml_vocab *v);

#endif
