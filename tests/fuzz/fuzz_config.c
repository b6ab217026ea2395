/*
 * fuzz_config.c - libFuzzer target: arbitrary bytes as config.json,
 * generation_config.json and preprocessor_config.json. Parsing must succeed
 * with values inside their documented ranges, or fail with a message.
 */
#include "model/config.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    dots_ctx *ctx = NULL;
    if (dots_ctx_create(&ctx) != DOTS_OK) return 0;
    dots_config c;
    const char *text = (const char *)data;
    if (dots_config_parse(ctx, text, size, &c) == DOTS_OK) {
        if (c.text.head_dim * c.text.num_attention_heads != c.text.hidden_size) abort();
        if (c.vision.head_dim % 4 != 0 || c.vision.hidden_size != c.text.hidden_size) abort();
        if (c.text.image_token_id >= c.text.vocab_size) abort();
    } else if (dots_errmsg(ctx)[0] == '\0') {
        abort(); /* every failure explains itself */
    }
    dots_config_init_default(&c);
    dots_ctx_clear_error(ctx);
    if (dots_generation_config_parse(ctx, text, size, &c) == DOTS_OK) {
        if (c.generation.n_eos_token_ids < 1 || c.generation.n_eos_token_ids > DOTS_MAX_EOS_IDS) abort();
    }
    dots_ctx_clear_error(ctx);
    if (dots_preprocessor_config_parse(ctx, text, size, &c) == DOTS_OK) {
        if (c.preprocessor.min_pixels > c.preprocessor.max_pixels) abort();
        for (int i = 0; i < 3; i++)
            if (!(c.preprocessor.image_std[i] > 0)) abort();
    }
    dots_config_check_consistency(ctx, &c);
    dots_ctx_free(ctx);
    return 0;
}
