/*
 * added_tokens.h - the dots.ocr added tokens (ids 151643-151687, docs/model.md §8.2).
 */
#ifndef DOTS_ADDED_TOKENS_H
#define DOTS_ADDED_TOKENS_H

#include "core/internal.h"

#define DOTS_OCR_N_ADDED_TOKENS 45

typedef struct dots_added_token_spec {
    int32_t id;
    const char *content;
    bool special;
} dots_added_token_spec;

extern const dots_added_token_spec dots_ocr_added_tokens[DOTS_OCR_N_ADDED_TOKENS];

/* Ids of the tokens the prompt uses (docs/model.md §6.2) and the EOS set (§9.1). */
enum {
    DOTS_TOKEN_ENDOFTEXT = 151643,
    DOTS_TOKEN_IMGPAD = 151665,
    DOTS_TOKEN_IMG = 151666,
    DOTS_TOKEN_ENDOFIMG = 151667,
    DOTS_TOKEN_USER = 151670,
    DOTS_TOKEN_ENDOFUSER = 151671,
    DOTS_TOKEN_ASSISTANT = 151672,
    DOTS_TOKEN_ENDOFASSISTANT = 151673,
};

/* Takes a Qwen2 tokenizer.json text and returns the dots.ocr tokenizer.json
 * (its added_tokens replaced by the 45 above) and a tokenizer_config.json
 * with the matching added_tokens_decoder. Both heap strings, free(). */
dots_status dots_write_dots_tokenizer(dots_ctx *ctx, const char *qwen_json, size_t len, char **tokenizer_json,
                                      char **tokenizer_config_json);

#endif
