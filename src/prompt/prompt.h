/*
 * prompt.h - the prompt of docs/model.md §6.2 (the vLLM form used for the
 * published results) as token ids, with dots.mocr's system turn
 * (docs/mocr.md), and the splice of vision rows at <|imgpad|>.
 */
#ifndef DOTS_PROMPT_H
#define DOTS_PROMPT_H

#include "core/internal.h"

/* What a prompt is made of. */
typedef struct dots_prompt_spec {
    dots_prompt_mode mode;
    int32_t bbox[4];          /* grounding, in the model's resized pixels */
    const char *custom;       /* NULL: the mode's text */
    const char *before_image; /* user text placed before the image (NULL or "": none) */
    const char *system;       /* NULL: the mode's default; "": none */
    int32_t width, height;    /* the original image: image-to-svg's {width} {height} */
} dots_prompt_spec;

/* The user turn's text (malloc'd): the custom text, or the mode's with its
 * placeholders filled as the official parser fills them (the grounding bbox
 * as Python prints a list, the SVG viewBox size, general's default
 * question). NULL on OOM. */
char *dots_prompt_user_text(const dots_prompt_spec *s);
/* The system message s sends, or NULL for none. */
const char *dots_prompt_system_text(const dots_prompt_spec *s);

/* ids = [BPE(<|system|>SYS<|endofsystem|>\n)] <|user|> [BPE(before_image)] <|img|> <|imgpad|> x n_image
 *       <|endofimg|> BPE(user text) <|endofuser|><|assistant|>
 * (*ids malloc'd). The markers' ids come from tok (the checkpoint's own
 * tokenizer); the system markers are encoded as text, so they are single
 * tokens only where the tokenizer has them as added tokens. */
dots_status dots_prompt_build(dots_ctx *ctx, dots_tokenizer *tok, const dots_prompt_spec *spec, int64_t n_image,
                              int32_t **ids, int64_t *n_ids);

/* Overwrites, in order, the rows of embeds [n_ids, hidden] whose id is
 * imgpad with the rows of image [n_image, hidden]; the counts must match. */
dots_status dots_prompt_splice(dots_ctx *ctx, const int32_t *ids, int64_t n_ids, int32_t imgpad, float *embeds,
                               int64_t hidden, const float *image, int64_t n_image);

#endif
