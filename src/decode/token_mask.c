/*
 * token_mask.c - see token_mask.h. The trie is first-child / next-sibling
 * nodes over the tokens' raw bytes (a 151k vocabulary makes ~400k nodes);
 * a mask is one depth-first walk that feeds each node's byte to a copy of
 * the grammar state and skips the subtree as soon as a byte is refused.
 */
#include "decode/token_mask.h"

#include "tokenizer/tokenizer_internal.h"

#include <stdlib.h>
#include <string.h>

#define CACHE_SLOTS 64
#define MAX_TOKEN_BYTES 256

typedef struct trie_node {
    int32_t first_child, next_sibling;
    int32_t token; /* the token these bytes spell, -1 if none */
    uint8_t byte;
} trie_node;

typedef struct cache_slot {
    dots_lg_state key;
    uint64_t *bits;
    uint64_t used; /* last use, for eviction */
    bool valid;
} cache_slot;

struct dots_token_mask {
    int32_t n_ids;
    size_t n_words;
    trie_node *nodes;
    size_t n_nodes, cap_nodes;
    uint8_t *bytes;     /* every token's bytes, back to back */
    uint32_t *byte_off; /* [n_ids + 1] */
    cache_slot cache[CACHE_SLOTS];
    uint64_t clock;
};

static int32_t new_node(dots_token_mask *m, uint8_t byte) {
    if (m->n_nodes == m->cap_nodes) {
        size_t cap = m->cap_nodes ? m->cap_nodes * 2 : 1 << 16;
        trie_node *p = realloc(m->nodes, cap * sizeof *p);
        if (!p) return -1;
        m->nodes = p;
        m->cap_nodes = cap;
    }
    m->nodes[m->n_nodes] = (trie_node){-1, -1, -1, byte};
    return (int32_t)m->n_nodes++;
}

static bool insert(dots_token_mask *m, const uint8_t *b, size_t n, int32_t id) {
    int32_t node = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t c = m->nodes[node].first_child, prev = -1;
        while (c >= 0 && m->nodes[c].byte != b[i]) prev = c, c = m->nodes[c].next_sibling;
        if (c < 0) {
            if ((c = new_node(m, b[i])) < 0) return false;
            if (prev < 0) m->nodes[node].first_child = c;
            else m->nodes[prev].next_sibling = c;
        }
        node = c;
    }
    m->nodes[node].token = id;
    return true;
}

void dots_token_mask_free(dots_token_mask *m) {
    if (!m) return;
    for (int i = 0; i < CACHE_SLOTS; i++) free(m->cache[i].bits);
    free(m->nodes);
    free(m->bytes);
    free(m->byte_off);
    free(m);
}

dots_status dots_token_mask_create(dots_ctx *ctx, const dots_tokenizer *tok, int32_t n_ids, dots_token_mask **out) {
    dots_token_mask *m = calloc(1, sizeof *m);
    if (!m) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory for the token mask");
    m->n_ids = n_ids;
    m->n_words = ((size_t)n_ids + 63) / 64;
    m->byte_off = calloc((size_t)n_ids + 1, sizeof *m->byte_off);
    size_t cap = (size_t)n_ids * 8 + 1024, used = 0;
    m->bytes = malloc(cap);
    bool ok = m->byte_off && m->bytes && new_node(m, 0) == 0;
    uint8_t buf[MAX_TOKEN_BYTES];
    for (int32_t id = 0; ok && id < n_ids; id++) {
        size_t n = dots_tok_vocab_bytes(tok, id, buf, sizeof buf);
        if (used + n > cap) {
            uint8_t *p = realloc(m->bytes, cap * 2 + n);
            if (!p) {
                ok = false;
                break;
            }
            m->bytes = p;
            cap = cap * 2 + n;
        }
        memcpy(m->bytes + used, buf, n);
        m->byte_off[id] = (uint32_t)used;
        used += n;
        m->byte_off[id + 1] = (uint32_t)used;
        if (n) ok = insert(m, buf, n, id);
    }
    if (!ok) {
        dots_token_mask_free(m);
        return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory for the token mask");
    }
    *out = m;
    return DOTS_OK;
}

const uint8_t *dots_token_mask_bytes(const dots_token_mask *m, int32_t id, size_t *len) {
    if (id < 0 || id >= m->n_ids) {
        *len = 0;
        return NULL;
    }
    *len = m->byte_off[id + 1] - m->byte_off[id];
    return m->bytes + m->byte_off[id];
}

static void walk(const dots_token_mask *m, int32_t node, const dots_lg_state *s, uint64_t *bits) {
    for (int32_t c = m->nodes[node].first_child; c >= 0; c = m->nodes[c].next_sibling) {
        dots_lg_state t = *s;
        if (!dots_lg_feed(&t, m->nodes[c].byte)) continue;
        int32_t id = m->nodes[c].token;
        if (id >= 0) bits[id >> 6] |= 1ull << (id & 63);
        if (m->nodes[c].first_child >= 0) walk(m, c, &t, bits);
    }
}

const uint64_t *dots_token_mask_get(dots_token_mask *m, const dots_lg_state *s) {
    m->clock++;
    cache_slot *victim = &m->cache[0];
    for (int i = 0; i < CACHE_SLOTS; i++) {
        cache_slot *c = &m->cache[i];
        if (c->valid && memcmp(&c->key, s, sizeof *s) == 0) {
            c->used = m->clock;
            return c->bits;
        }
        if (!c->valid || c->used < victim->used) victim = c;
    }
    if (!victim->bits && !(victim->bits = malloc(m->n_words * sizeof *victim->bits))) return NULL;
    memset(victim->bits, 0, m->n_words * sizeof *victim->bits);
    walk(m, 0, s, victim->bits);
    victim->key = *s;
    victim->used = m->clock;
    victim->valid = true;
    return victim->bits;
}
