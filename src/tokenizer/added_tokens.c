/*
 * added_tokens.c - the 45 added tokens of the dots.ocr tokenizer (docs/model.md §8.2,
 * from the checkpoint's added_tokens_decoder) and how the model generator
 * writes them into a Qwen2 tokenizer.json.
 */
#include "tokenizer/added_tokens.h"

#include <cjson/cJSON.h>
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

static cJSON *token_object(const dots_added_token_spec *a, bool with_id) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    if (with_id) cJSON_AddNumberToObject(o, "id", a->id);
    cJSON_AddStringToObject(o, "content", a->content);
    cJSON_AddBoolToObject(o, "single_word", false);
    cJSON_AddBoolToObject(o, "lstrip", false);
    cJSON_AddBoolToObject(o, "rstrip", false);
    cJSON_AddBoolToObject(o, "normalized", false);
    cJSON_AddBoolToObject(o, "special", a->special);
    return o;
}

dots_status dots_write_dots_tokenizer(dots_ctx *ctx, const char *qwen_json, size_t len, char **tokenizer_json,
                                      char **tokenizer_config_json) {
    cJSON *root = cJSON_ParseWithLength(qwen_json, len);
    if (!root || !cJSON_IsObject(root) || !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "model"))) {
        cJSON_Delete(root);
        return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "tokenizer source: not a tokenizer.json (JSON object with a model)");
    }
    cJSON *added = cJSON_CreateArray();
    cJSON *config = cJSON_CreateObject();
    cJSON *decoder = cJSON_CreateObject();
    bool ok = added && config && decoder;
    for (int i = 0; ok && i < DOTS_OCR_N_ADDED_TOKENS; i++) {
        const dots_added_token_spec *a = &dots_ocr_added_tokens[i];
        cJSON *t = token_object(a, true), *d = token_object(a, false);
        char key[16];
        snprintf(key, sizeof key, "%d", a->id);
        ok = t && d && cJSON_AddItemToArray(added, t) && cJSON_AddItemToObject(decoder, key, d);
    }
    ok = ok && cJSON_ReplaceItemInObjectCaseSensitive(root, "added_tokens", added);
    if (!ok) cJSON_Delete(added);
    ok = ok && cJSON_AddItemToObject(config, "added_tokens_decoder", decoder);
    if (!ok) cJSON_Delete(decoder);
    ok = ok && cJSON_AddBoolToObject(config, "add_bos_token", false) && cJSON_AddNullToObject(config, "bos_token") &&
         cJSON_AddStringToObject(config, "eos_token", "<|endoftext|>") &&
         cJSON_AddStringToObject(config, "pad_token", "[PAD]") && cJSON_AddNullToObject(config, "unk_token") &&
         cJSON_AddBoolToObject(config, "clean_up_tokenization_spaces", false) &&
         cJSON_AddStringToObject(config, "errors", "replace") &&
         cJSON_AddNumberToObject(config, "model_max_length", 131072) &&
         cJSON_AddBoolToObject(config, "split_special_tokens", false) &&
         cJSON_AddStringToObject(config, "tokenizer_class", "Qwen2Tokenizer");
    char *a = ok ? cJSON_PrintUnformatted(root) : NULL;
    char *b = ok ? cJSON_Print(config) : NULL;
    cJSON_Delete(root);
    cJSON_Delete(config);
    if (!a || !b) {
        free(a);
        free(b);
        return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory writing the tokenizer");
    }
    *tokenizer_json = a;
    *tokenizer_config_json = b;
    return DOTS_OK;
}
