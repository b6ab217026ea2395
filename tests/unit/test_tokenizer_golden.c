/*
 * test_tokenizer_golden.c - dotsocr's tokenizer against golden ids from the
 * official Hugging Face tokenizers (tests/tokenizer/make_golden.mjs):
 * encode must give the same ids on every case, decode the same text (with
 * and without special tokens), decode(encode(s)) must be NFC(s), and the
 * streaming decoder must reproduce the batch decode.
 *
 * Environment: DOTS_TOK_DIR (model dir or tokenizer.json), DOTS_TOK_GOLDEN
 * (the .jsonl file), optional DOTS_TOK_MIN_CASES.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dotsocr.h"
#include "io/json_scan.h"

typedef struct golden_case {
    char name[64];
    char *text, *decoded, *decoded_skip, *nfc;
    size_t text_len, decoded_len, decoded_skip_len, nfc_len;
    int32_t *ids;
    size_t n_ids;
} golden_case;

static char *dup_str(const dots_json_scan *js, size_t *len) {
    char *p = malloc(js->str_len + 1);
    assert_non_null(p);
    memcpy(p, js->str, js->str_len + 1);
    *len = js->str_len;
    return p;
}

static bool parse_line(const char *line, size_t len, golden_case *c) {
    memset(c, 0, sizeof *c);
    dots_json_scan js;
    dots_json_scan_init(&js, line, len);
    if (dots_json_next(&js) != DOTS_JSON_BEGIN_OBJECT) return false;
    dots_json_tok t;
    size_t cap = 0;
    while ((t = dots_json_next(&js)) == DOTS_JSON_STRING) {
        char key[32];
        snprintf(key, sizeof key, "%s", js.str);
        t = dots_json_next(&js);
        if (strcmp(key, "ids") == 0) {
            if (t != DOTS_JSON_BEGIN_ARRAY) return false;
            while ((t = dots_json_next(&js)) == DOTS_JSON_NUMBER) {
                if (c->n_ids == cap) {
                    cap = cap ? cap * 2 : 64;
                    c->ids = realloc(c->ids, cap * sizeof *c->ids);
                    assert_non_null(c->ids);
                }
                c->ids[c->n_ids++] = (int32_t)js.ival;
            }
            if (t != DOTS_JSON_END_ARRAY) return false;
        } else if (t == DOTS_JSON_STRING) {
            if (strcmp(key, "name") == 0) snprintf(c->name, sizeof c->name, "%s", js.str);
            else if (strcmp(key, "text") == 0) c->text = dup_str(&js, &c->text_len);
            else if (strcmp(key, "decoded") == 0) c->decoded = dup_str(&js, &c->decoded_len);
            else if (strcmp(key, "decoded_skip") == 0) c->decoded_skip = dup_str(&js, &c->decoded_skip_len);
            else if (strcmp(key, "nfc") == 0) c->nfc = dup_str(&js, &c->nfc_len);
        } else {
            return false;
        }
    }
    dots_json_scan_free(&js);
    return t == DOTS_JSON_END_OBJECT && c->text && c->decoded && c->decoded_skip && c->nfc;
}

static void free_case(golden_case *c) {
    free(c->text);
    free(c->decoded);
    free(c->decoded_skip);
    free(c->nfc);
    free(c->ids);
}

static bool same(const char *a, size_t na, const char *b, size_t nb) { return na == nb && memcmp(a, b, na) == 0; }

/* Streams ids through dots_tok_stream and compares with want. */
static bool stream_matches(dots_ctx *ctx, const dots_tokenizer *tok, const int32_t *ids, size_t n, bool skip,
                           const char *want, size_t want_len) {
    dots_tok_stream *s = NULL;
    assert_int_equal(dots_tok_stream_create(ctx, tok, skip, &s), DOTS_OK);
    char *acc = malloc(want_len * 3 + 64);
    size_t acc_len = 0;
    const char *piece;
    size_t plen;
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        if (dots_tok_stream_push(ctx, s, ids[i], &piece, &plen) != DOTS_OK) ok = false;
        else if (acc_len + plen > want_len * 3 + 64) ok = false;
        else {
            /* never half a character: every piece is valid UTF-8 on its own */
            for (size_t k = 0; k < plen; k++) acc[acc_len + k] = piece[k];
            if (plen && ((unsigned char)piece[0] & 0xC0) == 0x80) ok = false;
            acc_len += plen;
        }
    }
    if (ok && dots_tok_stream_flush(ctx, s, &piece, &plen) == DOTS_OK && acc_len + plen <= want_len * 3 + 64) {
        memcpy(acc + acc_len, piece, plen);
        acc_len += plen;
    } else {
        ok = false;
    }
    ok = ok && same(acc, acc_len, want, want_len);
    free(acc);
    dots_tok_stream_free(s);
    return ok;
}

static void test_golden(void **state) {
    (void)state;
    const char *dir = getenv("DOTS_TOK_DIR"), *golden = getenv("DOTS_TOK_GOLDEN");
    if (!dir || !golden) fail_msg("set DOTS_TOK_DIR and DOTS_TOK_GOLDEN");
    const char *min_env = getenv("DOTS_TOK_MIN_CASES");
    long min_cases = min_env ? atol(min_env) : 1;
    dots_ctx *ctx = NULL;
    dots_tokenizer *tok = NULL;
    assert_int_equal(dots_ctx_create(&ctx), DOTS_OK);
    if (dots_tokenizer_open(ctx, dir, &tok) != DOTS_OK) fail_msg("open %s: %s", dir, dots_errmsg(ctx));
    /* every form ends at the last real token: llama.cpp's arrays pad to 151,936 with "[PAD<i>]" */
    assert_int_equal(dots_tokenizer_n_ids(tok), 151688);
    FILE *f = fopen(golden, "rb");
    if (!f) fail_msg("cannot open %s", golden);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long cases = 0, bad_ids = 0, bad_decode = 0, bad_skip = 0, bad_nfc = 0, bad_stream = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        while (n > 0 && line[n - 1] == '\n') n--;
        if (n == 0) continue;
        golden_case c;
        if (!parse_line(line, (size_t)n, &c)) fail_msg("golden line %ld is malformed", cases + 1);
        cases++;
        int32_t *ids = NULL;
        size_t n_ids = 0;
        if (dots_tok_encode(ctx, tok, c.text, c.text_len, &ids, &n_ids) != DOTS_OK)
            fail_msg("%s: encode failed: %s", c.name, dots_errmsg(ctx));
        if (n_ids != c.n_ids || (n_ids && memcmp(ids, c.ids, n_ids * sizeof *ids) != 0)) {
            if (bad_ids++ < 10) {
                size_t k = 0;
                while (k < n_ids && k < c.n_ids && ids[k] == c.ids[k]) k++;
                fprintf(stderr, "ids differ for %s at %zu: got %d, want %d (lengths %zu/%zu)\n", c.name, k,
                        k < n_ids ? ids[k] : -1, k < c.n_ids ? c.ids[k] : -1, n_ids, c.n_ids);
            }
        }
        char *text = NULL;
        size_t len = 0;
        assert_int_equal(dots_tok_decode(ctx, tok, c.ids, c.n_ids, false, &text, &len), DOTS_OK);
        if (!same(text, len, c.decoded, c.decoded_len) && bad_decode++ < 10)
            fprintf(stderr, "decode differs for %s\n", c.name);
        if (!same(text, len, c.nfc, c.nfc_len) && bad_nfc++ < 10)
            fprintf(stderr, "decode(encode(s)) != NFC(s) for %s\n", c.name);
        if (!stream_matches(ctx, tok, c.ids, c.n_ids, false, text, len) && bad_stream++ < 10)
            fprintf(stderr, "stream decode differs for %s\n", c.name);
        dots_free(text);
        assert_int_equal(dots_tok_decode(ctx, tok, c.ids, c.n_ids, true, &text, &len), DOTS_OK);
        if (!same(text, len, c.decoded_skip, c.decoded_skip_len) && bad_skip++ < 10)
            fprintf(stderr, "decode(skip_special) differs for %s\n", c.name);
        if (!stream_matches(ctx, tok, c.ids, c.n_ids, true, text, len) && bad_stream++ < 10)
            fprintf(stderr, "stream decode (skip) differs for %s\n", c.name);
        dots_free(text);
        dots_free(ids);
        free_case(&c);
    }
    free(line);
    fclose(f);
    printf("%ld cases: %ld id mismatches, %ld decode, %ld skip-special decode, %ld NFC, %ld stream\n", cases, bad_ids,
           bad_decode, bad_skip, bad_nfc, bad_stream);
    assert_true(cases >= min_cases);
    assert_int_equal(bad_ids, 0);
    assert_int_equal(bad_decode, 0);
    assert_int_equal(bad_skip, 0);
    assert_int_equal(bad_nfc, 0);
    assert_int_equal(bad_stream, 0);
    dots_tokenizer_free(tok);
    dots_ctx_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_golden)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
