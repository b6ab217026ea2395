/*
 * fuzz_request.c - libFuzzer target: arbitrary bytes as a request body of
 * `dotsocr serve`: the chat-completions parser (JSON, messages, data URL,
 * base64, placeholders) and /v1/parse's options and page lists. Each must
 * accept or refuse with a 4xx/5xx error and a message, and what it accepts
 * must hold together.
 */
#include "../../tools/serve/server.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    serve_chat_request r;
    serve_error e;
    memset(&e, 0, sizeof e);
    if (serve_chat_request_parse((const char *)data, size, 1 << 20, &r, &e)) {
        if (!r.image || !r.image_len || r.image_len > (1 << 20) + 3 || !r.prompt || !r.before_image ||
            (unsigned)r.mode >= DOTS_MODE_COUNT || r.max_tokens < 0 || strstr(r.prompt, "<|imgpad|>") ||
            strstr(r.before_image, "<|imgpad|>"))
            abort();
        serve_chat_request_free(&r);
    } else if (e.status < 400 || e.status > 599 || !e.message[0] || !e.type) {
        abort();
    }

    /* the same bytes as "key=value" option lines and as a page list */
    char *text = malloc(size + 1);
    if (!text) abort();
    memcpy(text, data, size);
    text[size] = '\0';
    dots_page_options defaults;
    dots_page_options_init(&defaults);
    serve_parse_options o;
    serve_parse_options_init(&o, &defaults);
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        char *eq = strchr(line, '=');
        if (!eq) continue;
        *eq = '\0';
        if (!serve_parse_option(&o, line, eq + 1, &e) && (e.status != 400 && e.status != 500)) abort();
    }
    int32_t *pages = NULL, n = 0;
    const int32_t n_doc = size ? data[0] % 40 : 1;
    if (serve_parse_pages(o.pages, n_doc, &pages, &n, &e)) {
        if (n < 1 || n > n_doc) abort();
        for (int32_t i = 0; i < n; i++)
            if (pages[i] < 0 || pages[i] >= n_doc || (i && pages[i] <= pages[i - 1])) abort();
    }
    free(pages);
    serve_parse_options_free(&o);
    free(text);
    return 0;
}
