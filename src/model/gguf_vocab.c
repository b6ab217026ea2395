/*
 * gguf_vocab.c - llama.cpp's tokenizer metadata (docs/formats.md §5) from a
 * Hugging Face tokenizer.json, for the LM file of `convert --mmproj`:
 *
 *   tokens[vocab_size]   the vocab's strings as stored (byte-to-unicode form),
 *                        added tokens verbatim, "[PAD<i>]" for unused ids
 *   token_type           1 normal, 3 control, 4 user-defined, 5 unused
 *   merges               "left right", rank = index
 *
 * llama.cpp sizes its vocabulary by the token list, so the list has exactly
 * the embedding's rows; an id at or past them is an error, not a silent drop.
 */
#include "model/gguf_vocab.h"

#include "core/strmap.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TYPE_NORMAL = 1, TYPE_CONTROL = 3, TYPE_USER_DEFINED = 4, TYPE_UNUSED = 5 };

void dots_ggml_vocab_free(dots_ggml_vocab *v) {
    if (!v) return;
    for (int64_t i = 0; i < v->n_tokens; i++) free(v->tokens ? v->tokens[i] : NULL);
    for (int64_t i = 0; i < v->n_merges; i++) free(v->merges ? v->merges[i] : NULL);
    free(v->tokens);
    free(v->token_len);
    free(v->types);
    free(v->merges);
    free(v->merge_len);
    memset(v, 0, sizeof *v);
}

static bool has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }
static bool has_suffix(const char *s, size_t n, const char *p) {
    size_t m = strlen(p);
    return n >= m && memcmp(s + n - m, p, m) == 0;
}

/* llama.cpp's converter: added tokens that look special are control tokens
 * even when tokenizer.json does not mark them special (gguf.md §5.3). */
static bool looks_special(const char *s) {
    size_t n = strlen(s);
    if (has_prefix(s, "<|") && has_suffix(s, n, "|>")) return true;
    if (!strcmp(s, "<pad>") || !strcmp(s, "<mask>") || !strcmp(s, "<2mass>") || !strcmp(s, "[@BOS@]")) return true;
    if (has_prefix(s, "<unused")) return true;
    return has_prefix(s, "<\xEF\xBD\x9C") && has_suffix(s, n, "\xEF\xBD\x9C>"); /* fullwidth <｜…｜> */
}

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* A merge given as ["left", "right"]: joined by one space, a literal space
 * inside a part written as U+0120 (the form llama.cpp splits on). */
static char *join_pair(const char *a, const char *b, size_t *len) {
    size_t na = strlen(a), nb = strlen(b), cap = 2 * (na + nb) + 2, n = 0;
    char *d = malloc(cap);
    if (!d) return NULL;
    for (int part = 0; part < 2; part++) {
        for (const char *p = part ? b : a; *p; p++)
            if (*p == ' ') d[n++] = (char)0xC4, d[n++] = (char)0xA0;
            else d[n++] = *p;
        if (!part) d[n++] = ' ';
    }
    d[n] = 0;
    *len = n;
    return d;
}

dots_status dots_ggml_vocab_build(dots_ctx *ctx, const char *json, size_t len, int64_t vocab_size, dots_ggml_vocab *out) {
    memset(out, 0, sizeof *out);
    if (!json || vocab_size <= 0 || vocab_size > (1 << 24))
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "tokenizer metadata: bad vocabulary size %lld", (long long)vocab_size);
    json_error_t err;
    json_t *root = json_loadb(json, len, 0, &err);
    if (!root) return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "tokenizer.json: not valid JSON: %s (line %d)", err.text, err.line);
    dots_status st = DOTS_OK;
    json_t *model = json_object_get(root, "model");
    json_t *vocab = json_object_get(model, "vocab");
    json_t *merges = json_object_get(model, "merges");
    json_t *added = json_object_get(root, "added_tokens");
    if (!json_is_object(vocab) || !json_is_array(merges) || (added && !json_is_null(added) && !json_is_array(added))) {
        st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "tokenizer.json: no model.vocab object or model.merges array (or added_tokens is not a list)");
        goto done;
    }
    out->n_tokens = vocab_size;
    out->tokens = calloc((size_t)vocab_size, sizeof *out->tokens);
    out->token_len = calloc((size_t)vocab_size, sizeof *out->token_len);
    out->types = calloc((size_t)vocab_size, sizeof *out->types);
    if (!out->tokens || !out->token_len || !out->types) {
        st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    /* the base vocab, then the added tokens over it */
    void *it = json_object_iter(vocab);
    size_t i_added = 0;
    for (int pass = 0; pass < 2 && st == DOTS_OK; pass++) {
        for (;;) {
            json_t *e;
            const char *text;
            if (!pass) {
                if (!it) break;
                text = json_object_iter_key(it);
                e = json_object_iter_value(it);
                it = json_object_iter_next(vocab, it);
            } else {
                if (i_added >= json_array_size(added)) break;
                e = json_array_get(added, i_added++);
                text = json_string_value(json_object_get(e, "content"));
            }
            const json_t *idj = pass ? json_object_get(e, "id") : e;
            if (!json_is_number(idj) || !text) {
                st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "tokenizer.json: a %s entry without an id or text", pass ? "added_tokens" : "vocab");
                break;
            }
            double idd = json_number_value(idj);
            if (idd < 0 || idd >= (double)vocab_size || idd != (double)(int64_t)idd) {
                st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "tokenizer.json: token id %g outside the %lld embedding rows", idd,
                               (long long)vocab_size);
                break;
            }
            int64_t id = (int64_t)idd;
            free(out->tokens[id]);
            size_t n = strlen(text);
            if (!(out->tokens[id] = dup_n(text, n))) {
                st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
                break;
            }
            out->token_len[id] = n;
            out->types[id] = !pass ? TYPE_NORMAL
                             : json_is_true(json_object_get(e, "special")) || looks_special(text) ? TYPE_CONTROL
                                                                                                                  : TYPE_USER_DEFINED;
        }
    }
    for (int64_t i = 0; i < vocab_size && st == DOTS_OK; i++) {
        if (out->tokens[i]) continue;
        char pad[32];
        int n = snprintf(pad, sizeof pad, "[PAD%lld]", (long long)i);
        if (!(out->tokens[i] = dup_n(pad, (size_t)n))) st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
        out->token_len[i] = (size_t)n;
        out->types[i] = TYPE_UNUSED;
    }
    if (st != DOTS_OK) goto done;
    { /* llama.cpp asserts that the token strings are unique */
        dots_strmap seen;
        if (!dots_strmap_init(&seen, (size_t)vocab_size)) {
            st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
        for (int64_t i = 0; i < vocab_size; i++) {
            int32_t other = -1;
            if (!dots_strmap_put(&seen, out->tokens[i], out->token_len[i], (int32_t)i, &other)) {
                st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "tokenizer.json: ids %d and %lld have the same text", other, (long long)i);
                break;
            }
        }
        dots_strmap_free(&seen);
        if (st != DOTS_OK) goto done;
    }
    int64_t nm = (int64_t)json_array_size(merges);
    out->merges = calloc((size_t)(nm > 0 ? nm : 1), sizeof *out->merges);
    out->merge_len = calloc((size_t)(nm > 0 ? nm : 1), sizeof *out->merge_len);
    if (!out->merges || !out->merge_len) {
        st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    size_t i_merge;
    json_t *m;
    json_array_foreach(merges, i_merge, m) {
        size_t n = 0;
        char *d = NULL;
        if (json_is_string(m)) {
            n = strlen(json_string_value(m));
            d = dup_n(json_string_value(m), n);
        } else if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
                   json_is_string(json_array_get(m, 1))) {
            d = join_pair(json_string_value(json_array_get(m, 0)), json_string_value(json_array_get(m, 1)), &n);
        } else {
            st = DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "tokenizer.json: merge %lld is neither \"a b\" nor [\"a\", \"b\"]",
                           (long long)out->n_merges);
            break;
        }
        if (!d) {
            st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
            break;
        }
        out->merges[out->n_merges] = d;
        out->merge_len[out->n_merges++] = n;
    }
done:
    json_decref(root);
    if (st != DOTS_OK) dots_ggml_vocab_free(out);
    return st;
}
