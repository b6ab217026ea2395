/*
 * bpe.c - byte-level BPE of one pre-token.
 *
 * Each byte starts as the token of its bytes_to_unicode character; then the
 * adjacent pair with the lowest merge rank is merged, leftmost first among
 * equal ranks, until no pair has a merge. That is the reference algorithm
 * (tokenizers' Word::merge_all), done with a binary heap and lazy deletion,
 * so a long word costs O(n log n), not O(n^2). Results of short words are
 * cached, since documents repeat words.
 */
#include "tokenizer/tokenizer_internal.h"

#include <stdlib.h>
#include <string.h>

bool dots_id_buf_push(dots_id_buf *b, int32_t id) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        int32_t *p = realloc(b->ids, cap * sizeof *p);
        if (!p) return false;
        b->ids = p;
        b->cap = cap;
    }
    b->ids[b->n++] = id;
    return true;
}

typedef struct pair_cand {
    int32_t rank;
    int32_t pos;             /* left symbol */
    int32_t new_id;          /* what the pair merged into when pushed */
} pair_cand;

static bool cand_less(const pair_cand *a, const pair_cand *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(pair_cand *h, size_t *n, pair_cand c) {
    size_t i = (*n)++;
    h[i] = c;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(&h[i], &h[p])) break;
        pair_cand t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

static pair_cand heap_pop(pair_cand *h, size_t *n) {
    pair_cand top = h[0];
    h[0] = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < *n && cand_less(&h[l], &h[m])) m = l;
        if (r < *n && cand_less(&h[r], &h[m])) m = r;
        if (m == i) break;
        pair_cand t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
    return top;
}

static void push_pair(const dots_tokenizer *tok, pair_cand *heap, size_t *n_heap, const int32_t *id, int32_t pos,
                      int32_t next) {
    if (next < 0) return;
    const dots_u64map_slot *s = dots_u64map_get(&tok->merges, ((uint64_t)(uint32_t)id[pos] << 32) | (uint32_t)id[next]);
    if (s) heap_push(heap, n_heap, (pair_cand){s->a, pos, s->b});
}

static dots_status bpe_uncached(dots_ctx *ctx, const dots_tokenizer *tok, const char *word, size_t len, dots_id_buf *out) {
    /* Every merge removes a symbol, and each pushes at most two pairs. */
    int32_t *id = malloc(len * sizeof *id);
    int32_t *prev = malloc(len * sizeof *prev);
    int32_t *next = malloc(len * sizeof *next);
    pair_cand *heap = malloc((3 * len + 1) * sizeof *heap);
    dots_status st = DOTS_OK;
    if (!id || !prev || !next || !heap) {
        st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory tokenizing a %zu-byte word", len);
        goto done;
    }
    for (size_t i = 0; i < len; i++) {
        id[i] = tok->byte_id[(unsigned char)word[i]];
        prev[i] = (int32_t)i - 1;
        next[i] = i + 1 < len ? (int32_t)i + 1 : -1;
    }
    size_t n_heap = 0;
    for (size_t i = 0; i + 1 < len; i++) push_pair(tok, heap, &n_heap, id, (int32_t)i, (int32_t)i + 1);
    while (n_heap > 0) {
        pair_cand c = heap_pop(heap, &n_heap);
        int32_t r = next[c.pos];
        if (id[c.pos] < 0 || r < 0) continue; /* merged away, or no right neighbour */
        /* Stale unless the pair there now still merges into the same token:
         * exactly the reference's test, quirks included. */
        const dots_u64map_slot *s = dots_u64map_get(&tok->merges, ((uint64_t)(uint32_t)id[c.pos] << 32) | (uint32_t)id[r]);
        if (!s || s->b != c.new_id) continue;
        id[c.pos] = s->b;
        id[r] = -1; /* dead */
        next[c.pos] = next[r];
        if (next[r] >= 0) prev[next[r]] = c.pos;
        if (prev[c.pos] >= 0) push_pair(tok, heap, &n_heap, id, prev[c.pos], c.pos);
        push_pair(tok, heap, &n_heap, id, c.pos, next[c.pos]);
    }
    for (int32_t i = 0; i >= 0; i = next[i])
        if (!dots_id_buf_push(out, id[i])) {
            st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
            break;
        }
done:
    free(id);
    free(prev);
    free(next);
    free(heap);
    return st;
}

void dots_bpe_cache_free(dots_tokenizer *tok) {
    if (!tok->cache) return;
    for (size_t i = 0; i < DOTS_BPE_CACHE_SLOTS; i++) {
        free(tok->cache[i].word);
        free(tok->cache[i].ids);
        tok->cache[i].word = NULL;
        tok->cache[i].ids = NULL;
    }
}

dots_status dots_bpe_word(dots_ctx *ctx, dots_tokenizer *tok, const char *word, size_t len, dots_id_buf *out) {
    if (len == 0) return DOTS_OK;
    if (len > DOTS_BPE_CACHE_MAX_WORD) return bpe_uncached(ctx, tok, word, len, out);
    /* direct-mapped cache: a collision just replaces the slot */
    dots_bpe_cache_entry *e = &tok->cache[dots_hash_bytes(word, len) & (DOTS_BPE_CACHE_SLOTS - 1)];
    if (e->word && e->len == len && memcmp(e->word, word, len) == 0) {
        for (uint32_t i = 0; i < e->n_ids; i++)
            if (!dots_id_buf_push(out, e->ids[i])) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
        return DOTS_OK;
    }
    size_t start = out->n;
    dots_status st = bpe_uncached(ctx, tok, word, len, out);
    if (st != DOTS_OK) return st;
    size_t n = out->n - start;
    char *w = malloc(len);
    int32_t *ids = malloc(n * sizeof *ids);
    if (!w || !ids) { /* caching is optional */
        free(w);
        free(ids);
        return DOTS_OK;
    }
    memcpy(w, word, len);
    memcpy(ids, out->ids + start, n * sizeof *ids);
    free(e->word);
    free(e->ids);
    e->word = w;
    e->len = (uint32_t)len;
    e->ids = ids;
    e->n_ids = (uint32_t)n;
    return DOTS_OK;
}
