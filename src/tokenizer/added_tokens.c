/*
 * added_tokens.c - the 45 added tokens of the dots.ocr tokenizer (docs/model.md §8.2,
 * from the checkpoint's added_tokens_decoder) and how the model generator
 * writes them into a Qwen2 tokenizer.json.
 */
#include "tokenizer/added_tokens.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const dots_added_token_spec dots_ocr_added_tokens[DOTS_OCR_N_ADDED_TOKENS] = {
    {151643, "<|endoftext|>", true},       {151644, "<|im_start|>", true},
    {151645, "<|im_end|>", true},          {151646, "<|object_ref_start|>", true},
    {151647, "<|object_ref_end|>", true},  {151648, "<|box_start|>", true},
    {151649, "<|box_end|>", true},         {151650, "<|quad_start|>", true},
    {151651, "<|quad_end|>", true},        {151652, "<|vision_start|>", true},
    {151653, "<|vision_end|>", true},      {151654, "<|vision_pad|>", true},
    {151655, "<|image_pad|>", true},       {151656, "<|video_pad|>", true},
    {151657, "<tool_call>", false},        {151658, "</tool_call>", false},
    {151659, "<|fim_prefix|>", false},     {151660, "<|fim_middle|>", false},
    {151661, "<|fim_suffix|>", false},     {151662, "<|fim_pad|>", false},
    {151663, "<|repo_name|>", false},      {151664, "<|file_sep|>", false},
    {151665, "<|imgpad|>", true},          {151666, "<|img|>", true},
    {151667, "<|endofimg|>", true},        {151668, "<|systemprompt|>", true},
    {151669, "<|endofsystemprompt|>", true}, {151670, "<|user|>", true},
    {151671, "<|endofuser|>", true},       {151672, "<|assistant|>", true},
    {151673, "<|endofassistant|>", true},  {151674, "<|ref_start|>", true},
    {151675, "<|ref_end|>", true},         {151676, "[SEP]", true},
    {151677, "<|pic|>", true},             {151678, "<|text|>", true},
    {151679, "<|pictotext|>", true},       {151680, "[PAD]", true},
    {151681, "<|slice|>", true},           {151682, "<|endofslice|>", true},
    {151683, "<|imgrowend|>", true},       {151684, "<|polygon_start|>", true},
    {151685, "<|polygon_end|>", true},     {151686, "<|image_gen_start|>", true},
    {151687, "<|image_gen_end|>", true},
};

static json_t *token_object(const dots_added_token_spec *a, bool with_id) {
    json_t *o = json_pack("{s:s, s:b, s:b, s:b, s:b, s:b}", "content", a->content, "single_word", 0, "lstrip", 0, "rstrip", 0,
                          "normalized", 0, "special", a->special);
    /* "id" first, as Hugging Face writes it */
    if (o && with_id) {
        json_t *withid = json_pack("{s:i}", "id", a->id);
        if (!withid || json_object_update(withid, o) != 0) {
            json_decref(withid);
            json_decref(o);
            return NULL;
        }
        json_decref(o);
        o = withid;
    }
    return o;
}

/* dots.ocr's chat template as the checkpoint's tokenizer_config.json
 * renders it (docs/model.md §6): system turns as <|system|>...<|endofsystem|>
 * and a newline, user turns <|user|>...<|endofuser|>, assistant turns
 * <|assistant|>... closed by <|endofassistant|> unless last, and the
 * generation prompt <|assistant|> after a final non-assistant turn. Written
 * here from that description (the model generator has no real checkpoint to
 * copy it from); it renders the same strings. */
static const char dots_chat_template[] =
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}"
    "{{ '<|system|>' + message['content'] + '<|endofsystem|>' + '\n' }}"
    "{%- elif message['role'] == 'user' -%}"
    "{{ '<|user|>' + message['content'] + '<|endofuser|>' }}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{ '<|assistant|>' + message['content'] }}"
    "{%- if not loop.last -%}{{ '<|endofassistant|>' }}{%- endif -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if messages[-1]['role'] != 'assistant' -%}{{ '<|assistant|>' }}{%- endif -%}";

dots_status dots_write_dots_tokenizer(dots_ctx *ctx, const char *qwen_json, size_t len, char **tokenizer_json,
                                      char **tokenizer_config_json) {
    json_t *root = json_loadb(qwen_json, len, 0, NULL);
    if (!json_is_object(root) || !json_is_object(json_object_get(root, "model"))) {
        json_decref(root);
        return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "tokenizer source: not a tokenizer.json (JSON object with a model)");
    }
    json_t *added = json_array(), *decoder = json_object();
    bool ok = added && decoder;
    for (int i = 0; ok && i < DOTS_OCR_N_ADDED_TOKENS; i++) {
        const dots_added_token_spec *a = &dots_ocr_added_tokens[i];
        char key[16];
        snprintf(key, sizeof key, "%d", a->id);
        ok = json_array_append_new(added, token_object(a, true)) == 0 &&
             json_object_set_new(decoder, key, token_object(a, false)) == 0;
    }
    ok = ok && json_object_set(root, "added_tokens", added) == 0;
    json_t *config = ok ? json_pack("{s:O, s:b, s:n, s:s, s:s, s:n, s:b, s:s, s:i, s:b, s:s, s:s}", "added_tokens_decoder", decoder,
                                    "add_bos_token", 0, "bos_token", "eos_token", "<|endoftext|>", "pad_token", "[PAD]",
                                    "unk_token", "clean_up_tokenization_spaces", 0, "errors", "replace", "model_max_length",
                                    131072, "split_special_tokens", 0, "tokenizer_class", "Qwen2Tokenizer", "chat_template",
                                    dots_chat_template)
                        : NULL;
    json_decref(added);
    json_decref(decoder);
    char *a = config ? json_dumps(root, JSON_COMPACT) : NULL;
    char *b = config ? json_dumps(config, JSON_INDENT(2)) : NULL;
    json_decref(root);
    json_decref(config);
    if (!a || !b) {
        free(a);
        free(b);
        return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory writing the tokenizer");
    }
    *tokenizer_json = a;
    *tokenizer_config_json = b;
    return DOTS_OK;
}
