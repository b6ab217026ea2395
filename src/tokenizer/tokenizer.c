/*
 * tokenizer.c - encoding and decoding with the tables vocab.c builds.
 *
 *   encode: text ─► added tokens (literal, leftmost-longest) ─► NFC of the
 *           text between them ─► Split regex ─► byte-level BPE per piece
 *   decode: ids ─► token strings ─► bytes (inverse byte map) ─► UTF-8 with
 *           U+FFFD for invalid sequences (Python's errors="replace")
 */
#include "tokenizer/tokenizer_internal.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

void dots_free(void *p) { free(p); }

/* ------------------------------------------------------------------ UTF-8 */

bool dots_byte_buf_append(dots_byte_buf *b, const void *p, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) return false;
        b->data = d;
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->n, p, n); /* p may be NULL when n is 0 */
    b->n += n;
    b->data[b->n] = '\0';
    return true;
}

/* Length of the well-formed sequence at s (Unicode Table 3-7), 0 if the
 * bytes there are not one; *need is how many bytes a sequence starting with
 * s[0] takes, and *ok how many of the available bytes fit it. */
static size_t utf8_seq(const uint8_t *s, size_t avail, size_t *need, size_t *ok) {
    uint8_t b = s[0];
    uint8_t lo = 0x80, hi = 0xBF;
    size_t n;
    if (b < 0x80) n = 1;
    else if (b >= 0xC2 && b <= 0xDF) n = 2;
    else if (b == 0xE0) n = 3, lo = 0xA0;
    else if (b == 0xED) n = 3, hi = 0x9F;
    else if (b >= 0xE1 && b <= 0xEF) n = 3;
    else if (b == 0xF0) n = 4, lo = 0x90;
    else if (b == 0xF4) n = 4, hi = 0x8F;
    else if (b >= 0xF1 && b <= 0xF3) n = 4;
    else {
        *need = 1;
        *ok = 0;
        return 0;
    }
    *need = n;
    size_t k = 1;
    for (; k < n && k < avail; k++) {
        uint8_t c = s[k];
        if (k == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) break;
    }
    *ok = k;
    return k == n ? n : 0;
}

bool dots_utf8_valid(const char *s, size_t len) {
    const uint8_t *p = (const uint8_t *)s;
    for (size_t i = 0; i < len;) {
        size_t need, ok, n = utf8_seq(p + i, len - i, &need, &ok);
        if (!n) return false;
        i += n;
    }
    return true;
}

bool dots_utf8_lossy(const uint8_t *s, size_t len, bool keep_tail, dots_byte_buf *out, size_t *consumed) {
    static const char fffd[3] = {(char)0xEF, (char)0xBF, (char)0xBD};
    size_t i = 0, run = 0; /* run: start of valid bytes not yet copied */
    while (i < len) {
        size_t need, ok, n = utf8_seq(s + i, len - i, &need, &ok);
        if (n) {
            i += n;
            continue;
        }
        if (keep_tail && ok > 0 && i + ok == len && ok < need) break; /* may still complete */
        if (!dots_byte_buf_append(out, s + run, i - run) || !dots_byte_buf_append(out, fffd, 3)) return false;
        i += ok ? ok : 1; /* the maximal subpart is replaced by one U+FFFD */
        run = i;
    }
    if (!dots_byte_buf_append(out, s + run, i - run)) return false;
    if (consumed) *consumed = i;
    return true;
}

/* ----------------------------------------------------------------- encode */

typedef struct encode_state {
    dots_ctx *ctx;
    dots_tokenizer *tok;
    dots_id_buf ids;
} encode_state;

static dots_status on_piece(void *user, const char *piece, size_t len) {
    encode_state *e = user;
    return dots_bpe_word(e->ctx, e->tok, piece, len, &e->ids);
}

/* NFC, then split and BPE, for text between added tokens. */
static dots_status encode_plain(encode_state *e, const char *text, size_t len) {
    if (len == 0) return DOTS_OK;
    if (!e->tok->nfc) return dots_pretok_split(e->ctx, e->tok, text, len, on_piece, e);
    utf8proc_uint8_t *nfc = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)len, &nfc,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (n < 0) {
        free(nfc);
        return DOTS_FAIL(e->ctx, n == UTF8PROC_ERROR_NOMEM ? DOTS_ERR_OUT_OF_MEMORY : DOTS_ERR_INVALID_ARGUMENT,
                         "tokenizer: NFC normalisation failed: %s", utf8proc_errmsg(n));
    }
    dots_status st = dots_pretok_split(e->ctx, e->tok, (const char *)nfc, (size_t)n, on_piece, e);
    free(nfc);
    return st;
}

/* Longest added token starting at s, or NULL. */
static const dots_added_token *match_added(const dots_tokenizer *t, const char *s, size_t avail) {
    unsigned char c = (unsigned char)s[0];
    for (int32_t i = t->added_first[c]; i < t->added_first[c + 1]; i++) {
        const dots_added_token *a = &t->added[i];
        if (a->len <= avail && memcmp(a->content, s, a->len) == 0) return a; /* sorted longest first */
    }
    return NULL;
}

dots_status dots_tok_encode(dots_ctx *ctx, dots_tokenizer *tok, const char *text, size_t len, int32_t **ids,
                            size_t *n_ids) {
    dots_ctx_begin_call(ctx);
    if (!tok || (!text && len) || !ids || !n_ids)
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_tok_encode: NULL argument");
    if (!dots_utf8_valid(text, len)) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "tokenizer: input is not valid UTF-8");
    encode_state e = {ctx, tok, {0}};
    dots_status st = DOTS_OK;
    size_t plain = 0;
    for (size_t i = 0; i < len && st == DOTS_OK;) {
        const dots_added_token *a = tok->added_first[(unsigned char)text[i]] < tok->added_first[(unsigned char)text[i] + 1]
                                        ? match_added(tok, text + i, len - i)
                                        : NULL;
        if (!a) {
            i++;
            continue;
        }
        st = encode_plain(&e, text + plain, i - plain);
        if (st == DOTS_OK && !dots_id_buf_push(&e.ids, a->id)) st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
        i += a->len;
        plain = i;
    }
    if (st == DOTS_OK) st = encode_plain(&e, text + plain, len - plain);
    if (st != DOTS_OK) {
        free(e.ids.ids);
        return st;
    }
    if (!e.ids.ids && !(e.ids.ids = malloc(sizeof(int32_t)))) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    *ids = e.ids.ids;
    *n_ids = e.ids.n;
    return DOTS_OK;
}

/* ----------------------------------------------------------------- decode */

/* Appends the bytes of token id: its characters through the inverse byte
 * map, or, if one of them is not a byte image, the string's own UTF-8 (the
 * reference ByteLevel decoder's rule; added tokens come out verbatim). */
static bool token_bytes(const dots_tokenizer *t, int32_t id, dots_byte_buf *out) {
    const uint8_t *s = (const uint8_t *)t->arena + t->tok_off[id];
    size_t n = t->tok_len[id];
    uint8_t tmp[256];
    uint8_t *buf = n <= sizeof tmp ? tmp : malloc(n);
    if (!buf) return false;
    size_t k = 0;
    bool mapped = true;
    for (size_t i = 0; i < n && mapped;) {
        uint32_t cp;
        if (s[i] < 0x80) cp = s[i++];
        else if ((s[i] & 0xE0) == 0xC0 && i + 1 < n) cp = ((uint32_t)(s[i] & 0x1F) << 6) | (s[i + 1] & 0x3F), i += 2;
        else { mapped = false; break; }
        int b = dots_unicode_to_byte(cp);
        if (b < 0) mapped = false;
        else buf[k++] = (uint8_t)b;
    }
    bool ok = mapped ? dots_byte_buf_append(out, buf, k) : dots_byte_buf_append(out, s, n);
    if (buf != tmp) free(buf);
    return ok;
}

size_t dots_tok_vocab_bytes(const dots_tokenizer *t, int32_t id, uint8_t *out, size_t cap) {
    if (!t || id < 0 || id >= t->n_ids || t->tok_off[id] == UINT32_MAX || !(t->tok_flags[id] & DOTS_TOKF_VOCAB) ||
        (t->tok_flags[id] & DOTS_TOKF_ADDED))
        return 0;
    dots_byte_buf b = {0};
    size_t n = 0;
    if (token_bytes(t, id, &b) && b.n <= cap) {
        memcpy(out, b.data, b.n);
        n = b.n;
    }
    free(b.data);
    return n;
}

static dots_status check_id(dots_ctx *ctx, const dots_tokenizer *t, int32_t id) {
    if (id < 0 || id >= t->n_ids || t->tok_off[id] == UINT32_MAX)
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "tokenizer: id %d is not in the vocabulary (0..%d)", id, t->n_ids - 1);
    return DOTS_OK;
}

dots_status dots_tok_decode(dots_ctx *ctx, const dots_tokenizer *tok, const int32_t *ids, size_t n_ids,
                            bool skip_special, char **text, size_t *len) {
    dots_ctx_begin_call(ctx);
    if (!tok || (!ids && n_ids) || !text || !len)
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_tok_decode: NULL argument");
    dots_byte_buf bytes = {0}, out = {0};
    dots_status st = DOTS_OK;
    for (size_t i = 0; i < n_ids && st == DOTS_OK; i++) {
        st = check_id(ctx, tok, ids[i]);
        if (st != DOTS_OK) break;
        if (skip_special && (tok->tok_flags[ids[i]] & DOTS_TOKF_SPECIAL)) continue;
        if (!token_bytes(tok, ids[i], &bytes)) st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    }
    if (st == DOTS_OK && (!dots_utf8_lossy((const uint8_t *)bytes.data, bytes.n, false, &out, NULL) ||
                          (!out.data && !dots_byte_buf_append(&out, "", 0))))
        st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    free(bytes.data);
    if (st != DOTS_OK) {
        free(out.data);
        return st;
    }
    *text = out.data;
    *len = out.n;
    return DOTS_OK;
}

/* -------------------------------------------------------------- streaming */

struct dots_tok_stream {
    const dots_tokenizer *tok;
    bool skip_special;
    dots_byte_buf pending; /* bytes not yet emitted: at most an incomplete character */
    dots_byte_buf out;     /* what the last call returned */
};

dots_status dots_tok_stream_create(dots_ctx *ctx, const dots_tokenizer *tok, bool skip_special, dots_tok_stream **out) {
    dots_ctx_begin_call(ctx);
    if (!tok || !out) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_tok_stream_create: NULL argument");
    dots_tok_stream *s = calloc(1, sizeof *s);
    if (!s) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    s->tok = tok;
    s->skip_special = skip_special;
    *out = s;
    return DOTS_OK;
}

void dots_tok_stream_free(dots_tok_stream *s) {
    if (!s) return;
    free(s->pending.data);
    free(s->out.data);
    free(s);
}

static dots_status stream_emit(dots_ctx *ctx, dots_tok_stream *s, bool final, const char **text, size_t *len) {
    s->out.n = 0;
    size_t used = 0;
    if (!dots_utf8_lossy((const uint8_t *)s->pending.data, s->pending.n, !final, &s->out, &used) ||
        (!s->out.data && !dots_byte_buf_append(&s->out, "", 0)))
        return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    if (used) {
        memmove(s->pending.data, s->pending.data + used, s->pending.n - used);
        s->pending.n -= used;
    }
    *text = s->out.data;
    *len = s->out.n;
    return DOTS_OK;
}

dots_status dots_tok_stream_push(dots_ctx *ctx, dots_tok_stream *s, int32_t id, const char **text, size_t *len) {
    dots_ctx_begin_call(ctx);
    if (!s || !text || !len) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_tok_stream_push: NULL argument");
    dots_status st = check_id(ctx, s->tok, id);
    if (st != DOTS_OK) return st;
    if (!(s->skip_special && (s->tok->tok_flags[id] & DOTS_TOKF_SPECIAL)) && !token_bytes(s->tok, id, &s->pending))
        return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    return stream_emit(ctx, s, false, text, len);
}

dots_status dots_tok_stream_flush(dots_ctx *ctx, dots_tok_stream *s, const char **text, size_t *len) {
    dots_ctx_begin_call(ctx);
    if (!s || !text || !len) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_tok_stream_flush: NULL argument");
    return stream_emit(ctx, s, true, text, len);
}
