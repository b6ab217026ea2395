/*
 * prompt.c - prompt texts (docs/model.md §10.1 and docs/mocr.md, verbatim),
 * the framing of docs/model.md §6.2 with dots.mocr's system turn, and the
 * image splice of 6.4.
 */
#include "prompt/prompt.h"


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
    [DOTS_MODE_WEB_PARSING] = "Parsing the layout info of this webpage image with format json:\n",
    [DOTS_MODE_SCENE_SPOTTING] = "Detect and recognize the text in the image.",
    /* no space after "image.", and the closing quote is part of it */
    [DOTS_MODE_IMAGE_TO_SVG] = "Please generate the SVG code based on the image.viewBox=\"0 0 {width} {height}\"",
    [DOTS_MODE_GENERAL] = " ", /* never sent: replaced by the question */
};

/* general's question when none is given, and its system message */
#define GENERAL_DEFAULT_QUESTION "Please describe the content of this image."
#define GENERAL_SYSTEM "You are a helpful assistant."

static const char *const mode_names[DOTS_MODE_COUNT] = {"layout-all",  "layout-only",    "ocr",          "grounding",
                                                        "web-parsing", "scene-spotting", "image-to-svg", "general"};

void dots_prompt_mode_defaults(dots_prompt_mode mode, float *temperature, float *top_p, int32_t *max_new_tokens) {
    const bool svg = mode == DOTS_MODE_IMAGE_TO_SVG;
    if (temperature) *temperature = svg ? 0.9f : 0.0f;
    if (top_p) *top_p = 1.0f;
    if (max_new_tokens) *max_new_tokens = svg ? 32768 : 16384;
}

/* s with every {key} replaced by the decimal value (malloc'd). */
static char *replace_all(const char *s, const char *key, int32_t value) {
    char num[16];
    snprintf(num, sizeof num, "%d", value);
    size_t n = 0, kl = strlen(key);
    for (const char *p = strstr(s, key); p; p = strstr(p + kl, key)) n++;
    char *out = malloc(strlen(s) + n * strlen(num) + 1), *o = out;
    if (!out) return NULL;
    for (const char *p = s;;) {
        const char *q = strstr(p, key);
        if (!q) {
            strcpy(o, p);
            break;
        }
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        o += sprintf(o, "%s", num);
        p = q + kl;
    }
    return out;
}

char *dots_prompt_user_text(const dots_prompt_spec *sp) {
    if (!sp || (unsigned)sp->mode >= DOTS_MODE_COUNT) return NULL;
    if (sp->custom) return strdup(sp->custom);
    switch (sp->mode) {
    case DOTS_MODE_GROUNDING: { /* str(bbox) of a Python list of ints */
        char *out = malloc(strlen(prompt_texts[sp->mode]) + 64);
        if (out)
            sprintf(out, "%s[%d, %d, %d, %d]", prompt_texts[sp->mode], sp->bbox[0], sp->bbox[1], sp->bbox[2], sp->bbox[3]);
        return out;
    }
    case DOTS_MODE_IMAGE_TO_SVG: { /* a plain replacement, with the original image's size */
        char *w = replace_all(prompt_texts[sp->mode], "{width}", sp->width);
        char *out = w ? replace_all(w, "{height}", sp->height) : NULL;
        free(w);
        return out;
    }
    case DOTS_MODE_GENERAL: return strdup(GENERAL_DEFAULT_QUESTION);
    default: return strdup(prompt_texts[sp->mode]);
    }
}

const char *dots_prompt_system_text(const dots_prompt_spec *sp) {
    if (sp->system) return *sp->system ? sp->system : NULL;
    return sp->mode == DOTS_MODE_GENERAL ? GENERAL_SYSTEM : NULL;
}

const char *dots_prompt_mode_name(dots_prompt_mode m) { return (unsigned)m < DOTS_MODE_COUNT ? mode_names[m] : "?"; }
const char *dots_prompt_text(dots_prompt_mode m) { return (unsigned)m < DOTS_MODE_COUNT ? prompt_texts[m] : NULL; }

/* The markers' ids, from the checkpoint's own tokenizer. */
typedef struct markers {
    int32_t user, img, imgpad, endofimg, endofuser, assistant;
} markers;

static dots_status find_markers(dots_ctx *ctx, const dots_tokenizer *tok, markers *m) {
    const char *names[6] = {"<|user|>", "<|img|>", "<|imgpad|>", "<|endofimg|>", "<|endofuser|>", "<|assistant|>"};
    int32_t *ids[6] = {&m->user, &m->img, &m->imgpad, &m->endofimg, &m->endofuser, &m->assistant};
    for (int i = 0; i < 6; i++)
        if ((*ids[i] = dots_tokenizer_token_id(tok, names[i])) < 0)
            return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "the model's tokenizer has no %s token", names[i]);
    return DOTS_OK;
}

dots_status dots_prompt_build(dots_ctx *ctx, dots_tokenizer *tok, const dots_prompt_spec *spec, int64_t n_image,
                              int32_t **ids, int64_t *n_ids) {
    if (!spec || (unsigned)spec->mode >= DOTS_MODE_COUNT || !tok || n_image < 0)
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "prompt: bad mode or arguments");
    markers mk;
    dots_status st = find_markers(ctx, tok, &mk);
    if (st != DOTS_OK) return st;
    char *text = dots_prompt_user_text(spec), *sys_text = NULL;
    const char *sys = dots_prompt_system_text(spec);
    if (sys && text) { /* the v1 chat template's system turn (docs/mocr.md) */
        sys_text = malloc(strlen(sys) + 32);
        if (sys_text) sprintf(sys_text, "<|system|>%s<|endofsystem|>\n", sys);
    }
    if (!text || (sys && !sys_text)) {
        free(text);
        return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    }
    int32_t *body = NULL, *head = NULL, *pre = NULL;
    size_t n_body = 0, n_head = 0, n_pre = 0;
    /* the public encode clears ctx's error first; nothing is recorded yet */
    st = dots_tok_encode(ctx, tok, text, strlen(text), &body, &n_body);
    if (st == DOTS_OK && sys_text) st = dots_tok_encode(ctx, tok, sys_text, strlen(sys_text), &head, &n_head);
    if (st == DOTS_OK && spec->before_image && *spec->before_image)
        st = dots_tok_encode(ctx, tok, spec->before_image, strlen(spec->before_image), &pre, &n_pre);
    free(text);
    free(sys_text);
    if (st != DOTS_OK) {
        dots_free(body);
        dots_free(head);
        dots_free(pre);
        return st;
    }
    int64_t n = (int64_t)n_head + 1 + (int64_t)n_pre + 1 + n_image + 1 + (int64_t)n_body + 2;
    int32_t *out = malloc(sizeof(int32_t) * (size_t)n);
    if (!out) {
        dots_free(body);
        dots_free(head);
        dots_free(pre);
        return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    }
    int64_t k = 0;
    for (size_t i = 0; i < n_head; i++) out[k++] = head[i];
    out[k++] = mk.user;
    for (size_t i = 0; i < n_pre; i++) out[k++] = pre[i];
    out[k++] = mk.img;
    for (int64_t i = 0; i < n_image; i++) out[k++] = mk.imgpad;
    out[k++] = mk.endofimg;
    for (size_t i = 0; i < n_body; i++) out[k++] = body[i];
    out[k++] = mk.endofuser;
    out[k++] = mk.assistant;
    dots_free(body);
    dots_free(head);
    dots_free(pre);
    *ids = out;
    *n_ids = n;
    return DOTS_OK;
}

dots_status dots_prompt_splice(dots_ctx *ctx, const int32_t *ids, int64_t n_ids, int32_t imgpad, float *embeds,
                               int64_t hidden, const float *image, int64_t n_image) {
    int64_t n_pad = 0;
    for (int64_t i = 0; i < n_ids; i++) n_pad += ids[i] == imgpad;
    if (n_pad != n_image)
        return DOTS_FAIL(ctx, DOTS_ERR_INTERNAL, "prompt: %lld <|imgpad|> tokens for %lld image rows", (long long)n_pad,
                         (long long)n_image);
    for (int64_t i = 0, r = 0; i < n_ids; i++)
        if (ids[i] == imgpad) memcpy(embeds + i * hidden, image + (r++) * hidden, sizeof(float) * (size_t)hidden);
    return DOTS_OK;
}
