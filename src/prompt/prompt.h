/*
 * prompt.h - the prompt of docs/model.md §6.2 (the vLLM form used for the published
 * results) as token ids, and the splice of vision rows at <|imgpad|>.
 */
#ifndef DOTS_PROMPT_H
#define DOTS_PROMPT_H

#include "core/internal.h"

/* ids = <|user|><|img|> <|imgpad|> x n_image <|endofimg|> BPE(prompt) <|endofuser|><|assistant|>
 * (*ids malloc'd). The prompt text is the mode's, with the bbox appended
 * as Python prints a list for grounding. */
dots_status dots_prompt_build(dots_ctx *ctx, dots_tokenizer *tok, dots_prompt_mode mode, const int32_t bbox[4],
                              int64_t n_image, int32_t **ids, int64_t *n_ids);

/* Overwrites, in order, the rows of embeds [n_ids, hidden] whose id is
 * <|imgpad|> with the rows of image [n_image, hidden]; the counts must match. */
dots_status dots_prompt_splice(dots_ctx *ctx, const int32_t *ids, int64_t n_ids, float *embeds, int64_t hidden,
                               const float *image, int64_t n_image);

#endif
