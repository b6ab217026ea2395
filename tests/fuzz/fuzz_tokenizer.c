/*
 * fuzz_tokenizer.c - libFuzzer target: arbitrary bytes through encode and
 * decode. The tokenizer comes from $DOTS_FUZZ_TOKENIZER (a tokenizer.json or
 * model directory). Valid UTF-8 must encode, decode back to its NFC form's
 * bytes length-consistently, and never crash; invalid input must fail cleanly.
 */
#include "dotsocr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static dots_tokenizer *g_tok; /* fuzz harness state, loaded once */
static dots_ctx *g_ctx;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_tok) {
        const char *path = getenv("DOTS_FUZZ_TOKENIZER");
        if (!path || dots_ctx_create(&g_ctx) != DOTS_OK || dots_tokenizer_open(g_ctx, path, &g_tok) != DOTS_OK) {
            fprintf(stderr, "set DOTS_FUZZ_TOKENIZER to a tokenizer: %s\n", g_ctx ? dots_errmsg(g_ctx) : "");
            abort();
        }
    }
    int32_t *ids = NULL;
    size_t n = 0;
    if (dots_tok_encode(g_ctx, g_tok, (const char *)data, size, &ids, &n) == DOTS_OK) {
        char *text = NULL;
        size_t len = 0;
        if (dots_tok_decode(g_ctx, g_tok, ids, n, false, &text, &len) != DOTS_OK) abort();
        /* the bytes are the NFC form of the input: never empty for non-empty input */
        if ((size == 0) != (len == 0)) abort();
        dots_free(text);
        dots_free(ids);
    }
    /* the bytes as ids, too */
    if (size >= 4) {
        const int32_t *as_ids = (const int32_t *)data;
        size_t m = size / 4;
        int32_t *copy = malloc(m * sizeof *copy);
        if (!copy) return 0;
        memcpy(copy, as_ids, m * sizeof *copy);
        for (size_t i = 0; i < m; i++) copy[i] = (int32_t)((uint32_t)copy[i] % 151700u);
        char *text = NULL;
        size_t len = 0;
        if (dots_tok_decode(g_ctx, g_tok, copy, m, true, &text, &len) == DOTS_OK) dots_free(text);
        free(copy);
    }
    return 0;
}
