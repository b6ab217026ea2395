/*
 * chat_request.h - an OpenAI chat-completions request as the official
 * dots.ocr / dots.mocr client sends it (docs/serving.md), read into what one
 * run needs. Pure: no model, no I/O, so a fuzzer can feed it any bytes.
 *
 * The user turn is rebuilt as vLLM builds it with
 * --chat-template-content-format string: text parts joined with "\n"; the
 * literal <|img|><|imgpad|><|endofimg|> in the text marks where the image
 * goes; without it the placeholder and "\n" are put in front.
 */
#ifndef DOTS_SERVE_CHAT_REQUEST_H
#define DOTS_SERVE_CHAT_REQUEST_H

#include "dotsocr.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SERVE_IMAGE_PLACEHOLDER "<|img|><|imgpad|><|endofimg|>"

/* Why a request was refused: an HTTP status and an OpenAI-style error. */
typedef struct serve_error {
    int status;          /* 400, 401, 404, 413, 429, 500, 503 ... */
    const char *type;    /* "invalid_request_error", ... */
    const char *param;   /* the offending field, or NULL */
    char message[512];
} serve_error;

void serve_error_set(serve_error *e, int status, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

typedef struct serve_chat_request {
    uint8_t *image;          /* the image's bytes, decoded from its data URL */
    size_t image_len;
    char *system;            /* the system message, or NULL for none */
    char *before_image;      /* user text before the placeholder ("" usually) */
    char *prompt;            /* user text after it: the prompt, verbatim */
    dots_prompt_mode mode;   /* the official prompt it is, else general */
    char *model;             /* as sent, or NULL */
    int64_t max_tokens;      /* max_completion_tokens, else max_tokens; 0: not sent */
    bool has_temperature, has_top_p, has_seed;
    float temperature, top_p;
    uint64_t seed;
    bool stream, include_usage;
} serve_chat_request;

/* Reads body (len bytes, need not be NUL-terminated). On failure err says
 * why (status 400, or 413 when the image is over max_image_bytes, or 500 on
 * out of memory) and *out holds nothing. */
bool serve_chat_request_parse(const char *body, size_t len, size_t max_image_bytes, serve_chat_request *out,
                              serve_error *err);
void serve_chat_request_free(serve_chat_request *r);

/* The mode whose official prompt text is prompt (grounding: its text with
 * any box; image-to-svg: with any size), else DOTS_MODE_GENERAL. */
dots_prompt_mode serve_mode_of_prompt(const char *prompt);

#endif
