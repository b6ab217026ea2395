/*
 * fuzz_safetensors.c - libFuzzer target: arbitrary bytes as a whole
 * safetensors file. The parser must return an error or a header whose every
 * tensor lies inside the file; never crash, leak or read out of bounds.
 */
#include "io/safetensors.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    dots_ctx *ctx = NULL;
    if (dots_ctx_create(&ctx) != DOTS_OK) return 0;
    dots_st_header h = {0};
    if (dots_st_parse(ctx, "fuzz", data, size, &h) == DOTS_OK) {
        uint64_t data_size = size - h.data_offset;
        for (int64_t i = 0; i < h.n_tensors; i++) {
            const dots_st_tensor *t = &h.tensors[i];
            if (t->end > data_size || t->begin > t->end) abort(); /* the invariant parse promises */
            if (t->end > t->begin) {
                volatile uint8_t last = data[h.data_offset + t->end - 1];
                (void)last;
            }
        }
        dots_st_header_free(&h);
    }
    dots_ctx_free(ctx);
    return 0;
}
