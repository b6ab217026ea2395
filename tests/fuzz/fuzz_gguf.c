/*
 * fuzz_gguf.c - libFuzzer target: arbitrary bytes as a whole GGUF file. The
 * parser must return an error, or metadata and tensors that all lie inside
 * the input; never crash, leak or read out of bounds.
 */
#include "io/gguf.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    dots_ctx *ctx = NULL;
    if (dots_ctx_create(&ctx) != DOTS_OK) return 0;
    dots_gguf g;
    if (dots_gguf_parse(ctx, "fuzz", data, size, &g) == DOTS_OK) {
        for (int64_t i = 0; i < g.n_kv; i++) {
            const dots_gguf_kv *kv = &g.kvs[i];
            if ((const uint8_t *)kv->key < data || (const uint8_t *)kv->key + kv->key_len > data + size) abort();
            if (kv->type == DOTS_GGUF_STRING && kv->n) {
                volatile uint8_t last = kv->value[kv->n - 1]; /* the promised bytes are readable */
                (void)last;
            }
        }
        for (int64_t i = 0; i < g.n_tensors; i++) {
            const dots_gguf_tensor *t = &g.tensors[i];
            if (t->data < data || t->nbytes > size || t->data + t->nbytes > data + size) abort();
            if (t->nbytes) {
                volatile uint8_t last = t->data[t->nbytes - 1];
                (void)last;
            }
        }
        const char *s;
        size_t n;
        if (dots_gguf_get_string(&g, "dotsocr.config_json", &s, &n) && n) {
            volatile char c = s[n - 1];
            (void)c;
        }
        free(g.kvs);
        free(g.tensors);
    }
    dots_ctx_free(ctx);
    return 0;
}
