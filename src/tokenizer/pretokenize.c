/*
 * pretokenize.c - the Split pre-tokenizer: the regex of tokenizer.json run
 * with PCRE2 (UTF + UCP so \p{L}, \p{N} and \s follow Unicode), JIT-compiled
 * when the platform allows. "Isolated" behaviour: every match is a piece,
 * and so is any text between matches.
 */
#include "tokenizer/tokenizer_internal.h"

dots_status dots_pretok_compile(dots_ctx *ctx, dots_tokenizer *tok, const char *pattern) {
    int err = 0;
    PCRE2_SIZE at = 0;
    tok->re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err, &at, NULL);
    if (!tok->re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof msg);
        return DOTS_FAIL(ctx, DOTS_ERR_UNSUPPORTED, "tokenizer: pre-tokenizer regex does not compile at offset %zu: %s",
                         (size_t)at, (const char *)msg);
    }
    /* JIT is an optimisation: without it (e.g. no executable memory) the
     * interpreter gives the same matches. */
    if (pcre2_jit_compile(tok->re, PCRE2_JIT_COMPLETE) != 0)
        dots_log(ctx, DOTS_LOG_DEBUG, "tokenizer: PCRE2 JIT unavailable; using the interpreter");
    return DOTS_OK;
}

dots_status dots_pretok_split(dots_ctx *ctx, const dots_tokenizer *tok, const char *text, size_t len,
                              dots_piece_fn fn, void *user) {
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(tok->re, NULL);
    if (!md) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    dots_status st = DOTS_OK;
    size_t pos = 0, gap = 0; /* gap: start of text not yet emitted */
    while (pos < len && st == DOTS_OK) {
        /* The caller validated the UTF-8 once, for the whole text. */
        int rc = pcre2_match(tok->re, (PCRE2_SPTR)text, len, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(rc, msg, sizeof msg);
            st = DOTS_FAIL(ctx, DOTS_ERR_INTERNAL, "tokenizer: regex match failed: %s", (const char *)msg);
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t b = ov[0], e = ov[1];
        if (b > gap) st = fn(user, text + gap, b - gap);
        if (st == DOTS_OK && e > b) st = fn(user, text + b, e - b);
        if (e > b) {
            pos = gap = e;
        } else {
            /* An empty match would loop: step over one character. */
            pos = b + 1;
            while (pos < len && ((unsigned char)text[pos] & 0xC0) == 0x80) pos++;
            gap = b;
        }
    }
    if (st == DOTS_OK && gap < len) st = fn(user, text + gap, len - gap);
    pcre2_match_data_free(md);
    return st;
}
