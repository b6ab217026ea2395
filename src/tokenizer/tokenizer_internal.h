/*
 * tokenizer_internal.h - the tokenizer's tables, shared by its files:
 *
 *   vocab.c       tokenizer.json / vocab.json + merges.txt -> these tables
 *   pretokenize.c the Split regex (PCRE2, UTF + UCP, JIT)
 *   bpe.c         byte-level BPE of one pre-token, with a word cache
 *   tokenizer.c   encode (added tokens, NFC, split, BPE), decode, streaming
 */
#ifndef DOTS_TOKENIZER_INTERNAL_H
#define DOTS_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/internal.h"
#include "core/strmap.h"

#define DOTS_TOK_MAX_IDS (1 << 24)      /* far above any real vocabulary */
#define DOTS_TOK_MAX_FILE_BYTES (256u << 20)

typedef struct dots_added_token {
    const char *content; /* in the arena */
    uint32_t len;
    int32_t id;
    bool special;
} dots_added_token;

typedef struct dots_bpe_cache_entry {
    char *word;    /* owned, NULL = empty slot */
    uint32_t len;
    int32_t *ids;  /* owned */
    uint32_t n_ids;
} dots_bpe_cache_entry;

struct dots_tokenizer {
    int32_t n_ids;              /* one past the largest id */
    char *arena;                /* every token string, NUL-separated */
    size_t arena_len, arena_cap;
    uint32_t *tok_off;          /* [n_ids] offset in arena, UINT32_MAX = no token */
    uint32_t *tok_len;          /* [n_ids] */
    uint8_t *tok_flags;         /* [n_ids] DOTS_TOKF_* */
    dots_strmap vocab;          /* BPE token string -> id */
    dots_strmap added_map;      /* added-token content -> id */
    dots_u64map merges;         /* (left id << 32 | right id) -> (rank, merged id) */
    int32_t byte_id[256];       /* id of the one-character token of each byte */
    dots_added_token *added;    /* [n_added], sorted by first byte then length desc */
    int32_t n_added;
    int32_t added_first[257];   /* added[] index range per first byte */
    bool nfc;                   /* normalizer NFC (else none) */
    pcre2_code *re;             /* pre-tokenizer Split regex */
    dots_bpe_cache_entry *cache; /* [DOTS_BPE_CACHE_SLOTS] */
};

enum { DOTS_TOKF_VOCAB = 1, DOTS_TOKF_ADDED = 2, DOTS_TOKF_SPECIAL = 4 };

#define DOTS_BPE_CACHE_SLOTS 16384
#define DOTS_BPE_CACHE_MAX_WORD 64

/* GPT-2's bytes_to_unicode: byte -> code point, and its inverse (-1 for
 * code points that are not images of a byte). */
int dots_byte_to_unicode(int byte);
int dots_unicode_to_byte(uint32_t cp);

/* pretokenize.c: compiles pattern (from tokenizer.json) into tok->re. */
dots_status dots_pretok_compile(dots_ctx *ctx, dots_tokenizer *tok, const char *pattern);
/* Calls fn for each piece of text[0..len) (Isolated split: matches and the
 * gaps between them, in order). Stops at the first non-OK status. */
typedef dots_status (*dots_piece_fn)(void *user, const char *piece, size_t len);
dots_status dots_pretok_split(dots_ctx *ctx, const dots_tokenizer *tok, const char *text, size_t len,
                              dots_piece_fn fn, void *user);

/* bpe.c: appends the ids of one pre-token to out (growable). */
typedef struct dots_id_buf {
    int32_t *ids;
    size_t n, cap;
} dots_id_buf;
bool dots_id_buf_push(dots_id_buf *b, int32_t id);
dots_status dots_bpe_word(dots_ctx *ctx, dots_tokenizer *tok, const char *word, size_t len, dots_id_buf *out);
void dots_bpe_cache_free(dots_tokenizer *tok);

/* utf8: length of the valid UTF-8 prefix, and the lossy decoder. */
bool dots_utf8_valid(const char *s, size_t len);
/* Appends s[0..len) to out with invalid sequences replaced by U+FFFD
 * (maximal subparts, as Python and Rust do). If keep_tail, an incomplete but
 * so far valid sequence at the end is not emitted; *consumed tells how many
 * bytes were. */
typedef struct dots_byte_buf {
    char *data;
    size_t n, cap;
} dots_byte_buf;
bool dots_byte_buf_append(dots_byte_buf *b, const void *p, size_t n);
bool dots_utf8_lossy(const uint8_t *s, size_t len, bool keep_tail, dots_byte_buf *out, size_t *consumed);

/* The raw bytes of BPE vocabulary token id into out (at most cap); 0 for
 * added tokens, unknown ids and tokens longer than cap. */
size_t dots_tok_vocab_bytes(const dots_tokenizer *t, int32_t id, uint8_t *out, size_t cap);

#endif
