/*
 * gguf_native.h - reading the LM + mmproj pair that llama.cpp's own
 * converter writes for dots.ocr (no dotsocr.* keys): the configs come from
 * the qwen2.* and clip.* metadata, the tokenizer from tokenizer.ggml.*.
 */
#ifndef DOTS_GGUF_NATIVE_H
#define DOTS_GGUF_NATIVE_H

#include "core/internal.h"
#include "io/gguf.h"

/* A qwen2 LM file without our config keys: llama.cpp's. */
bool dots_gguf_is_native_lm(const dots_gguf *g);
/* A clip file for the dots_ocr projector (ours or llama.cpp's). */
bool dots_gguf_is_dots_mmproj(const dots_gguf *g);

/* config.json, generation_config.json and preprocessor_config.json texts
 * (heap strings, free()) built from the pair's metadata. label names the
 * pair in messages. */
dots_status dots_gguf_native_configs(dots_ctx *ctx, const char *label, const dots_gguf *lm, const dots_gguf *mmproj,
                                     char *json[3], size_t len[3]);

/* The one dots.ocr mmproj file (*mmproj*.gguf, projector dots_ocr) in the
 * LM file's directory; none or several is an error that says to pass it. */
dots_status dots_gguf_find_mmproj(dots_ctx *ctx, const char *lm_path, char **out);

#endif
