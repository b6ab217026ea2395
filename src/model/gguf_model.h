/*
 * gguf_model.h - dots.ocr in one GGUF file: llama.cpp's tensor names and
 * block layouts for both towers, plus the checkpoint's own config texts.
 */
#ifndef DOTS_GGUF_MODEL_H
#define DOTS_GGUF_MODEL_H

#include "core/internal.h"

enum { DOTS_SOURCE_CONFIG = 0, DOTS_SOURCE_GENERATION, DOTS_SOURCE_PREPROCESSOR, DOTS_SOURCE_JSON_COUNT };

/* The GGUF string keys holding config.json, generation_config.json and
 * preprocessor_config.json verbatim, and the tokenizer.json key. */
extern const char *const dots_gguf_json_key[DOTS_SOURCE_JSON_COUNT];
#define DOTS_GGUF_TOKENIZER_KEY "dotsocr.tokenizer_json"
/* In the LM file of llama.cpp's pair: the mmproj file, relative to the LM file's directory. */
#define DOTS_GGUF_MMPROJ_KEY "dotsocr.mmproj"

/* llama.cpp's name (docs/formats.md §4.2, §4.3) for a Hugging Face tensor
 * name; false for a name dots.ocr does not have. */
bool dots_gguf_name_for(const char *hf_name, char *out, size_t cap);

/* Whether the model was opened from a GGUF file, and the config texts it
 * was opened from (NULL when absent). */
bool dots_model_is_gguf(const dots_model *m);
const char *dots_model_source_json(const dots_model *m, int which, size_t *len);
/* The i-th bound tensor, in dots_weights_expect's order (NULL past the end). */
struct dots_tensor;
const struct dots_tensor *dots_model_bound_tensor(const dots_model *m, int64_t i);

#endif
