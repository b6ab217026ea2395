/*
 * prompt.c - prompt texts (docs/model.md §10.1, verbatim), the framing of docs/model.md §6.2 and
 * the image splice of 6.4.
 */
#include "prompt/prompt.h"

#include "tokenizer/added_tokens.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const prompt_texts[DOTS_MODE_COUNT] = {
    [DOTS_MODE_LAYOUT_ALL] =
        ("Please output the layout information from the PDF image, including each layout element's bbox, its category, "
        "and the corresponding text content within the bbox.\n\n"
        "1. Bbox format: [x1, y1, x2, y2]\n\n"
        "2. Layout Categories: The possible categories are ['Caption', 'Footnote', 'Formula', 'List-item', "
        "'Page-footer', 'Page-header', 'Picture', 'Section-header', 'Table', 'Text', 'Title'].\n\n"
        "3. Text Extraction & Formatting Rules:\n"
        "    - Picture: For the 'Picture' category, the text field should be omitted.\n"
        "    - Formula: Format its text as LaTeX.\n"
        "    - Table: Format its text as HTML.\n"
        "    - All Others (Text, Title, etc.): Format their text as Markdown.\n\n"
        "4. Constraints:\n"
        "    - The output text must be the original text from the image, with no translation.\n"
        "    - All layout elements must be sorted according to human reading order.\n\n"
        "5. Final Output: The entire output must be a single JSON object.\n"),
    [DOTS_MODE_LAYOUT_ONLY] =
        ("Please output the layout information from this PDF image, including each layout's bbox and its category. The "
        "bbox should be in the format [x1, y1, x2, y2]. The layout categories for the PDF document include ['Caption', "
        "'Footnote', 'Formula', 'List-item', 'Page-footer', 'Page-header', 'Picture', 'Section-header', 'Table', "
        "'Text', 'Title']. Do not output the corresponding text. The layout result should be in JSON format."),
    [DOTS_MODE_OCR] = "Extract the text content from this image.",
    [DOTS_MODE_GROUNDING] = ("Extract text from the given bounding box on the image (format: [x1, y1, x2, y2]).\n"
                             "Bounding Box:\n"),
};

static const char *const mode_names[DOTS_MODE_COUNT] = {"layout-all", "layout-only", "ocr", "grounding"};

const char *dots_prompt_mode_name(dots_prompt_mode m) { return (unsigned)m < DOTS_MODE_COUNT ? mode_names[m] : "?"; }
const char *dots_prompt_text(dots_prompt_mode m) { return (unsigned)m < DOTS_MODE_COUNT ? prompt_texts[m] : NULL; }

dots_status dots_prompt_build(dots_ctx *ctx, dots_tokenizer *tok, dots_prompt_mode mode, const int32_t bbox[4],
                              int64_t n_image, int32_t **ids, int64_t *n_ids) {
    if ((unsigned)mode >= DOTS_MODE_COUNT || !tok || n_image < 0)
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "prompt: bad mode or arguments");
    char text[2048];
    int len = snprintf(text, sizeof text, "%s", prompt_texts[mode]);
    if (mode == DOTS_MODE_GROUNDING) /* str(bbox) of a Python list of ints */
        len += snprintf(text + len, sizeof text - (size_t)len, "[%d, %d, %d, %d]", bbox[0], bbox[1], bbox[2], bbox[3]);
    int32_t *body = NULL;
    size_t n_body = 0;
    /* the public encode clears ctx's error first; nothing is recorded yet */
    dots_status st = dots_tok_encode(ctx, tok, text, (size_t)len, &body, &n_body);
    if (st != DOTS_OK) return st;
    int64_t n = 2 + n_image + 1 + (int64_t)n_body + 2;
    int32_t *out = malloc(sizeof(int32_t) * (size_t)n);
    if (!out) {
        dots_free(body);
        return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    }
    int64_t k = 0;
    out[k++] = DOTS_TOKEN_USER;
    out[k++] = DOTS_TOKEN_IMG;
    for (int64_t i = 0; i < n_image; i++) out[k++] = DOTS_TOKEN_IMGPAD;
    out[k++] = DOTS_TOKEN_ENDOFIMG;
    for (size_t i = 0; i < n_body; i++) out[k++] = body[i];
    out[k++] = DOTS_TOKEN_ENDOFUSER;
    out[k++] = DOTS_TOKEN_ASSISTANT;
    dots_free(body);
    *ids = out;
    *n_ids = n;
    return DOTS_OK;
}

dots_status dots_prompt_splice(dots_ctx *ctx, const int32_t *ids, int64_t n_ids, float *embeds, int64_t hidden,
                               const float *image, int64_t n_image) {
    int64_t n_pad = 0;
    for (int64_t i = 0; i < n_ids; i++) n_pad += ids[i] == DOTS_TOKEN_IMGPAD;
    if (n_pad != n_image)
        return DOTS_FAIL(ctx, DOTS_ERR_INTERNAL, "prompt: %lld <|imgpad|> tokens for %lld image rows", (long long)n_pad,
                         (long long)n_image);
    for (int64_t i = 0, r = 0; i < n_ids; i++)
        if (ids[i] == DOTS_TOKEN_IMGPAD) memcpy(embeds + i * hidden, image + (r++) * hidden, sizeof(float) * (size_t)hidden);
    return DOTS_OK;
}
